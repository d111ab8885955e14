/* learn.h — groups the utterances the flows did not understand into
 * clusters of similar requests: the raw material of `chorusctl learn`, which
 * ranks them as automation opportunities (docs/flywheel.md).
 *
 * The caller adds utterances one by one, each with a weight (how many turns
 * said it) and a tag of its own (a row index, say); identical texts after
 * folding share one item. learn_run() then clusters the items:
 *
 *  1. each item becomes a tf-idf vector over the intent router's features
 *     (word uni/bigrams and character n-grams, nlu.h), L2-normalised;
 *  2. a leader pass, heaviest item first, joins an item to the first-ranked
 *     cluster whose leader is at least `threshold` cosine-similar, else makes
 *     it the leader of a new cluster;
 *  3. an agglomerative pass merges clusters (largest first) whose centroids
 *     are at least `merge_threshold` similar, and recomputes centroids.
 *
 * Every order is total (weight, then text), so the same input always gives
 * the same clusters in the same order: cluster ids are stable across runs.
 *
 * Threads: a learn_t is used by one thread at a time. Pure logic: no I/O.
 * Ownership: learn_new()/learn_free(); texts are copied; the info returned
 * by learn_cluster() is borrowed until learn_free().
 * Errors: learn_add() ignores empty texts (returns -1); learn_run() returns
 * 0 or CORE_ERR_INVALID when called twice. */
#ifndef CHORUS_LEARN_H
#define CHORUS_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"

typedef struct learn_s learn_t;

typedef struct learn_options_s {
    double threshold;       /* leader pass: join at >= this cosine (0: 0.25) */
    double merge_threshold; /* merge pass: centroids at >= this cosine (0: 0.30) */
    size_t max_items;       /* distinct texts kept, heaviest first (0: 50000) */
} learn_options_t;

typedef struct learn_cluster_s {
    uint64_t weight;        /* turns in the cluster (sum of the items' weights) */
    size_t n_items;         /* distinct texts */
    const size_t *items;    /* item indices, heaviest first */
    double cohesion;        /* weighted mean cosine of items to the centroid, 0..1 */
    const char *const *top; /* up to 3 distinctive words, NULL-terminated */
} learn_cluster_t;

learn_t *learn_new(const learn_options_t *opt);
void learn_free(learn_t *l);

/* Adds an utterance; returns the index of its item (shared by every text
 * that folds the same), or -1 for a text with no words. */
long learn_add(learn_t *l, const char *text, size_t len, uint64_t weight, size_t tag);

/* Clusters the items; clusters come out heaviest first. */
int learn_run(learn_t *l, core_err_t *err);

size_t learn_n_clusters(const learn_t *l);
const learn_cluster_t *learn_cluster(const learn_t *l, size_t i);

/* An item: its first text as added, its weight, and the tags added with it. */
const char *learn_item_text(const learn_t *l, size_t item);
uint64_t learn_item_weight(const learn_t *l, size_t item);
size_t learn_item_tags(const learn_t *l, size_t item, const size_t **tags);

#endif
