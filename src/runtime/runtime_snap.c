/* Hot reload's handle-free parts (runtime_watch_int.h): the coordinator's
 * state machine and snapshots of the flows directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime_watch_int.h"

/* ---- state machine -------------------------------------------------------- */

uint64_t rt_wsm_event(rt_wsm_t *m, uint64_t now_ms, uint64_t debounce_ms)
{
    /* Every event pushes the deadline: an editor's temp write, rename and
     * chmod within the window count once. */
    m->due_ms = now_ms + debounce_ms;
    if (m->due_ms == 0)
        m->due_ms = 1;
    return m->due_ms;
}

int rt_wsm_due(rt_wsm_t *m, uint64_t now_ms)
{
    if (now_ms == UINT64_MAX) {
        /* A rescan tick inside the debounce window: edits are still coming
         * (a deploy writing file after file). Checking now could load a
         * half-edited directory; the deadline checks once they stop. */
        if (m->due_ms != 0)
            return RT_WSM_NONE;
    } else if (m->due_ms == 0 || now_ms < m->due_ms) {
        return RT_WSM_NONE;
    }
    m->due_ms = 0;
    if (m->checking || m->loading) {
        m->recheck = 1; /* look again once the running one ends */
        return RT_WSM_NONE;
    }
    m->checking = 1;
    return RT_WSM_CHECK;
}

int rt_wsm_check_done(rt_wsm_t *m, int changed)
{
    m->checking = 0;
    if (m->loading)
        return RT_WSM_NONE; /* a request overtook it: that load scans afresh */
    if (changed) {
        m->recheck = 0; /* the load's own scan sees whatever came meanwhile */
        m->loading = 1;
        return RT_WSM_LOAD;
    }
    if (m->recheck) {
        m->recheck = 0;
        m->checking = 1;
        return RT_WSM_CHECK;
    }
    return RT_WSM_NONE;
}

int rt_wsm_request(rt_wsm_t *m)
{
    if (m->loading) {
        m->pending = 1; /* however many arrive, one more load */
        return RT_WSM_NONE;
    }
    /* A check running now is overtaken: its result is ignored (the load
     * scans anyway), and checking stays set until it reports. */
    m->loading = 1;
    return RT_WSM_LOAD;
}

int rt_wsm_load_done(rt_wsm_t *m)
{
    if (m->pending) {
        m->pending = 0;
        m->recheck = 0;
        return RT_WSM_LOAD; /* loading stays set */
    }
    m->loading = 0;
    if (m->recheck && !m->checking) {
        m->recheck = 0;
        m->checking = 1;
        return RT_WSM_CHECK;
    }
    return RT_WSM_NONE;
}

/* ---- snapshots ------------------------------------------------------------- */

void rt_snap_dispose(rt_snap_t *s)
{
    for (size_t i = 0; s->items != NULL && i < s->len; i++)
        free(s->items[i].name);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

void rt_snap_copy(rt_snap_t *dst, const rt_snap_t *src)
{
    *dst = *src;
    dst->items = core_xcalloc(src->len ? src->len : 1, sizeof(*dst->items));
    for (size_t i = 0; i < src->len; i++) {
        dst->items[i] = src->items[i];
        dst->items[i].name = core_xstrdup(src->items[i].name);
    }
}

int rt_snap_reusable(const rt_snap_entry_t *prev, int64_t size, int64_t mtime_ns,
                     int64_t prev_taken_ns)
{
    if (prev == NULL || prev->size != size || prev->mtime_ns != mtime_ns)
        return 0;
    /* A write in the same timestamp tick as the previous scan keeps the
     * mtime, and may keep the size: only an old mtime proves nothing
     * changed since. */
    return mtime_ns < prev_taken_ns - RT_SNAP_RACY_NS;
}

int rt_snap_same(const rt_snap_t *a, const rt_snap_t *b)
{
    if (a->len != b->len)
        return 0;
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->items[i].name, b->items[i].name) != 0 ||
            strcmp(a->items[i].sha256, b->items[i].sha256) != 0)
            return 0;
    return 1;
}

const rt_snap_entry_t *rt_snap_find(const rt_snap_t *s, const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash != NULL ? slash + 1 : name;
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->items[mid].name, base);
        if (c == 0)
            return &s->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(((const rt_snap_entry_t *)a)->name, ((const rt_snap_entry_t *)b)->name);
}

/* SHA-256 of the file at path into hex; -1 when it cannot be read. */
static int hash_file(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        EVP_DigestUpdate(c, buf, (size_t)n);
    }
    close(fd);
    unsigned char md[32];
    unsigned int len = 32;
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    if (n < 0)
        return -1;
    core_hex_encode(md, sizeof(md), hex);
    return 0;
}

static int is_flow_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n >= 6 && strcmp(name + n - 5, ".json") == 0;
}

/* Adds dir/name to out if it is a regular flow file that can be read. */
static void scan_one(const char *dir, const char *name, const rt_snap_t *prev, rt_snap_t *out,
                     size_t *cap)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    rt_snap_entry_t e = {.size = (int64_t)st.st_size,
                         .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
                                     (int64_t)st.st_mtim.tv_nsec};
    const rt_snap_entry_t *p = prev != NULL ? rt_snap_find(prev, name) : NULL;
    if (prev != NULL && rt_snap_reusable(p, e.size, e.mtime_ns, prev->taken_ns)) {
        memcpy(e.sha256, p->sha256, sizeof(e.sha256));
    } else {
        if (hash_file(path, e.sha256) != 0)
            return; /* vanished between readdir and open */
        out->hashed++;
    }
    if (out->len == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        out->items = core_xrealloc(out->items, *cap * sizeof(*out->items));
    }
    e.name = core_xstrdup(name);
    out->items[out->len++] = e;
}

int rt_snap_scan(const char *dir, const rt_snap_t *prev, rt_snap_t *out, core_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->taken_ns = core_wall_us() * 1000;
    DIR *d = opendir(dir);
    if (d == NULL)
        return core_err_set(err, CORE_ERR_IO, "cannot open the flows directory %s: %s", dir,
                            strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_flow_name(de->d_name))
            scan_one(dir, de->d_name, prev, out, &cap);
    closedir(d);
    if (out->len > 1)
        qsort(out->items, out->len, sizeof(*out->items), cmp_entries);
    return 0;
}
