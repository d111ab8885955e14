/* chorusctl store-load: drives the store's real write path (batches through
 * the writer thread, group commit, completions on a libuv loop) with a
 * closed-loop load of synthetic turns. bench/store.sh reads its summary;
 * the crash and full-disk tests read its acknowledgement log, in which a
 * line is written only after the batch's callback reported it durable. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chorus/store.h"
#include "cmd/ctl.h"

int ctl_store(int argc, char **argv);

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    uv_timer_t retry, stats;
    long long target, issued, acked, failed, busy;
    int inflight, max_inflight, conversations, ack_log, text_bytes;
    char prefix[32];
    char *text;
    uint64_t t0;
} load_t;

static int issue(load_t *l);
static void on_retry(uv_timer_t *t);

static void on_done(int status, void *data)
{
    load_t *l = ((void **)data)[0];
    long long k = (long long)(intptr_t)((void **)data)[1];
    free(data);
    l->inflight--;
    if (status == 0) {
        l->acked++;
        if (l->ack_log) {
            char line[96];
            int conv = (int)(k % l->conversations);
            int n = snprintf(line, sizeof(line), "ack %s%d %lld\n", l->prefix, conv,
                             (long long)(k / l->conversations + 1) * 2);
            /* unbuffered: a line exists only for a durable batch */
            if (write(STDOUT_FILENO, line, (size_t)n) != n)
                exit(3);
        }
    } else {
        l->failed++;
    }
    while (issue(l) == 1)
        ;
    if (l->target > 0 && l->acked + l->failed >= l->target && l->inflight == 0)
        uv_stop(l->loop);
}

static store_batch_t *make_batch(load_t *l, long long k)
{
    int conv = (int)(k % l->conversations);
    int64_t user_seq = (k / l->conversations) * 2 + 1, now = core_wall_us();
    char id[64], state[96];
    snprintf(id, sizeof(id), "%s%d", l->prefix, conv);
    store_batch_t *b = store_batch_new();
    if (user_seq == 1) {
        store_conv_start_t st = {id, conv % 3 ? "web" : "sms", "bench", "v1", "", "1", now};
        store_batch_conv_start(b, &st);
    }
    store_turn_t in = {.conversation_id = id,
                       .seq = user_seq,
                       .direction = 'i',
                       .ts_us = now,
                       .text = l->text,
                       .intent = "book",
                       .confidence = 0.9,
                       .latency_us = -1,
                       .channel = "web"};
    store_turn_t out = in;
    out.seq = user_seq + 1, out.direction = 'o', out.intent = NULL, out.confidence = -1;
    out.latency_us = 1500, out.node = "ask_date", out.tokens_in = 120, out.tokens_out = 30;
    store_batch_turn(b, &in);
    store_batch_turn(b, &out);
    snprintf(state, sizeof(state), "{\"node\":\"ask_date\",\"seq\":%lld}", (long long)user_seq + 1);
    store_batch_state(b, id, state, 1, now);
    return b;
}

/* Issues one batch: 1 issued, 0 nothing to do, -1 busy (retry later). */
static int issue(load_t *l)
{
    if (l->inflight >= l->max_inflight || (l->target > 0 && l->issued >= l->target))
        return 0;
    store_batch_t *b = make_batch(l, l->issued);
    void **cookie = core_xmalloc(2 * sizeof(void *));
    cookie[0] = l;
    cookie[1] = (void *)(intptr_t)l->issued;
    int rc = store_enqueue(l->store, b, on_done, cookie);
    if (rc != 0) {
        store_batch_free(b);
        free(cookie);
        l->busy++;
        if (!uv_is_active((uv_handle_t *)&l->retry))
            uv_timer_start(&l->retry, on_retry, 5, 0);
        return -1;
    }
    l->issued++;
    l->inflight++;
    return 1;
}

static void on_retry(uv_timer_t *t)
{
    load_t *l = t->data;
    while (issue(l) == 1)
        ;
}

static void on_stats(uv_timer_t *t)
{
    load_t *l = t->data;
    printf("stat acked=%lld busy=%lld failed=%lld healthy=%d\n", l->acked, l->busy, l->failed,
           store_ready(l->store));
    fflush(stdout);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl store-load --db FILE [options]\n"
                 "  --turns N           user turns to write (0 = until killed; default 20000)\n"
                 "  --conversations N   conversations they are spread over (default 1000)\n"
                 "  --inflight N        batches outstanding at once, like concurrent clients (64)\n"
                 "  --synchronous M     normal | full (default normal)\n"
                 "  --batch-max N       batches per group commit at most (default 256)\n"
                 "  --queue-max N       queued batches before BUSY (default 4096)\n"
                 "  --text-bytes N      bytes of text per turn (default 40)\n"
                 "  --prefix P          conversation id prefix (default \"c\")\n"
                 "  --ack-log           print `ack CONV SEQ` once each batch is durable\n"
                 "  --stats-ms N        print `stat ...` lines this often (default 0 = never)\n");
}

static int parse(load_t *l, store_options_t *opt, int argc, char **argv, long long *stats_ms)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--ack-log") == 0) {
            l->ack_log = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return usage(stdout), 1;
        if (v == NULL)
            return fprintf(stderr, "store-load: %s needs a value\n", a), 2;
        i++;
        long long n = strtoll(v, &end, 10);
        int num = end != v && *end == '\0' && n >= 0;
        if (strcmp(a, "--db") == 0)
            opt->path = v;
        else if (strcmp(a, "--synchronous") == 0 && (!strcmp(v, "full") || !strcmp(v, "normal")))
            opt->synchronous_full = strcmp(v, "full") == 0;
        else if (strcmp(a, "--prefix") == 0)
            snprintf(l->prefix, sizeof(l->prefix), "%s", v);
        else if (num && strcmp(a, "--turns") == 0)
            l->target = n;
        else if (num && n > 0 && strcmp(a, "--conversations") == 0)
            l->conversations = (int)n;
        else if (num && n > 0 && strcmp(a, "--inflight") == 0)
            l->max_inflight = (int)n;
        else if (num && n > 0 && strcmp(a, "--batch-max") == 0)
            opt->batch_max = (size_t)n;
        else if (num && n > 0 && strcmp(a, "--queue-max") == 0)
            opt->queue_max = (size_t)n;
        else if (num && n < 1000000 && strcmp(a, "--text-bytes") == 0)
            l->text_bytes = (int)n;
        else if (num && strcmp(a, "--stats-ms") == 0)
            *stats_ms = n;
        else
            return fprintf(stderr, "store-load: bad option %s %s\n", a, v), 2;
    }
    if (opt->path == NULL)
        return fprintf(stderr, "store-load: --db FILE is required\n"), 2;
    return 0;
}

static void summary(load_t *l, const store_options_t *opt)
{
    store_stats_t st;
    store_get_stats(l->store, &st);
    double secs = (double)(core_now_us() - l->t0) / 1e6;
    printf(
        "store-load: synchronous=%s turns=%lld failed=%lld busy=%lld seconds=%.3f "
        "turns_per_s=%.0f commits=%llu avg_batches_per_commit=%.1f max_batches_per_commit=%llu\n",
        opt->synchronous_full ? "full" : "normal", l->acked, l->failed, l->busy, secs,
        (double)l->acked / secs, (unsigned long long)st.commits,
        st.commits ? (double)st.batches / (double)st.commits : 0.0,
        (unsigned long long)st.max_group);
    printf("store-load: batches per commit histogram:");
    static const char *const slots[] = {"1",     "2-3",   "4-7",    "8-15",
                                        "16-31", "32-63", "64-127", "128+"};
    for (int i = 0; i < 8; i++)
        printf(" %s:%llu", slots[i], (unsigned long long)st.group_hist[i]);
    printf("\n");
}

int ctl_store(int argc, char **argv)
{
    load_t l = {.target = 20000, .conversations = 1000, .max_inflight = 64, .text_bytes = 40};
    snprintf(l.prefix, sizeof(l.prefix), "c");
    store_options_t opt = {0};
    long long stats_ms = 0;
    int rc = parse(&l, &opt, argc, argv, &stats_ms);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    l.text = core_xmalloc((size_t)l.text_bytes + 1);
    memset(l.text, 'x', (size_t)l.text_bytes);
    l.text[l.text_bytes] = '\0';
    l.loop = uv_default_loop();
    core_err_t err = {0};
    l.store = store_open(l.loop, &opt, &err);
    if (l.store == NULL) {
        fprintf(stderr, "store-load: %s\n", err.msg);
        free(l.text);
        return 1;
    }
    uv_timer_init(l.loop, &l.retry);
    uv_timer_init(l.loop, &l.stats);
    l.retry.data = l.stats.data = &l;
    if (stats_ms > 0)
        uv_timer_start(&l.stats, on_stats, (uint64_t)stats_ms, (uint64_t)stats_ms);
    l.t0 = core_now_us();
    while (issue(&l) == 1)
        ;
    uv_run(l.loop, UV_RUN_DEFAULT);
    summary(&l, &opt);
    uv_close((uv_handle_t *)&l.retry, NULL);
    uv_close((uv_handle_t *)&l.stats, NULL);
    store_close(l.store);
    uv_run(l.loop, UV_RUN_DEFAULT);
    free(l.text);
    return l.failed ? 1 : 0;
}
