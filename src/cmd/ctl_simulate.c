/* chorusctl simulate: plays a population of simulated customers against the
 * flows, in-process or against a running daemon over its chat REST API
 * (http:// or https:// URL) or its chat WebSocket (ws:// URL), and reports
 * containment, escalations by reason, failures, latency percentiles and the
 * turns where the script's expectations broke (docs/flywheel.md). The
 * population is drawn from a seeded generator: the same script, seed and
 * count always plan the same conversations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chorus/core.h"
#include "cmd/ctl.h"
#include "cmd/ctl_simulate.h"

int ctl_simulate(int argc, char **argv);
/* ctl_simulate_plan.c */
int sim_load_script(sim_t *s, const char *path);
void sim_plan(sim_t *s);
void sim_free_plan(sim_t *s);
json_t *sim_report(sim_t *s);
void sim_print(const json_t *r, FILE *out);

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl simulate --script FILE (--flows DIR | --url URL) [options]\n"
                 "  --conversations N   conversations to play (default 100)\n"
                 "  --concurrency C     at once (default 8)\n"
                 "  --url URL           a running daemon: http(s)://HOST:PORT plays the chat REST\n"
                 "                      API, ws(s)://HOST:PORT the chat WebSocket (one socket\n"
                 "                      per conversation)\n"
                 "  --channel NAME      in-process: whose message variants (default chat);\n"
                 "                      over --url the chat API serves the chat channel\n"
                 "  --api-key KEY       gateway key for --url (default $CHORUS_API_KEY)\n"
                 "  --seed N            population seed (default 1)\n"
                 "  --format F          table | json (default table)\n"
                 "  --progress on|off   progress bar on stderr (default: when it is a terminal)\n"
                 "Exit 0 when nothing failed and no expectation broke, 1 otherwise.\n"
                 "Script format: docs/flywheel.md.\n");
}

static int parse_long(const char *o, const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "simulate: %s: \"%s\" is not a whole number in [%ld, %ld]\n", o, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse(sim_t *s, const char **script, const char **format, int argc, char **argv)
{
    s->progress = isatty(STDERR_FILENO);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return usage(stdout), 1;
        if (v == NULL)
            return fprintf(stderr, "simulate: %s needs a value\n", o), 2;
        i++;
        long n;
        if (strcmp(o, "--script") == 0)
            *script = v;
        else if (strcmp(o, "--flows") == 0)
            s->flows = v;
        else if (strcmp(o, "--url") == 0)
            s->url = v;
        else if (strcmp(o, "--api-key") == 0)
            s->api_key = v;
        else if (strcmp(o, "--channel") == 0)
            s->channel_name = v;
        else if (strcmp(o, "--format") == 0 && (!strcmp(v, "table") || !strcmp(v, "json")))
            *format = v;
        else if (strcmp(o, "--progress") == 0 && (!strcmp(v, "on") || !strcmp(v, "off")))
            s->progress = strcmp(v, "on") == 0;
        else if (strcmp(o, "--conversations") == 0)
            if (parse_long(o, v, 1, 10000000, &s->conversations) != 0)
                return 2;
            else
                continue;
        else if (strcmp(o, "--concurrency") == 0)
            if (parse_long(o, v, 1, 10000, &s->concurrency) != 0)
                return 2;
            else
                continue;
        else if (strcmp(o, "--seed") == 0 && parse_long(o, v, 0, 0x7fffffffL, &n) == 0)
            s->seed = (uint64_t)n;
        else
            return fprintf(stderr, "simulate: bad option %s \"%s\" (see --help)\n", o, v), 2;
    }
    if (*script == NULL)
        return fprintf(stderr, "simulate: --script FILE is required\n"), 2;
    if ((s->flows == NULL) == (s->url == NULL))
        return fprintf(stderr, "simulate: give exactly one of --flows DIR (in-process) or "
                               "--url URL (a running daemon)\n"),
               2;
    if (s->channel_name == NULL)
        s->channel_name = "chat";
    if (brain_channel_parse(s->channel_name, &s->channel) != 0)
        return fprintf(stderr, "simulate: --channel: unknown channel \"%s\"\n", s->channel_name), 2;
    s->websocket =
        s->url != NULL && (strncmp(s->url, "ws://", 5) == 0 || strncmp(s->url, "wss://", 6) == 0);
    if (s->url != NULL && strcmp(s->channel_name, "chat") != 0)
        return fprintf(stderr, "simulate: over --url the chat API serves the chat channel; "
                               "play other channels in-process (--flows)\n"),
               2;
    if (s->url != NULL && s->api_key == NULL)
        s->api_key = getenv("CHORUS_API_KEY");
    return 0;
}

static void lat_push(sim_t *s, uint64_t us)
{
    if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 4096;
        s->lat = core_xrealloc(s->lat, s->cap_lat * sizeof(*s->lat));
    }
    s->lat[s->n_lat++] = us;
}

/* Why the bot's answer does not meet expect, or NULL. */
static const char *broken(const json_t *expect, const char *const *texts, size_t n,
                          const char *status, const char *intent, const char **key,
                          const char **want)
{
    const char *w = json_string_value(json_object_get(expect, "bot_contains"));
    if (w != NULL) {
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = texts[i] != NULL && strstr(texts[i], w) != NULL;
        if (!found) {
            *key = "bot_contains";
            *want = w;
            return n > 0 && texts[0] ? texts[0] : "(no message)";
        }
    }
    w = json_string_value(json_object_get(expect, "status"));
    if (w != NULL && strcmp(w, status) != 0) {
        *key = "status";
        *want = w;
        return status;
    }
    w = json_string_value(json_object_get(expect, "intent"));
    if (w != NULL && intent != NULL && strcmp(w, intent) != 0) { /* HTTP does not say */
        *key = "intent";
        *want = w;
        return intent;
    }
    return NULL;
}

int sim_observe(sim_t *s, size_t conv, size_t turn, uint64_t latency_us, const char *const *texts,
                size_t n_texts, const char *status, const char *intent)
{
    lat_push(s, latency_us);
    s->turns_sent++;
    sim_result_t *r = &s->results[conv];
    r->turns_done++;
    snprintf(r->status, sizeof(r->status), "%s", status);
    const sim_turn_t *t = &s->plan[conv].turns[turn];
    const char *key = NULL, *want = NULL;
    const char *got =
        t->expect ? broken(t->expect, texts, n_texts, status, intent, &key, &want) : NULL;
    if (got == NULL)
        return 0;
    const char *goal =
        json_string_value(json_object_get(json_array_get(s->goals, s->plan[conv].goal), "name"));
    char id[256];
    snprintf(id, sizeof(id), "%s/%d/%s", goal, t->script_index + 1, key);
    json_t *b = json_object_get(s->breaks, id);
    if (b == NULL) {
        b = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:i}", "goal", goal, "turn", t->script_index + 1,
                      "user", t->text, "kind", key, "expected", want, "got", got, "count", 0);
        json_object_set_new(s->breaks, id, b);
    }
    json_object_set_new(b, "count",
                        json_integer(json_integer_value(json_object_get(b, "count")) + 1));
    return 1;
}

void sim_fail(sim_t *s, size_t conv, const char *kind)
{
    s->failures++;
    sim_result_t *r = &s->results[conv];
    snprintf(r->status, sizeof(r->status), "failed");
    snprintf(r->reason, sizeof(r->reason), "%s", kind);
    json_object_set_new(
        s->failure_kinds, kind,
        json_integer(json_integer_value(json_object_get(s->failure_kinds, kind)) + 1));
}

void sim_progress(sim_t *s, int final)
{
    static uint64_t last;
    uint64_t now = core_now_us();
    if (!s->progress || (!final && now - last < 200000))
        return;
    last = now;
    int width = 30, filled = (int)((double)s->done / (double)s->conversations * width);
    double secs = (double)(now - s->t0_us) / 1e6;
    fprintf(stderr, "\r[%.*s%*s] %zu/%ld conversations, %.0f turns/s ", filled,
            "==============================", width - filled, "", s->done, s->conversations,
            secs > 0 ? (double)s->turns_sent / secs : 0.0);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

int ctl_simulate(int argc, char **argv)
{
    sim_t s = {.conversations = 100, .concurrency = 8, .seed = 1};
    const char *script = NULL, *format = "table";
    int rc = parse(&s, &script, &format, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (sim_load_script(&s, script) != 0) {
        json_decref(s.script);
        return 2;
    }
    sim_plan(&s);
    s.breaks = json_object();
    s.failure_kinds = json_object();
    s.t0_us = core_now_us();
    rc = s.websocket ? sim_run_ws(&s) : s.url ? sim_run_http(&s) : sim_run_local(&s);
    s.elapsed_us = core_now_us() - s.t0_us;
    sim_progress(&s, 1);
    if (rc == 0) {
        json_t *r = sim_report(&s);
        if (strcmp(format, "json") == 0) {
            json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
        } else {
            sim_print(r, stdout);
        }
        rc = s.failures > 0 || json_object_size(s.breaks) > 0 ? 1 : 0;
        json_decref(r);
    } else {
        rc = 1;
    }
    sim_free_plan(&s);
    json_decref(s.breaks);
    json_decref(s.failure_kinds);
    free(s.lat);
    json_decref(s.script);
    return rc;
}
