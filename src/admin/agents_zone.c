/* Business hours: a queue's IANA time zone read from the system's TZif file
 * (/usr/share/zoneinfo) when the queues file is read, so deciding whether a
 * queue is open never touches the disk or the process's TZ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses the 64-bit (version 2+) block of a TZif file. */
static int zone_parse(const unsigned char *p, size_t len, ag_zone_t *z)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0 || p[4] < '2')
        return -1;
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(p + 20 + 4 * i); /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
    size_t skip = 44 + (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
    if (len < skip + 44 || memcmp(p + skip, "TZif", 4) != 0)
        return -1;
    p += skip;
    len -= skip;
    for (int i = 0; i < 6; i++)
        c[i] = be32(p + 20 + 4 * i);
    size_t need = 44 + (size_t)c[3] * 9 + (size_t)c[4] * 6;
    if (c[4] == 0 || len < need)
        return -1;
    const unsigned char *times = p + 44, *idx = times + (size_t)c[3] * 8, *types = idx + c[3];
    z->n = c[3];
    z->at = core_xcalloc(z->n + 1, sizeof(*z->at));
    z->off = core_xcalloc(z->n + 1, sizeof(*z->off));
    for (size_t i = 0; i < z->n; i++) {
        uint8_t t = idx[i] < c[4] ? idx[i] : 0;
        z->at[i] = be64(times + 8 * i);
        z->off[i] = (int32_t)be32(types + 6 * (size_t)t);
    }
    z->first = (int32_t)be32(types);
    return 0;
}

int ag__zone_load(const char *name, ag_zone_t *z)
{
    char path[512];
    if (strstr(name, "..") != NULL)
        return -1;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
    char *data = NULL;
    size_t len = 0;
    core_err_t err = {0};
    if (core_file_read(path, 1 << 20, &data, &len, &err) != 0)
        return -1;
    int rc = zone_parse((const unsigned char *)data, len, z);
    free(data);
    return rc;
}

static int32_t zone_offset(const ag_zone_t *z, int64_t t)
{
    int32_t off = z->first;
    for (size_t i = 0; i < z->n && z->at[i] <= t; i++)
        off = z->off[i];
    return off;
}

int ag__queue_open(const ag_queue_t *q, int64_t now_us)
{
    if (q->open_min[0] == -2)
        return 1;
    int64_t t = now_us / 1000000;
    t += zone_offset(&q->zone, t);
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int wday = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    if (wday < 0)
        wday += 7;
    int min = (int)((t - days * 86400) / 60);
    return q->open_min[wday] >= 0 && min >= q->open_min[wday] && min < q->close_min[wday];
}
