/* Configuration loader and checks: see config.h. Every option is declared
 * once in core_config_options.c; loading, --set overrides, reload decisions
 * and the reference documentation all read that table. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/config.h"
#include "chorus/secret.h"
#include "core/core_config_int.h"

int core_config_parse_listen(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
        return CORE_ERR_INVALID;
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return CORE_ERR_INVALID;
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_size)
        return CORE_ERR_INVALID;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
        return CORE_ERR_INVALID;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static char **str_field(core_config_t *cfg, const option_t *o)
{
    return (char **)((char *)cfg + o->offset);
}

static long long *int_field(core_config_t *cfg, const option_t *o)
{
    return (long long *)((char *)cfg + o->offset);
}

void core_config_defaults(core_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->file = core_xstrdup("");
    for (size_t i = 0; i < core__n_options; i++) {
        const option_t *o = &core__options[i];
        if (o->type == OPT_INT)
            *int_field(cfg, o) = o->def_int;
        else
            *str_field(cfg, o) = core_xstrdup(o->def_str);
    }
}

void core_config_dispose(core_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < core__n_options; i++)
        if (core__options[i].type != OPT_INT)
            free(*str_field(cfg, &core__options[i]));
    free(cfg->file);
    memset(cfg, 0, sizeof(*cfg));
}

static const option_t *find_option(const char *path)
{
    for (size_t i = 0; i < core__n_options; i++)
        if (strcmp(core__options[i].path, path) == 0)
            return &core__options[i];
    return NULL;
}

/* True if some option lives under path (path is a section such as "http"). */
static int is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < core__n_options; i++)
        if (strncmp(core__options[i].path, path, n) == 0 && core__options[i].path[n] == '.')
            return 1;
    return 0;
}

static int enum_has(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return 1;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return 0;
}

/* Checks a string value of option o; returns a static or formatted message in
 * msg (empty on success). */
static int check_string(const option_t *o, const char *value, char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (core_secret_option(o->path)) {
        /* A secret is never echoed: not even a malformed one. */
        const char *why = NULL;
        if (strncmp(value, CORE_SECRET_REF, strlen(CORE_SECRET_REF)) == 0)
            why = core_secret_name_ok(value + strlen(CORE_SECRET_REF))
                      ? NULL
                      : "secret:NAME needs a name of letters, digits, `_`, `.` or `-`";
        else if (o->check != NULL)
            why = o->check(value);
        if (why != NULL)
            snprintf(msg, msg_size, "%s (value not shown: it is a secret)", why);
        return why != NULL ? -1 : 0;
    }
    if (o->type == OPT_ENUM && !enum_has(o->choices, value)) {
        snprintf(msg, msg_size, "must be one of %s (got \"%.64s\")", o->choices, value);
        return -1;
    }
    const char *why = o->check ? o->check(value) : NULL;
    if (why != NULL) {
        snprintf(msg, msg_size, "%s (got \"%.64s\")", why, value);
        return -1;
    }
    return 0;
}

static int check_int(const option_t *o, long long v, char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (v < o->min || v > o->max) {
        snprintf(msg, msg_size, "must be %lld-%lld (got %lld)", o->min, o->max, v);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *file;
    core_jsonpos_t *pos;
    core_diags_t *diags;
    core_config_t *cfg;
    int errors;
} loader_t;

static void problem(loader_t *ld, const char *path, const char *msg)
{
    int line, col;
    core_jsonpos_find(ld->pos, path, &line, &col);
    core_diags_add(ld->diags, ld->file, line, col, path, "%s", msg);
    ld->errors++;
}

static void load_value(loader_t *ld, const char *path, json_t *v)
{
    const option_t *o = find_option(path);
    char msg[256];
    if (o == NULL) {
        if (json_is_object(v) && is_section(path)) {
            const char *key;
            json_t *child;
            json_object_foreach(v, key, child)
            {
                char *cp = core_jsonpath_key(path, key);
                load_value(ld, cp, child);
                free(cp);
            }
        } else if (is_section(path)) {
            problem(ld, path, "must be an object");
        } else {
            problem(ld, path, "unknown key");
        }
        return;
    }
    if (o->type == OPT_INT) {
        if (!json_is_integer(v)) {
            problem(ld, path, "must be an integer");
            return;
        }
        long long n = json_integer_value(v);
        if (check_int(o, n, msg, sizeof(msg)) != 0) {
            problem(ld, path, msg);
            return;
        }
        *int_field(ld->cfg, o) = n;
        return;
    }
    if (!json_is_string(v)) {
        problem(ld, path, "must be a string");
        return;
    }
    if (check_string(o, json_string_value(v), msg, sizeof(msg)) != 0) {
        problem(ld, path, msg);
        return;
    }
    char **f = str_field(ld->cfg, o);
    free(*f);
    *f = core_xstrdup(json_string_value(v));
}

int core_config_load(core_config_t *cfg, const char *path, core_diags_t *diags)
{
    core_err_t err;
    char *text;
    size_t len;
    if (core_file_read(path, 4 * MIB, &text, &len, &err) != 0) {
        core_diags_add(diags, path, 0, 0, "", "%s", err.msg + strlen(path) + 2);
        return CORE_ERR_IO;
    }
    int rc = core_config_load_text(cfg, path, text, len, diags);
    free(text);
    return rc;
}

static void on_duplicate(const char *path, int line, int col, void *arg)
{
    loader_t *ld = arg;
    core_diags_add(ld->diags, ld->file, line, col, path,
                   "duplicate key: it is given more than once (the last would win)");
}

int core_config_load_text(core_config_t *cfg, const char *file, const char *text, size_t len,
                          core_diags_t *diags)
{
    json_error_t jerr;
    /* duplicates are found below with their path, among the other problems,
     * rather than by the parser, which would stop at the first */
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        core_diags_add(diags, file, jerr.line, jerr.column, "", "%s", jerr.text);
        return CORE_ERR_INVALID;
    }
    core_config_t next;
    core_config_defaults(&next);
    loader_t ld = {.file = file, .pos = core_jsonpos_new(text, len), .diags = diags, .cfg = &next};
    ld.errors += (int)core_jsonpos_duplicates(ld.pos, on_duplicate, &ld);
    if (!json_is_object(root)) {
        core_diags_add(diags, file, 1, 1, "", "the configuration must be a JSON object");
        ld.errors++;
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            char *cp = core_jsonpath_key("", key);
            load_value(&ld, cp, v);
            free(cp);
        }
    }
    json_decref(root);
    core_jsonpos_free(ld.pos);
    if (ld.errors > 0) {
        core_config_dispose(&next);
        return CORE_ERR_INVALID;
    }
    free(next.file);
    next.file = core_xstrdup(file);
    core_config_dispose(cfg);
    *cfg = next;
    return 0;
}

int core_config_set(core_config_t *cfg, const char *path, const char *value, const char *source,
                    core_diags_t *diags)
{
    const option_t *o = find_option(path);
    char msg[256];
    if (o == NULL) {
        core_diags_add(diags, source, 0, 0, path, "unknown option");
        return CORE_ERR_INVALID;
    }
    if (o->type == OPT_INT) {
        char *end;
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno != 0) {
            core_diags_add(diags, source, 0, 0, path, "must be an integer (got \"%.64s\")", value);
            return CORE_ERR_INVALID;
        }
        if (check_int(o, n, msg, sizeof(msg)) != 0) {
            core_diags_add(diags, source, 0, 0, path, "%s", msg);
            return CORE_ERR_INVALID;
        }
        *int_field(cfg, o) = n;
        return 0;
    }
    if (check_string(o, value, msg, sizeof(msg)) != 0) {
        core_diags_add(diags, source, 0, 0, path, "%s", msg);
        return CORE_ERR_INVALID;
    }
    char **f = str_field(cfg, o);
    free(*f);
    *f = core_xstrdup(value);
    return 0;
}

int core_config_restart_needed(const core_config_t *a, const core_config_t *b, char *out,
                               size_t out_size)
{
    int n = 0;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < core__n_options; i++) {
        const option_t *o = &core__options[i];
        if (o->reloadable)
            continue;
        int differs;
        if (o->type == OPT_INT)
            differs = *int_field((core_config_t *)a, o) != *int_field((core_config_t *)b, o);
        else
            differs =
                strcmp(*str_field((core_config_t *)a, o), *str_field((core_config_t *)b, o)) != 0;
        if (!differs)
            continue;
        int w = snprintf(out + used, out_size - used, "%s%s", n ? "," : "", o->path);
        if (w > 0 && (size_t)w < out_size - used)
            used += (size_t)w;
        n++;
    }
    return n;
}

void core_config_print_reference(FILE *out)
{
    fprintf(out, "| option | type | default | range | reload | meaning |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < core__n_options; i++) {
        const option_t *o = &core__options[i];
        if (o->type == OPT_INT)
            fprintf(out, "| `%s` | integer | %lld | %lld–%lld | %s | %s |\n", o->path, o->def_int,
                    o->min, o->max, o->reloadable ? "yes" : "restart", o->doc);
        else
            fprintf(out, "| `%s` | %s | `%s` | %s | %s | %s |\n", o->path,
                    o->type == OPT_ENUM ? "enum" : "string", o->def_str,
                    o->type == OPT_ENUM ? o->choices : "", o->reloadable ? "yes" : "restart",
                    o->doc);
    }
}
