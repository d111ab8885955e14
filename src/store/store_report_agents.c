/* The KPI report's human desk section (docs/agents.md, "Metrics"): for the
 * handoffs that entered a queue in [from, to), per queue, channel and
 * reason: how many, how long they waited for a claim (p50/p95), how many
 * were abandoned (unclaimed at the queue's maximum wait), how long a person
 * handled them, how many went back to the bot and how those ended, and the
 * dispositions people closed them with. Containment is split the same way:
 * released to the bot and finished there, against finished by a person. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

typedef struct {
    double *v;
    size_t n, cap;
} samples_t;

static void push(samples_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = core_xrealloc(s->v, s->cap * sizeof(double));
    }
    s->v[s->n++] = v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile; null when there are no samples. */
static json_t *pct(samples_t *s, double p)
{
    if (s->n == 0)
        return json_null();
    qsort(s->v, s->n, sizeof(double), cmp);
    size_t rank = (size_t)ceil(p * (double)s->n);
    return json_real(s->v[rank > 0 ? rank - 1 : 0]);
}

typedef struct {
    char key[400];
    json_t *row;
    samples_t wait, handle;
} group_t;

static void group_finish(group_t *g, json_t *rows)
{
    if (g->row == NULL)
        return;
    json_object_set_new(g->row, "wait_p50_s", pct(&g->wait, 0.5));
    json_object_set_new(g->row, "wait_p95_s", pct(&g->wait, 0.95));
    json_object_set_new(g->row, "handle_p50_s", pct(&g->handle, 0.5));
    json_object_set_new(g->row, "handle_p95_s", pct(&g->handle, 0.95));
    json_array_append_new(rows, g->row);
    free(g->wait.v), free(g->handle.v);
    memset(g, 0, sizeof(*g));
}

static void bump(json_t *o, const char *k, json_int_t by)
{
    json_object_set_new(o, k, json_integer(json_integer_value(json_object_get(o, k)) + by));
}

static const char *text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

static void add(group_t *g, sqlite3_stmt *st, json_t *total)
{
    const char *state = text(st, 3), *outcome = text(st, 8), *disp = text(st, 9);
    int64_t entered = sqlite3_column_int64(st, 4), claimed = sqlite3_column_int64(st, 5);
    int64_t done = sqlite3_column_int64(st, 6);
    int claimed_set = sqlite3_column_type(st, 5) != SQLITE_NULL;
    json_t *r = g->row;
    bump(r, "handoffs", 1);
    if (claimed_set) {
        bump(r, "claimed", 1);
        push(&g->wait, (double)(claimed - entered) / 1e6);
        if (sqlite3_column_type(st, 6) != SQLITE_NULL && strcmp(state, "closed") == 0)
            push(&g->handle, (double)(done - claimed) / 1e6);
        if (sqlite3_column_type(st, 6) != SQLITE_NULL && strcmp(state, "released") == 0)
            push(&g->handle, (double)(done - claimed) / 1e6);
    }
    if (sqlite3_column_int(st, 7) && !claimed_set)
        bump(r, "abandoned", 1);
    if (strcmp(state, "released") == 0) {
        bump(r, "released", 1);
        if (strcmp(outcome, "bot_finished") == 0)
            bump(r, "released_bot_finished", 1), bump(total, "contained_after_release", 1);
        else if (strcmp(outcome, "escalated_again") == 0)
            bump(r, "released_escalated_again", 1);
    }
    if (strcmp(state, "closed") == 0) {
        bump(r, "closed", 1);
        bump(total, "finished_by_person", 1);
        bump(json_object_get(r, "dispositions"), *disp ? disp : "-", 1);
    }
}

int store__report_agents(store_db_t *db, int64_t from_us, int64_t to_us, json_t **out,
                         core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db->db,
        "SELECT queue, channel, reason, state, entered_us, claimed_us, done_us,"
        " coalesce(json_extract(detail, '$.overdue'), 0), release_outcome, disposition"
        " FROM (SELECT * FROM handoffs UNION ALL SELECT * FROM handoffs_past)"
        " WHERE entered_us >= ?1 AND (?2 = 0 OR entered_us < ?2)"
        " ORDER BY queue, channel, reason",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_bind_int64(st, 1, from_us);
    sqlite3_bind_int64(st, 2, to_us);
    json_t *rows = json_array();
    json_t *total = json_pack("{s:i,s:i}", "contained_after_release", 0, "finished_by_person", 0);
    group_t g;
    memset(&g, 0, sizeof(g));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char key[400];
        snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", text(st, 0), text(st, 1), text(st, 2));
        if (g.row == NULL || strcmp(key, g.key) != 0) {
            group_finish(&g, rows);
            memcpy(g.key, key, sizeof(key));
            g.row =
                json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:{}}", "queue", text(st, 0),
                          "channel", text(st, 1), "reason", text(st, 2), "handoffs", 0, "claimed",
                          0, "abandoned", 0, "released", 0, "released_bot_finished", 0,
                          "released_escalated_again", 0, "closed", 0, "dispositions");
        }
        add(&g, st, total);
    }
    group_finish(&g, rows);
    int status = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    if (status != 0) {
        json_decref(rows);
        json_decref(total);
        return status;
    }
    json_object_set_new(total, "rows", rows);
    *out = total;
    return 0;
}
