/* learn_int.h — the pieces of the utterance clusterer (learn.h): items and
 * their sparse vectors (learn_vec.c), the clustering passes
 * (learn_cluster.c) and the words that name a cluster (learn_words.c). */
#ifndef CHORUS_LEARN_INT_H
#define CHORUS_LEARN_INT_H

#include "chorus/learn.h"

/* One feature of a sparse vector; vectors are sorted by h. */
typedef struct lfeat_s {
    uint64_t h;
    float w;
} lfeat_t;

typedef struct litem_s {
    char *text; /* first text as added */
    char *norm; /* folded, single-spaced: the dedup key and the words */
    uint64_t weight;
    size_t *tags;
    size_t n_tags, cap_tags;
    lfeat_t *vec; /* raw counts until learn__vectors(), then tf-idf, unit length */
    uint32_t n_vec;
    size_t cluster;
} litem_t;

typedef struct lclus_s {
    learn_cluster_t pub;
    size_t *items;
    size_t n, cap;
    lfeat_t *centroid; /* unit length, truncated to the strongest features */
    uint32_t n_centroid;
    const char *top[4];
    char *words; /* storage for top */
    int merged;  /* folded into another cluster */
} lclus_t;

/* A word and how many turns said it (the name of a cluster comes from its
 * words that are frequent in it and rare elsewhere). */
typedef struct lword_s {
    const char *p; /* into an item's norm */
    size_t len;
    uint64_t count;
} lword_t;

typedef struct lwords_s {
    lword_t *slots;
    size_t n, cap;
    uint64_t total;
} lwords_t;

struct learn_s {
    learn_options_t opt;
    litem_t *items;
    size_t n_items, cap_items;
    size_t *slots; /* open addressing over norm: item index + 1, 0 = empty */
    size_t n_slots;
    lfeat_t *df; /* (feature, document frequency), sorted by feature */
    size_t n_df;
    lclus_t *clusters;
    size_t n_clusters;
    lwords_t words; /* every item's words, for naming clusters */
    int ran;
};

/* Turns every item's counts into a tf-idf unit vector (computes l->df). */
void learn__vectors(learn_t *l);
/* Document frequency of a feature (0 when unseen). */
uint32_t learn__df(const learn_t *l, uint64_t h);
/* Cosine of two unit vectors. */
double learn__dot(const lfeat_t *a, uint32_t na, const lfeat_t *b, uint32_t nb);
/* The normalised weighted mean of the members' vectors, truncated to max
 * features. Returns an owned vector. */
lfeat_t *learn__centroid(const learn_t *l, const size_t *items, size_t n, uint32_t max,
                         uint32_t *n_out);
/* Fills c->top with up to 3 distinctive words of the cluster. */
void learn__top_words(learn_t *l, lclus_t *c);

#endif
