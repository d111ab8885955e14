/* Clocks: monotonic for durations, wall-clock for timestamps; civil dates. */
#include <stdio.h>
#include <time.h>

#include "chorus/core.h"

uint64_t core_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t core_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *core_time_format(char *out, size_t out_size, int64_t wall_us)
{
    time_t secs = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_us % 1000000));
    return out;
}

/* The era-based algorithm of H. Hinnant's "chrono-Compatible Low-Level Date
 * Algorithms": no tables, negative years included. */
long core_days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int core_time_from_tm(const struct tm *tm, int64_t *secs)
{
    struct tm t = *tm, back;
    time_t v = timegm(&t);
    if (gmtime_r(&v, &back) == NULL || back.tm_year != tm->tm_year || back.tm_mon != tm->tm_mon ||
        back.tm_mday != tm->tm_mday || back.tm_hour != tm->tm_hour || back.tm_min != tm->tm_min ||
        back.tm_sec != tm->tm_sec)
        return -1;
    *secs = (int64_t)v;
    return 0;
}
