/* Validation helpers for guardrail and escalation documents: every problem
 * is reported as `file:line:col: path: message` and loading goes on, so one
 * run shows them all (as core_config.c does for the main config). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/guard_int.h"

void gd_problem(gd_loader_t *ld, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *full = NULL;
    if (ld->prefix != NULL && ld->prefix[0] != '\0')
        full = path[0] ? core_xasprintf("%s.%s", ld->prefix, path) : core_xstrdup(ld->prefix);
    const char *p = full ? full : path;
    int line = 0, col = 0;
    if (ld->pos != NULL)
        core_jsonpos_find(ld->pos, p, &line, &col);
    core_diags_add(ld->diags, ld->file, line, col, p, "%s", msg);
    free(full);
    ld->errors++;
}

static char *child(const char *path, const char *key)
{
    return core_jsonpath_key(path, key);
}

void gd_check_keys(gd_loader_t *ld, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (*a == NULL) {
            char *cp = child(path, key);
            gd_problem(ld, cp, "unknown key");
            free(cp);
        }
    }
}

static json_t *get_typed(gd_loader_t *ld, json_t *obj, const char *path, const char *key,
                         json_type type, const char *what)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_typeof(v) != type && !(type == JSON_REAL && json_is_integer(v)) &&
        !(type == JSON_TRUE && json_is_false(v))) {
        char *cp = child(path, key);
        gd_problem(ld, cp, "must be %s", what);
        free(cp);
        return NULL;
    }
    return v;
}

json_t *gd_get_obj(gd_loader_t *ld, json_t *obj, const char *path, const char *key)
{
    return get_typed(ld, obj, path, key, JSON_OBJECT, "an object");
}

json_t *gd_get_arr(gd_loader_t *ld, json_t *obj, const char *path, const char *key)
{
    return get_typed(ld, obj, path, key, JSON_ARRAY, "an array");
}

const char *gd_get_str(gd_loader_t *ld, json_t *obj, const char *path, const char *key,
                       const char *def)
{
    json_t *v = get_typed(ld, obj, path, key, JSON_STRING, "a string");
    return v ? json_string_value(v) : def;
}

double gd_get_num(gd_loader_t *ld, json_t *obj, const char *path, const char *key, double def,
                  double min, double max)
{
    json_t *v = get_typed(ld, obj, path, key, JSON_REAL, "a number");
    if (v == NULL)
        return def;
    double d = json_number_value(v);
    if (d < min || d > max) {
        char *cp = child(path, key);
        gd_problem(ld, cp, "must be %g-%g (got %g)", min, max, d);
        free(cp);
        return def;
    }
    return d;
}

int gd_get_bool(gd_loader_t *ld, json_t *obj, const char *path, const char *key, int def)
{
    json_t *v = get_typed(ld, obj, path, key, JSON_TRUE, "true or false");
    return v ? json_is_true(v) : def;
}

pcre2_code *gd_compile_re(gd_loader_t *ld, const char *path, const char *pattern, int caseless)
{
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_UTF | (caseless ? PCRE2_CASELESS : 0);
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        gd_problem(ld, path, "bad regular expression at offset %zu: %s", (size_t)erroff,
                   (const char *)msg);
        return NULL;
    }
    /* JIT is an optimisation: where it is unavailable the interpreter runs */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

void gd_get_terms(gd_loader_t *ld, json_t *obj, const char *path, const char *key, gd_terms_t *tl)
{
    json_t *arr = gd_get_arr(ld, obj, path, key);
    char *ap = child(path, key);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            char *ip = core_jsonpath_index(ap, i);
            gd_problem(ld, ip, "must be a non-empty string");
            free(ip);
            continue;
        }
        gd_terms_add(tl, json_string_value(v));
    }
    free(ap);
    gd_terms_finish(tl);
}
