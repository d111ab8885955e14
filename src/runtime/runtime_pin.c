/* Pinned versions compiled back from the store: a conversation read back
 * (after a restart, or an eviction) whose saved pin names a version set no
 * longer in memory (runtime_pin_set.c found none) waits, loading, while the
 * set is rebuilt from the store's flow_versions rows and compiled (intent
 * router included) on the thread pool as a job like any other compile
 * (runtime_job.h); then its saved state is applied on that set and its
 * queued turns run. Conversations pinned to the same versions share one
 * compile and one set, which the kept list lends to those read back later
 * and which is freed when the last conversation on it lets go (ends and
 * moves on, or leaves memory). A version the store lacks, or one that no
 * longer compiles (a guardrails file changed since, an environment variable
 * gone), leaves its conversations on their environment's current set, each
 * logged, their flow started again with settings.messages.flow_changed, as
 * when a node went away. Kept apart from runtime_store.c, like the
 * start-up restore, so that what links the turn pipeline alone does not
 * pull in the store's readers. docs/runtime.md, "Versions and
 * environments". */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/rollout.h" /* store_db_flow_version() */
#include "runtime/runtime_job.h"

/* A conversation waiting for the set. */
typedef struct pin_wait_s {
    struct pin_wait_s *next;
    rt_conv_t *conv; /* loading until the set is ready, so the table keeps it */
    char *brain;     /* owned: its saved brain state, applied on the set */
} pin_wait_t;

/* One set being compiled, and who waits for it. */
typedef struct pin_job_s {
    struct pin_job_s *next; /* rt->pinning */
    runtime_t *rt;
    json_t *pin; /* {"flow":"version"}: what it compiles (reference held) */
    rt_ver_t *v; /* the compiled set, once finished */
    pin_wait_t *waiting;
    size_t n_waiting;
    uint64_t start_us;
} pin_job_t;

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const rt_file_t *)a)->flow, ((const rt_file_t *)b)->flow);
}

/* Whether two pins name the same versions of the same flows. */
static int pin_same(const json_t *a, const json_t *b)
{
    if (json_object_size(a) != json_object_size(b))
        return 0;
    const char *flow;
    json_t *v;
    json_object_foreach((json_t *)a, flow, v)
    {
        const char *w = json_string_value(json_object_get(b, flow));
        if (w == NULL || strcmp(w, json_string_value(v)) != 0)
            return 0;
    }
    return 1;
}

/* The worker's first step: every file's content from the store, checked
 * against the version it is stored under (its content hash). */
static int read_versions(rt_job_t *j)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(j->ext, &err);
    if (db == NULL) {
        core_diags_add(&j->diags, j->ext, 0, 0, "", "%s", err.msg);
        return err.code ? err.code : CORE_ERR_IO;
    }
    int rc = 0;
    for (size_t i = 0; i < j->n && rc == 0; i++) {
        rt_file_t *f = &j->files[i];
        char want[sizeof(f->version)];
        memcpy(want, f->version, sizeof(want));
        rc = store_db_flow_version(db, f->flow, want, &f->text, &f->len, &err);
        if (rc == 0) {
            rt_file_hash(f);
            if (strcmp(f->version, want) != 0)
                rc =
                    core_err_set(&err, CORE_ERR_INVALID, "the stored content of %s@%s hashes to %s",
                                 f->flow, want, f->version);
        }
        if (rc != 0)
            core_diags_add(&j->diags, f->path, 0, 0, "", "%s", err.msg);
    }
    store_db_close(db);
    return rc;
}

static void pin_finish(rt_job_t *j)
{
    pin_job_t *p = j->data;
    if (j->rc == 0)
        p->v = rt_job_take(j);
}

static void pin_free(pin_job_t *p)
{
    while (p->waiting != NULL) {
        pin_wait_t *w = p->waiting;
        p->waiting = w->next;
        free(w->brain);
        free(w);
    }
    json_decref(p->pin);
    rt_ver_unref(p->v); /* the conversations on it hold their own references */
    free(p);
}

/* "flow@version,..." of the pin's flows whose version the conversation's
 * current set does not have: what the log names. */
static char *pinned_names(const json_t *pin, const rt_ver_t *cur)
{
    core_buf_t b;
    core_buf_init(&b, 4096);
    const char *flow;
    json_t *v;
    json_object_foreach((json_t *)pin, flow, v)
    {
        const char *now = rt_ver_flow_version(cur, flow);
        if (strcmp(now, json_string_value(v)) == 0)
            continue;
        core_buf_printf(&b, "%s%s@%s", b.len ? "," : "", flow, json_string_value(v));
    }
    char *s = core_buf_steal(&b, NULL);
    return s != NULL ? s : core_xstrdup("-");
}

/* The set is compiled (or could not be): every conversation waiting for it
 * gets its saved state, on it or (failed) on its current set with its flow
 * started again, and its queued turns run. */
static void pin_done(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    pin_job_t *p = data;
    for (pin_job_t **pp = &rt->pinning; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (rt->closing || rc == CORE_ERR_CLOSED) { /* the conversations are gone already */
        pin_free(p);
        return;
    }
    char first[512];
    const char *reason = diags->len > 0 ? core_diag_format(&diags->items[0], first, sizeof(first))
                                        : core_strerror(rc);
    if (p->v != NULL)
        LOG_INFO("event=pinned_version_compiled flowset_version=%u flows=%zu conversations=%zu "
                 "duration_ms=%llu",
                 brain_flowset_version(p->v->fs), p->v->n, p->n_waiting,
                 (unsigned long long)((core_now_us() - p->start_us) / 1000));
    for (pin_wait_t *w = p->waiting; w != NULL; w = w->next) {
        rt_conv_t *conv = w->conv;
        if (p->v != NULL) {
            rt_conv_set_ver(conv, p->v);
        } else {
            char q[200], r[300];
            char *names = pinned_names(p->pin, conv->ver);
            LOG_WARN("event=pinned_version_unavailable key=%s pinned=%s reason=%s "
                     "action=restart_flow_on_current_version",
                     core_log_quote(q, sizeof(q), conv->key, (size_t)-1, 80), names,
                     core_log_quote(r, sizeof(r), reason, (size_t)-1, 200));
            free(names);
        }
        rt_store_apply_brain(conv, w->brain, p->v == NULL);
        rt_conv_loaded(rt, conv, 0);
    }
    if (p->v != NULL)
        rt_ver_keep(rt->envs, p->v); /* for those read back later, while any holds it */
    pin_free(p);
}

/* A new compile of pin's versions for conv (first of its waiters). */
static pin_job_t *pin_start(runtime_t *rt, const rt_conv_t *conv, const json_t *pin)
{
    pin_job_t *p = core_xcalloc(1, sizeof(*p));
    p->rt = rt;
    p->pin = json_deep_copy(pin);
    p->start_us = core_now_us();
    rt_job_t *j = rt_job_new(rt, NULL, pin_finish, pin_done, p); /* no model cache to race on */
    j->env = conv->env;
    j->ext = core_xstrdup(rt->pin_store_path);
    j->prepare = read_versions;
    j->n = json_object_size(pin);
    j->files = core_xcalloc(j->n, sizeof(*j->files));
    const char *flow;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)pin, flow, v)
    {
        rt_file_t *f = &j->files[i++];
        f->flow = core_xstrdup(flow);
        f->path = core_xasprintf("%s@%s.json", flow, json_string_value(v));
        snprintf(f->version, sizeof(f->version), "%s", json_string_value(v));
        f->stored = 1;
    }
    qsort(j->files, j->n, sizeof(*j->files), cmp_files); /* a set's files are sorted by flow */
    if (rt_job_queue(rt, j) != 0) {                      /* j freed */
        json_decref(p->pin);
        free(p);
        return NULL;
    }
    char *names = pinned_names(pin, conv->ver);
    char q[200];
    LOG_INFO("event=pinned_version_compiling key=%s pinned=%s",
             core_log_quote(q, sizeof(q), conv->key, (size_t)-1, 80), names);
    free(names);
    p->next = rt->pinning;
    rt->pinning = p;
    return p;
}

static int pin_load(runtime_t *rt, rt_conv_t *conv, const json_t *pin, const char *brain)
{
    pin_job_t *p = rt->pinning;
    while (p != NULL && !pin_same(p->pin, pin))
        p = p->next;
    if (p == NULL && (p = pin_start(rt, conv, pin)) == NULL)
        return CORE_ERR_IO;
    pin_wait_t *w = core_xcalloc(1, sizeof(*w));
    w->conv = conv;
    w->brain = core_xstrdup(brain);
    w->next = p->waiting;
    p->waiting = w;
    p->n_waiting++;
    conv->loading = 1; /* its turns queue; the sweep and eviction pass it by */
    return 0;
}

void runtime_pins_from_store(runtime_t *rt, const char *store_path)
{
    free(rt->pin_store_path);
    rt->pin_store_path = core_xstrdup(store_path);
    rt->pin_load = pin_load;
}
