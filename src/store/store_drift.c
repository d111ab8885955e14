/* Drift detection (docs/flywheel.md, "Drift"): what the users said and how
 * the flows fared in a recent window against a baseline window: the intent
 * distribution (population stability index and Jensen-Shannon divergence,
 * out-of-scope as one more category), and the out-of-scope, fallback and
 * containment rates and the mean routing confidence. The comparison is pure;
 * the windows are read on a store_db_t, or on the thread pool for chorusd's
 * scheduled check (store_drift_async). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

#define OOS_BUCKET "(out of scope)"
#define EPS 1e-4 /* smoothing: an intent absent from one window */
/* How far out of time order a row may be appended and still be counted in
 * its window (see window_ids) */
#define ORDER_SLACK_US (15 * 60 * 1000000LL)

static int step_rows(store_db_t *db, sqlite3_stmt *st, json_t *out, int intents, core_err_t *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (intents) {
            const unsigned char *name = sqlite3_column_text(st, 0);
            json_object_set_new(json_object_get(out, "intents"),
                                name ? (const char *)name : OOS_BUCKET,
                                json_integer(sqlite3_column_int64(st, 1)));
            continue;
        }
        static const char *const keys[] = {"turns",        "oos",   "fallbacks", "confidence_sum",
                                           "confidence_n", "ended", "contained"};
        for (int k = 0; k < 7; k++)
            json_object_set_new(out, keys[k],
                                k == 3 ? json_real(sqlite3_column_double(st, k))
                                       : json_integer(sqlite3_column_int64(st, k)));
    }
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "drift query");
}

/* Binds ?1 ?2 (the window) and ?3.. (the id bounds), then reads the rows. */
static int run(store_db_t *db, const char *sql, int64_t from, int64_t to, const int64_t *ids,
               json_t *out, int intents, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "drift query");
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    for (int i = 0; i < 4; i++)
        sqlite3_bind_int64(st, 3 + i, ids[i]);
    rc = step_rows(db, st, out, intents, err);
    sqlite3_finalize(st);
    return rc;
}

/* ts_us of the first row of st's table with id >= x (bound as ?1); *none
 * when there is no such row. */
static int ts_at(store_db_t *db, sqlite3_stmt *st, int64_t x, int64_t *ts, int *none,
                 core_err_t *err)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, x);
    int rc = sqlite3_step(st);
    *none = rc == SQLITE_DONE;
    if (rc == SQLITE_ROW)
        *ts = sqlite3_column_int64(st, 0);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : store__sqlite_err(db->db, rc, err, "drift ids");
}

/* The smallest id x such that the first row with id >= x (if any) has
 * ts_us >= at: a binary search on the rowid, one point lookup per step
 * (about 20 for a million rows) instead of a scan. Exact when ts_us grows
 * with id; see window_ids for the slack given to rows that do not. *end:
 * no row has reached at yet (x is past the last id). */
static int first_id_at(store_db_t *db, int events, int64_t at, int64_t *out, int *end,
                       core_err_t *err)
{
    static const char *const bounds_sql[] = {
        "SELECT (SELECT min(id) FROM turns), (SELECT max(id) FROM turns)",
        "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)"};
    static const char *const probe_sql[] = {
        "SELECT ts_us FROM turns WHERE id >= ?1 ORDER BY id LIMIT 1",
        "SELECT ts_us FROM events WHERE id >= ?1 ORDER BY id LIMIT 1"};
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db, bounds_sql[events], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "drift ids");
    rc = sqlite3_step(st);
    int64_t lo = sqlite3_column_int64(st, 0), hi = sqlite3_column_int64(st, 1) + 1;
    int empty = rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return store__sqlite_err(db->db, rc, err, "drift ids");
    *out = 0;
    *end = 1;
    if (empty)
        return 0;
    int64_t last = hi;
    rc = sqlite3_prepare_v2(db->db, probe_sql[events], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "drift ids");
    while (rc == 0 && lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, ts = 0;
        int none = 0;
        rc = ts_at(db, st, mid, &ts, &none, err);
        if (none || ts >= at)
            hi = mid;
        else
            lo = mid + 1;
    }
    sqlite3_finalize(st);
    *out = lo;
    *end = lo == last;
    return rc;
}

/* Turns and events have no index on ts_us: each index costs every turn on
 * the write path. Their INTEGER PRIMARY KEYs grow in the order the writer
 * appends rows, which is the order things happened give or take a batch,
 * so a window [from, to) is bounded by the ids where the rows reach
 * from - ORDER_SLACK_US and to + ORDER_SLACK_US; the queries keep their
 * ts_us predicates, so only the rows in between are read and the answer is
 * exact for any row appended less than ORDER_SLACK_US out of time order.
 * ids: turns [ids[0], ids[1]), events [ids[2], ids[3]). */
static int window_ids(store_db_t *db, int64_t from, int64_t to, int64_t *ids, core_err_t *err)
{
    int64_t lo = from > INT64_MIN + ORDER_SLACK_US ? from - ORDER_SLACK_US : INT64_MIN;
    int64_t hi = to < INT64_MAX - ORDER_SLACK_US ? to + ORDER_SLACK_US : INT64_MAX;
    int rc = 0, end = 0;
    for (int t = 0; t < 2 && rc == 0; t++) {
        rc = first_id_at(db, t, lo, &ids[2 * t], &end, err);
        rc = rc ? rc : first_id_at(db, t, hi, &ids[2 * t + 1], &end, err);
        if (end) /* nothing beyond the window yet: rows appended meanwhile count too */
            ids[2 * t + 1] = INT64_MAX;
    }
    return rc;
}

int store_db_drift_window(store_db_t *db, int64_t from_us, int64_t to_us, json_t **out,
                          core_err_t *err)
{
    /* user turns by the time they were said; conversations by their end */
    static const char intents_sql[] =
        "SELECT CASE WHEN oos = 1 THEN NULL ELSE intent END, count(*) FROM turns"
        " WHERE id >= ?3 AND id < ?4 AND direction = 'in' AND ts_us >= ?1 AND ts_us < ?2"
        "  AND (oos = 1 OR intent IS NOT NULL) GROUP BY 1";
    /* one pass over the window's user turns for their four figures */
    static const char rates_sql[] =
        "SELECT t.n, t.oos,"
        " (SELECT count(*) FROM events WHERE id >= ?5 AND id < ?6 AND kind = 'fallback'"
        "   AND ts_us >= ?1 AND ts_us < ?2),"
        " t.conf_sum, t.conf_n,"
        " (SELECT count(*) FROM conversations WHERE ended_us >= ?1 AND ended_us < ?2),"
        " (SELECT count(*) FROM conversations WHERE outcome = 'contained'"
        "   AND ended_us >= ?1 AND ended_us < ?2)"
        " FROM (SELECT count(*) AS n, coalesce(sum(oos), 0) AS oos,"
        "   coalesce(sum(confidence), 0) AS conf_sum, count(confidence) AS conf_n"
        "   FROM turns WHERE id >= ?3 AND id < ?4 AND direction = 'in'"
        "   AND ts_us >= ?1 AND ts_us < ?2) AS t";
    json_t *o = json_pack("{s:I,s:I,s:o}", "from_us", (json_int_t)from_us, "to_us",
                          (json_int_t)to_us, "intents", json_object());
    int64_t ids[4];
    int rc = window_ids(db, from_us, to_us, ids, err);
    rc = rc ? rc : run(db, intents_sql, from_us, to_us, ids, o, 1, err);
    rc = rc ? rc : run(db, rates_sql, from_us, to_us, ids, o, 0, err);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static double get(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* A rate, NAN when its window counted nothing to divide by (no conversation
 * ended, no turn routed): undefined, which is not a rate of 0. */
static double rate(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

static json_t *real_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* One rate compared: {baseline, recent, change}, and an alert line when
 * it moved by more than limit in the bad direction (sign: +1 a rise is
 * bad, -1 a fall is bad). A rate undefined on either side is shown null
 * and judged not at all. */
static json_t *compare_rate(const char *name, double b, double r, double limit, int sign,
                            json_t *alerts)
{
    if (isnan(b) || isnan(r))
        return json_pack("{s:o,s:o,s:n}", "baseline", real_or_null(b), "recent", real_or_null(r),
                         "change");
    double change = r - b;
    if (limit > 0 && change * sign > limit)
        json_array_append_new(alerts, json_pack("{s:s,s:f,s:f,s:f}", "signal", name, "baseline", b,
                                                "recent", r, "change", change));
    return json_pack("{s:f,s:f,s:f}", "baseline", b, "recent", r, "change", change);
}

/* PSI and JS over the union of both windows' intents, and the intents that
 * moved most (largest PSI terms first). */
static json_t *compare_intents(const json_t *bi, const json_t *ri, double *psi_out)
{
    double nb = 0, nr = 0, psi = 0, js = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)bi, k, v) nb += (double)json_integer_value(v);
    json_object_foreach((json_t *)ri, k, v) nr += (double)json_integer_value(v);
    json_t *all = json_object(), *moved = json_array();
    json_object_update(all, (json_t *)bi);
    json_object_update(all, (json_t *)ri);
    json_object_foreach(all, k, v)
    {
        double b = ratio((double)json_integer_value(json_object_get(bi, k)), nb);
        double r = ratio((double)json_integer_value(json_object_get(ri, k)), nr);
        double bs = b > EPS ? b : EPS, rs = r > EPS ? r : EPS, m = (bs + rs) / 2;
        double term = (rs - bs) * log(rs / bs);
        psi += term;
        js += 0.5 * bs * log(bs / m) + 0.5 * rs * log(rs / m);
        json_array_append_new(moved, json_pack("{s:s,s:f,s:f,s:f}", "intent", k, "baseline_share",
                                               b, "recent_share", r, "psi_term", term));
    }
    json_decref(all);
    /* largest contributions first (insertion sort: a handful of intents) */
    size_t n = json_array_size(moved);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && get(json_array_get(moved, j), "psi_term") >
                                        get(json_array_get(moved, j - 1), "psi_term");
             j--) {
            json_t *a = json_incref(json_array_get(moved, j - 1));
            json_array_set(moved, j - 1, json_array_get(moved, j));
            json_array_set_new(moved, j, a);
        }
    while (json_array_size(moved) > 5)
        json_array_remove(moved, json_array_size(moved) - 1);
    *psi_out = psi;
    return json_pack("{s:f,s:f,s:o}", "psi", psi, "js_divergence", js / log(2), "moved", moved);
}

json_t *store_drift_compare(const json_t *b, const json_t *r, const store_drift_limits_t *lim)
{
    json_t *alerts = json_array();
    double psi = 0;
    json_t *dist =
        compare_intents(json_object_get(b, "intents"), json_object_get(r, "intents"), &psi);
    int enough =
        get(b, "turns") >= (double)lim->min_turns && get(r, "turns") >= (double)lim->min_turns;
    json_t *scratch = enough ? alerts : json_array(); /* too little data: never alert */
    if (lim->psi > 0 && psi > lim->psi)
        json_array_append_new(scratch, json_pack("{s:s,s:f,s:f}", "signal", "intent_distribution",
                                                 "psi", psi, "limit", lim->psi));
    json_t *rates = json_object();
    json_object_set_new(rates, "oos_rate",
                        compare_rate("oos_rate", rate(get(b, "oos"), get(b, "turns")),
                                     rate(get(r, "oos"), get(r, "turns")), lim->rate_delta, 1,
                                     scratch));
    json_object_set_new(rates, "fallback_rate",
                        compare_rate("fallback_rate", rate(get(b, "fallbacks"), get(b, "turns")),
                                     rate(get(r, "fallbacks"), get(r, "turns")), lim->rate_delta, 1,
                                     scratch));
    json_object_set_new(rates, "mean_confidence",
                        compare_rate("mean_confidence",
                                     rate(get(b, "confidence_sum"), get(b, "confidence_n")),
                                     rate(get(r, "confidence_sum"), get(r, "confidence_n")),
                                     lim->confidence_drop, -1, scratch));
    json_object_set_new(rates, "containment_rate",
                        compare_rate("containment_rate", rate(get(b, "contained"), get(b, "ended")),
                                     rate(get(r, "contained"), get(r, "ended")), lim->rate_delta,
                                     -1, scratch));
    if (scratch != alerts)
        json_decref(scratch);
    return json_pack("{s:b,s:b,s:o,s:o,s:o,s:O,s:O}", "drift", json_array_size(alerts) > 0,
                     "enough_data", enough, "alerts", alerts, "distribution", dist, "rates", rates,
                     "baseline", b, "recent", r);
}

int store_db_drift(store_db_t *db, int64_t now_us, const store_drift_limits_t *lim, json_t **out,
                   core_err_t *err)
{
    int64_t recent = lim->recent_s * 1000000, base = lim->baseline_s * 1000000;
    json_t *b = NULL, *r = NULL;
    int rc = store_db_drift_window(db, now_us - recent - base, now_us - recent, &b, err);
    rc = rc ? rc : store_db_drift_window(db, now_us - recent, now_us, &r, err);
    if (rc == 0) {
        *out = store_drift_compare(b, r, lim);
        json_object_set_new(*out, "at_us", json_integer((json_int_t)now_us));
    }
    json_decref(b);
    json_decref(r);
    return rc;
}

/* ---- on the thread pool ---------------------------------------------------- */

typedef struct {
    uv_work_t req;
    store_t *s;
    int64_t now_us;
    store_drift_limits_t lim;
    store_json_cb cb;
    void *data;
    int status;
    json_t *result;
    core_err_t err;
} drift_work_t;

static void drift_run(uv_work_t *req)
{
    drift_work_t *w = req->data;
    store_db_t *db = store__reader_get(w->s, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    w->status = store_db_drift(db, w->now_us, &w->lim, &w->result, &w->err);
    store__reader_put(w->s, db);
}

static void drift_done(uv_work_t *req, int status)
{
    drift_work_t *w = req->data;
    if (status != 0 && w->status == 0)
        w->status = core_err_set(&w->err, CORE_ERR_CLOSED, "drift check cancelled");
    w->cb(w->status, w->result, w->status ? w->err.msg : NULL, w->data);
    store_t *s = w->s;
    free(w);
    store__inflight(s, -1);
}

int store_drift_async(store_t *s, int64_t now_us, const store_drift_limits_t *lim, store_json_cb cb,
                      void *data)
{
    if (store_in_memory(s))
        return CORE_ERR_UNSUPPORTED;
    drift_work_t *w = core_xcalloc(1, sizeof(*w));
    *w = (drift_work_t){.s = s, .now_us = now_us, .lim = *lim, .cb = cb, .data = data};
    w->req.data = w;
    int rc = uv_queue_work(store__loop(s), &w->req, drift_run, drift_done);
    if (rc != 0) {
        free(w);
        return CORE_ERR_IO;
    }
    store__inflight(s, 1);
    return 0;
}
