/* Recording versions and environment changes in the store: each new flow
 * version (content, author, diff against the flow's previous version), each
 * environment row that changed (with its history) and one audit row, as one
 * batch. The diffs are computed on the thread pool with the compile of the
 * load, change or rollout candidate that makes the versions; the loop
 * computes one only when the set it was diffed against changed meanwhile.
 * A version the store already has (a promotion's: staging recorded it; a
 * rollback's: its content was read from there) is not diffed again: its
 * row goes without one and is ignored (ON CONFLICT DO NOTHING), and a diff
 * is the bulk of the work. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_envs.h"

static int has_file(const rt_file_t *set, size_t n, const rt_file_t *f)
{
    const rt_file_t *p = rt_files_find(set, n, f->flow);
    return p != NULL && strcmp(p->sha, f->sha) == 0;
}

int rt_file_recorded(const rt_ver_t *const sets[RT_ENVS], const rt_file_t *base, size_t nbase,
                     const rt_file_t *f)
{
    if (f->stored)
        return 1;
    for (int e = 0; sets != NULL && e < RT_ENVS; e++)
        if (sets[e] != NULL && has_file(sets[e]->files, sets[e]->n, f))
            return 1;
    return has_file(base, nbase, f);
}

char **rt_diffs(const rt_file_t *base, size_t nbase, const rt_file_t *files, size_t n,
                const rt_ver_t *const recorded[RT_ENVS])
{
    char **d = core_xcalloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        /* Unchanged from base, or a version the store has: the loop will
         * find it in the same sets (rt_record_set) and record no row for it;
         * should they have changed meanwhile, it diffs the file itself. */
        if (rt_file_recorded(recorded, base, nbase, &files[i]))
            continue;
        const rt_file_t *p = rt_files_find(base, nbase, files[i].flow);
        char na[64], nb[64];
        snprintf(na, sizeof(na), "%s@%s", files[i].flow, p ? p->version : "none");
        snprintf(nb, sizeof(nb), "%s@%s", files[i].flow, files[i].version);
        d[i] = runtime_diff(p ? p->text : "", p ? p->len : 0, files[i].text, files[i].len, na, nb);
    }
    return d;
}

void rt_diffs_free(char **d, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++)
        free(d[i]);
    free(d);
}

static void on_recorded(int status, void *data)
{
    (void)data;
    if (status != 0)
        LOG_ERROR("event=flow_versions_not_recorded error=%s", core_strerror(status));
}

/* The set new versions are compared with: the lowest environment changed,
 * else the last recorded staging set. */
static void prev_set(const runtime_t *rt, unsigned mask, const rt_ver_t *before[RT_ENVS],
                     const rt_file_t **f, size_t *n)
{
    for (int e = 0; e < RT_ENVS; e++)
        if ((mask >> e) & 1 && before[e] != NULL) {
            *f = before[e]->files;
            *n = before[e]->n;
            return;
        }
    *f = rt->envs->base;
    *n = rt->envs->nbase;
}

void rt_diffs_check(const runtime_t *rt, char **d, const rt_file_t *files, size_t n,
                    const rt_file_t *base, size_t nbase, unsigned mask,
                    const rt_ver_t *before[RT_ENVS])
{
    const rt_file_t *pf;
    size_t pn;
    prev_set(rt, mask, before, &pf, &pn);
    for (size_t i = 0; d != NULL && i < n; i++) {
        if (d[i] == NULL)
            continue;
        const rt_file_t *was = rt_files_find(base, nbase, files[i].flow);
        const rt_file_t *is = rt_files_find(pf, pn, files[i].flow);
        if ((was == NULL) != (is == NULL) || (was != NULL && strcmp(was->sha, is->sha) != 0)) {
            free(d[i]); /* its base changed meanwhile: rt_record_set() diffs it again */
            d[i] = NULL;
        }
    }
}

static void add_versions(store_batch_t *b, const runtime_t *rt, const rt_file_t *files, size_t n,
                         char *const *diffs, unsigned mask, const rt_ver_t *before[RT_ENVS],
                         const char *actor, int64_t now)
{
    const rt_file_t *pf;
    size_t pn;
    prev_set(rt, mask, before, &pf, &pn);
    for (size_t i = 0; i < n; i++) {
        const rt_file_t *p = rt_files_find(pf, pn, files[i].flow);
        if (p != NULL && strcmp(p->sha, files[i].sha) == 0)
            continue;
        /* In a set an environment runs, or staging last recorded: the
         * store has its row (a promotion, a rollout or rollback to what
         * another environment runs) and ignores this one, so it goes
         * without a diff. It is still sent: should the batch that first
         * recorded it have failed, the version is not left unrecorded. */
        int recorded = rt_file_recorded(before, rt->envs->base, rt->envs->nbase, &files[i]);
        char *own = NULL;
        const char *diff = diffs ? diffs[i] : NULL;
        if (diff == NULL && !recorded) {
            char na[64], nb[64];
            snprintf(na, sizeof(na), "%s@%s", files[i].flow, p ? p->version : "none");
            snprintf(nb, sizeof(nb), "%s@%s", files[i].flow, files[i].version);
            diff = own =
                runtime_diff(p ? p->text : "", p ? p->len : 0, files[i].text, files[i].len, na, nb);
        }
        store_flow_version_t v = {files[i].flow,
                                  files[i].version,
                                  files[i].sha,
                                  files[i].text,
                                  files[i].len,
                                  actor,
                                  p ? p->version : NULL,
                                  diff,
                                  now};
        store_batch_flow_version(b, &v);
        free(own);
    }
}

/* Env rows that changed; appends {"env","flow","from","to"} to changes. */
static void add_env_rows(store_batch_t *b, int e, const rt_file_t *files, size_t n,
                         const rt_ver_t *old, const char *actor, const char *action, int64_t now,
                         json_t *changes)
{
    const char *env = rt_env_name(e);
    for (size_t i = 0; i < n; i++) {
        const rt_file_t *p = old ? rt_files_find(old->files, old->n, files[i].flow) : NULL;
        if (p != NULL && strcmp(p->version, files[i].version) == 0)
            continue;
        store_batch_env_flow(b, env, files[i].flow, files[i].version, p ? p->version : NULL, actor,
                             action, now);
        json_array_append_new(changes,
                              json_pack("{s:s, s:s, s:s?, s:s}", "env", env, "flow", files[i].flow,
                                        "from", p ? p->version : NULL, "to", files[i].version));
    }
    for (size_t i = 0; old && i < old->n; i++) {
        if (rt_files_find(files, n, old->files[i].flow) != NULL)
            continue;
        store_batch_env_flow(b, env, old->files[i].flow, NULL, old->files[i].version, actor, action,
                             now);
        json_array_append_new(changes,
                              json_pack("{s:s, s:s, s:s, s:n}", "env", env, "flow",
                                        old->files[i].flow, "from", old->files[i].version, "to"));
    }
}

void rt_record_set(runtime_t *rt, const rt_file_t *files, size_t n, char *const *diffs,
                   unsigned envs_mask, const rt_ver_t *before[RT_ENVS], const char *actor,
                   const char *action)
{
    if (rt->opts.store == NULL)
        return;
    int64_t now = core_wall_us();
    if (actor == NULL)
        actor = rt->envs->author;
    store_batch_t *b = store_batch_new();
    add_versions(b, rt, files, n, diffs, envs_mask, before, actor, now);
    json_t *changes = json_array();
    char target[64] = "";
    for (int e = 0; e < RT_ENVS; e++) {
        if (!((envs_mask >> e) & 1))
            continue;
        size_t before_len = json_array_size(changes);
        add_env_rows(b, e, files, n, before[e], actor, action, now, changes);
        if (json_array_size(changes) > before_len) {
            size_t l = strlen(target);
            snprintf(target + l, sizeof(target) - l, "%s%s", l ? "," : "", rt_env_name(e));
        }
    }
    if (json_array_size(changes) == 0) { /* nothing changed: nothing to record */
        json_decref(changes);
        store_batch_free(b);
        return;
    }
    json_t *detail = json_pack("{s:o}", "changes", changes);
    char *dj = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    store_batch_audit(b, actor, action, target, dj, now);
    free(dj);
    int rc = store_enqueue(rt->opts.store, b, on_recorded, NULL);
    if (rc != 0) {
        store_batch_free(b);
        LOG_ERROR("event=flow_versions_not_recorded error=%s", core_strerror(rc));
    }
}
