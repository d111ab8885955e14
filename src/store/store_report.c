/* KPI report queries (store.h, docs/metrics.md). Every KPI is computed from
 * the stored rows by SQL, grouped by the requested slices and the time bucket
 * of the conversation's start; rows from several queries are merged by their
 * group key here. The same function with no grouping gives the total row. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

enum {
    K_CONVS,
    K_ENDED,
    K_CONTAINED,
    K_ESCALATED,
    K_ABANDONED,
    K_ERRORED,
    K_CSAT_N,
    K_CSAT_SUM,
    K_AHT_US,
    K_TURNS_PER_CONV,
    K_TURNS_IN,
    K_TURNS_OUT,
    K_FAILED,
    K_ROUTED,
    K_CONF_SUM,
    K_OOS,
    K_TOK_IN,
    K_TOK_OUT,
    K_LAT_N,
    K_P50,
    K_P95,
    K_P99,
    K_LABELLED,
    K_CORRECT,
    K__COUNT
};

typedef struct {
    char *key;       /* group values joined by '\x1f' */
    json_t *obj;     /* the output row, dims filled at creation */
    json_t *reasons; /* escalation reason -> count */
    double v[K__COUNT];
    int has[K__COUNT];
    double cost; /* messages part; tokens added at the end */
} row_t;

typedef struct {
    store_db_t *db;
    const store_report_query_t *q;
    int ngroups;          /* group columns (dims + bucket) */
    const char *names[5]; /* their output names */
    row_t *rows;
    size_t len, cap;
} report_t;

static const char *bucket_expr(store_bucket_t b)
{
    switch (b) {
    case STORE_BUCKET_HOUR:
        return "strftime('%Y-%m-%dT%H:00Z', started_us / 1000000, 'unixepoch')";
    case STORE_BUCKET_DAY:
        return "strftime('%Y-%m-%d', started_us / 1000000, 'unixepoch')";
    case STORE_BUCKET_WEEK: /* the Monday that starts the ISO week */
        return "date(started_us / 1000000, 'unixepoch', 'weekday 0', '-6 days')";
    case STORE_BUCKET_MONTH:
        return "strftime('%Y-%m', started_us / 1000000, 'unixepoch')";
    default:
        return NULL;
    }
}

/* Appends "WITH c AS (...)" selecting the window with group columns g0.. */
static void with_clause(report_t *r, core_buf_t *sql, int by, store_bucket_t bucket)
{
    static const struct {
        int bit;
        const char *col, *name;
    } dims[] = {{STORE_BY_CHANNEL, "channel", "channel"},
                {STORE_BY_FLOW, "flow", "flow"},
                {STORE_BY_VERSION, "flow_version", "version"},
                {STORE_BY_VARIANT, "variant", "variant"}};
    core_buf_append_str(sql, "WITH c AS (SELECT *");
    r->ngroups = 0;
    for (size_t i = 0; i < 4; i++)
        if (by & dims[i].bit) {
            core_buf_printf(sql, ", %s AS g%d", dims[i].col, r->ngroups);
            r->names[r->ngroups++] = dims[i].name;
        }
    if (bucket_expr(bucket) != NULL) {
        core_buf_printf(sql, ", %s AS g%d", bucket_expr(bucket), r->ngroups);
        r->names[r->ngroups++] = "bucket";
    }
    core_buf_append_str(sql, " FROM conversations WHERE (?1 = 0 OR started_us >= ?1)"
                             " AND (?2 = 0 OR started_us < ?2)) ");
}

/* "p.g0, p.g1, " and " GROUP BY p.g0, p.g1" for prefix p ("" for none). */
static void group_cols(const report_t *r, core_buf_t *out, const char *p, int group_by)
{
    if (group_by && r->ngroups > 0)
        core_buf_append_str(out, " GROUP BY ");
    for (int i = 0; i < r->ngroups; i++)
        core_buf_printf(out, "%sg%d%s", p, i, group_by ? (i + 1 < r->ngroups ? ", " : "") : ", ");
}

static row_t *find_row(report_t *r, sqlite3_stmt *st, int create)
{
    core_buf_t key;
    core_buf_init(&key, 1 << 16);
    core_buf_append_str(&key, "");
    for (int i = 0; i < r->ngroups; i++) {
        const char *v = (const char *)sqlite3_column_text(st, i);
        core_buf_printf(&key, "%s\x1f", v ? v : "");
    }
    for (size_t i = 0; i < r->len; i++)
        if (strcmp(r->rows[i].key, key.data) == 0) {
            core_buf_dispose(&key);
            return &r->rows[i];
        }
    if (!create) {
        core_buf_dispose(&key);
        return NULL;
    }
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->rows = core_xrealloc(r->rows, r->cap * sizeof(row_t));
    }
    row_t *row = &r->rows[r->len++];
    memset(row, 0, sizeof(*row));
    row->key = core_buf_steal(&key, NULL);
    row->obj = json_object();
    row->reasons = json_object();
    for (int i = 0; i < r->ngroups; i++) {
        const char *v = (const char *)sqlite3_column_text(st, i);
        json_object_set_new(row->obj, r->names[i], json_string(v ? v : ""));
    }
    return row;
}

typedef void (*row_fn)(report_t *r, row_t *row, sqlite3_stmt *st, int first);

/* Runs sql and hands every row (its group found or created) to fn with the
 * index of the first metric column. */
static int run(report_t *r, const char *sql, int create, row_fn fn, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(r->db->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(r->db->db, rc, err, "report query");
    sqlite3_bind_int64(st, 1, r->q->from_us);
    sqlite3_bind_int64(st, 2, r->q->to_us);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_t *row = find_row(r, st, create);
        if (row != NULL)
            fn(r, row, st, r->ngroups);
    }
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(r->db->db, rc, err, "report query");
    sqlite3_finalize(st);
    return rc;
}

/* Stores columns first.. into v[k0..] (NULL columns stay unset). */
static void take(row_t *row, sqlite3_stmt *st, int first, int k0, int n)
{
    for (int i = 0; i < n; i++)
        if (sqlite3_column_type(st, first + i) != SQLITE_NULL) {
            row->v[k0 + i] = sqlite3_column_double(st, first + i);
            row->has[k0 + i] = 1;
        }
}

static void on_convs(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    take(row, st, first, K_CONVS, 8);
}

static void on_handle(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    take(row, st, first, K_AHT_US, 2);
}

static void on_turns(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    take(row, st, first, K_TURNS_IN, 8);
}

static void on_latency(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    take(row, st, first, K_LAT_N, 4);
}

static void on_labels(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    take(row, st, first, K_LABELLED, 2);
}

static void on_reasons(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    json_object_set_new(row->reasons, (const char *)sqlite3_column_text(st, first),
                        json_integer(sqlite3_column_int64(st, first + 1)));
}

/* The per-message cost of channel: an override from "a=1,b=2" or the default. */
static double message_cost(const store_report_query_t *q, const char *channel)
{
    size_t clen = strlen(channel);
    for (const char *p = q->message_costs; p != NULL && *p != '\0';) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (eq != NULL && eq < end && (size_t)(eq - p) == clen && memcmp(p, channel, clen) == 0)
            return strtod(eq + 1, NULL);
        p = *end ? end + 1 : end;
    }
    return q->message_cost;
}

static void on_messages(report_t *r, row_t *row, sqlite3_stmt *st, int first)
{
    const char *ch = (const char *)sqlite3_column_text(st, first);
    row->cost += message_cost(r->q, ch ? ch : "") * sqlite3_column_double(st, first + 1);
}

typedef struct {
    const char *metrics; /* select list after the group columns */
    const char *from;    /* FROM ... WHERE ... */
    row_fn fn;
    int create;
} query_t;

static const query_t queries[] = {
    {"count(*), sum(outcome != 'active'), sum(outcome = 'contained'),"
     " sum(outcome = 'escalated'), sum(outcome = 'abandoned'), sum(outcome = 'error'),"
     " count(csat), sum(csat)",
     "FROM c", on_convs, 1},
    {"avg((SELECT max(t.ts_us) - min(t.ts_us) FROM turns t WHERE t.conversation_id = c.id)),"
     " avg((SELECT count(*) FROM turns t WHERE t.conversation_id = c.id AND t.direction = 'in'))",
     "FROM c WHERE c.outcome != 'active'", on_handle, 0},
    {"sum(t.direction = 'in'), sum(t.direction = 'out'),"
     " sum(t.direction = 'out' AND t.error IS NOT NULL),"
     " sum(t.direction = 'in' AND t.confidence IS NOT NULL),"
     " total(CASE WHEN t.direction = 'in' THEN t.confidence END),"
     " sum(t.direction = 'in' AND t.confidence IS NOT NULL AND t.oos = 1),"
     " sum(t.tokens_in), sum(t.tokens_out)",
     "FROM c JOIN turns t ON t.conversation_id = c.id", on_turns, 0},
    {"count(*), sum(t.direction = 'in' AND t.oos = 1 AND l.intent = 'oos')"
     " + sum(t.direction = 'in' AND t.oos = 0 AND t.intent = l.intent AND l.intent != 'oos')",
     "FROM c JOIN turns t ON t.conversation_id = c.id JOIN labels l ON l.turn_id = t.id", on_labels,
     0},
    {"t.channel, count(*)", "FROM c JOIN turns t ON t.conversation_id = c.id", on_messages, 0},
    {"coalesce(c.escalation_reason, 'unspecified'), count(*)",
     "FROM c WHERE c.outcome = 'escalated'", on_reasons, 0},
};

static int run_simple(report_t *r, const core_buf_t *with, const query_t *qq, core_err_t *err)
{
    core_buf_t sql;
    core_buf_init(&sql, 1 << 16);
    core_buf_append(&sql, with->data, with->len);
    core_buf_append_str(&sql, "SELECT ");
    group_cols(r, &sql, "c.", 0);
    core_buf_printf(&sql, "%s %s", qq->metrics, qq->from);
    group_cols(r, &sql, "c.", 1);
    if (qq->fn == on_messages)
        core_buf_append_str(&sql, r->ngroups ? ", t.channel" : " GROUP BY t.channel");
    if (qq->fn == on_reasons) /* also by the reason, the column after the groups */
        core_buf_printf(&sql, "%s%d", r->ngroups ? ", " : " GROUP BY ", r->ngroups + 1);
    int rc = run(r, sql.data, qq->create, qq->fn, err);
    core_buf_dispose(&sql);
    return rc;
}

/* Nearest-rank percentiles: the smallest latency whose rank is >= p * n. */
static int run_latency(report_t *r, const core_buf_t *with, core_err_t *err)
{
    core_buf_t sql, part;
    core_buf_init(&sql, 1 << 16);
    core_buf_init(&part, 1 << 12);
    core_buf_append_str(&part, "");
    for (int i = 0; i < r->ngroups; i++)
        core_buf_printf(&part, "%sc.g%d", i ? ", " : "PARTITION BY ", i);
    core_buf_append(&sql, with->data, with->len);
    core_buf_append_str(&sql, "SELECT ");
    group_cols(r, &sql, "", 0);
    core_buf_append_str(&sql, "max(n), min(CASE WHEN rn * 100 >= 50 * n THEN lat END),"
                              " min(CASE WHEN rn * 100 >= 95 * n THEN lat END),"
                              " min(CASE WHEN rn * 100 >= 99 * n THEN lat END) FROM (SELECT ");
    for (int i = 0; i < r->ngroups; i++)
        core_buf_printf(&sql, "c.g%d AS g%d, ", i, i);
    core_buf_printf(&sql,
                    "t.latency_us AS lat, row_number() OVER (%s ORDER BY t.latency_us) AS rn,"
                    " count(*) OVER (%s) AS n FROM c JOIN turns t ON t.conversation_id = c.id"
                    " WHERE t.direction = 'out' AND t.latency_us IS NOT NULL)",
                    part.data, part.data);
    group_cols(r, &sql, "", 1);
    int rc = run(r, sql.data, 0, on_latency, err);
    core_buf_dispose(&sql);
    core_buf_dispose(&part);
    return rc;
}

static void set_rate(json_t *o, const char *name, double num, double den)
{
    json_object_set_new(o, name, den > 0 ? json_real(num / den) : json_null());
}

static void set_num(json_t *o, const row_t *row, const char *name, int k, double scale)
{
    json_object_set_new(o, name, row->has[k] ? json_real(row->v[k] * scale) : json_null());
}

static void set_int(json_t *o, const row_t *row, const char *name, int k)
{
    json_object_set_new(o, name,
                        row->has[k] ? json_integer((json_int_t)row->v[k]) : json_integer(0));
}

static void finish_row(const store_report_query_t *q, row_t *row)
{
    json_t *o = row->obj;
    const double *v = row->v;
    set_int(o, row, "conversations", K_CONVS);
    set_int(o, row, "ended", K_ENDED);
    set_int(o, row, "contained", K_CONTAINED);
    set_int(o, row, "escalated", K_ESCALATED);
    set_int(o, row, "abandoned", K_ABANDONED);
    set_int(o, row, "errored", K_ERRORED);
    set_rate(o, "containment_rate", v[K_CONTAINED], v[K_ENDED]);
    set_rate(o, "escalation_rate", v[K_ESCALATED], v[K_ENDED]);
    json_object_set(o, "escalations_by_reason", row->reasons);
    set_rate(o, "abandonment_rate", v[K_ABANDONED], v[K_ENDED]);
    set_num(o, row, "avg_handle_time_s", K_AHT_US, 1e-6);
    set_num(o, row, "turns_per_conversation", K_TURNS_PER_CONV, 1);
    set_int(o, row, "turns_in", K_TURNS_IN);
    set_int(o, row, "turns_out", K_TURNS_OUT);
    set_num(o, row, "latency_p50_ms", K_P50, 1e-3);
    set_num(o, row, "latency_p95_ms", K_P95, 1e-3);
    set_num(o, row, "latency_p99_ms", K_P99, 1e-3);
    set_int(o, row, "failed_turns", K_FAILED);
    set_rate(o, "failure_rate", v[K_FAILED], v[K_TURNS_OUT]);
    set_rate(o, "avg_confidence", v[K_CONF_SUM], v[K_ROUTED]);
    set_rate(o, "oos_rate", v[K_OOS], v[K_ROUTED]);
    set_int(o, row, "labelled_turns", K_LABELLED);
    set_rate(o, "routing_accuracy", v[K_CORRECT], v[K_LABELLED]);
    set_rate(o, "csat_avg", v[K_CSAT_SUM], v[K_CSAT_N]);
    set_int(o, row, "csat_responses", K_CSAT_N);
    set_rate(o, "csat_response_rate", v[K_CSAT_N], v[K_ENDED]);
    set_int(o, row, "llm_tokens_in", K_TOK_IN);
    set_int(o, row, "llm_tokens_out", K_TOK_OUT);
    double cost = row->cost + v[K_TOK_IN] * q->price_in_per_mtok / 1e6 +
                  v[K_TOK_OUT] * q->price_out_per_mtok / 1e6;
    json_object_set_new(o, "cost", json_real(cost));
    set_rate(o, "cost_per_conversation", cost, v[K_CONVS]);
}

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(((const row_t *)a)->key, ((const row_t *)b)->key);
}

/* Runs every query with one grouping; appends the finished rows to arr. */
static int report_grouped(store_db_t *db, const store_report_query_t *q, int by,
                          store_bucket_t bucket, json_t *arr, core_err_t *err)
{
    report_t r = {.db = db, .q = q};
    core_buf_t with;
    core_buf_init(&with, 1 << 14);
    with_clause(&r, &with, by, bucket);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(queries) / sizeof(queries[0]); i++)
        rc = run_simple(&r, &with, &queries[i], err);
    if (rc == 0)
        rc = run_latency(&r, &with, err);
    core_buf_dispose(&with);
    if (r.len > 0) /* no rows: r.rows is NULL, which qsort may not take */
        qsort(r.rows, r.len, sizeof(row_t), cmp_rows);
    for (size_t i = 0; i < r.len; i++) {
        row_t *row = &r.rows[i];
        if (rc == 0 && (row->v[K_CONVS] > 0 || r.ngroups == 0)) {
            finish_row(q, row);
            json_array_append(arr, row->obj);
        }
        json_decref(row->obj);
        json_decref(row->reasons);
        free(row->key);
    }
    free(r.rows);
    return rc;
}

static const char *bucket_name(store_bucket_t b)
{
    static const char *const names[] = {"none", "hour", "day", "week", "month"};
    return names[b];
}

int store_db_report(store_db_t *db, const store_report_query_t *q, json_t **out, core_err_t *err)
{
    json_t *rows = json_array(), *total = json_array();
    int rc = 0;
    if (q->by != 0 || q->bucket != STORE_BUCKET_NONE)
        rc = report_grouped(db, q, q->by, q->bucket, rows, err);
    if (rc == 0)
        rc = report_grouped(db, q, 0, STORE_BUCKET_NONE, total, err);
    if (rc != 0) {
        json_decref(rows);
        json_decref(total);
        return rc;
    }
    json_t *by = json_array();
    static const char *const names[] = {"channel", "flow", "version", "variant"};
    for (int i = 0; i < 4; i++)
        if (q->by & (1 << i))
            json_array_append_new(by, json_string(names[i]));
    json_t *t = json_array_size(total) ? json_incref(json_array_get(total, 0)) : json_object();
    json_decref(total);
    *out = json_pack("{s:I,s:I,s:o,s:s,s:o,s:o}", "from_us", (json_int_t)q->from_us, "to_us",
                     (json_int_t)q->to_us, "by", by, "bucket", bucket_name(q->bucket), "rows", rows,
                     "total", t);
    json_t *agents = NULL; /* the human desk's figures: store_report_agents.c */
    if (store__report_agents(db, q->from_us, q->to_us, &agents, err) == 0)
        json_object_set_new(*out, "agents", agents);
    return 0;
}

int store_report_parse_by(const char *s, int *by, core_err_t *err)
{
    static const char *const names[] = {"channel", "flow", "version", "variant"};
    *by = 0;
    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strlen(names[i]) == n && memcmp(p, names[i], n) == 0)
                *by |= 1 << i, found = 1;
        if (!found && n > 0)
            return core_err_set(err, CORE_ERR_INVALID,
                                "by: unknown slice \"%.*s\" (expected channel, flow, version or "
                                "variant, comma-separated)",
                                (int)n, p);
        p += n + (p[n] == ',');
    }
    return 0;
}

int store_report_parse_bucket(const char *s, store_bucket_t *bucket, core_err_t *err)
{
    for (int i = 0; i <= STORE_BUCKET_MONTH; i++)
        if (strcmp(s, bucket_name((store_bucket_t)i)) == 0) {
            *bucket = (store_bucket_t)i;
            return 0;
        }
    return core_err_set(err, CORE_ERR_INVALID,
                        "bucket: \"%s\" is not one of hour, day, week, month, none", s);
}

int store_parse_time(const char *s, int64_t *us, core_err_t *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    char *end = NULL;
    if (s[0] >= '0' && s[0] <= '9' && strlen(s) > 10 && strspn(s, "0123456789") == strlen(s)) {
        *us = strtoll(s, &end, 10);
        return 0;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end != NULL && (*end == 'T' || *end == ' '))
        end = strptime(end + 1, "%H:%M:%S", &tm);
    if (end != NULL && *end == 'Z')
        end++;
    if (end == NULL || *end != '\0')
        return core_err_set(err, CORE_ERR_INVALID,
                            "time \"%s\": expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or "
                            "microseconds since the epoch",
                            s);
    int64_t t; /* strptime takes "2026-11-31": not on the calendar */
    if (core_time_from_tm(&tm, &t) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "time \"%s\": no such date or time", s);
    *us = t * 1000000;
    return 0;
}
