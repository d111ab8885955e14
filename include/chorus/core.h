/* core.h — the lowest layer of chorus: errors, allocation, logging, clocks,
 * bounded buffers, diagnostics and JSON source positions.
 *
 * Threads: every function here may be called from any thread. The log level
 * is set once at start-up (and on reload, from the loop thread); a torn read
 * of it is harmless.
 *
 * Ownership: x_new()/x_free() and x_init()/x_dispose() pairs as in STYLE.md;
 * every free/dispose accepts NULL.
 *
 * Errors: functions that can fail return 0 or a negative code: one of the
 * CORE_ERR_* values below, or a libuv code passed through unchanged (libuv's
 * codes are negated errno values, all above -4096, so they never collide).
 * They fill a core_err_t with a human message when the caller passes one, and
 * never print. Running out of memory is fatal: core_xmalloc() and friends log
 * one line and abort.
 *
 * See docs/internals/core.md. */
#ifndef CHORUS_CORE_H
#define CHORUS_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------- */

enum {
    CORE_OK = 0,
    CORE_ERR_INVALID = -10001,     /* bad input: syntax, type, range */
    CORE_ERR_LIMIT = -10002,       /* a configured size or count limit was hit */
    CORE_ERR_NOT_FOUND = -10003,   /* no such object */
    CORE_ERR_EXISTS = -10004,      /* already exists / duplicate */
    CORE_ERR_IO = -10005,          /* file or device I/O failed */
    CORE_ERR_TIMEOUT = -10006,     /* a deadline passed */
    CORE_ERR_PROTOCOL = -10007,    /* a peer broke its protocol */
    CORE_ERR_BUSY = -10008,        /* try again later (queue full, backpressure) */
    CORE_ERR_CLOSED = -10009,      /* the object is closing or closed */
    CORE_ERR_UNSUPPORTED = -10010, /* valid but not supported */
    CORE_ERR_DENIED = -10011,      /* authentication or authorisation failed */
    CORE_ERR_INTERNAL = -10012,    /* a bug or an unexpected library failure */
};

typedef struct core_err_s {
    int code;      /* the negative code last set, 0 if none */
    char msg[512]; /* human message, NUL-terminated, no trailing newline */
} core_err_t;

/* Sets err (if not NULL) to code and a printf-formatted message; returns code
 * so that `return core_err_set(err, CORE_ERR_INVALID, "...")` reads well. */
int core_err_set(core_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short static name of a CORE_ERR_* or libuv code ("invalid", "ECONNREFUSED"). */
const char *core_strerror(int code);

/* ---- allocation (abort on out-of-memory) -------------------------------- */

void *core_xmalloc(size_t size);
void *core_xcalloc(size_t n, size_t size);
void *core_xrealloc(void *p, size_t size);
char *core_xstrdup(const char *s);
/* core_xstrdup(s), or NULL for a NULL s (an optional string). */
char *core_xstrdup_opt(const char *s);
char *core_xstrndup(const char *s, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *core_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The length of the valid UTF-8 sequence s begins with (1 for ASCII), or 0
 * when its first bytes (of n) are not one: overlong, a surrogate, past
 * U+10FFFF, cut short or a stray continuation byte. */
size_t core_utf8_seq(const char *s, size_t n);

/* Replaces each byte of s (n bytes) that begins no valid UTF-8 sequence
 * with '?', in place, so that any JSON library takes the text; returns how
 * many were replaced. */
size_t core_utf8_scrub(char *s, size_t n);

/* The length of s's longest prefix of at most max bytes that does not end
 * inside a UTF-8 sequence: where to cut text that must stay valid UTF-8. */
static inline size_t core_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--; /* s[max], the first byte left out, continues a sequence */
    return max;
}

/* The value of one hexadecimal digit (either case), or -1. */
static inline int core_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* SHA-256 of data into out. The digest is fetched from OpenSSL once per
 * process (an implicit fetch per call costs more than hashing a short key);
 * any thread. */
void core_sha256(const void *data, size_t len, uint8_t out[32]);
/* The same as 64 lowercase hex digits and a NUL. */
void core_sha256_hex(const void *data, size_t len, char out[65]);
/* n bytes as 2*n lowercase hex digits and a NUL into out. */
void core_hex_encode(const void *bytes, size_t n, char *out);

/* nbytes random bytes from the kernel as 2*nbytes lowercase hex digits and
 * a NUL into out (ids nobody may guess: conversations, handoffs). */
void core_random_hex(char *out, size_t nbytes);

/* ---- logging ------------------------------------------------------------ */

typedef enum {
    CORE_LOG_ERROR = 0,
    CORE_LOG_WARN = 1,
    CORE_LOG_INFO = 2,
    CORE_LOG_DEBUG = 3,
} core_log_level_t;

extern volatile int core__log_level;

/* Parses "error" | "warn" | "info" | "debug"; returns -1 if unknown. */
int core_log_level_parse(const char *name);
void core_log_set_level(core_log_level_t level);

/* Writes one logfmt line to stderr in a single write(2):
 *   ts=2026-11-29T10:00:00.123456Z level=info module=net <fmt...>
 * fmt continues the line with key=value pairs; quote user text with
 * core_log_quote(). Use the LOG_* macros, which skip formatting when the
 * level is off. */
void core_log_write(core_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s (len bytes, or strlen if len is (size_t)-1) into out as a quoted
 * logfmt value: at most max_chars input bytes, control and non-ASCII bytes
 * escaped as \xNN, '"' and '\' escaped, an ellipsis when cut. Returns out. */
const char *core_log_quote(char *out, size_t out_size, const char *s, size_t len, size_t max_chars);

#ifndef LOG_MODULE
#define LOG_MODULE "chorus"
#endif
#define CORE__LOG(lvl, ...)                                                                        \
    do {                                                                                           \
        if (core__log_level >= (lvl))                                                              \
            core_log_write((lvl), LOG_MODULE, __VA_ARGS__);                                        \
    } while (0)
#define LOG_ERROR(...) CORE__LOG(CORE_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) CORE__LOG(CORE_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) CORE__LOG(CORE_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) CORE__LOG(CORE_LOG_DEBUG, __VA_ARGS__)

/* ---- clocks ------------------------------------------------------------- */

uint64_t core_now_us(void); /* monotonic microseconds, for durations */
int64_t core_wall_us(void); /* wall-clock microseconds since the Unix epoch */
/* Formats a wall-clock time as RFC 3339 UTC with microseconds into out (>= 32 bytes). */
const char *core_time_format(char *out, size_t out_size, int64_t wall_us);
/* Days since 1970-01-01 of the civil date y-m-d (proleptic Gregorian, m 1-12). */
long core_days_from_civil(long y, int m, int d);
/* tm (UTC, as strptime fills it) in seconds since the epoch into *secs;
 * -1 when it is not on the calendar ("2026-02-30", 24:00), which timegm
 * would roll over to the next day or month. */
struct tm;
int core_time_from_tm(const struct tm *tm, int64_t *secs);

/* ---- bounded byte buffers ----------------------------------------------- */

/* A growable byte buffer that refuses to grow past `limit` bytes (curl's
 * dynbuf rule: every buffer has a maximum). data is always NUL-terminated
 * after len bytes when non-NULL. */
typedef struct core_buf_s {
    char *data;   /* owned; NULL until the first append */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
    size_t limit; /* maximum len; appends past it fail with CORE_ERR_LIMIT */
} core_buf_t;

void core_buf_init(core_buf_t *b, size_t limit);
void core_buf_dispose(core_buf_t *b);
void core_buf_reset(core_buf_t *b); /* len = 0, keeps the allocation */
/* Appends n bytes; 0, or CORE_ERR_LIMIT with b unchanged. Inline because
 * the JSON writers append a few bytes at a time and nearly every append
 * fits: only growth and the limit take the call. */
int core_buf__append_grow(core_buf_t *b, const void *p, size_t n);
static inline int core_buf_append(core_buf_t *b, const void *p, size_t n)
{
    if (n >= b->cap - b->len || n > b->limit - b->len || b->len > b->limit)
        return core_buf__append_grow(b, p, n); /* also the first append: cap 0 */
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}
int core_buf_append_str(core_buf_t *b, const char *s);
int core_buf_printf(core_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int core_buf_vprintf(core_buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void core_buf_consume(core_buf_t *b, size_t n);
/* Gives the data to the caller (who frees it) and leaves b empty. */
char *core_buf_steal(core_buf_t *b, size_t *len);
/* Appends a string literal: core_buf_append_lit(b, "{\"seq\":"). */
#define core_buf_append_lit(b, lit) core_buf_append((b), "" lit, sizeof(lit) - 1)

/* ---- JSON output on a buffer (core_json_out.c) -------------------------- */

/* Writers for hot paths that know their JSON's shape, so they need not build
 * a jansson tree only to dump it. Output matches json_dumps(JSON_COMPACT):
 * UTF-8 passes through, '"' and '\' are escaped, control characters become
 * \b \f \n \r \t or \u00XX (upper-case hex), '/' stays as it is.
 * On failure b is left as it was. */
/* The escape json_dumps writes for c (a byte below 0x20, '"' or '\') into
 * out; returns its length (2 or 6). Shared with net's answer writer. */
size_t core_json_escape(unsigned char c, char out[6]);
/* s (len bytes, NUL allowed) as a quoted string; CORE_ERR_INVALID when s is
 * not well-formed UTF-8 (jansson refuses such a string, too). */
int core_buf_json_str(core_buf_t *b, const char *s, size_t len);
/* The same, but each byte that is not well-formed UTF-8 becomes U+FFFD. */
int core_buf_json_str_lossy(core_buf_t *b, const char *s, size_t len);
/* A NUL-terminated key as a quoted string and ':'. */
int core_buf_json_key(core_buf_t *b, const char *key);
/* A decimal integer. */
int core_buf_json_int(core_buf_t *b, long long v);

/* ---- text ---------------------------------------------------------------- */

/* Bytes at s (len of them) of the tail that draws the digit before it as an
 * emoji keycap: U+FE0F (emoji presentation) and/or U+20E3 (combining
 * enclosing keycap), as phone keyboards send "2\u20e3" and "2\ufe0f\u20e3" for
 * a tapped 2; 0 if there is none. The digit means what it says. */
static inline size_t core_keycap_tail(const char *s, size_t len)
{
    size_t n = len >= 3 && memcmp(s, "\xEF\xB8\x8F", 3) == 0 ? 3 : 0;
    if (len - n >= 3 && memcmp(s + n, "\xE2\x83\xA3", 3) == 0)
        n += 3;
    return n;
}

/* ---- diagnostics: problems in a user's file ----------------------------- */

/* One problem in a file a user wrote (config, flow, guardrail rules), printed
 * as `file:line:col: path: message`. line/col are 1-based, 0 when unknown. */
typedef struct core_diag_s {
    char *file;    /* owned */
    int line;      /* 1-based, 0 if unknown */
    int col;       /* 1-based, 0 if unknown */
    char *path;    /* owned JSON path such as "http.max_body_bytes", may be "" */
    char *message; /* owned */
} core_diag_t;

typedef struct core_diags_s {
    core_diag_t *items; /* owned array */
    size_t len;
    size_t cap;
} core_diags_t;

void core_diags_init(core_diags_t *d);
void core_diags_dispose(core_diags_t *d);
void core_diags_add(core_diags_t *d, const char *file, int line, int col, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Formats item i as `file:line:col: path: message` into out; returns out. */
const char *core_diag_format(const core_diag_t *item, char *out, size_t out_size);
/* Moves every item of src to the end of dst. */
void core_diags_move(core_diags_t *dst, core_diags_t *src);

/* ---- JSON source positions ---------------------------------------------- */

/* jansson reports positions only for syntax errors. To say where a valid but
 * wrong value is (`chorusd.json:14:9: http.port: ...`), core_jsonpos indexes
 * the text once and maps each value's path to its line and column. Paths use
 * dots for object keys and [i] for array items: "flows[2].nodes.ask.next".
 * Keys containing '.', '[' or ']' are written as ["key"]. */
typedef struct core_jsonpos_s core_jsonpos_t;

/* Indexes text (len bytes, need not be NUL-terminated). Returns NULL if the
 * text is not valid JSON (jansson's error then says where). */
core_jsonpos_t *core_jsonpos_new(const char *text, size_t len);
void core_jsonpos_free(core_jsonpos_t *p);
/* Finds the position of the value at path; for a path that does not exist,
 * the position of its nearest existing ancestor. Returns 0 if found exactly,
 * 1 if an ancestor was used, -1 if nothing matched (line = col = 0). */
int core_jsonpos_find(const core_jsonpos_t *p, const char *path, int *line, int *col);
/* Calls fn for every key that appears again in the same object, at each
 * repetition (the first occurrence is not reported); returns how many. */
size_t core_jsonpos_duplicates(const core_jsonpos_t *p,
                               void (*fn)(const char *path, int line, int col, void *arg),
                               void *arg);
/* Builds a child path: parent + "." + key (or ["key"]), or parent + "[i]". */
char *core_jsonpath_key(const char *parent, const char *key);
char *core_jsonpath_index(const char *parent, size_t index);

/* ---- files -------------------------------------------------------------- */

/* Reads a whole file (at most max_bytes) into a NUL-terminated owned buffer.
 * Blocking: for start-up, chorusctl and worker threads, never the loop. */
int core_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len,
                   core_err_t *err);
/* 0 if path can be opened for reading, else CORE_ERR_IO with
 * `what "path": cannot read: reason` (what: the option that named it).
 * Blocking, like core_file_read. */
int core_file_readable(const char *what, const char *path, core_err_t *err);

#endif
