/* Online backup of a database file (chorusctl backup): SQLite's backup API
 * copies the pages while chorusd keeps writing, the copy is checked with
 * PRAGMA integrity_check, flushed, and only then renamed onto the target, so
 * the target is either absent, the previous backup, or a whole verified copy.
 * Blocking: chorusctl and tests only. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

/* Pages copied per step: between steps the source is unlocked, and in WAL
 * mode the daemon's writer is never blocked anyway. */
#define BACKUP_STEP_PAGES 256
/* A write by another process restarts the copy from the first page; after
 * this many restarts the rest is copied in one step (one read transaction,
 * which in WAL mode does not block the writer either), so a busy daemon
 * cannot keep the backup from finishing. */
#define BACKUP_MAX_RESTARTS 4

static int fsync_path(const char *path, int dir, core_err_t *err)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return core_err_set(err, CORE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc =
        fsync(fd) == 0 ? 0 : core_err_set(err, CORE_ERR_IO, "%s: fsync: %s", path, strerror(errno));
    close(fd);
    return rc;
}

static int copy_pages(sqlite3 *src, sqlite3 *dst, const char *src_path, store_backup_stats_t *st,
                      core_err_t *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL)
        return store__sqlite_err(dst, sqlite3_errcode(dst), err, "backup");
    int rc, last_remaining = -1;
    do {
        int pages = st->restarts >= BACKUP_MAX_RESTARTS ? -1 : BACKUP_STEP_PAGES;
        rc = sqlite3_backup_step(b, pages);
        st->steps++;
        int remaining = sqlite3_backup_remaining(b);
        if (last_remaining >= 0 && remaining > last_remaining)
            st->restarts++;
        last_remaining = remaining;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(10);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    st->pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return store__sqlite_err(src, rc, err, src_path);
    return 0;
}

static int verify(sqlite3 *db, const char *path, store_backup_stats_t *st, core_err_t *err)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, path);
    rc = sqlite3_step(q);
    const char *r = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    int ok = r != NULL && strcmp(r, "ok") == 0;
    if (!ok)
        rc = core_err_set(err, CORE_ERR_IO, "%s: integrity check failed: %.200s", path,
                          r ? r : sqlite3_errmsg(db));
    else
        rc = 0;
    sqlite3_finalize(q);
    if (rc == 0)
        rc = store__schema_version(db, &st->schema_version, err);
    return rc;
}

/* Copies src_path into tmp (a new file), verifies it and flushes it. */
static int backup_to(const char *src_path, const char *tmp, store_backup_stats_t *st,
                     core_err_t *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        rc = core_err_set(err, CORE_ERR_IO, "cannot open database %s: %s", src_path,
                          src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = core_err_set(err, CORE_ERR_IO, "cannot create %s: %s", tmp,
                          dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        goto out;
    }
    if ((rc = copy_pages(src, dst, src_path, st, err)) != 0)
        goto out;
    /* The copy keeps the source's WAL flag; make it one self-contained file. */
    if ((rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL)) != SQLITE_OK) {
        rc = store__sqlite_err(dst, rc, err, tmp);
        goto out;
    }
    rc = verify(dst, tmp, st, err);
out:
    sqlite3_close(src);
    if (sqlite3_close(dst) != SQLITE_OK && rc == 0)
        rc = core_err_set(err, CORE_ERR_IO, "%s: close failed", tmp);
    return rc == 0 ? fsync_path(tmp, 0, err) : rc;
}

int store_backup(const char *src_path, const char *dst_path, store_backup_stats_t *st,
                 core_err_t *err)
{
    memset(st, 0, sizeof(*st));
    if (access(src_path, R_OK) != 0)
        return core_err_set(err, CORE_ERR_IO, "%s: %s", src_path, strerror(errno));
    char *tmp = core_xasprintf("%s.tmp-%ld", dst_path, (long)getpid());
    unlink(tmp);
    int rc = backup_to(src_path, tmp, st, err);
    if (rc == 0 && rename(tmp, dst_path) != 0)
        rc = core_err_set(err, CORE_ERR_IO, "cannot rename %s to %s: %s", tmp, dst_path,
                          strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    char *copy = core_xstrdup(dst_path);
    rc = fsync_path(dirname(copy), 1, err);
    free(copy);
    return rc;
}
