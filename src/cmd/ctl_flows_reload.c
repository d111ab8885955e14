/* chorusctl flows reload | status: hot reload through a running daemon's
 * admin API (POST /v1/admin/flows/reload, GET /v1/admin/flows/status).
 * --url (default http://127.0.0.1:8080) and the bearer token from --token
 * or CHORUS_ADMIN_TOKEN. `reload` waits for the load and exits 0 when the
 * new flows are in force, 1 when they were refused (each problem printed as
 * file:line:col: path: message) or the daemon could not be reached. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

typedef struct args_s {
    const char *url;
    const char *token;
    int json;
} args_t;

static int parse(const char *cmd, args_t *a, int argc, char **argv)
{
    a->url = "http://127.0.0.1:8080";
    a->token = getenv("CHORUS_ADMIN_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: chorusctl flows %s [--url URL] [--token T] [--json]\n"
                   "  --url URL   the daemon (default http://127.0.0.1:8080)\n"
                   "  --token T   admin token (default $CHORUS_ADMIN_TOKEN); %s\n"
                   "  --json      print the API's JSON answer\n",
                   cmd, !strcmp(cmd, "reload") ? "role operator" : "role viewer");
            return 1;
        }
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if (i + 1 >= argc || (strcmp(o, "--url") && strcmp(o, "--token"))) {
            fprintf(stderr, "flows %s: bad option %s (see --help)\n", cmd, o);
            return 2;
        }
        *(!strcmp(o, "--url") ? &a->url : &a->token) = argv[++i];
    }
    if (a->token == NULL || a->token[0] == '\0') {
        fprintf(stderr, "flows %s: no admin token: give --token or set CHORUS_ADMIN_TOKEN\n", cmd);
        return 2;
    }
    return 0;
}

/* One request; returns the HTTP status (0 when unreachable) and the body
 * parsed (NULL if not JSON). */
static long call(const char *cmd, const args_t *a, const char *method, const char *path,
                 json_t **out)
{
    char who[32];
    snprintf(who, sizeof(who), "flows %s", cmd);
    return ctl_admin_request(who, a->url, method, path, a->token, NULL, out);
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

static void print_attempt(const json_t *at)
{
    printf("last attempt: %s at %s (trigger %s%s%s, %.1f ms)\n", str(at, "result"),
           str(at, "started_at"), str(at, "trigger"),
           json_is_string(json_object_get(at, "actor")) ? ", by " : "",
           json_is_string(json_object_get(at, "actor")) ? str(at, "actor") : "",
           json_number_value(json_object_get(at, "duration_ms")));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(at, "errors"), i, e) printf("  %s\n", json_string_value(e));
}

static void print_status(const json_t *st)
{
    const json_t *f = json_object_get(st, "in_force");
    if (json_is_object(f)) {
        printf("in force: version %lld, loaded %s (trigger %s, %.1f ms, router %s)\n",
               (long long)json_integer_value(json_object_get(f, "version")), str(f, "loaded_at"),
               str(f, "trigger"), json_number_value(json_object_get(f, "duration_ms")),
               str(f, "nlu"));
        size_t i;
        json_t *fl;
        json_array_foreach(json_object_get(f, "flows"), i, fl)
            printf("  %-28s %-32s %.12s\n", str(fl, "name"), str(fl, "file"), str(fl, "sha256"));
    } else {
        printf("in force: none\n");
    }
    const json_t *at = json_object_get(st, "last_attempt");
    if (json_is_object(at))
        print_attempt(at);
    const json_t *w = json_object_get(st, "watch");
    printf("watch: %s (debounce %lld ms, rescan every %lld ms)%s\n",
           json_is_true(json_object_get(w, "enabled")) ? "on" : "off",
           (long long)json_integer_value(json_object_get(w, "debounce_ms")),
           (long long)json_integer_value(json_object_get(w, "rescan_interval_ms")),
           json_is_true(json_object_get(st, "loading")) ? "; a load is running" : "");
}

static int failed(const char *cmd, long status, const json_t *body)
{
    const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    if (status != 0)
        fprintf(stderr, "flows %s: the daemon answered %ld: %s\n", cmd, status, msg ? msg : "");
    return 1;
}

int ctl_flows_reload(int argc, char **argv)
{
    args_t a = {0};
    int rc = parse("reload", &a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    json_t *body = NULL;
    long status = call("reload", &a, "POST", "/v1/admin/flows/reload", &body);
    if (a.json && body != NULL)
        ctl_admin_print_json(body);
    else if (status == 200 || status == 422)
        print_attempt(json_object_get(body, "attempt"));
    rc = status == 200 ? 0 : status == 422 ? 1 : failed("reload", status, body);
    json_decref(body);
    return rc;
}

int ctl_flows_status(int argc, char **argv)
{
    args_t a = {0};
    int rc = parse("status", &a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    json_t *body = NULL;
    long status = call("status", &a, "GET", "/v1/admin/flows/status", &body);
    if (status != 200) {
        rc = failed("status", status, body);
    } else if (a.json) {
        ctl_admin_print_json(body);
    } else {
        print_status(body);
    }
    json_decref(body);
    return rc;
}
