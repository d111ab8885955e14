/* Threshold tuning of the intent router: the sweep under an accuracy
 * budget, the pool of validation and out-of-fold scores (folds, classes a
 * fold's model lacks, routing's own arithmetic), tuning on folds alone,
 * calibration without out-of-scope examples, determinism and bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/nlu_int.h"
#include "chorus/nlu.h"
#include "test_nlu_toy.h"

static const nlu_example_t toy[] = {
    NLU_TOY_EXAMPLES, {"play some jazz music", "music"}, /* the only example of its intent */
};
#define N_TOY (sizeof(toy) / sizeof(toy[0]))

static const nlu_example_t val[] = {
    {"book me a flight", "book_flight"},    {"is it raining", "weather"},
    {"my balance please", "balance"},       {"sing me a song", "oos"},
    {"what is the capital of peru", "oos"}, {"put on some music", "music"},
};
#define N_VAL (sizeof(val) / sizeof(val[0]))

static nlu_model_t *train(const nlu_example_t *ex, size_t n, nlu_train_opts_t *o)
{
    nlu_model_t *m = NULL;
    core_err_t err = {0};
    nlu_train_opts_init(o);
    assert_int_equal(nlu_train(ex, n, o, &m, &err), 0);
    return m;
}

static void item(nlu__item_t *it, double conf, int oos, int right, int won)
{
    *it = (nlu__item_t){.conf = conf, .oos_truth = oos, .right = right, .oos_won = won};
}

/* Five in-scope (four right), three out of scope (one caught by its class). */
static void test_sweep_budget(void **state)
{
    nlu__item_t it[8];
    item(&it[0], 0.05, 1, 0, 1);
    item(&it[1], 0.1, 0, 0, 0);
    item(&it[2], 0.15, 1, 0, 0);
    item(&it[3], 0.2, 0, 1, 0);
    item(&it[4], 0.3, 1, 0, 0);
    item(&it[5], 0.7, 0, 1, 0);
    item(&it[6], 0.8, 0, 1, 0);
    item(&it[7], 0.9, 0, 1, 0);
    /* 0.8 accuracy untuned; a budget of 0.25 allows one right item lost:
     * the threshold goes past 0.3 and catches every oos item */
    assert_true(fabs(nlu__sweep(it, 8, 0.25) - 0.5) < 1e-12);
    /* a budget of 0.1 (less than one item in five) or none loses no right
     * item: the threshold stops below the one at 0.2 */
    assert_true(fabs(nlu__sweep(it, 8, 0.1) - 0.175) < 1e-12);
    assert_true(fabs(nlu__sweep(it, 8, 0.0) - 0.175) < 1e-12);
    /* nothing to catch: no threshold */
    assert_true(nlu__sweep(it + 5, 3, 0.5) == 0);
}

/* A validation example in the pool is what nlu_route() says of it. */
static void test_pool_matches_route(void **state)
{
    nlu_train_opts_t o;
    nlu_model_t *m = train(toy, N_TOY, &o);
    nlu_tune_opts_t to;
    nlu__pool_t p;
    core_err_t err = {0};
    nlu_tune_opts_init(&to);
    assert_int_equal(nlu__pool_build(&p, m, val, N_VAL, &to, &err), 0);
    assert_int_equal(p.n, N_VAL);
    assert_int_equal(p.folds, 0);
    nlu_model_set_threshold(m, 0);
    for (size_t i = 0; i < N_VAL; i++) {
        nlu__item_t it;
        nlu_result_t r;
        nlu__pool_decide(&p, i, nlu_model_temperature(m), &it);
        nlu_route(m, val[i].text, strlen(val[i].text), NULL, &r);
        assert_true(it.conf == r.confidence);
        assert_int_equal(it.oos_won, r.out_of_scope);
        assert_int_equal(it.oos_truth, strcmp(val[i].intent, "oos") == 0);
        assert_int_equal(it.right, !it.oos_truth && !r.out_of_scope &&
                                       strcmp(r.top[0].intent, val[i].intent) == 0);
        assert_int_equal(it.src, 0);
    }
    nlu__pool_dispose(&p);
    nlu_model_free(m);
}

static void test_folds(void **state)
{
    nlu_train_opts_t o;
    nlu_model_t *m = train(toy, N_TOY, &o);
    nlu_tune_opts_t to;
    nlu__pool_t p;
    core_err_t err = {0};
    nlu_tune_opts_init(&to);
    to.folds = 3;
    to.train = toy;
    to.n_train = N_TOY;
    to.train_opts = &o;
    assert_int_equal(nlu__pool_build(&p, m, val, N_VAL, &to, &err), 0);
    assert_int_equal(p.folds, 3);
    /* every training example once, scored by a fold, but the lone "music"
     * example: its fold's model never saw the intent */
    assert_int_equal(p.n, N_VAL + N_TOY - 1);
    size_t per_fold[4] = {0}, per_class[8][4] = {{0}};
    for (size_t i = N_VAL; i < p.n; i++) {
        assert_true(p.src[i] >= 1 && p.src[i] <= 3);
        assert_true(p.label[i] >= 0);
        per_fold[p.src[i]]++;
        per_class[p.label[i]][p.src[i]]++;
    }
    /* stratified: each fold holds 5 examples and a share of every class */
    for (int f = 1; f <= 3; f++) {
        assert_int_equal(per_fold[f], 5);
        for (uint32_t c = 0; c < m->n_class; c++)
            if ((int32_t)c != m->oos_class && strcmp(m->names[c], "music") != 0)
                assert_true(per_class[c][f] >= 1);
    }
    nlu__pool_dispose(&p);
    nlu_model_free(m);
}

static void test_tune_folds(void **state)
{
    nlu_train_opts_t o;
    nlu_model_t *a = train(toy, N_TOY, &o), *b = train(toy, N_TOY, &o);
    nlu_tune_opts_t to;
    nlu_tune_report_t ra, rb;
    core_err_t err = {0};
    nlu_tune_opts_init(&to);
    to.folds = 4;
    to.train = toy;
    to.n_train = N_TOY;
    to.train_opts = &o;
    to.max_drop = 0.05;
    assert_int_equal(nlu_tune(a, val, N_VAL, &to, &ra, &err), 0);
    assert_int_equal(nlu_tune(b, val, N_VAL, &to, &rb, &err), 0);
    assert_int_equal(ra.folds, 4);
    assert_int_equal(ra.n_pooled, N_VAL + N_TOY - 1);
    assert_true(ra.threshold >= 0 && ra.threshold <= 1);
    assert_true(ra.threshold == nlu_model_threshold(a));
    assert_true(ra.temperature == nlu_model_temperature(a));
    assert_true(ra.temperature >= 0.5 && ra.temperature <= 200);
    /* the same examples and seed tune the same */
    assert_true(ra.threshold == rb.threshold && ra.temperature == rb.temperature);
    /* the training examples' out-of-scope ones are enough without val */
    assert_int_equal(nlu_tune(b, NULL, 0, &to, &rb, &err), 0);
    assert_int_equal(rb.n_pooled, N_TOY - 1);
    /* more folds than allowed are capped at 20: each example alone in one
     * of the first 16, the last four empty and not trained */
    to.folds = 1000;
    assert_int_equal(nlu_tune(b, NULL, 0, &to, &rb, &err), 0);
    assert_int_equal(rb.folds, N_TOY);
    assert_int_equal(rb.n_pooled, N_TOY - 1);
    /* folds ask for the training examples: without them, val alone */
    to.folds = 5;
    to.train = NULL;
    assert_int_equal(nlu_tune(b, val, N_VAL, &to, &rb, &err), 0);
    assert_int_equal(rb.folds, 0);
    assert_int_equal(rb.n_pooled, N_VAL);
    assert_int_equal(nlu_tune(b, NULL, 0, &to, &rb, &err), CORE_ERR_INVALID);
    nlu_model_free(a);
    nlu_model_free(b);
}

static void test_tune_without_oos(void **state)
{
    nlu_train_opts_t o;
    /* no out-of-scope examples anywhere: the temperature is fitted on the
     * in-scope ones (the pool's log-loss optimum), the threshold kept */
    nlu_model_t *m = train(toy, 12, &o);
    nlu_tune_opts_t to;
    nlu_tune_report_t rep;
    core_err_t err = {0};
    nlu_tune_opts_init(&to);
    to.folds = 3;
    to.train = toy;
    to.n_train = 12;
    to.train_opts = &o;
    double t = nlu_model_threshold(m), temp = nlu_model_temperature(m);
    assert_int_equal(nlu_tune(m, val, 3, &to, &rep, &err), 0);
    assert_int_equal(rep.threshold_tuned, 0);
    assert_true(nlu_model_threshold(m) == t && rep.threshold == t);
    assert_true(rep.temperature == nlu_model_temperature(m));
    assert_true(nlu_model_temperature(m) != temp);
    assert_int_equal(rep.n_pooled, 3 + 12);
    nlu__pool_t p;
    assert_int_equal(nlu__pool_build(&p, m, val, 3, &to, &err), 0);
    assert_int_equal(p.n_oos, 0);
    assert_true(nlu__fit_temperature(&p) == nlu_model_temperature(m));
    nlu__pool_dispose(&p);
    /* the threshold alone cannot be tuned without them: an error, m untouched */
    temp = nlu_model_temperature(m);
    double out = -1;
    assert_int_equal(nlu_tune_threshold(m, val, 3, "oos", 0.005, &out, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "out-of-scope"));
    assert_true(nlu_model_temperature(m) == temp && out == -1);
    /* nor anything without in-scope examples of the model's intents */
    nlu_example_t only_oos[] = {{"sing me a song", "oos"}, {"tell me a joke", "oos"}};
    nlu_example_t unknown[] = {{"order a pizza", "pizza"}};
    to.folds = 0;
    assert_int_equal(nlu_tune(m, only_oos, 2, &to, &rep, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "in-scope"));
    assert_int_equal(nlu_tune(m, unknown, 1, &to, &rep, &err), CORE_ERR_INVALID);
    assert_true(nlu_model_temperature(m) == temp && nlu_model_threshold(m) == t);
    to.folds = 3;
    /* too few examples for a fold to train on: skipped, not an error */
    nlu_example_t two[] = {{"hello there", "greet"}, {"what time is it", "oos"}};
    nlu_model_t *s = train(two, 2, &o);
    to.train = two;
    to.n_train = 2;
    assert_int_equal(nlu_tune(s, val, N_VAL, &to, &rep, &err), 0);
    assert_int_equal(rep.folds, 0);
    nlu_model_free(s);
    nlu_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_budget),
        cmocka_unit_test(test_pool_matches_route),
        cmocka_unit_test(test_folds),
        cmocka_unit_test(test_tune_folds),
        cmocka_unit_test(test_tune_without_oos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
