/* JSON source positions: a second, tiny pass over text that jansson already
 * accepted, recording where each value starts, so validators can point at
 * `file:line:col` for values that parse but are wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"

#define MAX_DEPTH 512

typedef struct {
    char *path;
    int line, col;
} entry_t;

struct core_jsonpos_s {
    entry_t *items;
    size_t len, cap;
};

typedef struct {
    const char *s;
    size_t len, i;
    int line, col;
    core_jsonpos_t *out;
} scan_t;

static void advance(scan_t *sc)
{
    if (sc->s[sc->i] == '\n') {
        sc->line++;
        sc->col = 1;
    } else if (((unsigned char)sc->s[sc->i] & 0xC0) != 0x80) {
        sc->col++; /* columns count characters, not UTF-8 continuation bytes */
    }
    sc->i++;
}

static void skip_ws(scan_t *sc)
{
    while (sc->i < sc->len && strchr(" \t\r\n", sc->s[sc->i]) != NULL && sc->s[sc->i] != '\0')
        advance(sc);
}

static void record(scan_t *sc, const char *path, int line, int col)
{
    core_jsonpos_t *p = sc->out;
    if (p->len == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->items = core_xrealloc(p->items, p->cap * sizeof(*p->items));
    }
    p->items[p->len].path = core_xstrdup(path);
    p->items[p->len].line = line;
    p->items[p->len].col = col;
    p->len++;
}

static void put_utf8(core_buf_t *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    core_buf_append(b, u, n);
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
    }
    return v;
}

/* Scans a string starting at '"'; decodes it into b when b is not NULL. */
static int scan_string(scan_t *sc, core_buf_t *b)
{
    advance(sc); /* opening quote */
    while (sc->i < sc->len && sc->s[sc->i] != '"') {
        char c = sc->s[sc->i];
        if (c != '\\') {
            if (b != NULL)
                core_buf_append(b, &c, 1);
            advance(sc);
            continue;
        }
        if (sc->i + 1 >= sc->len)
            return -1;
        char e = sc->s[sc->i + 1];
        advance(sc);
        advance(sc);
        if (e == 'u') {
            if (sc->i + 4 > sc->len)
                return -1;
            unsigned cp = hex4(sc->s + sc->i);
            for (int k = 0; k < 4; k++)
                advance(sc);
            if (cp >= 0xD800 && cp < 0xDC00 && sc->i + 6 <= sc->len && sc->s[sc->i] == '\\' &&
                sc->s[sc->i + 1] == 'u') {
                unsigned lo = hex4(sc->s + sc->i + 2);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                for (int k = 0; k < 6; k++)
                    advance(sc);
            }
            if (b != NULL)
                put_utf8(b, cp);
        } else if (b != NULL) {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *hit = strchr(from, e);
            char d = hit != NULL ? to[hit - from] : e;
            core_buf_append(b, &d, 1);
        }
    }
    if (sc->i >= sc->len)
        return -1;
    advance(sc); /* closing quote */
    return 0;
}

static int scan_value(scan_t *sc, const char *path, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    skip_ws(sc);
    if (sc->i >= sc->len)
        return -1;
    record(sc, path, sc->line, sc->col);
    char c = sc->s[sc->i];
    if (c == '"')
        return scan_string(sc, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        size_t index = 0;
        advance(sc);
        skip_ws(sc);
        if (sc->i < sc->len && sc->s[sc->i] == close) {
            advance(sc);
            return 0;
        }
        for (;;) {
            char *child;
            skip_ws(sc);
            if (c == '{') {
                core_buf_t key;
                core_buf_init(&key, (size_t)1 << 20);
                if (sc->i >= sc->len || sc->s[sc->i] != '"' || scan_string(sc, &key) != 0) {
                    core_buf_dispose(&key);
                    return -1;
                }
                child = core_jsonpath_key(path, key.data ? key.data : "");
                core_buf_dispose(&key);
                skip_ws(sc);
                if (sc->i >= sc->len || sc->s[sc->i] != ':') {
                    free(child);
                    return -1;
                }
                advance(sc);
            } else {
                child = core_jsonpath_index(path, index++);
            }
            int rc = scan_value(sc, child, depth + 1);
            free(child);
            if (rc != 0)
                return rc;
            skip_ws(sc);
            if (sc->i >= sc->len)
                return -1;
            if (sc->s[sc->i] == ',') {
                advance(sc);
                continue;
            }
            if (sc->s[sc->i] == close) {
                advance(sc);
                return 0;
            }
            return -1;
        }
    }
    /* number, true, false, null */
    while (sc->i < sc->len && strchr(",]} \t\r\n", sc->s[sc->i]) == NULL)
        advance(sc);
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->path, ((const entry_t *)b)->path);
}

/* By path, then by place: a repeated key's occurrences in file order. */
static int cmp_entry_place(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c != 0)
        return c;
    return x->line != y->line ? (x->line < y->line ? -1 : 1)
                              : (x->col < y->col ? -1 : x->col > y->col);
}

core_jsonpos_t *core_jsonpos_new(const char *text, size_t len)
{
    core_jsonpos_t *p = core_xcalloc(1, sizeof(*p));
    scan_t sc = {.s = text, .len = len, .i = 0, .line = 1, .col = 1, .out = p};
    if (scan_value(&sc, "", 0) != 0) {
        core_jsonpos_free(p);
        return NULL;
    }
    if (p->len > 0)
        qsort(p->items, p->len, sizeof(*p->items), cmp_entry_place);
    return p;
}

size_t core_jsonpos_duplicates(const core_jsonpos_t *p,
                               void (*fn)(const char *path, int line, int col, void *arg),
                               void *arg)
{
    size_t n = 0;
    for (size_t i = 1; p != NULL && i < p->len; i++)
        if (strcmp(p->items[i].path, p->items[i - 1].path) == 0) {
            fn(p->items[i].path, p->items[i].line, p->items[i].col, arg);
            n++;
        }
    return n;
}

void core_jsonpos_free(core_jsonpos_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->len; i++)
        free(p->items[i].path);
    free(p->items);
    free(p);
}

static const entry_t *lookup(const core_jsonpos_t *p, const char *path)
{
    entry_t key = {.path = (char *)path};
    return bsearch(&key, p->items, p->len, sizeof(*p->items), cmp_entry);
}

/* Strips the last component of a path in place; returns 0 when nothing is left. */
static int parent_of(char *path)
{
    size_t n = strlen(path);
    if (n == 0)
        return 0;
    if (path[n - 1] == ']') {
        char *open = strrchr(path, '[');
        if (open == NULL)
            return 0;
        *open = '\0';
        return 1;
    }
    char *dot = strrchr(path, '.');
    if (dot == NULL)
        path[0] = '\0';
    else
        *dot = '\0';
    return 1;
}

int core_jsonpos_find(const core_jsonpos_t *p, const char *path, int *line, int *col)
{
    *line = *col = 0;
    if (p == NULL)
        return -1;
    char *probe = core_xstrdup(path ? path : "");
    int exact = 1;
    for (;;) {
        const entry_t *e = lookup(p, probe);
        if (e != NULL) {
            *line = e->line;
            *col = e->col;
            free(probe);
            return exact ? 0 : 1;
        }
        exact = 0;
        if (!parent_of(probe))
            break;
    }
    free(probe);
    return -1;
}

char *core_jsonpath_key(const char *parent, const char *key)
{
    int plain = key[0] != '\0' && strpbrk(key, ".[]\"") == NULL;
    if (plain)
        return parent[0] ? core_xasprintf("%s.%s", parent, key) : core_xstrdup(key);
    return core_xasprintf("%s[\"%s\"]", parent, key);
}

char *core_jsonpath_index(const char *parent, size_t index)
{
    return core_xasprintf("%s[%zu]", parent, index);
}
