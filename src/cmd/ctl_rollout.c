/* chorusctl rollout: start, watch, promote and abort A/B rollouts through a
 * running daemon's admin API (docs/operations.md, "Rollouts and A/B
 * tests"). The token comes from CHORUS_ADMIN_TOKEN (or --token); --url
 * defaults to http://127.0.0.1:8080. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"
#include "cmd/ctl.h"
#include "cmd/ctl_admin_http.h"

int ctl_rollout(int argc, char **argv);

typedef struct {
    const char *verb, *target, *url, *token, *candidate, *percent, *env;
    int json;
} args_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl rollout start FLOW --candidate VERSION --percent P [--env ENV]\n"
                 "       chorusctl rollout status [FLOW|ID] [--json]\n"
                 "       chorusctl rollout promote FLOW|ID [--env ENV]\n"
                 "       chorusctl rollout abort FLOW|ID [--env ENV]\n"
                 "  --url URL     the daemon (default http://127.0.0.1:8080)\n"
                 "  --token T     admin token (default: $CHORUS_ADMIN_TOKEN)\n"
                 "start needs an operator token, promote an admin one, status a viewer one.\n"
                 "status without FLOW shows every running rollout. Figures: docs/metrics.md.\n");
}

/* One admin API call; returns the JSON answer (NULL when none parsed) and
 * the HTTP status in *status (0 when the daemon could not be reached). */
static json_t *call(const args_t *a, const char *method, const char *path, const json_t *body,
                    long *status)
{
    json_t *j = NULL;
    *status =
        ctl_admin_request("rollout", a->url, method, path, a->token ? a->token : "", body, &j);
    if (*status >= 300) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "rollout: %s %s answered %ld: %s\n", method, path, *status,
                msg ? msg : "(no message)");
    }
    return j;
}

static void fmt(char *out, size_t n, json_t *v, int pct)
{
    if (!json_is_number(v))
        snprintf(out, n, "-");
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (pct)
        snprintf(out, n, "%.1f%%", json_number_value(v) * 100);
    else
        snprintf(out, n, "%.2f", json_number_value(v));
}

static void print_variant(const char *name, json_t *k)
{
    static const struct {
        const char *field;
        int pct;
    } cols[] = {{"conversations", 0},    {"ended", 0},
                {"containment_rate", 1}, {"escalation_rate", 1},
                {"error_rate", 1},       {"latency_p95_ms", 0},
                {"csat_avg", 0},         {"csat_satisfied_share", 1}};
    printf("%-10s", name);
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        char buf[32];
        fmt(buf, sizeof(buf), json_object_get(k, cols[i].field), cols[i].pct);
        printf("%10s", buf);
    }
    printf("\n");
}

static void print_test(const char *name, json_t *t)
{
    json_t *z = json_object_get(t, "z"), *p = json_object_get(t, "p_value");
    if (json_is_number(p))
        printf("  %-22s z = %+.3f  p = %.4f%s\n", name, json_number_value(z), json_number_value(p),
               json_number_value(p) < 0.05 ? "  (significant at 5%)" : "");
    else
        printf("  %-22s not enough data\n", name);
}

static void print_status(json_t *s)
{
    json_t *r = json_object_get(s, "rollout"), *v = json_object_get(s, "variants");
    json_t *g = json_object_get(s, "guard"), *t = json_object_get(s, "tests");
    const char *reason = json_string_value(json_object_get(r, "reason"));
    printf(
        "rollout %s  flow %s  env %s  candidate %s  control %s  %lld%%  %s%s%s\n",
        json_string_value(json_object_get(r, "id")), json_string_value(json_object_get(r, "flow")),
        json_string_value(json_object_get(r, "env")),
        json_string_value(json_object_get(r, "candidate_version")),
        json_string_value(json_object_get(r, "control_version")),
        (long long)json_integer_value(json_object_get(r, "percent")),
        json_string_value(json_object_get(r, "status")), reason ? ": " : "", reason ? reason : "");
    printf("%-10s%10s%10s%10s%10s%10s%10s%10s%10s\n", "variant", "convs", "ended", "contain",
           "escal", "error", "p95_ms", "csat", "csat4-5");
    print_variant("control", json_object_get(v, "control"));
    print_variant("candidate", json_object_get(v, "candidate"));
    printf("two-proportion z-tests (candidate vs control):\n");
    print_test("containment", json_object_get(t, "containment"));
    print_test("CSAT 4-5 share", json_object_get(t, "csat_satisfied"));
    printf("guard: %s: %s\n", json_string_value(json_object_get(g, "verdict")),
           json_string_value(json_object_get(g, "reason")));
}

/* status: one rollout (FLOW or ID), or every running one. */
static int do_status(const args_t *a)
{
    long st;
    json_t *all = json_array();
    if (a->target != NULL) {
        char *e = ctl_admin_escape(a->target), *path = core_xasprintf("/v1/admin/rollouts/%s", e);
        json_t *one = call(a, "GET", path, NULL, &st);
        free(e), free(path);
        if (st != 200)
            return json_decref(one), json_decref(all), 1;
        json_array_append_new(all, one);
    } else {
        json_t *list = call(a, "GET", "/v1/admin/rollouts?status=running", NULL, &st);
        json_t *row;
        size_t i;
        if (st != 200)
            return json_decref(list), json_decref(all), 1;
        json_array_foreach(json_object_get(list, "rollouts"), i, row)
        {
            char *path = core_xasprintf("/v1/admin/rollouts/%s",
                                        json_string_value(json_object_get(row, "id")));
            json_t *one = call(a, "GET", path, NULL, &st);
            free(path);
            if (st == 200)
                json_array_append_new(all, one);
            else
                json_decref(one);
        }
        json_decref(list);
    }
    if (a->json) {
        json_t *out = json_pack("{s:O}", "rollouts", all);
        ctl_admin_print_json(out);
        json_decref(out);
    } else if (json_array_size(all) == 0) {
        printf("no rollout is running\n");
    } else {
        for (size_t i = 0; i < json_array_size(all); i++)
            print_status(json_array_get(all, i)), printf(i + 1 < json_array_size(all) ? "\n" : "");
    }
    json_decref(all);
    return 0;
}

static int do_change(const args_t *a)
{
    long st;
    json_t *r;
    if (strcmp(a->verb, "start") == 0) {
        char *end;
        long pct = a->percent ? strtol(a->percent, &end, 10) : -1;
        if (a->candidate == NULL || a->percent == NULL || *end != '\0' || pct < 1 || pct > 100)
            return fprintf(stderr,
                           "rollout: start needs --candidate VERSION and --percent 1..100\n"),
                   2;
        json_t *body = json_pack("{s:s,s:s,s:i}", "flow", a->target, "candidate", a->candidate,
                                 "percent", (int)pct);
        if (a->env != NULL)
            json_object_set_new(body, "env", json_string(a->env));
        r = call(a, "POST", "/v1/admin/rollouts", body, &st);
        json_decref(body);
    } else {
        char *e = ctl_admin_escape(a->target);
        char *env = a->env ? ctl_admin_escape(a->env) : NULL;
        char *path = core_xasprintf("/v1/admin/rollouts/%s/%s%s%s", e, a->verb, env ? "?env=" : "",
                                    env ? env : "");
        r = call(a, "POST", path, NULL, &st);
        free(e), free(env), free(path);
    }
    if (st / 100 == 2)
        printf("rollout %s: %s %s (%s, candidate %s, %lld%%)\n",
               json_string_value(json_object_get(r, "id")), a->verb,
               strcmp(a->verb, "start") == 0 ? "running"
                                             : json_string_value(json_object_get(r, "status")),
               json_string_value(json_object_get(r, "flow")),
               json_string_value(json_object_get(r, "candidate_version")),
               (long long)json_integer_value(json_object_get(r, "percent")));
    json_decref(r);
    return st / 100 == 2 ? 0 : 1;
}

static int parse(args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h"))
            return usage(stdout), 1;
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        if (o[0] != '-') {
            const char **slot = a->verb == NULL ? &a->verb : a->target == NULL ? &a->target : NULL;
            if (slot == NULL)
                return fprintf(stderr, "rollout: unexpected argument %s\n", o), 2;
            *slot = o;
            continue;
        }
        const char **slot = !strcmp(o, "--url")         ? &a->url
                            : !strcmp(o, "--token")     ? &a->token
                            : !strcmp(o, "--candidate") ? &a->candidate
                            : !strcmp(o, "--percent")   ? &a->percent
                            : !strcmp(o, "--env")       ? &a->env
                                                        : NULL;
        if (slot == NULL)
            return fprintf(stderr, "rollout: unknown option %s\n", o), 2;
        if (v == NULL)
            return fprintf(stderr, "rollout: %s needs a value\n", o), 2;
        *slot = v;
        i++;
    }
    return 0;
}

int ctl_rollout(int argc, char **argv)
{
    args_t a = {.url = "http://127.0.0.1:8080", .token = getenv("CHORUS_ADMIN_TOKEN")};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (a.verb == NULL)
        return usage(stderr), 2;
    int is_status = strcmp(a.verb, "status") == 0;
    if (!is_status && strcmp(a.verb, "start") && strcmp(a.verb, "promote") &&
        strcmp(a.verb, "abort"))
        return fprintf(stderr, "rollout: unknown action %s\n", a.verb), usage(stderr), 2;
    if (!is_status && a.target == NULL)
        return fprintf(stderr, "rollout: %s needs a FLOW\n", a.verb), 2;
    /* an option the action does not use is refused, not ignored */
    const char *unused = strcmp(a.verb, "start") != 0 && a.candidate ? "--candidate"
                         : strcmp(a.verb, "start") != 0 && a.percent ? "--percent"
                         : is_status && a.env                        ? "--env"
                                                                     : NULL;
    if (unused != NULL)
        return fprintf(stderr, "rollout: %s does not take %s\n", a.verb, unused), 2;
    if (a.token == NULL || a.token[0] == '\0')
        return fprintf(stderr, "rollout: set CHORUS_ADMIN_TOKEN (or give --token)\n"), 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = is_status ? do_status(&a) : do_change(&a);
    curl_global_cleanup();
    return rc;
}
