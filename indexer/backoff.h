/*
 * backoff.h - exponential back-off between attempts to reach a server.
 *
 * The first retry waits BACKOFF_MIN_MS, each failure doubles the wait up to
 * the configured maximum, and a success starts again from the minimum.
 */
#ifndef FILEREPO_BACKOFF_H
#define FILEREPO_BACKOFF_H

#define BACKOFF_MIN_MS 250u

struct backoff {
    unsigned next_ms; /* the wait after the next failure */
    unsigned max_ms;  /* the longest wait */
};

/** Sets up a back-off whose longest wait is max_seconds. */
static inline void backoff_init(struct backoff *b, int max_seconds)
{
    b->max_ms = (unsigned)max_seconds * 1000u;
    b->next_ms = BACKOFF_MIN_MS < b->max_ms ? BACKOFF_MIN_MS : b->max_ms;
}

/** Starts again from the shortest wait (after a success). */
static inline void backoff_reset(struct backoff *b)
{
    b->next_ms = BACKOFF_MIN_MS < b->max_ms ? BACKOFF_MIN_MS : b->max_ms;
}

/** Returns the wait before the next attempt and doubles the one after. */
static inline unsigned backoff_next(struct backoff *b)
{
    unsigned wait = b->next_ms;

    b->next_ms = wait > b->max_ms / 2 ? b->max_ms : wait * 2;
    return wait;
}

#endif
