/* nlu.h — the intent router: a linear classifier (with a small hidden layer
 * blended in on example sets of a thousand or more) trained from the flows'
 * example utterances, with calibrated confidence and out-of-scope detection.
 *
 * Pure logic (part of the brain): training and routing are CPU work with no
 * I/O. The runtime trains on the libuv thread pool and swaps the model in on
 * the loop; caching a model on disk is the caller's job through
 * nlu_model_save()/nlu_model_load() and nlu_training_hash().
 *
 * Threads: nlu_train() may run on any thread. Routing never changes a
 * model: nlu_route() may be called concurrently from any threads. Set the
 * threshold or tune (nlu_model_set_threshold(), nlu_tune_threshold(),
 * nlu_tune()) before the model is shared; nlu_tune() with folds trains
 * K more models, so it belongs where training runs.
 * Ownership: nlu_train()/nlu_model_load() return an owned model, freed with
 * nlu_model_free(). Intent names in results are borrowed from the model.
 * Errors: 0 / negative CORE_ERR_*, with err set.
 * See docs/nlu.md. */
#ifndef CHORUS_NLU_H
#define CHORUS_NLU_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"
#include "chorus/entities.h"

typedef struct nlu_model_s nlu_model_t;

typedef struct nlu_example_s {
    const char *text;   /* UTF-8 utterance */
    const char *intent; /* label; opts.oos_label marks an out-of-scope example */
} nlu_example_t;

typedef struct nlu_train_opts_s {
    uint64_t seed;         /* fixed seed: same data + seed -> same model */
    const char *oos_label; /* label of out-of-scope examples; NULL = "oos" */
    double oos_threshold;  /* confidence below this is out of scope; < 0 = built-in default */
} nlu_train_opts_t;

#define NLU_TOP_K 5
#define NLU_INTENT_NAME_MAX 256 /* bytes of an intent name */
#define NLU_INTENTS_MAX 4096    /* intents one model tells apart */

typedef struct nlu_score_s {
    const char *intent; /* borrowed from the model */
    double score;       /* calibrated probability, 0..1 */
} nlu_score_t;

typedef struct nlu_result_s {
    nlu_score_t top[NLU_TOP_K]; /* best first; out-of-scope class excluded */
    size_t n_top;
    double confidence;   /* score of top[0], 0 when n_top == 0 */
    int out_of_scope;    /* 1 when the oos class wins or confidence < threshold */
    ent_list_t entities; /* built-in entities found in the text */
} nlu_result_t;

void nlu_train_opts_init(nlu_train_opts_t *opts);

/* Trains a model from n examples (borrowed; nothing is kept). Needs at least
 * two intents, or one intent and out-of-scope examples; every example needs
 * a non-empty text and an intent name of at most 256 bytes; at most 4096
 * intents. opts may be NULL (defaults). OUT: *out, an owned model, NULL on
 * error. Deterministic: same examples, order and seed give the same bytes
 * from nlu_model_save(). Errors: CORE_ERR_INVALID or CORE_ERR_LIMIT with a
 * message naming the example ("example 12 (intent \"x\"): empty text"). */
int nlu_train(const nlu_example_t *examples, size_t n, const nlu_train_opts_t *opts,
              nlu_model_t **out, core_err_t *err);
void nlu_model_free(nlu_model_t *m);

/* Classifies len bytes of text (any bytes: invalid UTF-8 is dropped; only
 * the first 2048 bytes are classified) and extracts entities against ctx
 * (NULL: none). OUT: *out. Text with no feature known to the model is out
 * of scope. Returns 0, or CORE_ERR_INVALID for a NULL model or output or a
 * NULL text with len > 0. */
int nlu_route(const nlu_model_t *m, const char *text, size_t len, const ent_ctx_t *ctx,
              nlu_result_t *out);

double nlu_model_threshold(const nlu_model_t *m);
/* The softmax temperature that turns raw scores into probabilities. */
double nlu_model_temperature(const nlu_model_t *m);
void nlu_model_set_threshold(nlu_model_t *m, double threshold);
size_t nlu_model_intent_count(const nlu_model_t *m);
const char *nlu_model_intent(const nlu_model_t *m, size_t i);

/* SHA-256 (hex, 64 chars + NUL) of the training data and options: the cache key. */
void nlu_training_hash(const nlu_example_t *examples, size_t n, const nlu_train_opts_t *opts,
                       char out[65]);
/* Appends the model's bytes to out (CORE_ERR_LIMIT if out's limit is too
 * small: CLINC150's model is about 36 MB), and back: load copies what it
 * needs from data (borrowed), validates every count, index and number, and
 * returns an owned model in *out or CORE_ERR_INVALID saying what is wrong. */
int nlu_model_save(const nlu_model_t *m, core_buf_t *out);
int nlu_model_load(const void *data, size_t len, nlu_model_t **out, core_err_t *err);

/* ---- evaluation data and threshold tuning (chorusctl nlu eval) ---------- */

typedef enum {
    NLU_FORMAT_CLINC, /* CLINC150 JSON: {"train": [[text, label], ...], "oos_train": ...} */
    NLU_FORMAT_CSV,   /* header with text and label (or category) columns, RFC 4180 */
    NLU_FORMAT_JSONL, /* one {"text": ..., "label": ...} per line */
} nlu_format_t;

/* A list of labelled utterances; every string is owned by the set. */
typedef struct nlu_dataset_s {
    nlu_example_t *items; /* owned; text and intent owned */
    size_t len;
    size_t cap;
} nlu_dataset_t;

void nlu_dataset_init(nlu_dataset_t *ds);
void nlu_dataset_dispose(nlu_dataset_t *ds);
/* Appends copies of text and intent. */
void nlu_dataset_add(nlu_dataset_t *ds, const char *text, size_t text_len, const char *intent);
/* "clinc" | "csv" | "jsonl"; 0 or CORE_ERR_NOT_FOUND. */
int nlu_format_parse(const char *name, nlu_format_t *out);
/* Guesses the format from a file name (.json -> clinc, .csv, .jsonl/.ndjson). */
int nlu_format_guess(const char *path, nlu_format_t *out);
/* Parses len bytes of a data file and appends its examples to ds. split
 * names the CLINC split ("train", "val", "test": the split plus its "oos_"
 * twin, whose label becomes oos_label); other formats ignore it. Errors name
 * file:line (and the JSON path for CLINC). */
int nlu_dataset_parse(nlu_dataset_t *ds, nlu_format_t fmt, const char *split, const char *oos_label,
                      const char *text, size_t len, const char *file, core_err_t *err);

/* Calibrates m on val (labelled with oos_label for out of scope): first the
 * softmax temperature that minimises the log loss, so that scores are
 * probabilities, then the confidence threshold that catches the most
 * out-of-scope examples while in-scope accuracy stays within max_drop (a
 * fraction: 0.005 is half a point) of its value with no threshold. Stores
 * both in m and the threshold in *out. Needs in-scope and out-of-scope
 * examples in val. */
int nlu_tune_threshold(nlu_model_t *m, const nlu_example_t *val, size_t n, const char *oos_label,
                       double max_drop, double *out, core_err_t *err);

typedef struct nlu_tune_opts_s {
    const char *oos_label; /* NULL = "oos" */
    double max_drop;       /* accuracy budget, a fraction (default 0.005) */
    /* folds >= 2: the training examples (those m was trained on, with the
     * same train_opts) are also scored, each by a model trained on the
     * other folds, and tuned on with val. 0: val alone. */
    unsigned folds;
    const nlu_example_t *train;
    size_t n_train;
    const nlu_train_opts_t *train_opts; /* NULL: defaults */
} nlu_tune_opts_t;

typedef struct nlu_tune_report_s {
    double threshold, temperature;
    int threshold_tuned; /* 0: no out-of-scope example, the threshold kept */
    unsigned folds;      /* fold models trained */
    size_t n_pooled;     /* examples tuned on */
} nlu_tune_report_t;

void nlu_tune_opts_init(nlu_tune_opts_t *o);
/* nlu_tune_threshold() with options: the temperature and the threshold
 * are tuned on val and the out-of-fold scores pooled (one budget over
 * all), which steadies the threshold that a small val leaves noisy (docs/
 * nlu.md, fourth round). Folds are stratified by intent and drawn from
 * train_opts' seed: same inputs, same result. A training example whose
 * intent its fold's model lacks is left out; a fold that cannot train is
 * skipped (rep->folds counts those trained). val may be empty. With no
 * out-of-scope example in the pool only the temperature is fitted (it needs
 * in-scope examples alone) and the threshold is kept (rep->threshold_tuned
 * 0; docs/nlu.md, sixth round). rep may be NULL. Errors: CORE_ERR_INVALID,
 * m untouched, when the pool holds no in-scope example of m's intents. */
int nlu_tune(nlu_model_t *m, const nlu_example_t *val, size_t n_val, const nlu_tune_opts_t *opts,
             nlu_tune_report_t *rep, core_err_t *err);

#endif
