/*
 * ratelimit.c - token buckets in an open table of RATELIMIT_SLOTS slots.
 *
 * Tokens are kept in thousandths so a rate of a few a second refills
 * smoothly.  A slot remembers the hash of its requester; a new requester
 * takes a slot over only once the bucket there is full again (its owner
 * idle), otherwise it shares it.
 */
#include "ratelimit.h"
#include "fr_error.h"

#include <stdlib.h>

#define RATELIMIT_SLOTS 4096u

struct ratelimit_slot {
    uint64_t who;          /* hash of the requester, 0: free */
    uint64_t updated_ms;   /* when tokens was last brought up to date */
    int64_t tokens;        /* thousandths of a request */
};

struct ratelimit {
    int64_t per_second;    /* refill rate, requests a second */
    int64_t burst;         /* bucket size, requests */
    struct ratelimit_slot slots[RATELIMIT_SLOTS]; /* the table */
};

int ratelimit_new(struct ratelimit **out, int per_second, int burst)
{
    struct ratelimit *limiter = calloc(1, sizeof(*limiter));

    *out = NULL;
    if (!limiter)
        return FR_ENOMEM;
    limiter->per_second = per_second < 1 ? 1 : per_second;
    limiter->burst = burst < 1 ? 1 : burst;
    *out = limiter;
    return 0;
}

void ratelimit_free(struct ratelimit *limiter)
{
    free(limiter);
}

/* FNV-1a, never 0. */
static uint64_t ratelimit_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h ? h : 1;
}

bool ratelimit_take(struct ratelimit *limiter, const char *who, uint64_t now_ms)
{
    uint64_t h = ratelimit_hash(who ? who : "");
    struct ratelimit_slot *slot = &limiter->slots[h % RATELIMIT_SLOTS];
    int64_t full = limiter->burst * 1000;

    if (slot->who != 0) {
        uint64_t elapsed = now_ms > slot->updated_ms ? now_ms - slot->updated_ms : 0;
        int64_t refill = elapsed > 3600u * 1000u ? full : (int64_t)elapsed * limiter->per_second;

        slot->tokens = slot->tokens + refill > full ? full : slot->tokens + refill;
    }
    if (slot->who == 0 || (slot->who != h && slot->tokens >= full)) {
        slot->who = h;
        slot->tokens = full;
    }
    slot->updated_ms = now_ms;
    if (slot->tokens < 1000)
        return false;
    slot->tokens -= 1000;
    return true;
}
