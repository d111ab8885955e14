/* Loading flows: read the flows directory, compile it through the brain and
 * swap the new flowset in. The reading, compiling and intent-router training
 * run on the libuv thread pool (uv_queue_work); the swap runs on the loop.
 * The trained model is cached in data_dir/nlu/model.bin under the hash of
 * its training data, so a restart with unchanged flows does not retrain. */
#define LOG_MODULE "runtime"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime_int.h"

#define FLOW_FILE_MAX (4u * 1024 * 1024)
#define NLU_CACHE_MAX (256u * 1024 * 1024)
#define NLU_MAGIC "chorus-nlu-cache 1 "

extern char **environ;

/* ---- reading sources ----------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_flow_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || n < 6 || strcmp(name + n - 5, ".json") != 0)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int runtime_flows_read(const char *dir, brain_source_t **sources, size_t *n, core_diags_t *diags)
{
    *sources = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        core_diags_add(diags, dir, 0, 0, "", "cannot open the flows directory: %s",
                       strerror(errno));
        return CORE_ERR_IO;
    }
    char **names = NULL;
    size_t len = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_flow_file(dir, de->d_name))
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            names = core_xrealloc(names, cap * sizeof(*names));
        }
        names[len++] = core_xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, len, sizeof(*names), cmp_names);
    brain_source_t *src = core_xcalloc(len ? len : 1, sizeof(*src));
    int rc = 0;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char *path = core_xasprintf("%s/%s", dir, names[i]);
        char *text = NULL;
        size_t tlen = 0;
        core_err_t err = {0};
        if (core_file_read(path, FLOW_FILE_MAX, &text, &tlen, &err) != 0) {
            core_diags_add(diags, path, 0, 0, "", "%s", err.msg);
            rc = CORE_ERR_IO;
            free(path);
        } else {
            src[used++] = (brain_source_t){path, text, tlen};
        }
        free(names[i]);
    }
    free(names);
    *sources = src;
    *n = used;
    return rc;
}

void runtime_sources_free(brain_source_t *sources, size_t n)
{
    for (size_t i = 0; sources != NULL && i < n; i++) {
        free((char *)sources[i].name);
        free((char *)sources[i].text);
    }
    free(sources);
}

/* ---- compiling ------------------------------------------------------------ */

typedef struct load_args_s {
    const char *flows_dir;
    const char *guard_file;
    int no_guard;
    int validate_only;
    uint32_t version;
    const char *const *envp;
    const char *cache; /* model bytes, NULL when none */
    size_t cache_len;
    const char *cache_hash;
} load_args_t;

static int compile_dir(const load_args_t *a, brain_flowset_t **out, core_diags_t *diags)
{
    brain_source_t *src = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = runtime_flows_read(a->flows_dir, &src, &n, diags);
    char *guard = NULL;
    size_t guard_len = 0;
    if (rc == 0 && a->guard_file != NULL) {
        core_err_t err = {0};
        rc = core_file_read(a->guard_file, FLOW_FILE_MAX, &guard, &guard_len, &err);
        if (rc != 0)
            core_diags_add(diags, a->guard_file, 0, 0, "", "%s", err.msg);
    }
    if (rc == 0) {
        brain_compile_opts_t o;
        brain_compile_opts_init(&o);
        o.version = a->version;
        o.envp = a->envp;
        o.validate_only = a->validate_only;
        o.nlu_cache = a->cache;
        o.nlu_cache_len = a->cache_len;
        o.nlu_cache_hash = a->cache_hash;
        o.guard_json = guard;
        o.guard_len = guard_len;
        o.guard_file = a->guard_file;
        o.no_guard = a->no_guard;
        rc = brain_flowset_compile(src, n, &o, out, diags);
    }
    free(guard);
    runtime_sources_free(src, n);
    return rc;
}

int runtime_flows_check(const char *flows_dir, const char *guard_file, core_diags_t *diags)
{
    load_args_t a = {.flows_dir = flows_dir,
                     .guard_file = guard_file,
                     .validate_only = 1,
                     .version = 1,
                     .envp = (const char *const *)environ};
    brain_flowset_t *fs = NULL;
    int rc = compile_dir(&a, &fs, diags);
    brain_flowset_unref(fs);
    return rc;
}

/* ---- the model cache ------------------------------------------------------ */

/* The file is NLU_MAGIC, 64 hex digits of the training hash, '\n', model. */
static char *cache_path(const char *data_dir)
{
    return core_xasprintf("%s/nlu/model.bin", data_dir);
}

static char *cache_read(const char *data_dir, size_t *len, char *hash)
{
    char *path = cache_path(data_dir), *buf = NULL;
    size_t n = 0;
    size_t head = strlen(NLU_MAGIC) + 65;
    int rc = core_file_read(path, NLU_CACHE_MAX, &buf, &n, NULL);
    free(path);
    if (rc != 0 || n < head || memcmp(buf, NLU_MAGIC, strlen(NLU_MAGIC)) != 0 ||
        buf[head - 1] != '\n') {
        free(buf);
        return NULL;
    }
    memcpy(hash, buf + strlen(NLU_MAGIC), 64);
    hash[64] = '\0';
    *len = n - head;
    memmove(buf, buf + head, *len);
    return buf;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the model next to its final name and renames it into place, so a
 * crash never leaves a half-written cache that a restart would trust. */
static int cache_write(const char *data_dir, const brain_flowset_t *fs)
{
    core_buf_t model;
    core_buf_init(&model, NLU_CACHE_MAX);
    if (brain_flowset_nlu_save(fs, &model) != 0) {
        core_buf_dispose(&model);
        return -1;
    }
    char *dir = core_xasprintf("%s/nlu", data_dir);
    mkdir(data_dir, 0750);
    mkdir(dir, 0750);
    char *path = cache_path(data_dir);
    char *tmp = core_xasprintf("%s.tmp.%d", path, (int)getpid());
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd >= 0) {
        char head[128];
        int hl = snprintf(head, sizeof(head), "%s%s\n", NLU_MAGIC, brain_flowset_nlu_hash(fs));
        rc = write_all(fd, head, (size_t)hl) == 0 && write_all(fd, model.data, model.len) == 0 &&
                     fsync(fd) == 0
                 ? 0
                 : -1;
        close(fd);
        if (rc == 0)
            rc = rename(tmp, path);
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    free(path);
    free(dir);
    core_buf_dispose(&model);
    return rc;
}

/* ---- loading on the thread pool ------------------------------------------ */

typedef struct load_work_s {
    uv_work_t req;
    runtime_t *rt;
    load_args_t args;
    char *flows_dir; /* owned copies: the worker never touches rt */
    char *guard_file;
    char *data_dir;
    brain_flowset_t *fs; /* result */
    core_diags_t diags;
    int rc;
    int cache_saved; /* 1 saved, 0 not needed, -1 failed */
    uint64_t duration_us;
    runtime_loaded_cb cb;
    void *data;
} load_work_t;

static void load_work(uv_work_t *req)
{
    load_work_t *w = req->data;
    uint64_t start = core_now_us();
    char hash[65] = "";
    char *cache = w->data_dir ? cache_read(w->data_dir, &w->args.cache_len, hash) : NULL;
    w->args.cache = cache;
    w->args.cache_hash = cache ? hash : NULL;
    w->rc = compile_dir(&w->args, &w->fs, &w->diags);
    free(cache);
    if (w->rc == 0 && w->data_dir != NULL && !brain_flowset_nlu_from_cache(w->fs))
        w->cache_saved = cache_write(w->data_dir, w->fs) == 0 ? 1 : -1;
    w->duration_us = core_now_us() - start;
}

static void load_done(uv_work_t *req, int status)
{
    load_work_t *w = req->data;
    runtime_t *rt = w->rt;
    rt->loading = 0;
    int rc = w->rc;
    if (rt->closing) {
        brain_flowset_unref(w->fs);
        rc = CORE_ERR_CLOSED;
    } else if (rc == 0) {
        brain_flowset_t *old = rt->fs;
        rt->fs = w->fs; /* conversations on the old one keep their reference */
        brain_flowset_unref(old);
        LOG_INFO("event=flows_loaded dir=%s version=%u flows=%zu nlu=%s nlu_hash=%.12s "
                 "duration_ms=%llu",
                 w->flows_dir, brain_flowset_version(rt->fs), brain_flowset_flow_count(rt->fs),
                 brain_flowset_nlu_from_cache(rt->fs) ? "cached" : "trained",
                 brain_flowset_nlu_hash(rt->fs), (unsigned long long)(w->duration_us / 1000));
        if (w->cache_saved < 0)
            LOG_WARN("event=nlu_cache_write_failed data_dir=%s", w->data_dir);
    } else {
        LOG_ERROR("event=flows_rejected dir=%s problems=%zu kept_version=%u", w->flows_dir,
                  w->diags.len, rt->fs ? brain_flowset_version(rt->fs) : 0);
    }
    if (w->cb)
        w->cb(rt, rc, &w->diags, w->data);
    core_diags_dispose(&w->diags);
    free(w->flows_dir);
    free(w->guard_file);
    free(w->data_dir);
    free(w);
    rt_maybe_free(rt);
}

int runtime_load(runtime_t *rt, runtime_loaded_cb cb, void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    if (rt->loading)
        return CORE_ERR_BUSY;
    load_work_t *w = core_xcalloc(1, sizeof(*w));
    w->rt = rt;
    w->cb = cb;
    w->data = data;
    w->flows_dir = core_xstrdup(rt->flows_dir);
    w->guard_file = rt->guard_file ? core_xstrdup(rt->guard_file) : NULL;
    w->data_dir = rt->data_dir ? core_xstrdup(rt->data_dir) : NULL;
    w->args.flows_dir = w->flows_dir;
    w->args.guard_file = w->guard_file;
    w->args.no_guard = rt->opts.no_guard;
    w->args.version = rt->next_version++;
    w->args.envp = rt->opts.envp ? rt->opts.envp : (const char *const *)environ;
    core_diags_init(&w->diags);
    w->req.data = w;
    int rc = uv_queue_work(rt->loop, &w->req, load_work, load_done);
    if (rc != 0) {
        core_diags_dispose(&w->diags);
        free(w->flows_dir);
        free(w->guard_file);
        free(w->data_dir);
        free(w);
        return rc;
    }
    rt->loading = 1;
    return 0;
}
