/* A SQLite VFS over the default one that gathers each transaction's WAL
 * writes into one write() (store_int.h). SQLite appends every WAL frame with
 * two calls, its 24-byte header and its page, so a group of 20 turns (about
 * 60 frames) cost 120 system calls, each with the file system's per-call
 * work; here they leave in one call per WAL_BUF_MAX (30 frames) and one at
 * the end of the transaction.
 *
 * What is durable and when is unchanged: the buffer is written out inside the
 * xWrite() that completes the commit frame (the frame whose header carries
 * the database size), before SQLite publishes the transaction in the WAL
 * index, so no reader (the checkpointer included) can look for a frame that is
 * not yet in the file, and COMMIT returns only after the write() did, as
 * before. Only writes of the shape SQLite appends frames in (a header, then
 * its page, each following on) are gathered, so a SQLite that wrote frames
 * some other way would only lose the gain; any other write goes out at once,
 * after what is gathered. The buffer is also written out before any other
 * access that could see the file (read, size, sync, truncate, close); a
 * failed write-out fails the xWrite() that caused it (disk full then rolls
 * the group back as before) and drops the buffer. Files other than WALs
 * pass straight through. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define WAL_FRAME_HEADER 24
/* The unix VFS writes at most 128 KiB - 1 per call (a larger one fails as
 * a short write, SQLITE_FULL): 30 frames of 4 KiB pages. */
#define WAL_BUF_MAX (124 * 1024)

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, allocated just after */
    int wal;            /* a WAL file: writes are gathered */
    int after_header;   /* the last write gathered was a frame header */
    int commit_page;    /* ... of the commit frame: its page completes it */
    char *buf;          /* WAL_BUF_MAX bytes once written to: [off, off + len) */
    size_t len;
    sqlite3_int64 off;
} wb_file_t;

static sqlite3_vfs wb_vfs;

/* Writes out what is gathered; a page may still follow its header there. */
static int wb_flush_keep(wb_file_t *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0;
    return rc;
}

/* Writes out what is gathered before another kind of access. */
static int wb_flush(wb_file_t *f)
{
    f->after_header = f->commit_page = 0;
    return wb_flush_keep(f);
}

static int wb_close(sqlite3_file *file)
{
    wb_file_t *f = (wb_file_t *)file;
    int rc = wb_flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    wb_file_t *f = (wb_file_t *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

/* Big-endian 32-bit value at p. */
static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whether a WAL write is one SQLite's appends are made of: a frame header
 * that follows on a page (or starts the buffer), or the page that follows
 * on its header. Anything else (the WAL header, a page rewritten in place,
 * headers rewritten with new checksums, or a SQLite that wrote frames some
 * other way) is written out at once, after what is gathered, so the buffer
 * never holds a commit it cannot see. */
static int gatherable(const wb_file_t *f, int amt, sqlite3_int64 off)
{
    if (f->len > 0 && off != f->off + (sqlite3_int64)f->len)
        return 0;
    if (amt == WAL_FRAME_HEADER)
        return !f->after_header;
    return f->after_header && f->len > 0 && amt >= 512 && amt <= WAL_BUF_MAX &&
           (amt & (amt - 1)) == 0;
}

static int wb_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    wb_file_t *f = (wb_file_t *)file;
    if (!f->wal)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    int rc;
    if (!gatherable(f, amt, off)) {
        rc = wb_flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    if (f->len + (size_t)amt > WAL_BUF_MAX && (rc = wb_flush_keep(f)) != SQLITE_OK)
        return rc;
    if (f->buf == NULL)
        f->buf = core_xmalloc(WAL_BUF_MAX);
    if (f->len == 0)
        f->off = off;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    if (amt == WAL_FRAME_HEADER) {
        /* the header's second word is the database size after a commit
         * frame and 0 in the others */
        f->after_header = 1;
        f->commit_page = get_be32((const unsigned char *)data + 4) != 0;
        return SQLITE_OK;
    }
    f->after_header = 0;
    if (!f->commit_page)
        return SQLITE_OK;
    f->commit_page = 0;
    return wb_flush(f); /* the commit is complete: out before SQLite publishes it */
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    wb_file_t *f = (wb_file_t *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
    wb_file_t *f = (wb_file_t *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    wb_file_t *f = (wb_file_t *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

/* The rest forward as they are. */
#define REAL(file) (((wb_file_t *)(file))->real)
static int wb_lock(sqlite3_file *file, int lock)
{
    return REAL(file)->pMethods->xLock(REAL(file), lock);
}
static int wb_unlock(sqlite3_file *file, int lock)
{
    return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}
static int wb_check_reserved(sqlite3_file *file, int *out)
{
    return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}
static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
    return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}
static int wb_sector_size(sqlite3_file *file)
{
    return REAL(file)->pMethods->xSectorSize(REAL(file));
}
static int wb_device_characteristics(sqlite3_file *file)
{
    return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}
static int wb_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(file)->pMethods->xShmMap(REAL(file), pg, pgsz, extend, pp);
}
static int wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}
static void wb_shm_barrier(sqlite3_file *file)
{
    REAL(file)->pMethods->xShmBarrier(REAL(file));
}
static int wb_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}
static int wb_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **pp)
{
    return REAL(file)->pMethods->xFetch(REAL(file), off, amt, pp);
}
static int wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    return REAL(file)->pMethods->xUnfetch(REAL(file), off, p);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                   int *out_flags)
{
    sqlite3_vfs *real_vfs = vfs->pAppData;
    wb_file_t *f = (wb_file_t *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (f->real->pMethods == NULL) {
        file->pMethods = NULL; /* nothing to close */
        return rc;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    file->pMethods = &wb_methods;
    return rc;
}

void store__walbuf_register(void)
{
    sqlite3_vfs *real_vfs = sqlite3_vfs_find(NULL);
    /* the version-3 methods forward xShm* and xFetch: the default VFS must
     * have them (unix does); otherwise SQLite keeps its own default */
    if (real_vfs == NULL || real_vfs->iVersion < 3)
        return;
    wb_vfs = *real_vfs; /* its other methods do not depend on the VFS object */
    wb_vfs.zName = "chorus-walbuf";
    wb_vfs.szOsFile = (int)sizeof(wb_file_t) + real_vfs->szOsFile;
    wb_vfs.pAppData = real_vfs;
    wb_vfs.xOpen = wb_open;
    wb_vfs.pNext = NULL;
    sqlite3_vfs_register(&wb_vfs, 1);
}
