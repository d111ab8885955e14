/* A small line-based diff: the longest common subsequence of the two
 * texts' lines (after trimming the common head and tail, which is what a
 * flow edit usually leaves), printed as unified hunks with three lines of
 * context. Flow files are small; past MAX_CELLS table cells the middle is
 * shown as removed and added whole rather than spending the memory. Pure:
 * any thread. Contract: include/chorus/runtime.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/runtime.h"

#define CONTEXT 3
#define MAX_CELLS (8u * 1024 * 1024)

typedef struct line_s {
    const char *p;
    size_t len;
} line_t;

typedef struct edit_s {
    char op;   /* ' ', '-', '+' */
    size_t ai; /* line index in a (for ' ' and '-') */
    size_t bi; /* line index in b (for ' ' and '+') */
} edit_t;

static line_t *split(const char *s, size_t len, size_t *n)
{
    size_t cap = 16, k = 0;
    line_t *l = core_xmalloc(cap * sizeof(*l));
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - s) : len;
        if (k == cap) {
            cap *= 2;
            l = core_xrealloc(l, cap * sizeof(*l));
        }
        l[k++] = (line_t){s + i, e - i};
        i = e + 1;
    }
    *n = k;
    return l;
}

static int same(const line_t *x, const line_t *y)
{
    return x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
}

/* Appends the edits turning a[a0..a1) into b[b0..b1). */
static void lcs_edits(const line_t *a, size_t a0, size_t a1, const line_t *b, size_t b0, size_t b1,
                      edit_t *out, size_t *k)
{
    size_t n = a1 - a0, m = b1 - b0;
    if (n == 0 || m == 0 || (n + 1) * (m + 1) > MAX_CELLS) {
        for (size_t i = a0; i < a1; i++)
            out[(*k)++] = (edit_t){'-', i, 0};
        for (size_t j = b0; j < b1; j++)
            out[(*k)++] = (edit_t){'+', 0, j};
        return;
    }
    /* t[i][j]: LCS length of a[a0+i..a1) and b[b0+j..b1). */
    uint32_t *t = core_xcalloc((n + 1) * (m + 1), sizeof(*t));
#define T(i, j) t[(i) * (m + 1) + (j)]
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            T(i, j) = same(&a[a0 + i], &b[b0 + j])
                          ? T(i + 1, j + 1) + 1
                          : (T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && same(&a[a0 + i], &b[b0 + j])) {
            out[(*k)++] = (edit_t){' ', a0 + i, b0 + j};
            i++, j++;
        } else if (j < m && (i == n || T(i, j + 1) > T(i + 1, j))) {
            out[(*k)++] = (edit_t){'+', 0, b0 + j++};
        } else {
            out[(*k)++] = (edit_t){'-', a0 + i++, 0};
        }
    }
#undef T
    free(t);
}

static void put_line(core_buf_t *o, char op, const line_t *l)
{
    core_buf_append(o, &op, 1);
    core_buf_append(o, l->p, l->len);
    core_buf_append_str(o, "\n");
}

/* One hunk: edits [from, to), with the line numbers it starts at. */
static void put_hunk(core_buf_t *o, const edit_t *e, size_t from, size_t to, const line_t *a,
                     const line_t *b)
{
    size_t na = 0, nb = 0, sa = 0, sb = 0;
    int seen_a = 0, seen_b = 0;
    for (size_t i = from; i < to; i++) {
        if (e[i].op != '+') {
            if (!seen_a++)
                sa = e[i].ai;
            na++;
        }
        if (e[i].op != '-') {
            if (!seen_b++)
                sb = e[i].bi;
            nb++;
        }
    }
    if (!seen_a) /* a pure insertion: the line it follows */
        for (size_t i = from; i-- > 0;)
            if (e[i].op != '+') {
                sa = e[i].ai + 1;
                break;
            }
    if (!seen_b)
        for (size_t i = from; i-- > 0;)
            if (e[i].op != '-') {
                sb = e[i].bi + 1;
                break;
            }
    core_buf_printf(o, "@@ -%zu,%zu +%zu,%zu @@\n", na ? sa + 1 : sa, na, nb ? sb + 1 : sb, nb);
    for (size_t i = from; i < to; i++)
        put_line(o, e[i].op, e[i].op == '+' ? &b[e[i].bi] : &a[e[i].ai]);
}

char *runtime_diff(const char *as, size_t alen, const char *bs, size_t blen, const char *name_a,
                   const char *name_b)
{
    size_t n, m;
    line_t *a = split(as ? as : "", as ? alen : 0, &n);
    line_t *b = split(bs ? bs : "", bs ? blen : 0, &m);
    size_t pre = 0, suf = 0;
    while (pre < n && pre < m && same(&a[pre], &b[pre]))
        pre++;
    while (suf < n - pre && suf < m - pre && same(&a[n - 1 - suf], &b[m - 1 - suf]))
        suf++;
    edit_t *e = core_xmalloc((n + m + 1) * sizeof(*e));
    size_t k = 0;
    for (size_t i = 0; i < pre; i++)
        e[k++] = (edit_t){' ', i, i};
    lcs_edits(a, pre, n - suf, b, pre, m - suf, e, &k);
    for (size_t i = 0; i < suf; i++)
        e[k++] = (edit_t){' ', n - suf + i, m - suf + i};
    core_buf_t o;
    core_buf_init(&o, 64u * 1024 * 1024);
    size_t i = 0;
    while (i < k) {
        while (i < k && e[i].op == ' ')
            i++;
        if (i == k)
            break;
        if (o.len == 0)
            core_buf_printf(&o, "--- %s\n+++ %s\n", name_a ? name_a : "a", name_b ? name_b : "b");
        size_t from = i > CONTEXT ? i - CONTEXT : 0, end = i;
        /* Extend while the next change is within two contexts of this one. */
        for (;;) {
            while (end < k && e[end].op != ' ')
                end++;
            size_t next = end;
            while (next < k && e[next].op == ' ')
                next++;
            if (next < k && next - end <= 2 * CONTEXT)
                end = next;
            else
                break;
        }
        size_t to = end + CONTEXT < k ? end + CONTEXT : k;
        put_hunk(&o, e, from, to, a, b);
        i = to;
    }
    free(a);
    free(b);
    free(e);
    char *s = core_buf_steal(&o, NULL);
    return s ? s : core_xstrdup("");
}
