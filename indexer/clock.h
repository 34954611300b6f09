/*
 * clock.h - monotonic milliseconds, for timers and back-off.
 */
#ifndef FILEREPO_CLOCK_H
#define FILEREPO_CLOCK_H

#include <stdint.h>
#include <time.h>

/** Returns milliseconds of CLOCK_MONOTONIC (unaffected by clock changes). */
static inline uint64_t clock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
