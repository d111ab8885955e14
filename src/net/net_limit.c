/* Per client limits: a token bucket per client IP and per API key, a cap on
 * open connections per socket peer, and the client address itself (the
 * socket peer, or the rightmost untrusted X-Forwarded-For hop when the peer
 * is a trusted proxy).
 *
 * State lives in two hash tables of small entries (one for IPs, one for
 * keys) keyed by bytes: an IPv4 address, the /64 of an IPv6 address (one
 * host usually owns a whole /64), or a key's name. The hash is seeded at
 * random so chosen addresses cannot pile into one chain. Memory is bounded:
 * an entry whose bucket has refilled and that holds no connection says
 * nothing a fresh entry would not, so idle ones are dropped as lookups pass
 * the tail of an LRU list, and a table at limits.max_clients forgets its
 * least recently used entry. Entries holding connections are off the LRU
 * list (their count must stay right); they are bounded by max_connections.
 *
 * Refusals are logged at most once per LOG_EVERY_MS per reason, with the
 * count since the last line, so a flood cannot flood the log. */
#define LOG_MODULE "net"
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"

enum { KEY_MAX = 64, LOG_EVERY_MS = 10000, SWEEP_PER_LOOKUP = 4 }; /* KEY_MAX: CHAT_KEY_NAME */

typedef struct net_cl_ent_s {
    struct net_cl_ent_s *hnext;         /* hash chain */
    struct net_cl_ent_s *lprev, *lnext; /* LRU list, only while conns == 0 */
    uint64_t used_ms;                   /* last touched, uv_now */
    uint64_t at_ms;                     /* last refill */
    double tokens;
    uint32_t conns; /* open connections counted against it */
    uint32_t klen;
    unsigned char key[KEY_MAX];
} cl_ent_t;

typedef struct cl_table_s {
    cl_ent_t **slots;
    size_t nslots, n;
    cl_ent_t *lru_head, *lru_tail; /* head: most recently used */
} cl_table_t;

typedef struct cl_log_s {
    uint64_t at_ms; /* last line */
    uint64_t count; /* refusals since */
} cl_log_t;

struct net_climit_s {
    cl_table_t ip, key;
    uint64_t seed;
    cl_log_t log_conns, log_ip, log_key;
};

/* ---- configuration ------------------------------------------------------ */

/* Parses "addr" or "addr/bits" (IPv4 mapped into IPv6); 0 or -1. */
static int parse_cidr(const char *s, size_t n, net_cidr_t *out)
{
    char ip[64];
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    if (alen == 0 || alen >= sizeof(ip))
        return -1;
    memcpy(ip, s, alen);
    ip[alen] = '\0';
    memset(out, 0, sizeof(*out));
    int v4 = 0;
    if (inet_pton(AF_INET6, ip, out->addr) != 1) {
        if (inet_pton(AF_INET, ip, out->addr + 12) != 1)
            return -1;
        out->addr[10] = out->addr[11] = 0xff;
        v4 = 1;
    }
    long bits = v4 ? 32 : 128;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (end != s + n || bits < 0 || bits > (v4 ? 32 : 128))
            return -1;
    }
    out->bits = (uint8_t)(v4 ? bits + 96 : bits);
    return 0;
}

void net__limits_clients_from_config(net_limits_t *l, const core_config_t *cfg)
{
    l->ip_rps = (double)cfg->limits.per_ip_rps;
    l->ip_burst = (double)cfg->limits.per_ip_burst;
    l->key_rps = (double)cfg->limits.per_key_rps;
    l->key_burst = (double)cfg->limits.per_key_burst;
    l->ip_connections = (uint32_t)cfg->limits.per_ip_connections;
    l->max_clients = (uint32_t)cfg->limits.max_clients;
    l->ntrusted = 0;
    const char *p = cfg->limits.trusted_proxies ? cfg->limits.trusted_proxies : "";
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        if (l->ntrusted == NET_MAX_TRUSTED) {
            LOG_WARN("event=trusted_proxies_truncated kept=%d", NET_MAX_TRUSTED);
            break;
        }
        if (parse_cidr(p, n, &l->trusted[l->ntrusted]) == 0)
            l->ntrusted++;
        p += n;
    }
}

/* ---- addresses ---------------------------------------------------------- */

/* Parses a textual address (IPv6 may come in brackets) into 16 bytes. */
static int parse_addr(const char *s, size_t n, uint8_t out[16])
{
    char ip[64];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
        s++, n -= 2;
    if (n == 0 || n >= sizeof(ip))
        return -1;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET6, ip, out) == 1)
        return 0;
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    return inet_pton(AF_INET, ip, out + 12) == 1 ? 0 : -1;
}

static int is_v4(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

static void addr_name(const uint8_t a[16], char *out, size_t size)
{
    if (!is_v4(a) || inet_ntop(AF_INET, a + 12, out, (socklen_t)size) == NULL)
        if (inet_ntop(AF_INET6, a, out, (socklen_t)size) == NULL)
            snprintf(out, size, "?");
}

static int trusted(const net_limits_t *l, const uint8_t a[16])
{
    for (uint32_t i = 0; i < l->ntrusted; i++) {
        const net_cidr_t *c = &l->trusted[i];
        uint32_t whole = c->bits / 8, rest = c->bits % 8;
        if (memcmp(a, c->addr, whole) != 0)
            continue;
        if (rest == 0 || ((a[whole] ^ c->addr[whole]) & (uint8_t)(0xff << (8 - rest))) == 0)
            return 1;
    }
    return 0;
}

/* The socket's peer, read once per connection: it cannot change, and every
 * request asks for it (a getpeername and an inet_ntop each time cost about
 * 2% of a chat turn). */
static int peer_addr(net_conn_t *c, uint8_t out[16])
{
    if (c->peer_known == 0) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        c->peer_known = -1;
        if (!c->detached && uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
            memset(c->peer, 0, 16);
            if (ss.ss_family == AF_INET6) {
                memcpy(c->peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
            } else {
                c->peer[10] = c->peer[11] = 0xff;
                memcpy(c->peer + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
            }
            addr_name(c->peer, c->peer_name, sizeof(c->peer_name));
            c->peer_known = 1;
        }
    }
    if (c->peer_known < 0) {
        memset(out, 0, 16);
        return -1;
    }
    memcpy(out, c->peer, 16);
    return 0;
}

/* Walks X-Forwarded-For (every such header, in order, as one list) from
 * the right: trusted hops are skipped, the first untrusted one is the
 * client. A hop that is not an address ends the walk at the last good one:
 * whatever is left of it was written by someone we do not trust. */
static void forwarded_client(const net_req_t *req, const net_limits_t *l, uint8_t a[16])
{
    size_t nh = net_req_header_count(req);
    for (size_t i = nh; i-- > 0;) {
        net_header_t h;
        net_req_header_at(req, i, &h);
        if (strcasecmp(h.name, "X-Forwarded-For") != 0)
            continue;
        const char *v = h.value;
        size_t end = strlen(v);
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t s = start, e = end;
            while (s < e && (v[s] == ' ' || v[s] == '\t'))
                s++;
            while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            uint8_t hop[16];
            if (parse_addr(v + s, e - s, hop) != 0)
                return;
            memcpy(a, hop, 16);
            if (!trusted(l, hop))
                return;
            end = start > 0 ? start - 1 : 0;
        }
    }
}

/* ---- the tables --------------------------------------------------------- */

static struct net_climit_s *climit(net_server_t *s)
{
    if (s->cl == NULL) {
        s->cl = core_xcalloc(1, sizeof(*s->cl));
        if (uv_random(NULL, NULL, &s->cl->seed, sizeof(s->cl->seed), 0, NULL) != 0)
            s->cl->seed = (uint64_t)core_wall_us();
    }
    return s->cl;
}

static uint64_t hash_key(uint64_t seed, const unsigned char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void lru_unlink(cl_table_t *t, cl_ent_t *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else if (t->lru_head == e)
        t->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else if (t->lru_tail == e)
        t->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(cl_table_t *t, cl_ent_t *e)
{
    e->lprev = NULL;
    e->lnext = t->lru_head;
    if (t->lru_head)
        t->lru_head->lprev = e;
    t->lru_head = e;
    if (t->lru_tail == NULL)
        t->lru_tail = e;
}

static void table_remove(cl_table_t *t, uint64_t seed, cl_ent_t *e)
{
    cl_ent_t **pp = &t->slots[hash_key(seed, e->key, e->klen) & (t->nslots - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(t, e);
    t->n--;
    free(e);
}

static void table_grow(cl_table_t *t, uint64_t seed)
{
    size_t n = t->nslots ? t->nslots * 2 : 256;
    cl_ent_t **slots = core_xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < t->nslots; i++) {
        for (cl_ent_t *e = t->slots[i], *next; e; e = next) {
            next = e->hnext;
            size_t j = hash_key(seed, e->key, e->klen) & (n - 1);
            e->hnext = slots[j];
            slots[j] = e;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

/* Drops idle entries from the LRU tail: unused for idle_ms (their bucket
 * is full again) and holding no connection. */
static void sweep(cl_table_t *t, uint64_t seed, uint64_t now, uint64_t idle_ms)
{
    for (int i = 0; i < SWEEP_PER_LOOKUP && t->lru_tail; i++) {
        cl_ent_t *e = t->lru_tail;
        if (e->conns > 0 || now - e->used_ms < idle_ms)
            break;
        table_remove(t, seed, e);
    }
}

/* The entry for key, made (with a full bucket of burst) when missing. */
static cl_ent_t *table_get(cl_table_t *t, const net_limits_t *l, uint64_t seed, const void *key,
                           size_t klen, double burst, uint64_t now)
{
    if (klen > KEY_MAX)
        klen = KEY_MAX;
    if (t->nslots) {
        uint64_t h = hash_key(seed, key, klen);
        for (cl_ent_t *e = t->slots[h & (t->nslots - 1)]; e; e = e->hnext) {
            if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
                if (e->conns == 0) {
                    lru_unlink(t, e);
                    lru_push(t, e);
                }
                e->used_ms = now;
                return e;
            }
        }
    }
    if (t->n >= l->max_clients && t->lru_tail)
        table_remove(t, seed, t->lru_tail); /* the idlest is forgotten */
    if (t->n >= t->nslots)
        table_grow(t, seed);
    cl_ent_t *e = core_xcalloc(1, sizeof(*e));
    memcpy(e->key, key, klen);
    e->klen = (uint32_t)klen;
    e->tokens = burst;
    e->at_ms = e->used_ms = now;
    size_t j = hash_key(seed, key, klen) & (t->nslots - 1);
    e->hnext = t->slots[j];
    t->slots[j] = e;
    t->n++;
    lru_push(t, e);
    return e;
}

static void table_free(cl_table_t *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        for (cl_ent_t *e = t->slots[i], *next; e; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

void net__limit_free(net_server_t *s)
{
    if (s->cl == NULL)
        return;
    table_free(&s->cl->ip);
    table_free(&s->cl->key);
    free(s->cl);
    s->cl = NULL;
}

/* The bytes an address is counted under: IPv4 whole, IPv6 its /64. */
static size_t ip_key(const uint8_t a[16], unsigned char key[17])
{
    if (is_v4(a)) {
        key[0] = 4;
        memcpy(key + 1, a + 12, 4);
        return 5;
    }
    key[0] = 6;
    memcpy(key + 1, a, 8);
    return 9;
}

/* Time until a bucket is full again: after that an entry is idle. */
static uint64_t idle_ms(double rps, double burst)
{
    if (rps <= 0)
        return 0;
    double ms = ceil(burst / rps * 1000.0);
    return ms < 1000 ? 1000 : (uint64_t)ms;
}

/* Takes a token; 0, or the whole seconds until one is there (>= 1). */
static unsigned take(cl_ent_t *e, double rps, double burst, uint64_t now)
{
    e->tokens += (double)(now - e->at_ms) * rps / 1000.0;
    if (e->tokens > burst)
        e->tokens = burst;
    e->at_ms = now;
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        return 0;
    }
    double s = ceil((1.0 - e->tokens) / rps);
    return s < 1 ? 1 : s > 86400 ? 86400 : (unsigned)s;
}

/* One line per LOG_EVERY_MS per reason, counting what it stands for. */
static void log_refusal(cl_log_t *lg, uint64_t now, const char *reason, const char *who,
                        size_t tracked)
{
    lg->count++;
    if (lg->at_ms != 0 && now - lg->at_ms < LOG_EVERY_MS)
        return;
    LOG_WARN("event=client_limited reason=%s refused=%llu last=%s tracked=%zu interval_ms=%d",
             reason, (unsigned long long)lg->count, who, tracked, LOG_EVERY_MS);
    lg->at_ms = now;
    lg->count = 0;
}

/* ---- connections -------------------------------------------------------- */

/* Answers 429 without reading a request, then closes. */
static void refuse_conn(net_conn_t *c, int plain)
{
    static const char body[] = "{\"error\":{\"code\":\"too_many_connections\","
                               "\"message\":\"too many connections from this address\"}}";
    if (plain && !c->detached) {
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n"
                         "X-Content-Type-Options: nosniff\r\n\r\n",
                         sizeof(body) - 1);
        uv_buf_t b[2] = {uv_buf_init(head, (unsigned)n),
                         uv_buf_init((char *)body, sizeof(body) - 1)};
        uv_try_write((uv_stream_t *)&c->tcp, b, 2);
    }
    net__conn_close(c);
}

int net__limit_conn_open(net_conn_t *c, int plain)
{
    net_server_t *s = c->srv;
    const net_limits_t *l = &s->lim;
    uint8_t a[16];
    if (l->ip_connections == 0 || peer_addr(c, a) != 0 || trusted(l, a))
        return 0; /* a proxy carries many clients: its hops are limited per request */
    struct net_climit_s *cl = climit(s);
    uint64_t now = uv_now(s->loop);
    unsigned char key[17];
    size_t klen = ip_key(a, key);
    sweep(&cl->ip, cl->seed, now, idle_ms(l->ip_rps, l->ip_burst));
    cl_ent_t *e = table_get(&cl->ip, l, cl->seed, key, klen, l->ip_burst, now);
    if (e->conns >= l->ip_connections) {
        char who[INET6_ADDRSTRLEN];
        addr_name(a, who, sizeof(who));
        log_refusal(&cl->log_conns, now, "per_ip_connections", who, cl->ip.n);
        refuse_conn(c, plain);
        return -1;
    }
    if (e->conns++ == 0)
        lru_unlink(&cl->ip, e); /* not evictable while it counts connections */
    c->ip_ent = e;
    return 0;
}

void net__limit_conn_closed(net_conn_t *c)
{
    cl_ent_t *e = c->ip_ent;
    if (e == NULL)
        return;
    c->ip_ent = NULL;
    struct net_climit_s *cl = c->srv->cl;
    e->used_ms = uv_now(c->srv->loop);
    if (--e->conns == 0)
        lru_push(&cl->ip, e);
}

/* ---- requests ----------------------------------------------------------- */

int net__limit_client_for(const net_server_t *s, const net_req_t *req, const char *peer, char *out,
                          size_t size)
{
    uint8_t a[16];
    if (parse_addr(peer, strlen(peer), a) != 0)
        return CORE_ERR_INVALID;
    if (s->lim.ntrusted && trusted(&s->lim, a))
        forwarded_client(req, &s->lim, a);
    addr_name(a, out, size);
    return 0;
}

size_t net__limit_tracked(const net_server_t *s, int keys)
{
    return s->cl == NULL ? 0 : keys ? s->cl->key.n : s->cl->ip.n;
}

void net__limit_request(net_conn_t *c, net_req_t *req)
{
    net_server_t *s = c->srv;
    const net_limits_t *l = &s->lim;
    uint8_t a[16];
    if (peer_addr(c, a) == 0) {
        if (l->ntrusted && trusted(l, a)) {
            forwarded_client(req, l, a);
            addr_name(a, req->client, sizeof(req->client));
        } else {
            memcpy(req->client, c->peer_name, sizeof(c->peer_name));
        }
    } else {
        snprintf(req->client, sizeof(req->client), "-");
    }
    if (l->ip_rps <= 0 || req->client[0] == '-')
        return;
    struct net_climit_s *cl = climit(s);
    uint64_t now = uv_now(s->loop);
    unsigned char key[17];
    size_t klen = ip_key(a, key);
    sweep(&cl->ip, cl->seed, now, idle_ms(l->ip_rps, l->ip_burst));
    cl_ent_t *e = table_get(&cl->ip, l, cl->seed, key, klen, l->ip_burst, now);
    unsigned wait = take(e, l->ip_rps, l->ip_burst, now);
    if (wait == 0)
        return;
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", wait);
    net_resp_header(req, "Retry-After", ra);
    req->early_status = 429;
    req->early_code = "rate_limited";
    req->early_msg = "too many requests from this address; retry later";
    log_refusal(&cl->log_ip, now, "per_ip_rate", req->client, cl->ip.n);
}

const char *net_req_client(const net_req_t *req)
{
    return req->client[0] ? req->client : "-";
}

int net_req_take_key(net_req_t *req, const char *key)
{
    net_server_t *s = req->conn->srv;
    const net_limits_t *l = &s->lim;
    if (l->key_rps <= 0 || key == NULL)
        return 0;
    struct net_climit_s *cl = climit(s);
    uint64_t now = uv_now(s->loop);
    sweep(&cl->key, cl->seed, now, idle_ms(l->key_rps, l->key_burst));
    cl_ent_t *e = table_get(&cl->key, l, cl->seed, key, strlen(key), l->key_burst, now);
    unsigned wait = take(e, l->key_rps, l->key_burst, now);
    if (wait == 0)
        return 0;
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", wait);
    net_resp_header(req, "Retry-After", ra);
    log_refusal(&cl->log_key, now, "per_key_rate", key, cl->key.n);
    return CORE_ERR_LIMIT;
}
