/* The clustering passes of learn.h: a leader pass over the items, heaviest
 * first, against an inverted index of the leaders' features; then an
 * agglomerative pass that merges clusters whose centroids are close; then
 * centroids, cohesion and names. Every order is total, so runs repeat. */
#include <stdlib.h>
#include <string.h>

#include "brain/learn_int.h"

#define CENTROID_MAX 256 /* features kept per centroid */
#define MERGE_MAX 600    /* clusters compared pairwise in the merge pass */
#define CANDIDATES 3     /* best approximate leaders checked exactly */

/* The inverted index: feature -> (leader cluster, weight) postings. */
typedef struct {
    uint32_t *c;
    float *w;
    uint32_t n, cap;
} posting_t;

typedef struct {
    uint64_t *keys;
    posting_t *lists;
    size_t n, cap;
} index_t;

static posting_t *index_get(index_t *ix, uint64_t h, int create)
{
    if (create && (ix->n + 1) * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 4096;
        uint64_t *keys = core_xcalloc(cap, sizeof(*keys));
        posting_t *lists = core_xcalloc(cap, sizeof(*lists));
        for (size_t i = 0; i < ix->cap; i++) {
            if (ix->keys[i] == 0)
                continue;
            size_t p = ix->keys[i] & (cap - 1);
            while (keys[p])
                p = (p + 1) & (cap - 1);
            keys[p] = ix->keys[i];
            lists[p] = ix->lists[i];
        }
        free(ix->keys);
        free(ix->lists);
        ix->keys = keys;
        ix->lists = lists;
        ix->cap = cap;
    }
    if (ix->cap == 0)
        return NULL;
    uint64_t key = h ? h : 1;
    size_t p = key & (ix->cap - 1);
    while (ix->keys[p] && ix->keys[p] != key)
        p = (p + 1) & (ix->cap - 1);
    if (ix->keys[p] == 0) {
        if (!create)
            return NULL;
        ix->keys[p] = key;
        ix->n++;
    }
    return &ix->lists[p];
}

static void index_free(index_t *ix)
{
    for (size_t i = 0; i < ix->cap; i++) {
        free(ix->lists[i].c);
        free(ix->lists[i].w);
    }
    free(ix->keys);
    free(ix->lists);
}

/* qsort has no context argument; one per thread keeps learn_t's apart */
static _Thread_local const learn_t *sort_ctx;

static int cmp_item(const void *a, const void *b)
{
    const litem_t *x = &sort_ctx->items[*(const size_t *)a];
    const litem_t *y = &sort_ctx->items[*(const size_t *)b];
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return strcmp(x->norm, y->norm);
}

static int cmp_cluster(const void *a, const void *b)
{
    const lclus_t *x = a, *y = b;
    if (x->pub.weight != y->pub.weight)
        return x->pub.weight > y->pub.weight ? -1 : 1;
    return strcmp(sort_ctx->items[x->items[0]].norm, sort_ctx->items[y->items[0]].norm);
}

static void cluster_push(lclus_t *c, size_t item, uint64_t weight)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->items = core_xrealloc(c->items, c->cap * sizeof(*c->items));
    }
    c->items[c->n++] = item;
    c->pub.weight += weight;
}

static size_t new_cluster(learn_t *l, size_t *cap, size_t leader, index_t *ix, uint32_t df_cut)
{
    if (l->n_clusters == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        l->clusters = core_xrealloc(l->clusters, *cap * sizeof(*l->clusters));
    }
    size_t c = l->n_clusters++;
    memset(&l->clusters[c], 0, sizeof(l->clusters[c]));
    const litem_t *it = &l->items[leader];
    for (uint32_t j = 0; j < it->n_vec; j++) {
        if (learn__df(l, it->vec[j].h) > df_cut)
            continue; /* too common to tell clusters apart */
        posting_t *p = index_get(ix, it->vec[j].h, 1);
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 4;
            p->c = core_xrealloc(p->c, p->cap * sizeof(*p->c));
            p->w = core_xrealloc(p->w, p->cap * sizeof(*p->w));
        }
        p->c[p->n] = (uint32_t)c;
        p->w[p->n++] = it->vec[j].w;
    }
    return c;
}

/* The leader most similar to item, or SIZE_MAX below the threshold. */
static size_t best_leader(const learn_t *l, const litem_t *it, index_t *ix, float *acc,
                          uint32_t *touched, size_t *leaders)
{
    uint32_t n_touched = 0;
    for (uint32_t j = 0; j < it->n_vec; j++) {
        const posting_t *p = index_get(ix, it->vec[j].h, 0);
        for (uint32_t k = 0; p != NULL && k < p->n; k++) {
            if (acc[p->c[k]] == 0)
                touched[n_touched++] = p->c[k];
            acc[p->c[k]] += it->vec[j].w * p->w[k] + 1e-9f;
        }
    }
    uint32_t cand[CANDIDATES];
    size_t n_cand = 0;
    for (uint32_t t = 0; t < n_touched; t++) { /* keep the best few, lowest id on ties */
        uint32_t c = touched[t];
        size_t pos = n_cand;
        while (pos > 0 &&
               (acc[cand[pos - 1]] < acc[c] || (acc[cand[pos - 1]] == acc[c] && cand[pos - 1] > c)))
            pos--;
        if (pos >= CANDIDATES)
            continue;
        if (n_cand < CANDIDATES)
            n_cand++;
        memmove(&cand[pos + 1], &cand[pos], (n_cand - 1 - pos) * sizeof(*cand));
        cand[pos] = c;
    }
    for (uint32_t t = 0; t < n_touched; t++)
        acc[touched[t]] = 0;
    size_t best = SIZE_MAX;
    double best_sim = l->opt.threshold;
    for (size_t k = 0; k < n_cand; k++) {
        const litem_t *ld = &l->items[leaders[cand[k]]];
        double s = learn__dot(it->vec, it->n_vec, ld->vec, ld->n_vec);
        if (s >= best_sim && (best == SIZE_MAX || s > best_sim || cand[k] < best)) {
            best = cand[k];
            best_sim = s;
        }
    }
    return best;
}

static void leader_pass(learn_t *l, const size_t *order, size_t n_use)
{
    index_t ix = {0};
    size_t cap = 0;
    uint32_t df_cut = (uint32_t)(n_use / 10 > 20 ? n_use / 10 : 20);
    float *acc = core_xcalloc(n_use + 1, sizeof(*acc));
    uint32_t *touched = core_xmalloc((n_use + 1) * sizeof(*touched));
    size_t *leaders = core_xmalloc((n_use + 1) * sizeof(*leaders));
    for (size_t i = 0; i < n_use; i++) {
        litem_t *it = &l->items[order[i]];
        size_t c = best_leader(l, it, &ix, acc, touched, leaders);
        if (c == SIZE_MAX) {
            c = new_cluster(l, &cap, order[i], &ix, df_cut);
            leaders[c] = order[i];
        }
        it->cluster = c;
        cluster_push(&l->clusters[c], order[i], it->weight);
    }
    free(acc);
    free(touched);
    free(leaders);
    index_free(&ix);
}

static void merge_pass(learn_t *l)
{
    sort_ctx = l;
    if (l->n_clusters > 1)
        qsort(l->clusters, l->n_clusters, sizeof(*l->clusters), cmp_cluster);
    size_t m = l->n_clusters < MERGE_MAX ? l->n_clusters : MERGE_MAX;
    for (size_t i = 0; i < m; i++) {
        lclus_t *c = &l->clusters[i];
        c->centroid = learn__centroid(l, c->items, c->n, CENTROID_MAX, &c->n_centroid);
    }
    for (size_t i = 0; i < m; i++) {
        lclus_t *a = &l->clusters[i];
        for (size_t j = i + 1; j < m && !a->merged; j++) {
            lclus_t *b = &l->clusters[j];
            if (b->merged || learn__dot(a->centroid, a->n_centroid, b->centroid, b->n_centroid) <
                                 l->opt.merge_threshold)
                continue;
            for (size_t k = 0; k < b->n; k++)
                cluster_push(a, b->items[k], l->items[b->items[k]].weight);
            b->merged = 1;
            b->n = 0;
            b->pub.weight = 0;
        }
    }
}

/* Drops merged clusters; sorts members and clusters; centroid, cohesion,
 * names. */
static void finish(learn_t *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_clusters; i++) {
        lclus_t *c = &l->clusters[i];
        free(c->centroid);
        c->centroid = NULL;
        if (c->merged) {
            free(c->items);
            continue;
        }
        l->clusters[n++] = *c;
    }
    l->n_clusters = n;
    sort_ctx = l;
    for (size_t i = 0; i < n; i++) {
        lclus_t *c = &l->clusters[i];
        qsort(c->items, c->n, sizeof(*c->items), cmp_item);
    }
    if (n > 1)
        qsort(l->clusters, n, sizeof(*l->clusters), cmp_cluster);
    for (size_t i = 0; i < n; i++) {
        lclus_t *c = &l->clusters[i];
        c->centroid = learn__centroid(l, c->items, c->n, CENTROID_MAX, &c->n_centroid);
        double sum = 0, w = 0;
        for (size_t k = 0; k < c->n; k++) {
            l->items[c->items[k]].cluster = i;
            const litem_t *it = &l->items[c->items[k]];
            sum += (double)it->weight * learn__dot(it->vec, it->n_vec, c->centroid, c->n_centroid);
            w += (double)it->weight;
        }
        c->pub.cohesion = w > 0 ? sum / w : 0;
        c->pub.items = c->items;
        c->pub.n_items = c->n;
        learn__top_words(l, c);
        c->pub.top = c->top;
    }
}

int learn_run(learn_t *l, core_err_t *err)
{
    if (l->ran)
        return core_err_set(err, CORE_ERR_INVALID, "learn_run: already run");
    l->ran = 1;
    learn__vectors(l);
    size_t *order = core_xmalloc((l->n_items ? l->n_items : 1) * sizeof(*order));
    for (size_t i = 0; i < l->n_items; i++) {
        order[i] = i;
        l->items[i].cluster = SIZE_MAX;
    }
    sort_ctx = l;
    qsort(order, l->n_items, sizeof(*order), cmp_item);
    size_t n_use = l->n_items < l->opt.max_items ? l->n_items : l->opt.max_items;
    leader_pass(l, order, n_use);
    free(order);
    merge_pass(l);
    finish(l);
    return 0;
}

size_t learn_n_clusters(const learn_t *l)
{
    return l->n_clusters;
}

const learn_cluster_t *learn_cluster(const learn_t *l, size_t i)
{
    return i < l->n_clusters ? &l->clusters[i].pub : NULL;
}
