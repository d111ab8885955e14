/* A flow file's own "guardrails" object: merged over the rules in force as
 * that flow's section (guard_rules_override with {"flows": {name: object}}),
 * so its rules and escalation criteria apply while a conversation is in the
 * flow. Problems are reported against the flow file: the override's paths
 * ("flows.<name>.input...") are mapped back to "guardrails.input..." and
 * their line and column looked up in the flow file's text. */
#define LOG_MODULE "brain"
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

static void remap(core_diags_t *diags, size_t from, const char *name, const char *file,
                  const core_jsonpos_t *pos)
{
    char *prefix = core_jsonpath_key("flows", name);
    size_t pl = strlen(prefix);
    for (size_t i = from; i < diags->len; i++) {
        core_diag_t *d = &diags->items[i];
        const char *rest = d->path && strncmp(d->path, prefix, pl) == 0 ? d->path + pl : "";
        size_t n = strlen("guardrails") + strlen(rest) + 1;
        char *path = core_xmalloc(n);
        snprintf(path, n, "guardrails%s", rest);
        free(d->path);
        d->path = path;
        free(d->file);
        d->file = core_xstrdup(file);
        d->line = d->col = 0;
        if (pos != NULL)
            core_jsonpos_find(pos, path, &d->line, &d->col);
    }
    free(prefix);
}

static int apply_one(brain_flowset_t *fs, const flow_t *f, json_t *g, const core_jsonpos_t *pos,
                     core_diags_t *diags)
{
    if (!json_is_object(g)) {
        int line = 0, col = 0;
        if (pos != NULL)
            core_jsonpos_find(pos, "guardrails", &line, &col);
        core_diags_add(diags, f->file, line, col, "guardrails",
                       "must be an object (the schema of guardrails.json)");
        return CORE_ERR_INVALID;
    }
    json_t *doc = json_pack("{s:{s:O}}", "flows", f->name, g);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    size_t before = diags->len;
    guard_rules_t *next = NULL;
    int rc = guard_rules_override(fs->guard, text, strlen(text), f->file, &next, diags);
    free(text);
    remap(diags, before, f->name, f->file, pos);
    if (rc != 0)
        return CORE_ERR_INVALID;
    guard_rules_free(fs->guard);
    fs->guard = next;
    return 0;
}

int flow__guard_overrides(brain_flowset_t *fs, json_t *const *roots, core_jsonpos_t *const *pos,
                          const int *flow_src, core_diags_t *diags)
{
    int rc = 0;
    for (size_t fi = 0; fi < fs->n_flows && fs->guard != NULL; fi++) {
        json_t *g = json_object_get(roots[flow_src[fi]], "guardrails");
        if (g != NULL && apply_one(fs, &fs->flows[fi], g, pos[flow_src[fi]], diags) != 0)
            rc = CORE_ERR_INVALID;
    }
    return rc;
}
