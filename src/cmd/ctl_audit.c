/* chorusctl audit verify|list: the audit trail.
 *
 * verify walks the whole hash chain in the database file (it reads only, so
 * it is safe while chorusd runs) and reports the first broken link: the row
 * id and what differs. Exit 0 when intact, 1 when broken or unreadable.
 * list prints rows newest first, from the file or from a running daemon's
 * GET /v1/admin/audit (role operator). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

typedef struct {
    const char *verb, *db, *data_dir, *url, *token_file, *since, *until, *action, *actor, *limit;
    int json;
} args_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl audit verify (--db FILE | --data-dir DIR)\n"
                 "       chorusctl audit list (--db FILE | --data-dir DIR | --url URL)\n"
                 "                 [--since T] [--until T] [--action A] [--actor NAME]\n"
                 "                 [--limit N] [--json] [--token-file FILE]\n"
                 "  T is 2026-11-29, 2026-11-29T10:00:00Z or µs since the epoch; --action\n"
                 "  matches an action or its prefix (token = token.create, token.revoke).\n"
                 "  --url reads a running daemon's audit (role operator; token from\n"
                 "  $CHORUS_ADMIN_TOKEN or --token-file, mode 0600).\n"
                 "verify exits 0 when the chain is intact, 1 at the first broken link.\n");
}

static int parse(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    if (argc < 2)
        return usage(stderr), 2;
    a->verb = argv[1];
    if (!strcmp(a->verb, "--help") || !strcmp(a->verb, "-h"))
        return usage(stdout), 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **dst = !strcmp(o, "--db")           ? &a->db
                           : !strcmp(o, "--data-dir")   ? &a->data_dir
                           : !strcmp(o, "--url")        ? &a->url
                           : !strcmp(o, "--token-file") ? &a->token_file
                           : !strcmp(o, "--since")      ? &a->since
                           : !strcmp(o, "--until")      ? &a->until
                           : !strcmp(o, "--action")     ? &a->action
                           : !strcmp(o, "--actor")      ? &a->actor
                           : !strcmp(o, "--limit")      ? &a->limit
                                                        : NULL;
        if (dst != NULL && i + 1 < argc)
            *dst = argv[++i];
        else if (!strcmp(o, "--json"))
            a->json = 1;
        else if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return usage(stdout), 0;
        else
            return fprintf(stderr, "audit: unexpected argument %s\n", o), 2;
    }
    if (strcmp(a->verb, "verify") != 0 && strcmp(a->verb, "list") != 0)
        return fprintf(stderr, "audit: unknown subcommand %s\n", a->verb), usage(stderr), 2;
    int where = (a->db != NULL || a->data_dir != NULL) + (a->url != NULL);
    if (where != 1 || (a->db != NULL && a->data_dir != NULL) ||
        (a->url != NULL && strcmp(a->verb, "verify") == 0))
        return fprintf(stderr, "audit %s: give one of --db FILE, --data-dir DIR%s\n", a->verb,
                       strcmp(a->verb, "list") == 0 ? ", --url URL" : ""),
               2;
    return -1;
}

static int verify(const char *path)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    store_audit_verify_t v;
    int rc = db != NULL ? store_db_audit_verify(db, &v, &err) : CORE_ERR_IO;
    store_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "audit verify: %s\n", err.msg);
        return 1;
    }
    if (v.broken_id != 0) {
        printf("audit chain BROKEN at row %lld: %s\n", (long long)v.broken_id, v.what);
        printf("rows before it verified: %lld\n", (long long)v.rows);
        return 1;
    }
    printf("audit chain intact: %lld rows verified", (long long)v.rows);
    if (v.legacy > 0)
        printf(", %lld older rows from before the chain", (long long)v.legacy);
    printf("\nhead %s\n", v.head);
    return 0;
}

static void print_rows(json_t *page)
{
    json_t *rows = json_object_get(page, "entries"), *r;
    size_t i;
    printf("%-6s %-20s %-16s %-16s %-28s %s\n", "ID", "TIME (UTC)", "ACTOR", "ACTION", "TARGET",
           "DETAIL");
    json_array_foreach(rows, i, r)
    {
        time_t t = (time_t)(json_integer_value(json_object_get(r, "ts_us")) / 1000000);
        struct tm tm;
        char when[32], *detail = NULL;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *d = json_object_get(r, "detail");
        if (!json_is_null(d))
            detail = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *target = json_string_value(json_object_get(r, "target"));
        printf("%-6lld %-20s %-16s %-16s %-28s %s\n",
               (long long)json_integer_value(json_object_get(r, "id")), when,
               json_string_value(json_object_get(r, "actor")),
               json_string_value(json_object_get(r, "action")), target ? target : "-",
               detail ? detail : "-");
        free(detail);
    }
}

static void output(json_t *page, int as_json)
{
    if (as_json)
        ctl_admin_print_json(page);
    else
        print_rows(page);
}

static int list_db(const args_t *a, const char *path)
{
    core_err_t err = {0};
    store_audit_query_t q = {.action = a->action, .actor = a->actor, .limit = 100};
    if ((a->since && store_parse_time(a->since, &q.since_us, &err) != 0) ||
        (a->until && store_parse_time(a->until, &q.until_us, &err) != 0))
        return fprintf(stderr, "audit list: %s\n", err.msg), 2;
    if (a->limit != NULL && (q.limit = (int)strtol(a->limit, NULL, 10)) <= 0)
        return fprintf(stderr, "audit list: --limit must be 1 to 1000\n"), 2;
    store_db_t *db = store_db_open(path, &err);
    json_t *page = NULL;
    int rc = db != NULL ? store_db_audit(db, &q, &page, &err) : CORE_ERR_IO;
    store_db_close(db);
    if (rc != 0)
        return fprintf(stderr, "audit list: %s\n", err.msg), 1;
    output(page, a->json);
    json_decref(page);
    return 0;
}

static int list_url(const args_t *a)
{
    char *token = ctl_admin_token("audit list", a->token_file);
    if (token == NULL)
        return 2;
    core_buf_t path;
    core_buf_init(&path, 4096);
    core_buf_printf(&path, "/v1/admin/audit?limit=%s", a->limit ? a->limit : "100");
    const char *names[] = {"since", "until", "action", "actor"};
    const char *vals[] = {a->since, a->until, a->action, a->actor};
    for (int i = 0; i < 4; i++) {
        if (vals[i] == NULL)
            continue;
        char *esc = ctl_admin_escape(vals[i]);
        core_buf_printf(&path, "&%s=%s", names[i], esc);
        free(esc);
    }
    json_t *page = NULL;
    long status = ctl_admin_request("audit list", a->url, "GET", path.data, token, NULL, &page);
    free(token);
    core_buf_dispose(&path);
    int rc = 0;
    if (status == 0)
        rc = 1;
    else if (status != 200)
        ctl_admin_print_error("audit list", status, page), rc = 1;
    else
        output(page, a->json);
    json_decref(page);
    return rc;
}

int ctl_audit(int argc, char **argv)
{
    args_t a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char buf[4096];
    const char *path = ctl_admin_db_path(a.db, a.data_dir, buf, sizeof(buf));
    if (strcmp(a.verb, "verify") == 0)
        return verify(path);
    return path != NULL ? list_db(&a, path) : list_url(&a);
}
