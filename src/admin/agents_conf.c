/* The queues file (agents.queues_file, docs/agents.md): the human queues,
 * their business hours in an IANA time zone, their limits and messages, and
 * which handoff reason goes to which queue. Read once when the desk starts
 * (before serving); the zone's offsets come from the system's TZif file
 * (/usr/share/zoneinfo), read at the same time, so deciding whether a
 * queue is open never touches the disk or the process's TZ. */
#define LOG_MODULE "agents"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

typedef __typeof__(((ag_queue_t *)0)->zone) ag_zone_t;

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

static int zone_load(const char *name, ag_zone_t *z)
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

/* "HH:MM-HH:MM" into minutes; -1 when malformed. */
static int parse_span(const char *s, int *open, int *close)
{
    unsigned h1, m1, h2, m2;
    char tail;
    if (s == NULL || sscanf(s, "%u:%u-%u:%u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 24 ||
        h2 > 24 || m1 > 59 || m2 > 59)
        return -1;
    *open = (int)(h1 * 60 + m1);
    *close = (int)(h2 * 60 + m2);
    return *close > *open ? 0 : -1;
}

static char *dup_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? core_xstrdup(s) : NULL;
}

static int parse_hours(ag_queue_t *q, json_t *h, const char *file)
{
    static const char *const days[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int i = 0; i < 7; i++)
        q->open_min[i] = q->close_min[i] = -1;
    if (!json_is_object(h)) {
        q->open_min[0] = -2; /* always open */
        return 0;
    }
    q->tz = dup_str(h, "tz");
    if (q->tz == NULL || zone_load(q->tz, &q->zone) != 0) {
        LOG_ERROR("event=queues_invalid file=%s queue=%s reason=\"hours.tz is not a known IANA "
                  "time zone\"",
                  file, q->name);
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        json_t *v = json_object_get(h, days[i]);
        if (v != NULL && !json_is_null(v) &&
            parse_span(json_string_value(v), &q->open_min[i], &q->close_min[i]) != 0) {
            LOG_ERROR("event=queues_invalid file=%s queue=%s reason=\"hours.%s must be "
                      "HH:MM-HH:MM\"",
                      file, q->name, days[i]);
            return -1;
        }
    }
    return 0;
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

static void queue_dispose(ag_queue_t *q)
{
    free(q->name), free(q->tz), free(q->bot_flow), free(q->bot_node), free(q->dial);
    json_decref(q->wait_message);
    json_decref(q->closed_message);
    free(q->zone.at), free(q->zone.off);
}

static int parse_queue(ag_queue_t *q, json_t *o, const char *file)
{
    q->name = dup_str(o, "name");
    if (q->name == NULL) {
        LOG_ERROR("event=queues_invalid file=%s reason=\"a queue has no name\"", file);
        return -1;
    }
    q->max_wait_us = (int64_t)json_integer_value(json_object_get(o, "max_wait_s")) * 1000000;
    q->wait_message = json_incref(json_object_get(o, "wait_message"));
    q->closed_message = json_incref(json_object_get(o, "unavailable_message"));
    const char *when = json_string_value(json_object_get(o, "when_unavailable"));
    q->unavailable_bot = when != NULL && strcmp(when, "bot") == 0;
    q->bot_flow = dup_str(o, "bot_flow");
    q->bot_node = dup_str(o, "bot_node");
    q->dial = dup_str(o, "dial");
    if (when != NULL && strcmp(when, "bot") != 0 && strcmp(when, "callback") != 0) {
        LOG_ERROR("event=queues_invalid file=%s queue=%s reason=\"when_unavailable must be "
                  "callback or bot\"",
                  file, q->name);
        return -1;
    }
    return parse_hours(q, json_object_get(o, "hours"), file);
}

static void queues_free(ag_desk_t *d)
{
    for (size_t i = 0; i < d->n_queues; i++)
        queue_dispose(&d->queues[i]);
    free(d->queues);
    d->queues = NULL;
    d->n_queues = 0;
    json_decref(d->routes);
    d->routes = NULL;
}

void ag__conf_free(ag_desk_t *d)
{
    queues_free(d);
    free(d->conf_loaded);
    d->conf_loaded = NULL;
}

void ag__conf_load(ag_desk_t *d)
{
    const char *file = d->admin->host.cfg->agents.queues_file;
    if (d->conf_loaded != NULL && strcmp(d->conf_loaded, file) == 0)
        return;
    free(d->conf_loaded);
    d->conf_loaded = core_xstrdup(file);
    json_error_t jerr;
    json_t *doc = json_load_file(file, 0, &jerr);
    if (doc == NULL) {
        LOG_INFO("event=queues_default file=%s reason=\"%s\"", file, jerr.text);
        return;
    }
    json_t *qs = json_object_get(doc, "queues");
    size_t n = json_array_size(qs);
    ag_queue_t *queues = core_xcalloc(n + 1, sizeof(*queues));
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = parse_queue(&queues[i], json_array_get(qs, i), file) != 0;
    if (bad) {
        for (size_t i = 0; i < n; i++)
            queue_dispose(&queues[i]);
        free(queues);
        json_decref(doc);
        return;
    }
    queues_free(d);
    d->queues = queues;
    d->n_queues = n;
    json_t *routes = json_object_get(doc, "routes");
    d->routes = json_is_object(routes) ? json_incref(routes) : json_object();
    json_decref(doc);
    LOG_INFO("event=queues_loaded file=%s queues=%zu", file, n);
}

const ag_queue_t *ag__queue(ag_desk_t *d, const char *name)
{
    for (size_t i = 0; i < d->n_queues; i++)
        if (strcmp(d->queues[i].name, name) == 0)
            return &d->queues[i];
    return NULL;
}

const char *ag__route(ag_desk_t *d, const char *reason, const char *flow_queue)
{
    const char *q = json_string_value(json_object_get(d->routes, reason));
    if (q != NULL)
        return q;
    return flow_queue != NULL && *flow_queue != '\0' ? flow_queue : "default";
}

const char *ag__variant(const json_t *msg, brain_channel_t ch)
{
    if (json_is_string(msg))
        return json_string_value(msg);
    const char *v = json_string_value(json_object_get(msg, brain_channel_name(ch)));
    return v != NULL ? v : json_string_value(json_object_get(msg, "default"));
}
