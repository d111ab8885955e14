/* Reading and compiling flows: the flows directory's files, the guardrails
 * file, and the compile through the brain, run on the libuv thread pool by
 * runtime_envs.c. The trained model is cached in data_dir/nlu/<name> under
 * the hash of its training data, so a restart with unchanged flows does not
 * retrain. */
#define LOG_MODULE "runtime"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime_envs.h"

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

/* The file's flow name: its base name without ".json". */
static char *flow_of(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    return core_xstrndup(b, n > 5 ? n - 5 : n);
}

int rt_files_read(const char *dir, rt_file_t **files, size_t *n, core_diags_t *diags)
{
    brain_source_t *src = NULL;
    size_t len = 0;
    int rc = runtime_flows_read(dir, &src, &len, diags);
    rt_file_t *f = core_xcalloc(len ? len : 1, sizeof(*f));
    for (size_t i = 0; i < len; i++) {
        f[i].path = (char *)src[i].name; /* ownership moves */
        f[i].text = (char *)src[i].text;
        f[i].len = src[i].len;
        f[i].flow = flow_of(f[i].path);
        rt_file_hash(&f[i]);
    }
    free(src);
    *files = f;
    *n = len;
    return rc;
}

/* ---- compiling ------------------------------------------------------------ */

static char *cache_path(const char *data_dir, const char *name);
static char *cache_read(const char *data_dir, const char *name, size_t *len, char *hash);
static int cache_write(const char *data_dir, const char *name, const brain_flowset_t *fs);

static int compile_sources(const rt_compile_t *a, const brain_source_t *src, size_t n,
                           int validate_only, const char *cache, size_t cache_len,
                           const char *cache_hash, brain_flowset_t **out, core_diags_t *diags)
{
    char *guard = NULL;
    size_t guard_len = 0;
    int rc = 0;
    *out = NULL;
    if (a->guard_file != NULL) {
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
        o.validate_only = validate_only;
        o.nlu_cache = cache;
        o.nlu_cache_len = cache_len;
        o.nlu_cache_hash = cache_hash;
        o.guard_json = guard;
        o.guard_len = guard_len;
        o.guard_file = a->guard_file;
        o.no_guard = a->no_guard;
        rc = brain_flowset_compile(src, n, &o, out, diags);
    }
    free(guard);
    return rc;
}

int rt_compile(rt_compile_t *a, const rt_file_t *files, size_t n, brain_flowset_t **out,
               core_diags_t *diags)
{
    brain_source_t *src = core_xcalloc(n ? n : 1, sizeof(*src));
    for (size_t i = 0; i < n; i++)
        src[i] = (brain_source_t){files[i].path, files[i].text, files[i].len};
    char hash[65] = "";
    size_t cache_len = 0;
    char *cache = a->data_dir && a->cache_name
                      ? cache_read(a->data_dir, a->cache_name, &cache_len, hash)
                      : NULL;
    int rc = compile_sources(a, src, n, 0, cache, cache_len, cache ? hash : NULL, out, diags);
    free(cache);
    free(src);
    a->cache_saved = 0;
    if (rc == 0 && a->data_dir && a->cache_name && !brain_flowset_nlu_from_cache(*out))
        a->cache_saved = cache_write(a->data_dir, a->cache_name, *out) == 0 ? 1 : -1;
    return rc;
}

int runtime_flows_check(const char *flows_dir, const char *guard_file, core_diags_t *diags)
{
    rt_compile_t a = {.guard_file = guard_file, .version = 1, .envp = (const char *const *)environ};
    brain_source_t *src = NULL;
    size_t n = 0;
    brain_flowset_t *fs = NULL;
    int rc = runtime_flows_read(flows_dir, &src, &n, diags);
    if (rc == 0)
        rc = compile_sources(&a, src, n, 1, NULL, 0, NULL, &fs, diags);
    runtime_sources_free(src, n);
    brain_flowset_unref(fs);
    return rc;
}

/* ---- the model cache ------------------------------------------------------ */

/* The file is NLU_MAGIC, 64 hex digits of the training hash, '\n', model. */
static char *cache_path(const char *data_dir, const char *name)
{
    return core_xasprintf("%s/nlu/%s", data_dir, name);
}

static char *cache_read(const char *data_dir, const char *name, size_t *len, char *hash)
{
    char *path = cache_path(data_dir, name), *buf = NULL;
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
static int cache_write(const char *data_dir, const char *name, const brain_flowset_t *fs)
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
    char *path = cache_path(data_dir, name);
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
