/*
 * ratelimit.h - a token bucket per requester, in a fixed-size table.
 *
 * Each requester (a bare JID: resources do not multiply the allowance) may
 * make `burst` requests at once and `per_second` a second on average.  The
 * table never grows: a requester whose slot is held by another, still busy
 * requester shares that one's bucket, so memory stays bounded however many
 * JIDs ask, and a crowd is limited rather than let through.
 */
#ifndef FILEREPO_RATELIMIT_H
#define FILEREPO_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/**
 * Creates a limiter allowing `per_second` requests a second with bursts of
 * `burst` (both >= 1).  Returns 0 and hands it to *out, or FR_ENOMEM.
 */
int ratelimit_new(struct ratelimit **out, int per_second, int burst);

/** Frees the limiter; NULL is fine. */
void ratelimit_free(struct ratelimit *limiter);

/**
 * Takes one token for `who` at time now_ms (monotonic).  Returns true when
 * the request may go ahead, false when the requester is over its rate.
 */
bool ratelimit_take(struct ratelimit *limiter, const char *who, uint64_t now_ms);

#endif
