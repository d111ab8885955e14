/* WebSocket load client for bench/channels.sh: CONNS concurrent web
 * visitors on /v1/chat/ws, each holding one 3-turn conversation ("sign me
 * up", a name, a city) per socket, as the widget does, then closing it
 * (close frame 1000) and opening the next, for SECONDS after a second of
 * warm-up. One turn = a message frame sent until the bot's reply frame
 * arrives. A new conversation per three turns keeps each within the
 * guardrails' per-conversation rate limit (20 a minute, burst 8), as real
 * visitors are.
 *
 * Written in C, with one epoll loop per thread (THREADS, 2 by default, as
 * wrk -t2), so that the client is not what the benchmark measures: a
 * Node.js client saturated its one core at a fifth of the daemon's REST
 * rate. Frames are read as RFC 6455 says (lengths of 7, 16 and 64 bits,
 * pings answered); the JSON is only looked at for the three frame kinds the
 * client acts on ("ready", a bot "message", "error" and its code), which the
 * daemon writes with "type" first.
 *
 * Prints turns/s, conversations/s, latency percentiles and the errors by
 * code; a conversation silent for 5 s counts as an error
 * ("timeout_after_<last frame>") and its socket is dropped.
 *
 * Usage: ws_load PORT CONNS SECONDS [THREADS] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strerrorname_np */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536
#define WATCHDOG_NS (5 * 1000000000LL)
#define MAX_CODES 16

static const char *const texts[] = {"sign me up", "Ada", "London"};
#define STEPS 3

static int port;
static atomic_int measuring, stopping;

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

typedef struct conn_s {
    int fd;
    int state;
    int step;      /* messages sent in this conversation */
    int welcomed;  /* "ready" seen */
    unsigned gen;  /* bumped by every (re)open: tells a handler its socket went */
    int64_t sent;  /* when the last message went, ns */
    int64_t quiet; /* when the watchdog fires, ns */
    const char *last;
    size_t rlen;
    unsigned char rbuf[RBUF];
} conn_t;

typedef struct code_s {
    char name[48];
    long n;
} code_t;

typedef struct worker_s {
    pthread_t thread;
    int ep;
    int n;
    conn_t *conns;
    uint64_t rng;
    long turns, conversations, errors;
    uint32_t *lat_us; /* per counted turn */
    size_t n_lat, cap_lat;
    code_t codes[MAX_CODES];
    int n_codes;
} worker_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void count_error(worker_t *w, const char *code, size_t len)
{
    w->errors++;
    if (len >= sizeof(w->codes[0].name))
        len = sizeof(w->codes[0].name) - 1;
    for (int i = 0; i < w->n_codes; i++)
        if (strlen(w->codes[i].name) == len && memcmp(w->codes[i].name, code, len) == 0) {
            w->codes[i].n++;
            return;
        }
    if (w->n_codes == MAX_CODES)
        return;
    memcpy(w->codes[w->n_codes].name, code, len);
    w->codes[w->n_codes].name[len] = '\0';
    w->codes[w->n_codes++].n = 1;
}

static void count_errno(worker_t *w, int err)
{
    const char *name = strerrorname_np(err);
    if (name == NULL)
        name = "socket";
    count_error(w, name, strlen(name));
}

static uint32_t next_rand(worker_t *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)w->rng;
}

/* ---- connections ----------------------------------------------------------- */

static void conn_open(worker_t *w, conn_t *c);

static void conn_drop(worker_t *w, conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (!atomic_load(&stopping))
        conn_open(w, c);
}

/* Writes all of buf: a frame or a handshake is a few hundred bytes, which a
 * socket's send buffer always takes whole. */
static int send_all(worker_t *w, conn_t *c, const void *buf, size_t len)
{
    ssize_t n = write(c->fd, buf, len);
    if (n == (ssize_t)len)
        return 0;
    count_errno(w, n < 0 ? errno : EAGAIN);
    conn_drop(w, c);
    return -1;
}

/* A masked client frame (RFC 6455 5.3) with a payload under 126 bytes. */
static int send_frame(worker_t *w, conn_t *c, int opcode, const void *payload, size_t len)
{
    unsigned char f[2 + 4 + 125];
    uint32_t key = next_rand(w);
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | len);
    memcpy(f + 2, &key, 4);
    const unsigned char *p = payload;
    for (size_t i = 0; i < len; i++)
        f[6 + i] = p[i] ^ f[2 + (i & 3)];
    return send_all(w, c, f, 6 + len);
}

/* The next message of the conversation, or its end. */
static void send_next(worker_t *w, conn_t *c)
{
    if (atomic_load(&stopping) || c->step == STEPS) {
        static const unsigned char normal[2] = {0x03, 0xe8}; /* 1000 */
        if (send_frame(w, c, 0x8, normal, 2) == 0)
            c->state = ST_CLOSING;
        return;
    }
    char msg[120];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"id\":\"m%d\",\"text\":\"%s\"}",
                     c->step, texts[c->step]);
    c->sent = now_ns();
    c->quiet = c->sent + WATCHDOG_NS;
    c->step++;
    send_frame(w, c, 0x1, msg, (size_t)n);
}

static void conn_open(worker_t *w, conn_t *c)
{
    c->state = ST_CONNECTING;
    c->gen++;
    c->step = c->welcomed = 0;
    c->rlen = 0;
    c->last = "none";
    c->quiet = now_ns() + WATCHDOG_NS;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        count_errno(w, errno);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        count_errno(w, errno);
        close(c->fd);
        c->fd = -1; /* the watchdog tries again */
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_connected(worker_t *w, conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        count_errno(w, err);
        conn_drop(w, c);
        return;
    }
    char req[400];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/chat/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Origin: http://127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port, port);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = ST_HANDSHAKE;
    send_all(w, c, req, (size_t)n);
}

/* ---- frames ------------------------------------------------------------------ */

static int has(const unsigned char *p, size_t len, const char *lit)
{
    return memmem(p, len, lit, strlen(lit)) != NULL;
}

static void on_text(worker_t *w, conn_t *c, const unsigned char *p, size_t len)
{
    if (has(p, len, "\"type\":\"ready\"")) {
        c->last = "ready";
        if (!c->welcomed) { /* the bench flows have no welcome: the first turn goes now */
            c->welcomed = 1;
            send_next(w, c);
        }
    } else if (has(p, len, "\"type\":\"error\"")) {
        c->last = "error";
        const unsigned char *code = memmem(p, len, "\"code\":\"", 8);
        if (code == NULL) {
            count_error(w, "error", 5);
            return;
        }
        code += 8;
        const unsigned char *end = memchr(code, '"', len - (size_t)(code - p));
        count_error(w, (const char *)code, end ? (size_t)(end - code) : 0);
    } else if (has(p, len, "\"type\":\"message\",\"from\":\"bot\"")) {
        c->last = "bot_message";
        if (atomic_load_explicit(&measuring, memory_order_relaxed)) {
            w->turns++;
            if (w->n_lat == w->cap_lat) {
                w->cap_lat = w->cap_lat ? 2 * w->cap_lat : 65536;
                w->lat_us = realloc(w->lat_us, w->cap_lat * sizeof(*w->lat_us));
                if (w->lat_us == NULL)
                    abort();
            }
            w->lat_us[w->n_lat++] = (uint32_t)((now_ns() - c->sent) / 1000);
            if (c->step == STEPS)
                w->conversations++;
        }
        send_next(w, c);
    } else if (has(p, len, "\"type\":\"message\"")) {
        c->last = "user_message";
    }
}

/* Parses the frames in c->rbuf; returns -1 once c was dropped. */
static int on_frames(worker_t *w, conn_t *c)
{
    size_t off = 0;
    unsigned gen = c->gen;
    while (c->rlen - off >= 2) {
        const unsigned char *f = c->rbuf + off;
        size_t avail = c->rlen - off, hdr = 2;
        uint64_t len = f[1] & 0x7f;
        if ((f[1] & 0x80) || !(f[0] & 0x80)) { /* masked or fragmented: not what the daemon sends */
            count_error(w, "bad_frame", 9);
            conn_drop(w, c);
            return -1;
        }
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)f[2] << 8 | f[3];
            hdr = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            hdr = 10;
        }
        if (len > RBUF - hdr) {
            count_error(w, "frame_too_big", 13);
            conn_drop(w, c);
            return -1;
        }
        if (avail < hdr + len)
            break;
        int opcode = f[0] & 0x0f;
        if (opcode == 0x1) {
            on_text(w, c, f + hdr, (size_t)len);
        } else if (opcode == 0x9 && len <= 125) {
            send_frame(w, c, 0xA, f + hdr, (size_t)len);
        } else if (opcode == 0x8) {
            conn_drop(w, c); /* the server's close: this conversation is over */
            return -1;
        }
        if (c->fd < 0 || c->gen != gen) /* dropped (and maybe reopened) while handling it */
            return -1;
        off += hdr + (size_t)len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return 0;
}

static void on_readable(worker_t *w, conn_t *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (c->state != ST_CLOSING) /* EOF after our close frame is the normal end */
                count_errno(w, n < 0 ? errno : ECONNRESET);
            conn_drop(w, c);
            return;
        }
        c->rlen += (size_t)n;
        if (c->state == ST_HANDSHAKE) {
            unsigned char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (end == NULL)
                continue;
            if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.1 101", 12) != 0) {
                char code[32];
                snprintf(code, sizeof(code), "http_%.3s", c->rlen >= 12 ? (char *)c->rbuf + 9 : "");
                count_error(w, code, strlen(code));
                conn_drop(w, c);
                return;
            }
            size_t hl = (size_t)(end + 4 - c->rbuf);
            memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
            c->rlen -= hl;
            c->state = ST_OPEN;
        }
        if (on_frames(w, c) != 0)
            return;
    }
}

/* ---- the worker ---------------------------------------------------------------- */

static void watchdog(worker_t *w, int64_t now)
{
    for (int i = 0; i < w->n; i++) {
        conn_t *c = &w->conns[i];
        if (c->quiet > now)
            continue;
        if (c->fd < 0) { /* a connect that failed outright: try again */
            conn_open(w, c);
            continue;
        }
        char code[48];
        snprintf(code, sizeof(code), "timeout_after_%s", c->last);
        count_error(w, code, strlen(code));
        conn_drop(w, c);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->n; i++)
        conn_open(w, &w->conns[i]);
    struct epoll_event evs[256];
    int64_t next_check = now_ns() + 100000000LL;
    while (!atomic_load(&stopping)) {
        int n = epoll_wait(w->ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == ST_CONNECTING)
                on_connected(w, c);
            else
                on_readable(w, c);
        }
        int64_t now = now_ns();
        if (now >= next_check) {
            watchdog(w, now);
            next_check = now + 100000000LL;
        }
    }
    for (int i = 0; i < w->n; i++)
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static long parse_arg(const char *s, const char *what, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "ws_load: %s must be a number from %ld to %ld, not \"%s\"\n", what, lo, hi,
                s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: ws_load PORT CONNS SECONDS [THREADS]\n");
        return 2;
    }
    port = (int)parse_arg(argv[1], "PORT", 1, 65535);
    int conns = (int)parse_arg(argv[2], "CONNS", 1, 1000000);
    int seconds = (int)parse_arg(argv[3], "SECONDS", 1, 3600);
    int threads = argc == 5 ? (int)parse_arg(argv[4], "THREADS", 1, 64) : 2;
    if (threads > conns)
        threads = conns;
    worker_t *ws = calloc((size_t)threads, sizeof(*ws));
    for (int t = 0; t < threads; t++) {
        worker_t *w = &ws[t];
        w->n = conns / threads + (t < conns % threads);
        w->conns = calloc((size_t)w->n, sizeof(conn_t));
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
        if (w->conns == NULL || w->ep < 0) {
            fprintf(stderr, "ws_load: out of memory or descriptors\n");
            return 1;
        }
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    struct timespec warm = {1, 0}, run = {seconds, 0};
    nanosleep(&warm, NULL); /* warm-up: every socket open */
    int64_t t0 = now_ns();
    atomic_store(&measuring, 1);
    nanosleep(&run, NULL);
    atomic_store(&measuring, 0);
    double elapsed = (double)(now_ns() - t0) / 1e9;
    atomic_store(&stopping, 1);
    long turns = 0, convs = 0, errors = 0;
    size_t n_lat = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ws[t].thread, NULL);
        turns += ws[t].turns;
        convs += ws[t].conversations;
        errors += ws[t].errors;
        n_lat += ws[t].n_lat;
    }
    uint32_t *lat = malloc((n_lat ? n_lat : 1) * sizeof(*lat));
    size_t k = 0;
    for (int t = 0; t < threads; t++) {
        memcpy(lat + k, ws[t].lat_us, ws[t].n_lat * sizeof(*lat));
        k += ws[t].n_lat;
    }
    qsort(lat, n_lat, sizeof(*lat), cmp_u32);
    double p50 = n_lat ? lat[n_lat / 2] / 1000.0 : 0,
           p99 = n_lat ? lat[n_lat * 99 / 100] / 1000.0 : 0;
    printf("ws turns=%ld conversations=%ld seconds=%.2f turns_per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
           "errors=%ld error_codes=",
           turns, convs, elapsed, (double)turns / elapsed, p50, p99, errors);
    int any = 0;
    for (int t = 0; t < threads; t++)
        for (int i = 0; i < ws[t].n_codes; i++) {
            /* the same code from two threads is printed twice: rare, and still a count */
            printf("%s%s:%ld", any ? "," : "", ws[t].codes[i].name, ws[t].codes[i].n);
            any = 1;
        }
    printf("%s\n", any ? "" : "none");
    for (int t = 0; t < threads; t++) {
        free(ws[t].conns);
        free(ws[t].lat_us);
        close(ws[t].ep);
    }
    free(ws);
    free(lat);
    return 0;
}
