/* chorusctl flows list | versions | promote | rollback: flow versions and
 * environments through a running daemon's admin API (docs/operations.md,
 * "Flow versions and environments"). --url (default http://127.0.0.1:8080)
 * and the admin token from --token or CHORUS_ADMIN_TOKEN.
 *
 * `promote` is the promotion gate: it fetches the exact contents staging
 * runs, writes them to a temporary directory, runs the flows' conversation
 * tests against them with the machinery of `chorusctl test` (default tests
 * directory flows/tests, --tests DIR), and only when every test passes asks
 * the daemon to promote exactly those versions; otherwise it prints which
 * tests failed and exits 1 without promoting. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chorus/core.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

int ctl_test(int argc, char **argv); /* ctl_test.c: the conversation tests */

typedef struct fargs_s {
    const char *url;
    const char *token;
    const char *to;      /* promote --to, rollback --to */
    const char *tests;   /* promote --tests */
    const char *env;     /* list/rollback --env */
    const char *pos[64]; /* positional arguments */
    int n_pos;
    int json;
    int diff; /* versions --diff */
} fargs_t;

/* Parses argv into a; one_flow: exactly one FLOW must be named. Returns -1
 * to go on, else the exit code (0 after --help). */
static int parse(const char *cmd, const char *usage, int one_flow, fargs_t *a, int argc,
                 char **argv)
{
    memset(a, 0, sizeof(*a));
    a->url = "http://127.0.0.1:8080";
    a->token = getenv("CHORUS_ADMIN_TOKEN");
    a->tests = "flows/tests";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char **slot = !strcmp(o, "--url")     ? &a->url
                            : !strcmp(o, "--token") ? &a->token
                            : !strcmp(o, "--to")    ? &a->to
                            : !strcmp(o, "--tests") ? &a->tests
                            : !strcmp(o, "--env")   ? &a->env
                                                    : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: chorusctl flows %s %s\n"
                   "  --url URL   the daemon (default http://127.0.0.1:8080)\n"
                   "  --token T   admin token (default $CHORUS_ADMIN_TOKEN)\n",
                   cmd, usage);
            return 0;
        } else if (!strcmp(o, "--json")) {
            a->json = 1;
        } else if (!strcmp(o, "--diff")) {
            a->diff = 1;
        } else if (slot != NULL && i + 1 < argc) {
            *slot = argv[++i];
        } else if (o[0] == '-' || a->n_pos == 64) {
            fprintf(stderr, "flows %s: bad option %s (see --help)\n", cmd, o);
            return 2;
        } else {
            a->pos[a->n_pos++] = o;
        }
    }
    if (a->token == NULL || a->token[0] == '\0') {
        fprintf(stderr, "flows %s: no admin token: give --token or set CHORUS_ADMIN_TOKEN\n", cmd);
        return 2;
    }
    if (one_flow && a->n_pos != 1) {
        fprintf(stderr, "flows %s: name one flow\n", cmd);
        return 2;
    }
    return -1;
}

/* One request; returns the HTTP status (0 when unreachable) and the body
 * parsed (NULL if not JSON). body is a JSON document to POST, or NULL. */
static long call(const fargs_t *a, const char *method, const char *path, const json_t *body,
                 json_t **out)
{
    return ctl_admin_request("chorusctl flows", a->url, method, path, a->token, body, out);
}

/* Prints the API's error message for a non-2xx answer; returns 1. */
static int api_error(long status, const json_t *body)
{
    const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    if (status == 0)
        return 1;
    fprintf(stderr, "chorusctl flows: HTTP %ld: %s\n", status, msg ? msg : "(no message)");
    json_t *problems = json_object_get(body, "problems");
    for (size_t i = 0; i < json_array_size(problems); i++)
        fprintf(stderr, "  %s\n", json_string_value(json_array_get(problems, i)));
    return 1;
}

/* One request that must answer 200: returns 0 with the answer in *out
 * (owned), or the exit code after printing the error (*out NULL). */
static int call_ok(const fargs_t *a, const char *method, const char *path, const json_t *body,
                   json_t **out)
{
    long st = call(a, method, path, body, out);
    if (st == 200)
        return 0;
    int rc = api_error(st, *out);
    json_decref(*out);
    *out = NULL;
    return rc;
}

static void print_time(json_t *us)
{
    if (!json_is_integer(us)) {
        printf("%-20s", "-");
        return;
    }
    time_t t = (time_t)(json_integer_value(us) / 1000000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-20s", buf);
}

int ctl_flows_list(int argc, char **argv)
{
    fargs_t a;
    int rc = parse("list", "[--env ENV] [--json]", 0, &a, argc, argv);
    if (rc >= 0)
        return rc;
    char *qenv = a.env ? ctl_admin_escape(a.env) : NULL;
    char *path = core_xasprintf("/v1/admin/flows%s%s", qenv ? "?env=" : "", qenv ? qenv : "");
    free(qenv);
    json_t *body;
    rc = call_ok(&a, "GET", path, NULL, &body);
    free(path);
    if (rc != 0)
        return rc;
    if (a.json) {
        ctl_admin_print_json(body);
    } else {
        printf("%-11s %-24s %-13s %-16s %s\n", "ENV", "FLOW", "VERSION", "AUTHOR", "TIME");
        const char *env;
        json_t *e;
        json_object_foreach(json_object_get(body, "environments"), env, e)
        {
            size_t i;
            json_t *f;
            json_array_foreach(json_object_get(e, "flows"), i, f)
            {
                const char *au = json_string_value(json_object_get(f, "author"));
                printf("%-11s %-24s %-13s %-16s ", env,
                       json_string_value(json_object_get(f, "flow")),
                       json_string_value(json_object_get(f, "version")), au ? au : "-");
                print_time(json_object_get(f, "created_us"));
                printf("\n");
            }
        }
    }
    json_decref(body);
    return 0;
}

int ctl_flows_versions(int argc, char **argv)
{
    fargs_t a;
    int rc = parse("versions", "FLOW [--diff] [--json]", 1, &a, argc, argv);
    if (rc >= 0)
        return rc;
    char *flow = ctl_admin_escape(a.pos[0]);
    char *path = core_xasprintf("/v1/admin/flows/%s/versions", flow);
    free(flow);
    json_t *body;
    rc = call_ok(&a, "GET", path, NULL, &body);
    free(path);
    if (rc != 0)
        return rc;
    if (a.json) {
        ctl_admin_print_json(body);
        json_decref(body);
        return 0;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(body, "versions"), i, v)
    {
        const char *prev = json_string_value(json_object_get(v, "prev_version"));
        printf("%-13s %-16s ", json_string_value(json_object_get(v, "version")),
               json_string_value(json_object_get(v, "author")));
        print_time(json_object_get(v, "created_us"));
        printf(" after %-13s", prev ? prev : "-");
        json_t *envs = json_object_get(v, "envs");
        for (size_t k = 0; k < json_array_size(envs); k++)
            printf(" [%s]", json_string_value(json_array_get(envs, k)));
        printf("\n");
        const char *d = json_string_value(json_object_get(v, "diff"));
        if (a.diff && d != NULL)
            printf("%s", d);
    }
    json_decref(body);
    return 0;
}

int ctl_flows_rollback(int argc, char **argv)
{
    fargs_t a;
    int rc = parse("rollback", "FLOW [--to VERSION] [--env ENV] [--json]", 1, &a, argc, argv);
    if (rc >= 0)
        return rc;
    json_t *req =
        json_pack("{s:s, s:s?, s:s?}", "flow", a.pos[0], "to_version", a.to, "env", a.env);
    json_t *body;
    rc = call_ok(&a, "POST", "/v1/admin/flows/rollback", req, &body);
    json_decref(req);
    if (rc != 0)
        return rc;
    if (a.json)
        ctl_admin_print_json(body);
    else
        printf("rolled back %s in %s: %s -> %s\n", a.pos[0],
               json_string_value(json_object_get(body, "env")),
               json_string_value(json_object_get(body, "from_version")),
               json_string_value(json_object_get(body, "to_version")));
    json_decref(body);
    return 0;
}

/* Writes staging's files into a new temporary directory; returns its path. */
static char *write_staging(const json_t *flows, json_t *versions, const char *const *only,
                           int n_only)
{
    char tmpl[] = "/tmp/chorus-promote-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        perror("chorusctl flows promote: mkdtemp");
        return NULL;
    }
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "flow"));
        char *path = core_xasprintf("%s/%s.json", tmpl, name);
        FILE *fp = fopen(path, "w");
        json_t *c = json_object_get(f, "content");
        if (fp != NULL) {
            fwrite(json_string_value(c), 1, json_string_length(c), fp);
            fclose(fp);
        }
        free(path);
        int wanted = n_only == 0;
        for (int k = 0; k < n_only; k++)
            wanted |= !strcmp(only[k], name);
        if (wanted)
            json_object_set(versions, name, json_object_get(f, "version"));
    }
    return core_xstrdup(tmpl);
}

static void remove_dir(const char *dir, const json_t *flows)
{
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f)
    {
        char *path =
            core_xasprintf("%s/%s.json", dir, json_string_value(json_object_get(f, "flow")));
        unlink(path);
        free(path);
    }
    rmdir(dir);
}

/* The gate: the tests against staging's exact versions. 0 when all pass. */
static int gate(const char *dir, const char *tests)
{
    char *argv[] = {"test", "--flows", (char *)dir, (char *)tests, NULL};
    printf("testing staging's versions against %s:\n", tests);
    fflush(stdout);
    return ctl_test(4, argv);
}

int ctl_flows_promote(int argc, char **argv)
{
    fargs_t a;
    int rc =
        parse("promote", "[FLOW...] --to production [--tests DIR] [--json]", 0, &a, argc, argv);
    if (rc >= 0)
        return rc;
    if (a.to == NULL) {
        fprintf(stderr, "flows promote: say where: --to production\n");
        return 2;
    }
    json_t *body;
    rc = call_ok(&a, "GET", "/v1/admin/flows?env=staging&content=1", NULL, &body);
    if (rc != 0)
        return rc;
    json_t *flows =
        json_object_get(json_object_get(json_object_get(body, "environments"), "staging"), "flows");
    json_t *versions = json_object();
    char *dir = write_staging(flows, versions, a.pos, a.n_pos);
    rc = dir ? gate(dir, a.tests) : 1;
    if (dir)
        remove_dir(dir, flows);
    free(dir);
    if (rc != 0) {
        fprintf(stderr,
                "chorusctl flows promote: refused: the tests above failed against "
                "staging's versions; %s is unchanged\n",
                a.to);
        json_decref(versions);
        json_decref(body);
        return 1;
    }
    json_t *names = json_array();
    for (int i = 0; i < a.n_pos; i++)
        json_array_append_new(names, json_string(a.pos[i]));
    json_t *req = json_pack("{s:s, s:o, s:o}", "to", a.to, "flows", names, "versions", versions);
    json_t *ans;
    rc = call_ok(&a, "POST", "/v1/admin/flows/promote", req, &ans);
    json_decref(req);
    if (rc == 0 && a.json) {
        ctl_admin_print_json(ans);
    } else if (rc == 0) {
        printf("promoted to %s:\n", a.to);
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(json_object_get(ans, "now"), "flows"), i, f)
            printf("  %-24s %s\n", json_string_value(json_object_get(f, "flow")),
                   json_string_value(json_object_get(f, "version")));
    }
    json_decref(ans);
    json_decref(body);
    return rc;
}
