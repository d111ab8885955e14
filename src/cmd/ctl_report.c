/* chorusctl report: the KPI table (docs/metrics.md) from a database file
 * (--db, read-only, safe while chorusd runs) or from a running daemon's
 * admin API (--url, --token), as a terminal table, CSV or JSON. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

int ctl_report(int argc, char **argv);

typedef struct {
    const char *db, *url, *token, *from, *to, *by, *bucket, *format;
    store_report_query_t q;
    int prices; /* a --price-* or --message-cost(s) option was given */
} args_t;

/* Columns of the table and CSV: JSON field, header, kind. */
typedef enum { C_INT, C_PCT, C_NUM, C_MS, C_MONEY } kind_t;
static const struct {
    const char *field, *head;
    kind_t kind;
} cols[] = {
    {"conversations", "convs", C_INT},        {"containment_rate", "contain", C_PCT},
    {"escalation_rate", "escal", C_PCT},      {"abandonment_rate", "abandon", C_PCT},
    {"avg_handle_time_s", "aht_s", C_NUM},    {"turns_per_conversation", "turns/c", C_NUM},
    {"latency_p50_ms", "p50_ms", C_MS},       {"latency_p95_ms", "p95_ms", C_MS},
    {"latency_p99_ms", "p99_ms", C_MS},       {"failure_rate", "fail", C_PCT},
    {"avg_confidence", "conf", C_NUM},        {"oos_rate", "oos", C_PCT},
    {"routing_accuracy", "acc", C_PCT},       {"csat_avg", "csat", C_NUM},
    {"csat_response_rate", "csat_rr", C_PCT}, {"cost", "cost", C_MONEY},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))
static const char *const dims[] = {"channel", "flow", "version", "variant", "bucket"};

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl report (--db FILE | --url URL --token T) [options]\n"
                 "  --from TIME, --to TIME   conversations started in [from, to): YYYY-MM-DD,\n"
                 "                           YYYY-MM-DDTHH:MM:SSZ (UTC) or µs since the epoch\n"
                 "  --by LIST                slices: channel,flow,version,variant\n"
                 "  --bucket B               hour | day | week | month | none (default none)\n"
                 "  --format F               table | csv | json (default table)\n"
                 "  --price-in X, --price-out X   LLM price per million prompt/completion tokens\n"
                 "  --message-cost X         cost per message, any channel\n"
                 "  --message-costs LIST     per-channel overrides: sms=0.0079,voice=0.013\n"
                 "Definitions of every column: docs/metrics.md.\n");
}

static int parse_money(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return end != v && *end == '\0' && *out >= 0 ? 0 : -1;
}

static int parse(args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return usage(stdout), 1;
        /* the option's place decides whether it is known, once */
        const char **slot = !strcmp(o, "--db")              ? &a->db
                            : !strcmp(o, "--url")           ? &a->url
                            : !strcmp(o, "--token")         ? &a->token
                            : !strcmp(o, "--from")          ? &a->from
                            : !strcmp(o, "--to")            ? &a->to
                            : !strcmp(o, "--by")            ? &a->by
                            : !strcmp(o, "--bucket")        ? &a->bucket
                            : !strcmp(o, "--format")        ? &a->format
                            : !strcmp(o, "--message-costs") ? &a->q.message_costs
                                                            : NULL;
        double *num = !strcmp(o, "--price-in")       ? &a->q.price_in_per_mtok
                      : !strcmp(o, "--price-out")    ? &a->q.price_out_per_mtok
                      : !strcmp(o, "--message-cost") ? &a->q.message_cost
                                                     : NULL;
        if (slot == NULL && num == NULL) /* every option takes a value: name the unknown one */
            return fprintf(stderr, "report: unknown option %s (see --help)\n", o), 2;
        if (v == NULL)
            return fprintf(stderr, "report: %s needs a value\n", o), 2;
        i++;
        a->prices |= num != NULL || slot == &a->q.message_costs;
        if (slot != NULL)
            *slot = v;
        else if (parse_money(v, num) != 0)
            return fprintf(stderr, "report: bad option %s %s\n", o, v), 2;
    }
    return 0;
}

static int check(args_t *a)
{
    core_err_t err = {0};
    if ((a->db == NULL) == (a->url == NULL))
        return fprintf(stderr, "report: give either --db FILE or --url URL\n"), 2;
    if (strcmp(a->format, "table") && strcmp(a->format, "csv") && strcmp(a->format, "json"))
        return fprintf(stderr, "report: --format must be table, csv or json\n"), 2;
    if ((a->from && store_parse_time(a->from, &a->q.from_us, &err)) ||
        (a->to && store_parse_time(a->to, &a->q.to_us, &err)) ||
        (a->by && store_report_parse_by(a->by, &a->q.by, &err)) ||
        (a->bucket && store_report_parse_bucket(a->bucket, &a->q.bucket, &err)))
        return fprintf(stderr, "report: %s\n", err.msg), 2;
    if (a->from && a->to && a->q.to_us <= a->q.from_us)
        return fprintf(stderr, "report: --to must be after --from\n"), 2;
    if (a->url && a->prices)
        return fprintf(stderr, "report: --price-in, --price-out, --message-cost and "
                               "--message-costs apply to --db; over --url the daemon's "
                               "configured prices are used\n"),
               2;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return core_buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

/* GET the admin API's report; its body is the same JSON as --db gives. */
static json_t *fetch(const args_t *a)
{
    CURL *c = curl_easy_init();
    char *from = curl_easy_escape(c, a->from ? a->from : "", 0);
    char *to = curl_easy_escape(c, a->to ? a->to : "", 0);
    char *by = curl_easy_escape(c, a->by ? a->by : "", 0);
    char *url = core_xasprintf("%.*s/v1/admin/reports/kpis?from=%s&to=%s&by=%s&bucket=%s",
                               (int)ctl_url_base_len(a->url), a->url, from, to, by,
                               a->bucket ? a->bucket : "none");
    curl_free(from), curl_free(to), curl_free(by);
    char *auth = core_xasprintf("Authorization: Bearer %s", a->token ? a->token : "");
    core_buf_t body;
    core_buf_init(&body, 64 << 20);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L); /* a daemon that never answers */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_t *out = NULL;
    if (res != CURLE_OK)
        fprintf(stderr, "report: %s: %s\n", a->url, curl_easy_strerror(res));
    else if (status != 200)
        fprintf(stderr, "report: %s answered %ld: %.200s\n", a->url, status,
                body.data ? body.data : "");
    else
        out = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    core_buf_dispose(&body);
    free(url), free(auth);
    return out;
}

static void cell(char *out, size_t size, json_t *v, kind_t kind)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(out, size, "-");
        return;
    }
    double d = json_number_value(v);
    switch (kind) {
    case C_INT:
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
        break;
    case C_PCT:
        snprintf(out, size, "%.1f%%", d * 100);
        break;
    case C_MS:
        snprintf(out, size, "%.1f", d);
        break;
    case C_MONEY:
        snprintf(out, size, "%.4f", d);
        break;
    default:
        snprintf(out, size, "%.2f", d);
    }
}

static void print_table_row(json_t *row, int is_total, const int *use, int ndims)
{
    char buf[64];
    int first = 1;
    for (int d = 0; d < 5; d++) {
        if (!use[d])
            continue;
        json_t *v = json_object_get(row, dims[d]);
        const char *s = is_total ? (first ? "TOTAL" : "") : json_string_value(v);
        printf("%-*s ", d == 4 ? 17 : 12, s && *s ? s : (is_total ? "" : "(none)"));
        first = 0;
    }
    if (ndims == 0)
        printf("%-12s ", "TOTAL");
    for (size_t c = 0; c < NCOLS; c++) {
        cell(buf, sizeof(buf), json_object_get(row, cols[c].field), cols[c].kind);
        printf("%9s", buf);
    }
    printf("\n");
}

static void print_table(json_t *r, const int *use, int ndims)
{
    for (int d = 0; d < 5; d++)
        if (use[d])
            printf("%-*s ", d == 4 ? 17 : 12, dims[d]);
    if (ndims == 0)
        printf("%-12s ", "");
    for (size_t c = 0; c < NCOLS; c++)
        printf("%9s", cols[c].head);
    printf("\n");
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(r, "rows"), i, row) print_table_row(row, 0, use, ndims);
    print_table_row(json_object_get(r, "total"), 1, use, ndims);
}

static void csv_value(json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%.10g", json_real_value(v));
    else if (json_is_string(v)) {
        putchar('"');
        for (const char *p = json_string_value(v); *p; p++) {
            if (*p == '"')
                putchar('"');
            putchar(*p);
        }
        putchar('"');
    } else if (json_is_object(v)) { /* escalations_by_reason: reason:count;... */
        const char *k;
        json_t *n;
        int first = 1;
        putchar('"');
        json_object_foreach(v, k, n)
        {
            printf("%s%s:%lld", first ? "" : ";", k, (long long)json_integer_value(n));
            first = 0;
        }
        putchar('"');
    }
}

static void print_csv(json_t *r, const int *use)
{
    json_t *total = json_object_get(r, "total");
    const char *k;
    json_t *v;
    for (int d = 0; d < 5; d++)
        if (use[d])
            printf("%s,", dims[d]);
    int first = 1;
    json_object_foreach(total, k, v)
    {
        printf("%s%s", first ? "" : ",", k);
        first = 0;
    }
    printf("\n");
    json_t *rows = json_copy(json_object_get(r, "rows"));
    json_array_append(rows, total);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        for (int d = 0; d < 5; d++)
            if (use[d]) {
                json_t *dv = json_object_get(row, dims[d]);
                if (dv != NULL)
                    csv_value(dv);
                else if (row == total)
                    printf("\"TOTAL\"");
                printf(",");
            }
        first = 1;
        json_object_foreach(total, k, v)
        {
            if (!first)
                printf(",");
            csv_value(json_object_get(row, k));
            first = 0;
        }
        printf("\n");
    }
    json_decref(rows);
}

int ctl_report(int argc, char **argv)
{
    args_t a = {.format = "table"};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if ((rc = check(&a)) != 0)
        return rc;
    json_t *r = NULL;
    if (a.url != NULL) {
        if ((r = fetch(&a)) == NULL)
            return 1;
    } else {
        core_err_t err = {0};
        store_db_t *db = store_db_open(a.db, &err);
        if (db == NULL || store_db_report(db, &a.q, &r, &err) != 0) {
            fprintf(stderr, "report: %s\n", err.msg);
            store_db_close(db);
            return 1;
        }
        store_db_close(db);
    }
    int use[5] = {0}, ndims = 0;
    for (int d = 0; d < 4; d++)
        ndims += use[d] = (a.q.by >> d) & 1;
    ndims += use[4] = a.q.bucket != STORE_BUCKET_NONE;
    if (strcmp(a.format, "json") == 0) {
        char *s = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        printf("%s\n", s);
        free(s);
    } else if (strcmp(a.format, "csv") == 0) {
        print_csv(r, use);
    } else {
        print_table(r, use, ndims);
    }
    json_decref(r);
    return 0;
}
