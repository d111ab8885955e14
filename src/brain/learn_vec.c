/* Items and their vectors for the utterance clusterer: folding and dedup
 * (the intent router's normaliser, so "Pets?" and "pets" are one item),
 * hashed features, tf-idf weighting and sparse vector arithmetic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/learn_int.h"
#include "brain/nlu_int.h"

/* Features for clustering: word unigrams and bigrams, character 3-5-grams
 * inside words; words weigh more than spelling (a typo should not split a
 * cluster, a shared character run should not make one). */
static const nlu__fcfg_t learn_fcfg = {
    .char_min = 3,
    .char_max = 5,
    .flags = NLU__F_BIGRAMS | NLU__F_CHAR_IN_WORD,
    .view_scale = {1.0f, 0.6f},
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

learn_t *learn_new(const learn_options_t *opt)
{
    learn_t *l = core_xcalloc(1, sizeof(*l));
    if (opt != NULL)
        l->opt = *opt;
    if (l->opt.threshold <= 0)
        l->opt.threshold = 0.25;
    if (l->opt.merge_threshold <= 0)
        l->opt.merge_threshold = 0.30;
    if (l->opt.max_items == 0)
        l->opt.max_items = 50000;
    return l;
}

void learn_free(learn_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_items; i++) {
        free(l->items[i].text);
        free(l->items[i].norm);
        free(l->items[i].tags);
        free(l->items[i].vec);
    }
    for (size_t i = 0; i < l->n_clusters; i++) {
        free(l->clusters[i].items);
        free(l->clusters[i].centroid);
        free(l->clusters[i].words);
    }
    free(l->clusters);
    free(l->words.slots);
    free(l->items);
    free(l->slots);
    free(l->df);
    free(l);
}

static void rehash(learn_t *l)
{
    size_t n = l->n_slots ? l->n_slots * 2 : 1024;
    size_t *s = core_xcalloc(n, sizeof(*s));
    for (size_t i = 0; i < l->n_items; i++) {
        size_t p = fnv(l->items[i].norm) & (n - 1);
        while (s[p])
            p = (p + 1) & (n - 1);
        s[p] = i + 1;
    }
    free(l->slots);
    l->slots = s;
    l->n_slots = n;
}

static int cmp_feat(const void *a, const void *b)
{
    const lfeat_t *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* The raw feature counts of a normalised text, view folded into the hash
 * and the view scale into the weight (sorted by hash). */
static void raw_vector(const nlu__text_t *t, litem_t *it)
{
    nlu__feats_t *f = core_xmalloc(sizeof(*f));
    nlu__features(t, &learn_fcfg, f);
    it->vec = core_xmalloc((f->len ? f->len : 1) * sizeof(*it->vec));
    for (size_t i = 0; i < f->len; i++) {
        /* the low bit keeps the view, for per-view normalisation */
        it->vec[i].h = (f->items[i].hash & ~1ull) | (uint64_t)f->items[i].view;
        it->vec[i].w = f->items[i].count;
    }
    it->n_vec = (uint32_t)f->len;
    qsort(it->vec, it->n_vec, sizeof(*it->vec), cmp_feat);
    free(f);
}

long learn_add(learn_t *l, const char *text, size_t len, uint64_t weight, size_t tag)
{
    nlu__text_t *t = core_xmalloc(sizeof(*t));
    nlu__normalize(text, len, t);
    if (t->n_tok == 0) {
        free(t);
        return -1;
    }
    char *norm = core_xstrndup(t->buf, t->len);
    if (l->n_items * 2 >= l->n_slots)
        rehash(l);
    size_t p = fnv(norm) & (l->n_slots - 1);
    while (l->slots[p] && strcmp(l->items[l->slots[p] - 1].norm, norm) != 0)
        p = (p + 1) & (l->n_slots - 1);
    if (l->slots[p] == 0) {
        if (l->n_items == l->cap_items) {
            l->cap_items = l->cap_items ? l->cap_items * 2 : 256;
            l->items = core_xrealloc(l->items, l->cap_items * sizeof(*l->items));
        }
        litem_t *it = &l->items[l->n_items];
        memset(it, 0, sizeof(*it));
        it->text = core_xstrndup(text, len);
        it->norm = norm;
        raw_vector(t, it);
        l->slots[p] = ++l->n_items;
        norm = NULL;
    }
    free(norm);
    free(t);
    litem_t *it = &l->items[l->slots[p] - 1];
    it->weight += weight;
    if (it->n_tags == it->cap_tags) {
        it->cap_tags = it->cap_tags ? it->cap_tags * 2 : 4;
        it->tags = core_xrealloc(it->tags, it->cap_tags * sizeof(*it->tags));
    }
    it->tags[it->n_tags++] = tag;
    return (long)(l->slots[p] - 1);
}

uint32_t learn__df(const learn_t *l, uint64_t h)
{
    size_t lo = 0, hi = l->n_df;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->df[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n_df && l->df[lo].h == h ? (uint32_t)l->df[lo].w : 0;
}

static void compute_df(learn_t *l)
{
    size_t total = 0;
    for (size_t i = 0; i < l->n_items; i++)
        total += l->items[i].n_vec;
    lfeat_t *all = core_xmalloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < l->n_items; i++)
        for (uint32_t j = 0; j < l->items[i].n_vec; j++)
            all[k++] = (lfeat_t){l->items[i].vec[j].h, 1};
    qsort(all, total, sizeof(*all), cmp_feat);
    size_t n = 0;
    for (size_t i = 0; i < total; i++) {
        if (n > 0 && all[n - 1].h == all[i].h)
            all[n - 1].w += 1;
        else
            all[n++] = all[i];
    }
    l->df = all;
    l->n_df = n;
}

void learn__vectors(learn_t *l)
{
    compute_df(l);
    double n_docs = (double)l->n_items;
    for (size_t i = 0; i < l->n_items; i++) {
        litem_t *it = &l->items[i];
        /* tf-idf, each view unit length then scaled (as the router does, so
         * the many character n-grams do not outweigh the words), then the
         * whole vector unit length */
        double view_norm[NLU__VIEWS] = {0, 0}, norm = 0;
        for (uint32_t j = 0; j < it->n_vec; j++) {
            double idf = log((1.0 + n_docs) / (1.0 + learn__df(l, it->vec[j].h))) + 1.0;
            double w = (1.0 + log(it->vec[j].w > 1 ? it->vec[j].w : 1)) * idf;
            it->vec[j].w = (float)w;
            view_norm[it->vec[j].h & 1] += w * w;
        }
        for (uint32_t j = 0; j < it->n_vec; j++) {
            unsigned v = (unsigned)(it->vec[j].h & 1);
            double w = it->vec[j].w * learn_fcfg.view_scale[v] / sqrt(view_norm[v]);
            it->vec[j].w = (float)w;
            norm += w * w;
        }
        norm = norm > 0 ? sqrt(norm) : 1;
        for (uint32_t j = 0; j < it->n_vec; j++)
            it->vec[j].w = (float)(it->vec[j].w / norm);
    }
}

double learn__dot(const lfeat_t *a, uint32_t na, const lfeat_t *b, uint32_t nb)
{
    double s = 0;
    uint32_t i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i].h == b[j].h)
            s += (double)a[i++].w * b[j++].w;
        else if (a[i].h < b[j].h)
            i++;
        else
            j++;
    }
    return s;
}

static int cmp_weight_desc(const void *a, const void *b)
{
    const lfeat_t *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return x->h < y->h ? -1 : x->h > y->h;
}

lfeat_t *learn__centroid(const learn_t *l, const size_t *items, size_t n, uint32_t max,
                         uint32_t *n_out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += l->items[items[i]].n_vec;
    lfeat_t *all = core_xmalloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const litem_t *it = &l->items[items[i]];
        for (uint32_t j = 0; j < it->n_vec; j++)
            all[k++] = (lfeat_t){it->vec[j].h, it->vec[j].w * (float)it->weight};
    }
    qsort(all, total, sizeof(*all), cmp_feat);
    size_t m = 0;
    for (size_t i = 0; i < total; i++) {
        if (m > 0 && all[m - 1].h == all[i].h)
            all[m - 1].w += all[i].w;
        else
            all[m++] = all[i];
    }
    if (m > max) { /* keep the strongest features, back in hash order */
        qsort(all, m, sizeof(*all), cmp_weight_desc);
        m = max;
        qsort(all, m, sizeof(*all), cmp_feat);
    }
    double norm = 0;
    for (size_t i = 0; i < m; i++)
        norm += (double)all[i].w * all[i].w;
    norm = norm > 0 ? sqrt(norm) : 1;
    for (size_t i = 0; i < m; i++)
        all[i].w = (float)(all[i].w / norm);
    *n_out = (uint32_t)m;
    return all;
}

const char *learn_item_text(const learn_t *l, size_t item)
{
    return item < l->n_items ? l->items[item].text : NULL;
}

uint64_t learn_item_weight(const learn_t *l, size_t item)
{
    return item < l->n_items ? l->items[item].weight : 0;
}

size_t learn_item_tags(const learn_t *l, size_t item, const size_t **tags)
{
    if (item >= l->n_items) {
        *tags = NULL;
        return 0;
    }
    *tags = l->items[item].tags;
    return l->items[item].n_tags;
}
