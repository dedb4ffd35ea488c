/* monotonic.h - the one monotonic clock (CLOCK_MONOTONIC) for durations
 * and throttles: training times in fit.c, the runner's progress throttle,
 * the HTTP streams' heartbeats.  Wall-clock times (events, job records)
 * come from daemon/job_record.c's job_now. */
#ifndef TRAIND_MONOTONIC_H
#define TRAIND_MONOTONIC_H

#include <stdint.h>
#include <time.h>

/* Seconds since an arbitrary fixed point. */
static inline double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Whole milliseconds since the same point. */
static inline int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
