/* chorusctl token create|list|revoke: admin API tokens with roles.
 *
 * Online (the default, --url): through the admin API of a running daemon,
 * which records the change and its audit row and updates the tokens it
 * checks at once; the caller's token (role admin) comes from
 * CHORUS_ADMIN_TOKEN or --token-file. Offline (--db FILE or --data-dir DIR):
 * straight into the database through the store's writer, for a stopped
 * daemon (the first token of a fresh install, or recovery); a running
 * daemon sees such a change only after a restart. A created token is
 * printed once, on stdout, and never stored: only its SHA-256 is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/admin.h"
#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

typedef struct {
    const char *verb, *name, *role, *url, *token_file, *db, *data_dir, *by;
    int json;
} args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chorusctl token create NAME --role viewer|operator|admin|agent [where]\n"
            "       chorusctl token list [--json] [where]\n"
            "       chorusctl token revoke NAME [where]\n"
            "where (a running daemon, the default):\n"
            "  --url URL          admin API base URL (default http://127.0.0.1:8080)\n"
            "  --token-file FILE  the caller's admin token, mode 0600 (default:\n"
            "                     $CHORUS_ADMIN_TOKEN); the caller needs role admin\n"
            "or, with the daemon stopped:\n"
            "  --db FILE | --data-dir DIR   write the database directly\n"
            "  --by NAME          the actor recorded in the audit trail (default local:$USER)\n"
            "A created token is printed once on stdout; only its SHA-256 is kept.\n");
}

static int parse(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->url = "http://127.0.0.1:8080";
    if (argc < 2)
        return usage(stderr), 2;
    a->verb = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char **dst = !strcmp(o, "--role")         ? &a->role
                           : !strcmp(o, "--url")        ? &a->url
                           : !strcmp(o, "--token-file") ? &a->token_file
                           : !strcmp(o, "--db")         ? &a->db
                           : !strcmp(o, "--data-dir")   ? &a->data_dir
                           : !strcmp(o, "--by")         ? &a->by
                                                        : NULL;
        if (dst != NULL && i + 1 < argc)
            *dst = argv[++i];
        else if (!strcmp(o, "--json"))
            a->json = 1;
        else if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return usage(stdout), 0;
        else if (o[0] != '-' && a->name == NULL)
            a->name = o;
        else
            return fprintf(stderr, "token: unexpected argument %s\n", o), 2;
    }
    int needs_name = strcmp(a->verb, "create") == 0 || strcmp(a->verb, "revoke") == 0;
    if (!needs_name && strcmp(a->verb, "list") != 0)
        return fprintf(stderr, "token: unknown subcommand %s\n", a->verb), usage(stderr), 2;
    if (needs_name != (a->name != NULL))
        return fprintf(stderr, "token %s: %s\n", a->verb,
                       needs_name ? "give the token's NAME" : "takes no NAME"),
               2;
    if (strcmp(a->verb, "create") == 0 &&
        (a->role == NULL || admin_role_parse(a->role, strlen(a->role)) == ADMIN_ROLE_NONE))
        return fprintf(stderr, "token create: --role must be viewer, operator, admin or agent\n"),
               2;
    return -1;
}

static void print_created(const char *name, const char *role, const char *token)
{
    printf("%s\n", token);
    fprintf(stderr,
            "token %s (role %s) created; the line above is the token, shown only this once\n", name,
            role);
}

/* ---- online ------------------------------------------------------------- */

static void print_list(json_t *tokens, int as_json)
{
    if (as_json) {
        ctl_admin_print_json(tokens);
        return;
    }
    printf("%-24s %-9s %-7s %-8s %-20s %s\n", "NAME", "ROLE", "SOURCE", "SHA256", "CREATED BY",
           "STATE");
    size_t i;
    json_t *t;
    json_array_foreach(tokens, i, t)
    {
        const char *by = json_string_value(json_object_get(t, "created_by"));
        printf("%-24s %-9s %-7s %-8s %-20s %s\n", json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "role")),
               json_string_value(json_object_get(t, "source")),
               json_string_value(json_object_get(t, "sha256_prefix")), by ? by : "-",
               json_is_null(json_object_get(t, "revoked_us")) ? "valid" : "revoked");
    }
}

static int online(const args_t *a)
{
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "token %s", a->verb);
    char *token = ctl_admin_token(cmd, a->token_file);
    if (token == NULL)
        return 2;
    json_t *ans = NULL, *body = NULL;
    long status;
    char path[160];
    if (strcmp(a->verb, "create") == 0) {
        body = json_pack("{s:s,s:s}", "name", a->name, "role", a->role);
        status = ctl_admin_request(cmd, a->url, "POST", "/v1/admin/tokens", token, body, &ans);
    } else if (strcmp(a->verb, "revoke") == 0) {
        snprintf(path, sizeof(path), "/v1/admin/tokens/%s", a->name);
        status = ctl_admin_request(cmd, a->url, "DELETE", path, token, NULL, &ans);
    } else {
        status = ctl_admin_request(cmd, a->url, "GET", "/v1/admin/tokens", token, NULL, &ans);
    }
    free(token);
    json_decref(body);
    int rc = 0;
    if (status == 0) {
        rc = 1;
    } else if (status >= 300) {
        ctl_admin_print_error(cmd, status, ans);
        rc = 1;
    } else if (strcmp(a->verb, "create") == 0) {
        print_created(a->name, a->role, json_string_value(json_object_get(ans, "token")));
    } else if (strcmp(a->verb, "revoke") == 0) {
        printf("token %s revoked\n", a->name);
    } else {
        print_list(json_object_get(ans, "tokens"), a->json);
    }
    json_decref(ans);
    return rc;
}

/* ---- offline ------------------------------------------------------------ */

static void on_written(int status, void *data)
{
    int *st = data;
    *st = status;
}

/* Writes b through a store of its own; returns the batch's status. */
static int write_batch(const char *path, store_batch_t *b)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    core_err_t err = {0};
    store_options_t opt = {.path = path};
    store_t *s = store_open(&loop, &opt, &err);
    int status = 1; /* not yet done */
    if (s == NULL) {
        fprintf(stderr, "token: %s\n", err.msg);
        store_batch_free(b);
        status = CORE_ERR_IO;
    } else if ((status = store_enqueue(s, b, on_written, &status)) != 0) {
        store_batch_free(b);
    } else {
        status = 1;
        while (status == 1)
            uv_run(&loop, UV_RUN_ONCE);
    }
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return status;
}

static void list_row(const store_token_row_t *t, void *arg)
{
    json_t *list = arg;
    char prefix[9];
    snprintf(prefix, sizeof(prefix), "%.8s", t->sha256 ? t->sha256 : "");
    json_array_append_new(
        list, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:o}", "name", t->name, "role", t->role, "source",
                        "store", "sha256_prefix", prefix, "created_us", (json_int_t)t->created_us,
                        "created_by", t->created_by, "revoked_us",
                        t->revoked_us ? json_integer(t->revoked_us) : json_null()));
}

static int offline_list(const char *path, int as_json)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    json_t *list = json_array();
    int rc = db != NULL ? store_db_tokens(db, list_row, list, &err) : CORE_ERR_IO;
    store_db_close(db);
    if (rc != 0)
        fprintf(stderr, "token list: %s\n", err.msg);
    else
        print_list(list, as_json);
    json_decref(list);
    return rc == 0 ? 0 : 1;
}

static int offline(const args_t *a, const char *path)
{
    if (strcmp(a->verb, "list") == 0)
        return offline_list(path, a->json);
    char actor[96], text[ADMIN_TOKEN_TEXT_SIZE], hash[65], detail[64];
    const char *user = getenv("USER");
    snprintf(actor, sizeof(actor), "%s", a->by ? a->by : "");
    if (a->by == NULL)
        snprintf(actor, sizeof(actor), "local:%s", user ? user : "unknown");
    int64_t now = core_wall_us();
    int create = strcmp(a->verb, "create") == 0;
    store_batch_t *b = store_batch_new();
    if (create) {
        if (admin_token_new(text, hash) != 0) {
            store_batch_free(b);
            return fprintf(stderr, "token create: no randomness available\n"), 1;
        }
        store_batch_token_create(b, a->name, a->role, hash, actor, now);
        snprintf(detail, sizeof(detail), "{\"role\":\"%s\",\"offline\":true}", a->role);
    } else {
        store_batch_token_revoke(b, a->name, now);
        snprintf(detail, sizeof(detail), "{\"offline\":true}");
    }
    store_batch_audit(b, actor, create ? "token.create" : "token.revoke", a->name, detail, now);
    int rc = write_batch(path, b);
    if (rc == CORE_ERR_INVALID)
        fprintf(stderr, "token %s: %s\n", a->verb,
                create ? "a token with that name exists (names are never reused)"
                       : "no unrevoked token with that name");
    else if (rc != 0)
        fprintf(stderr, "token %s: not written: %s\n", a->verb, core_strerror(rc));
    else if (create)
        print_created(a->name, a->role, text);
    else
        printf("token %s revoked\n", a->name);
    memset(text, 0, sizeof(text));
    return rc == 0 ? 0 : 1;
}

int ctl_token(int argc, char **argv)
{
    args_t a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char buf[4096];
    const char *path = ctl_admin_db_path(a.db, a.data_dir, buf, sizeof(buf));
    return path != NULL ? offline(&a, path) : online(&a);
}
