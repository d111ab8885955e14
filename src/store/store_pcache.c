/* SQLite's own page cache, with a truncate that costs nothing when there is
 * nothing to truncate (store_int.h).
 *
 * At each commit SQLite truncates the page cache to the database's size.
 * Its cache (pcache1) remembers the greatest page number it ever held and,
 * when that is at or past the size, removes every page past it; when the
 * range is wider than half its hash table, it walks the whole table. The
 * b-tree's balance, to keep new sibling pages in ascending order, swaps two
 * pages' numbers through a spare number past the 1 GiB lock byte (page
 * 262145 with 4 KiB pages), which no real page ever has. From the first such
 * swap on, every commit walked the whole hash table: for the writer's
 * 16 MiB cache about 6% of the daemon's CPU under load, and for SQLite's
 * in-memory pager, which keeps every page cached, a cost that grew with the
 * database.
 *
 * This wrapper forwards every call to pcache1 and keeps, per cache, the
 * greatest page number ever cached other than the spare one, and the page
 * (at most one: the swap moves it on at once) that holds the spare number.
 * A truncate is forwarded only when one of them says a page may lie past
 * the limit, so what is cached is exactly what pcache1 alone would keep. */
#include <stdatomic.h>
#include <stdlib.h>

#include "store/store_int.h"

#define LOCK_BYTE_OFFSET 0x40000000u /* SQLite's PENDING_BYTE */

typedef struct {
    sqlite3_pcache *inner;
    unsigned max_key;              /* greatest page number cached, spare aside */
    unsigned spare_key;            /* the lock-byte page: balance's spare */
    sqlite3_pcache_page *at_spare; /* the page keyed spare_key, or NULL */
} cache_t;

static sqlite3_pcache_methods2 base; /* pcache1's */
static atomic_ulong skipped;         /* truncates answered here (tests) */

static int pc_init(void *arg)
{
    (void)arg;
    return base.xInit(base.pArg);
}

static void pc_shutdown(void *arg)
{
    (void)arg;
    base.xShutdown(base.pArg);
}

static sqlite3_pcache *pc_create(int page_size, int extra, int purgeable)
{
    sqlite3_pcache *inner = base.xCreate(page_size, extra, purgeable);
    if (inner == NULL)
        return NULL;
    cache_t *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL) {
        base.xDestroy(inner);
        return NULL;
    }
    *c = (cache_t){.inner = inner, .spare_key = LOCK_BYTE_OFFSET / (unsigned)page_size + 1};
    return (sqlite3_pcache *)c;
}

static void pc_cachesize(sqlite3_pcache *p, int n)
{
    base.xCachesize(((cache_t *)p)->inner, n);
}

static int pc_pagecount(sqlite3_pcache *p)
{
    return base.xPagecount(((cache_t *)p)->inner);
}

static void note_key(cache_t *c, sqlite3_pcache_page *page, unsigned key)
{
    if (key == c->spare_key)
        c->at_spare = page;
    else if (key > c->max_key)
        c->max_key = key;
}

static sqlite3_pcache_page *pc_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    cache_t *c = (cache_t *)p;
    sqlite3_pcache_page *page = base.xFetch(c->inner, key, create);
    if (page != NULL)
        note_key(c, page, key);
    return page;
}

static void pc_unpin(sqlite3_pcache *p, sqlite3_pcache_page *page, int discard)
{
    cache_t *c = (cache_t *)p;
    if (discard && page == c->at_spare)
        c->at_spare = NULL;
    base.xUnpin(c->inner, page, discard);
}

static void pc_rekey(sqlite3_pcache *p, sqlite3_pcache_page *page, unsigned old_key,
                     unsigned new_key)
{
    cache_t *c = (cache_t *)p;
    if (old_key == c->spare_key && page == c->at_spare)
        c->at_spare = NULL;
    note_key(c, page, new_key);
    base.xRekey(c->inner, page, old_key, new_key);
}

static void pc_truncate(sqlite3_pcache *p, unsigned limit)
{
    cache_t *c = (cache_t *)p;
    if (c->max_key < limit && (c->at_spare == NULL || c->spare_key < limit)) {
        atomic_fetch_add_explicit(&skipped, 1, memory_order_relaxed);
        return; /* nothing cached at or past limit */
    }
    base.xTruncate(c->inner, limit);
    if (c->max_key >= limit)
        c->max_key = limit > 0 ? limit - 1 : 0;
    if (c->spare_key >= limit)
        c->at_spare = NULL;
}

static void pc_destroy(sqlite3_pcache *p)
{
    cache_t *c = (cache_t *)p;
    base.xDestroy(c->inner);
    sqlite3_free(c);
}

static void pc_shrink(sqlite3_pcache *p)
{
    base.xShrink(((cache_t *)p)->inner);
}

unsigned long store__pcache_skipped(void)
{
    return atomic_load(&skipped);
}

static const sqlite3_pcache_methods2 wrapped = {
    .iVersion = 1,
    .xInit = pc_init,
    .xShutdown = pc_shutdown,
    .xCreate = pc_create,
    .xCachesize = pc_cachesize,
    .xPagecount = pc_pagecount,
    .xFetch = pc_fetch,
    .xUnpin = pc_unpin,
    .xRekey = pc_rekey,
    .xTruncate = pc_truncate,
    .xDestroy = pc_destroy,
    .xShrink = pc_shrink,
};

void store__pcache_register(void)
{
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base) != SQLITE_OK || base.xCreate == NULL)
        return;
    sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapped);
}
