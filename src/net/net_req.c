/* Requests: the recycled request objects, URL and query decoding, request ids
 * and the read accessors of net.h. */
#define LOG_MODULE "net"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"

enum { FREE_LIST_MAX = 1024, KEEP_BUF_MAX = 64 * 1024 };

/* ---- output buffers ----------------------------------------------------- */

void net__obuf_reserve(net_obuf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = core_xrealloc(b->data, cap);
    b->cap = cap;
}

void net__obuf_put(net_obuf_t *b, const void *p, size_t n)
{
    net__obuf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void net__obuf_puts(net_obuf_t *b, const char *s)
{
    net__obuf_put(b, s, strlen(s));
}

void net__obuf_put_u64(net_obuf_t *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    net__obuf_put(b, tmp + i, sizeof(tmp) - i);
}

void net__obuf_free(net_obuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- the pool ----------------------------------------------------------- */

net_req_t *net__req_get(net_server_t *s)
{
    net_req_t *req = s->free_reqs;
    if (req) {
        s->free_reqs = req->next;
        s->nfree--;
        req->next = NULL;
    } else {
        req = core_xcalloc(1, sizeof(*req));
        core_buf_init(&req->hbuf, 0);
        core_buf_init(&req->body, 0);
    }
    req->hbuf.limit = 3 * s->lim.max_header_bytes + 4096;
    req->body.limit = s->lim.max_body_bytes;
    req->start_us = core_now_us();
    return req;
}

void net__req_free(net_req_t *req)
{
    if (req == NULL)
        return;
    core_buf_dispose(&req->hbuf);
    core_buf_dispose(&req->body);
    net__obuf_free(&req->resp);
    net__obuf_free(&req->xhdr);
    free(req->hdrs);
    free(req->query);
    free(req);
}

/* Clears req for reuse, dropping buffers that grew large so that one big
 * request does not pin its memory in the pool. */
void net__req_recycle(net_server_t *s, net_req_t *req)
{
    if (s->nfree >= FREE_LIST_MAX) {
        net__req_free(req);
        return;
    }
    core_buf_t hbuf = req->hbuf, body = req->body;
    net_obuf_t resp = req->resp, xhdr = req->xhdr;
    net_hdr_t *hdrs = req->hdrs;
    net_kv_t *query = req->query;
    uint32_t hcap = req->hdrs_cap, qcap = req->query_cap;
    if (hbuf.cap > KEEP_BUF_MAX)
        core_buf_dispose(&hbuf);
    if (body.cap > KEEP_BUF_MAX)
        core_buf_dispose(&body);
    if (resp.cap > KEEP_BUF_MAX)
        net__obuf_free(&resp);
    core_buf_reset(&hbuf);
    core_buf_reset(&body);
    resp.len = 0;
    xhdr.len = 0;
    memset(req, 0, sizeof(*req));
    req->hbuf = hbuf;
    req->body = body;
    req->resp = resp;
    req->xhdr = xhdr;
    req->hdrs = hdrs;
    req->hdrs_cap = hcap;
    req->query = query;
    req->query_cap = qcap;
    req->next = s->free_reqs;
    s->free_reqs = req;
    s->nfree++;
}

/* ---- URL decoding ------------------------------------------------------- */

/* Grows b so that n more bytes fit without moving it: the source of a copy
 * into b may be b itself. */
static int hreserve(core_buf_t *b, size_t n)
{
    static const char zeros[256];
    size_t start = b->len;
    for (size_t left = n; left > 0;) {
        size_t k = left < sizeof(zeros) ? left : sizeof(zeros);
        if (core_buf_append(b, zeros, k) != 0) {
            b->len = start;
            return -1;
        }
        left -= k;
    }
    b->len = start;
    if (b->data)
        b->data[start] = '\0';
    return 0;
}

/* Appends the decoded form of hbuf[soff..soff+n) plus a NUL to hbuf;
 * plus_space turns '+' into ' ' (query strings). Returns the offset of the
 * copy, or -1 for %00, a bad escape or a full buffer. */
static long decode_append(net_req_t *req, size_t soff, size_t n, int plus_space)
{
    core_buf_t *b = &req->hbuf;
    size_t start = b->len;
    if (hreserve(b, n + 1) != 0)
        return -1;
    const char *p = b->data + soff, *end = p + n;
    char *o = b->data + start;
    while (p < end) {
        if (*p == '%') {
            int hi = end - p >= 3 ? core_hex_digit(p[1]) : -1;
            int lo = hi >= 0 ? core_hex_digit(p[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *o++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *o++ = plus_space && *p == '+' ? ' ' : *p;
            p++;
        }
    }
    *o++ = '\0';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return (long)start;
}

static const char *at(const net_req_t *req, uint32_t off)
{
    return req->hbuf.data + off;
}

/* Splits the URL (at piece offset req->path) into path and query and decodes
 * the query parameters. Returns 0 or CORE_ERR_INVALID (answer 400). */
int net__req_parse_url(net_req_t *req)
{
    uint32_t url_off = req->path.off, url_len = req->path.len;
    const char *url = at(req, url_off);
    if (url_len == 0 || url[0] != '/')
        return CORE_ERR_INVALID; /* absolute-form and authority-form are not served */
    const char *q = memchr(url, '?', url_len);
    const char *hash = memchr(url, '#', url_len);
    if (hash && (q == NULL || hash < q))
        return CORE_ERR_INVALID;
    if (q == NULL) {
        req->qs.off = url_off + url_len; /* the NUL after the url */
        req->qs.len = 0;
        return 0;
    }
    req->path.len = (uint32_t)(q - url);
    req->qs.off = (uint32_t)(q + 1 - req->hbuf.data);
    req->qs.len = url_len - req->path.len - 1;
    /* NUL-terminate the path: copy it, since the '?' must stay in the raw url */
    long poff = (long)req->hbuf.len;
    if (hreserve(&req->hbuf, req->path.len + 1) != 0 ||
        core_buf_append(&req->hbuf, at(req, url_off), req->path.len) != 0 ||
        core_buf_append(&req->hbuf, "", 1) != 0)
        return CORE_ERR_INVALID;
    req->path.off = (uint32_t)poff;
    size_t i = 0;
    while (i < req->qs.len) {
        const char *s = at(req, req->qs.off) + i;
        const char *amp = memchr(s, '&', req->qs.len - i);
        size_t n = amp ? (size_t)(amp - s) : req->qs.len - i;
        if (n > 0) {
            const char *eq = memchr(s, '=', n);
            size_t kn = eq ? (size_t)(eq - s) : n;
            size_t soff = (size_t)(s - req->hbuf.data);
            long k = decode_append(req, soff, kn, 1);
            long v =
                k < 0 ? -1 : decode_append(req, soff + kn + (eq ? 1 : 0), eq ? n - kn - 1 : 0, 1);
            if (k < 0 || v < 0)
                return CORE_ERR_INVALID;
            if (req->nquery == req->query_cap) {
                req->query_cap = req->query_cap ? req->query_cap * 2 : 8;
                req->query = core_xrealloc(req->query, req->query_cap * sizeof(*req->query));
            }
            net_kv_t *kv = &req->query[req->nquery++];
            kv->key.off = (uint32_t)k;
            kv->value.off = (uint32_t)v;
        }
        i += n + 1;
    }
    return 0;
}

int net__req_set_params(net_req_t *req, const net_match_t *m)
{
    /* values point into hbuf, which may move while we append: use offsets
     * from where it was at the match, not from where it is now */
    const char *base = req->hbuf.data;
    req->nparams = 0;
    for (size_t i = 0; i < m->nparams; i++) {
        size_t voff = (size_t)(m->params[i].value - base);
        long off = decode_append(req, voff, m->params[i].value_len, 0);
        if (off < 0)
            return CORE_ERR_INVALID;
        req->params[i].name = m->params[i].name;
        req->params[i].name_len = (uint32_t)m->params[i].name_len;
        req->params[i].value.off = (uint32_t)off;
        req->nparams++;
    }
    return 0;
}

/* ---- request ids -------------------------------------------------------- */

static int id_sane(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok || n >= 64)
            return 0;
    }
    return n > 0;
}

void net__req_set_id(net_req_t *req, net_server_t *s)
{
    const char *in = net_req_header(req, "X-Request-Id");
    if (in && id_sane(in)) {
        snprintf(req->id, sizeof(req->id), "%s", in);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ((uint64_t)s->rid_prefix << 32) ^ ++s->rid_counter;
    for (int i = 15; i >= 0; i--, v >>= 4)
        req->id[i] = hex[v & 15];
    req->id[16] = '\0';
}

/* ---- accessors ---------------------------------------------------------- */

const char *net_req_method(const net_req_t *req)
{
    return req->method;
}

const char *net_req_path(const net_req_t *req)
{
    return req->hbuf.data ? at(req, req->path.off) : "";
}

const char *net_req_query_string(const net_req_t *req)
{
    return req->qs.len ? at(req, req->qs.off) : "";
}

const char *net_req_query(const net_req_t *req, const char *name)
{
    for (uint32_t i = 0; i < req->nquery; i++)
        if (strcmp(at(req, req->query[i].key.off), name) == 0)
            return at(req, req->query[i].value.off);
    return NULL;
}

const char *net_req_param(const net_req_t *req, const char *name)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->nparams; i++)
        if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
            return at(req, req->params[i].value.off);
    return NULL;
}

const char *net_req_header(const net_req_t *req, const char *name)
{
    /* a request's handlers ask for a dozen names, most of them absent:
     * names of another length are passed over without a comparison */
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->nhdrs; i++)
        if (req->hdrs[i].name.len == n && strncasecmp(at(req, req->hdrs[i].name.off), name, n) == 0)
            return at(req, req->hdrs[i].value.off);
    return NULL;
}

size_t net_req_header_count(const net_req_t *req)
{
    return req->nhdrs;
}

void net_req_header_at(const net_req_t *req, size_t i, net_header_t *h)
{
    h->name = at(req, req->hdrs[i].name.off);
    h->value = at(req, req->hdrs[i].value.off);
}

const char *net_req_body(const net_req_t *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

const char *net_req_remote(const net_req_t *req)
{
    return req->conn ? req->conn->remote : "-";
}

const char *net_req_id(const net_req_t *req)
{
    return req->id;
}

void net_req_on_abort(net_req_t *req, net_abort_fn fn, void *data)
{
    req->abort_fn = fn;
    req->abort_data = data;
}
