/* The router: method + path pattern with {name} parameters. Routes are few
 * (tens to a hundred), so matching walks the ones with as many segments as
 * the path; a literal segment beats a parameter at the same position,
 * whatever the order of registration. */
#define LOG_MODULE "net"
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

net_router_t *net_router_new(void)
{
    net_router_t *r = core_xcalloc(1, sizeof(*r));
    r->tail = &r->head;
    for (size_t i = 0; i < NET_ROUTER_SEG_LISTS; i++)
        r->by_segs_tail[i] = &r->by_segs[i];
    return r;
}

void net_router_free(net_router_t *r)
{
    if (r == NULL)
        return;
    struct net_route_s *rt = r->head;
    while (rt) {
        struct net_route_s *next = rt->next;
        free(rt->method);
        free(rt->pattern);
        free(rt->segs);
        free(rt);
        rt = next;
    }
    free(r);
}

static int valid_method(const char *m)
{
    if (m == NULL || *m == '\0' || strlen(m) > 16)
        return 0;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return 0;
    return 1;
}

/* Splits pattern (after its leading '/') into segments; 0 or CORE_ERR_INVALID. */
static int split_pattern(struct net_route_s *rt, core_err_t *err)
{
    const char *p = rt->pattern + 1;
    size_t n = 1, nparams = 0;
    rt->lit_len = strcspn(p, "{");
    if (rt->lit_len >= 8)
        memcpy(&rt->lit_tail, p + rt->lit_len - 8, 8);
    for (const char *q = p; *q; q++)
        n += *q == '/';
    rt->segs = core_xcalloc(n, sizeof(*rt->segs));
    rt->nsegs = n;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        net_seg_t *s = &rt->segs[i];
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            s->param = 1;
            s->text = p + 1;
            s->len = (uint32_t)(len - 2);
            if (s->len == 0 || ++nparams > NET_MAX_PARAMS)
                return core_err_set(err, CORE_ERR_INVALID, "route %s: bad or too many parameters",
                                    rt->pattern);
        } else {
            s->text = p;
            s->len = (uint32_t)len;
        }
        if (memchr(s->text, '{', s->len) || memchr(s->text, '}', s->len) || memchr(p, '?', len) ||
            memchr(p, '%', len))
            return core_err_set(err, CORE_ERR_INVALID, "route %s: bad segment %u", rt->pattern,
                                (unsigned)i + 1);
        p += len + (end ? 1 : 0);
    }
    return 0;
}

static size_t seg_list(size_t nsegs)
{
    return nsegs < NET_ROUTER_SEG_LISTS ? nsegs : NET_ROUTER_SEG_LISTS - 1;
}

/* Same shape: same length and the same literal/parameter at every place. */
static int same_shape(const struct net_route_s *a, const struct net_route_s *b)
{
    if (a->nsegs != b->nsegs)
        return 0;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].param != b->segs[i].param)
            return 0;
        if (!a->segs[i].param && (a->segs[i].len != b->segs[i].len ||
                                  memcmp(a->segs[i].text, b->segs[i].text, a->segs[i].len) != 0))
            return 0;
    }
    return 1;
}

static int add_route(net_router_t *r, struct net_route_s *rt, core_err_t *err)
{
    if (rt->pattern[0] != '/' || split_pattern(rt, err) != 0) {
        if (rt->pattern[0] != '/')
            core_err_set(err, CORE_ERR_INVALID, "route %s: must start with '/'", rt->pattern);
        goto fail;
    }
    for (struct net_route_s *o = r->head; o; o = o->next) {
        if (strcmp(o->method, rt->method) == 0 && same_shape(o, rt)) {
            core_err_set(err, CORE_ERR_EXISTS, "route %s %s: already registered as %s", rt->method,
                         rt->pattern, o->pattern);
            goto fail;
        }
    }
    *r->tail = rt;
    r->tail = &rt->next;
    size_t l = seg_list(rt->nsegs);
    *r->by_segs_tail[l] = rt;
    r->by_segs_tail[l] = &rt->snext;
    /* the security suite lists every route from these lines */
    LOG_DEBUG("event=route_added method=%s path=%s websocket=%d", rt->method, rt->pattern,
              rt->is_ws);
    return 0;
fail:
    free(rt->method);
    free(rt->pattern);
    free(rt->segs);
    free(rt);
    return err && err->code ? err->code : CORE_ERR_INVALID;
}

int net_router_add(net_router_t *r, const char *method, const char *pattern, net_handler_fn fn,
                   void *route_data, core_err_t *err)
{
    if (!valid_method(method) || pattern == NULL || fn == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "route: bad method, pattern or handler");
    struct net_route_s *rt = core_xcalloc(1, sizeof(*rt));
    rt->method = core_xstrdup(method);
    rt->pattern = core_xstrdup(pattern);
    rt->fn = fn;
    rt->data = route_data;
    return add_route(r, rt, err);
}

int net_router_add_ws(net_router_t *r, const char *pattern, const net_ws_callbacks_t *cb,
                      void *route_data, core_err_t *err)
{
    if (pattern == NULL || cb == NULL || cb->on_message == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "ws route: bad pattern or callbacks");
    struct net_route_s *rt = core_xcalloc(1, sizeof(*rt));
    rt->method = core_xstrdup("GET");
    rt->pattern = core_xstrdup(pattern);
    rt->is_ws = 1;
    rt->ws = *cb;
    rt->data = route_data;
    return add_route(r, rt, err);
}

/* Matches path (after its '/') against rt; fills params when m is not NULL. */
static int path_matches(const struct net_route_s *rt, const char *path, size_t len, net_match_t *m)
{
    /* A request is tried on every route. Routes share their first bytes
     * ("v1/admin/") and differ at the end of their literal beginning, so its
     * last 8 bytes, compared as one word, turn nearly every route away
     * before the walk segment by segment, which decides. */
    if (len < rt->lit_len)
        return 0;
    if (rt->lit_len >= 8) {
        uint64_t tail;
        memcpy(&tail, path + rt->lit_len - 8, 8);
        if (tail != rt->lit_tail)
            return 0;
    }
    const char *p = path, *end = path + len;
    size_t np = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        if (p > end)
            return 0;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *send = slash ? slash : end;
        size_t slen = (size_t)(send - p);
        const net_seg_t *s = &rt->segs[i];
        if (s->param) {
            if (slen == 0)
                return 0;
            if (m) {
                m->params[np].name = s->text;
                m->params[np].name_len = s->len;
                m->params[np].value = p;
                m->params[np].value_len = slen;
            }
            np++;
        } else if (slen != s->len || memcmp(p, s->text, slen) != 0) {
            return 0;
        }
        if (i + 1 == rt->nsegs)
            return slash == NULL;
        if (slash == NULL)
            return 0;
        p = slash + 1;
    }
    return 0;
}

/* 1 if a is more specific than b: at the first place they differ, a is literal. */
static int more_specific(const struct net_route_s *a, const struct net_route_s *b)
{
    for (size_t i = 0; i < a->nsegs && i < b->nsegs; i++)
        if (a->segs[i].param != b->segs[i].param)
            return !a->segs[i].param;
    return 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
    size_t n = strlen(method), used = strlen(allow);
    /* skip duplicates: methods are short, compare whole comma-separated items */
    for (const char *p = allow; *p;) {
        const char *e = strstr(p, ", ");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, method, n) == 0)
            return;
        p += l + (e ? 2 : 0);
    }
    if (used + n + 3 >= size)
        return;
    if (used)
        memcpy(allow + used, ", ", 2), used += 2;
    memcpy(allow + used, method, n + 1);
}

int net_router_match(const net_router_t *r, const char *method, const char *path, size_t len,
                     net_match_t *m)
{
    memset(m, 0, sizeof(*m));
    if (len == 0 || path[0] != '/')
        return CORE_ERR_NOT_FOUND;
    const char *rest = path + 1;
    size_t rlen = len - 1, nsegs = 1;
    for (const char *s = memchr(rest, '/', rlen); s != NULL && nsegs < NET_ROUTER_SEG_LISTS;
         s = memchr(s + 1, '/', (size_t)(rest + rlen - s - 1)))
        nsegs++;
    const struct net_route_s *routes = r->by_segs[seg_list(nsegs)];
    int is_head = strcmp(method, "HEAD") == 0, path_found = 0;
    const struct net_route_s *best = NULL;
    for (const struct net_route_s *rt = routes; rt; rt = rt->snext) {
        if (!path_matches(rt, rest, rlen, NULL))
            continue;
        path_found = 1;
        int ok = strcmp(rt->method, method) == 0 || (is_head && strcmp(rt->method, "GET") == 0);
        if (ok && (best == NULL || more_specific(rt, best)))
            best = rt;
    }
    if (best) {
        path_matches(best, rest, rlen, m);
        m->route = best;
        for (size_t i = 0; i < best->nsegs; i++)
            m->nparams += best->segs[i].param;
        return 0;
    }
    if (!path_found)
        return CORE_ERR_NOT_FOUND;
    for (const struct net_route_s *rt = routes; rt; rt = rt->snext) {
        if (!path_matches(rt, rest, rlen, NULL))
            continue;
        allow_add(m->allow, sizeof(m->allow), rt->method);
        if (strcmp(rt->method, "GET") == 0)
            allow_add(m->allow, sizeof(m->allow), "HEAD");
    }
    return CORE_ERR_UNSUPPORTED;
}
