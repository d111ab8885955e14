/* Shared by the store's unit tests: a temporary database, a loop that runs
 * until every enqueued batch completed, and the KPI fixture whose answers
 * docs/metrics.md works through. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chorus/store.h"

typedef struct {
    uv_loop_t loop;
    store_t *store;
    char dir[64];
    char path[128];
    int done, failed, last_status;
} fx_t;

static inline void fx_done(int status, void *data)
{
    fx_t *fx = data;
    fx->done++;
    fx->last_status = status;
    if (status != 0)
        fx->failed++;
}

/* Opens a store on a new file, its writer writer_nice steps below the test. */
static inline int fx_open_nice(fx_t *fx, size_t queue_max, size_t batch_max, int writer_nice,
                               core_err_t *err)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/chorus-store-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/chorus.db", fx->dir);
    uv_loop_init(&fx->loop);
    store_options_t opt = {.path = fx->path,
                           .queue_max = queue_max,
                           .batch_max = batch_max,
                           .retry_ms = 50,
                           .writer_nice = writer_nice};
    fx->store = store_open(&fx->loop, &opt, err);
    return fx->store ? 0 : -1;
}

static inline int fx_open(fx_t *fx, size_t queue_max, size_t batch_max, core_err_t *err)
{
    return fx_open_nice(fx, queue_max, batch_max, 0, err);
}

/* Runs the loop until n callbacks have run. */
static inline void fx_wait(fx_t *fx, int n)
{
    while (fx->done < n)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

static inline void fx_close(fx_t *fx)
{
    store_close(fx->store);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_loop_close(&fx->loop);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
}

#define FX_T0 1793613600000000LL /* 2026-11-02T10:00:00Z, a Monday */
#define FX_H 3600000000LL
#define FX_S 1000000LL

typedef struct {
    const char *id, *channel, *flow, *version, *variant;
    int64_t start;
    const char *outcome, *reason;
    int csat;
} fx_conv_t;

typedef struct {
    const char *conv;
    int seq;
    char dir;
    int64_t at; /* after the conversation's start */
    const char *intent;
    double conf;
    int oos;
    int64_t latency_us;
    int tok_in, tok_out;
    const char *error;
    const char *channel;
} fx_turn_t;

static const fx_conv_t fx_convs[] = {
    {"c1", "web", "booking", "v1", "A", FX_T0, "contained", NULL, 5},
    {"c2", "web", "booking", "v1", "B", FX_T0 + FX_H, "escalated", "user_request", 3},
    {"c3", "sms", "booking", "v2", "A", FX_T0 + 23 * FX_H, "abandoned", NULL, 0},
    {"c4", "sms", "faq", "v1", "A", FX_T0 + 8 * 24 * FX_H - FX_H, NULL, NULL, 0},
    {"c5", "web", "faq", "v1", "", FX_T0 + 26 * FX_H, "escalated", "low_confidence", 0},
};

static const fx_turn_t fx_turns[] = {
    {"c1", 1, 'i', 0, "book", 0.9, 0, -1, 0, 0, NULL, "web"},
    {"c1", 2, 'o', 1 * FX_S, NULL, -1, 0, 100000, 100, 50, NULL, "web"},
    {"c1", 3, 'i', 10 * FX_S, "oos", 0.3, 1, -1, 0, 0, NULL, "web"},
    {"c1", 4, 'o', 11 * FX_S, NULL, -1, 0, 200000, 0, 0, NULL, "web"},
    {"c2", 1, 'i', 0, "cancel", 0.8, 0, -1, 0, 0, NULL, "web"},
    {"c2", 2, 'o', 2 * FX_S, NULL, -1, 0, 300000, 0, 0, "action", "web"},
    {"c3", 1, 'i', 0, "book", 0.6, 0, -1, 0, 0, NULL, "sms"},
    {"c3", 2, 'o', 4 * FX_S, NULL, -1, 0, 400000, 0, 0, NULL, "sms"},
    {"c4", 1, 'i', 0, "hours", 0.7, 0, -1, 0, 0, NULL, "sms"},
    {"c4", 2, 'o', 1 * FX_S, NULL, -1, 0, 500000, 1000, 500, NULL, "sms"},
    {"c5", 1, 'i', 0, "x", 0.5, 0, -1, 0, 0, NULL, "web"},
    {"c5", 2, 'o', 3 * FX_S, NULL, -1, 0, 600000, 0, 0, NULL, "web"},
};

/* Writes the fixture through the writer, one batch per conversation plus a
 * labels batch; returns the number of batches enqueued. */
static inline int fx_load_kpi(fx_t *fx)
{
    int n = 0;
    for (size_t c = 0; c < sizeof(fx_convs) / sizeof(fx_convs[0]); c++) {
        const fx_conv_t *cv = &fx_convs[c];
        store_batch_t *b = store_batch_new();
        store_conv_start_t st = {cv->id,      cv->channel, cv->flow, cv->version,
                                 cv->variant, "1.0",       cv->start};
        store_batch_conv_start(b, &st);
        for (size_t i = 0; i < sizeof(fx_turns) / sizeof(fx_turns[0]); i++) {
            const fx_turn_t *t = &fx_turns[i];
            if (strcmp(t->conv, cv->id) != 0)
                continue;
            store_turn_t row = {.conversation_id = t->conv,
                                .seq = t->seq,
                                .direction = t->dir,
                                .ts_us = cv->start + t->at,
                                .text = "hello",
                                .intent = t->intent,
                                .confidence = t->conf,
                                .oos = t->oos,
                                .node = "n",
                                .latency_us = t->latency_us,
                                .tokens_in = t->tok_in,
                                .tokens_out = t->tok_out,
                                .error = t->error,
                                .channel = t->channel};
            store_batch_turn(b, &row);
        }
        store_batch_state(b, cv->id, "{\"node\":\"n\"}", cv->outcome == NULL, cv->start);
        if (cv->outcome != NULL)
            store_batch_conv_end(b, cv->id, cv->outcome, cv->reason, cv->start + 20 * FX_S);
        if (cv->csat > 0)
            store_batch_csat(b, cv->id, cv->csat, cv->start + 30 * FX_S);
        if (store_enqueue(fx->store, b, fx_done, fx) != 0)
            store_batch_free(b);
        else
            n++;
    }
    store_batch_t *b = store_batch_new();
    store_batch_label(b, "c1", 1, "book", "qa", FX_T0);
    store_batch_label(b, "c1", 3, "oos", "qa", FX_T0);
    store_batch_label(b, "c2", 1, "refund", "qa", FX_T0);
    store_batch_label(b, "c3", 1, "book", "qa", FX_T0);
    if (store_enqueue(fx->store, b, fx_done, fx) != 0)
        store_batch_free(b);
    else
        n++;
    return n;
}

/* Runs sql on the database at path with foreign keys on, as chorus's
 * connections have them; returns SQLite's result code. */
static inline int fx_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* The one value sql selects from the database at path (a count, a
 * column): a connection of its own, opened and closed around it. */
static inline int64_t fx_scalar(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
