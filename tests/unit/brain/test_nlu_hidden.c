/* The intent router's hidden layer: it learns what no weight on a single
 * feature can (which of two words goes with which), it is trained only on
 * example sets of a thousand or more, training is repeatable, and the
 * model's byte format carries it and refuses it damaged. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/nlu_int.h"
#include "chorus/nlu.h"

#define N_TRAIN 1200
#define N_TEST 400

static const char *const fillers[] = {"please", "now",   "the",  "one",   "again", "today",
                                      "quick",  "thing", "kind", "maybe", "just",  "here",
                                      "some",   "very",  "that", "okay",  "ever",  "soon"};
#define N_FILLERS (sizeof(fillers) / sizeof(fillers[0]))

/* "red ... circle" and "blue ... square" are one intent, "red ... square"
 * and "blue ... circle" the other: each word on its own is as common in
 * both, and two filler words keep them apart, so no word, bigram or
 * character n-gram tells the intents apart; only the pair does. */
typedef struct xor_set_s {
    nlu_example_t ex[N_TRAIN];
    char text[N_TRAIN][64];
} xor_set_t;

static void xor_fill(xor_set_t *s, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = nlu__rng_next(&seed);
        int red = (int)(r & 1), circle = (int)((r >> 1) & 1);
        snprintf(s->text[i], sizeof(s->text[i]), "%s %s %s %s", red ? "red" : "blue",
                 fillers[(r >> 8) % N_FILLERS], fillers[(r >> 24) % N_FILLERS],
                 circle ? "circle" : "square");
        s->ex[i].text = s->text[i];
        s->ex[i].intent = red == circle ? "same" : "crossed";
    }
}

static nlu_model_t *train(const nlu_example_t *ex, size_t n, uint64_t seed)
{
    nlu_train_opts_t o;
    nlu_model_t *m = NULL;
    core_err_t err = {0};
    nlu_train_opts_init(&o);
    o.seed = seed;
    o.oos_threshold = 0;
    assert_int_equal(nlu_train(ex, n, &o, &m, &err), 0);
    return m;
}

static size_t routed_right(const nlu_model_t *m, const xor_set_t *s, size_t n)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        nlu_result_t r;
        assert_int_equal(nlu_route(m, s->text[i], strlen(s->text[i]), NULL, &r), 0);
        right += r.n_top > 0 && strcmp(r.top[0].intent, s->ex[i].intent) == 0;
    }
    return right;
}

static void test_the_layer_learns_word_pairs(void **state)
{
    static xor_set_t train_set, test_set;
    xor_fill(&train_set, N_TRAIN, 11);
    xor_fill(&test_set, N_TEST, 99);
    nlu_model_t *m = train(train_set.ex, N_TRAIN, 1);
    assert_int_equal(m->hidden, 128);
    size_t blended = routed_right(m, &test_set, N_TEST);
    m->hidden = 0; /* the linear model alone */
    size_t linear = routed_right(m, &test_set, N_TEST);
    m->hidden = 128; /* the layer alone: the linear weights and biases zeroed */
    memset(m->wq, 0, (size_t)m->n_feat * m->stride);
    memset(m->bias, 0, m->stride * sizeof(float));
    size_t layer = routed_right(m, &test_set, N_TEST);
    print_message("word pairs right of %d: linear %zu, layer %zu, blended %zu\n", N_TEST, linear,
                  layer, blended);
    assert_true(linear <= N_TEST * 65 / 100); /* about chance */
    assert_true(layer >= N_TEST * 95 / 100);
    /* a small share of the scores, so it decides where the linear model
     * cannot, without outvoting it where it can */
    assert_true(blended >= linear + N_TEST / 10);
    nlu_model_free(m);
}

static void test_small_sets_train_no_layer(void **state)
{
    static xor_set_t s;
    xor_fill(&s, N_TRAIN, 11);
    nlu_model_t *m = train(s.ex, 999, 1);
    assert_int_equal(m->hidden, 0);
    assert_null(m->hwq);
    nlu_model_free(m);
}

static void test_repeatable_and_saved(void **state)
{
    static xor_set_t s;
    xor_fill(&s, N_TRAIN, 11);
    nlu_model_t *a = train(s.ex, N_TRAIN, 5), *b = train(s.ex, N_TRAIN, 5),
                *c = train(s.ex, N_TRAIN, 6), *back = NULL;
    core_buf_t ba, bb, bc;
    core_err_t err = {0};
    core_buf_init(&ba, 64 << 20);
    core_buf_init(&bb, 64 << 20);
    core_buf_init(&bc, 64 << 20);
    assert_int_equal(nlu_model_save(a, &ba), 0);
    assert_int_equal(nlu_model_save(b, &bb), 0);
    assert_int_equal(nlu_model_save(c, &bc), 0);
    assert_int_equal(ba.len, bb.len);
    assert_memory_equal(ba.data, bb.data, ba.len);
    assert_true(ba.len != bc.len || memcmp(ba.data, bc.data, ba.len) != 0);
    assert_int_equal(nlu_model_load(ba.data, ba.len, &back, &err), 0);
    assert_int_equal(back->hidden, 128);
    assert_int_equal(back->n_hrow, a->n_hrow);
    for (size_t i = 0; i < 50; i++) {
        nlu_result_t ra, rb;
        nlu_route(a, s.text[i], strlen(s.text[i]), NULL, &ra);
        nlu_route(back, s.text[i], strlen(s.text[i]), NULL, &rb);
        assert_string_equal(ra.top[0].intent, rb.top[0].intent);
        assert_true(ra.confidence == rb.confidence);
    }
    /* the layer's part of the file: its size field, and its weights */
    size_t at = ba.len - (size_t)a->n_hrow * (128 + sizeof(float)) -
                (size_t)128 * a->n_class * sizeof(float) - sizeof(uint32_t);
    uint32_t units;
    memcpy(&units, ba.data + at, sizeof(units));
    assert_int_equal(units, 128);
    const uint32_t bad_units[] = {7, 136, NLU__HIDDEN_MAX + 8};
    for (size_t i = 0; i < sizeof(bad_units) / sizeof(bad_units[0]); i++) {
        nlu_model_t *x = NULL;
        memcpy(ba.data + at, &bad_units[i], sizeof(uint32_t));
        assert_int_equal(nlu_model_load(ba.data, ba.len, &x, &err), CORE_ERR_INVALID);
        assert_null(x);
        assert_non_null(strstr(err.msg, "hidden layer"));
    }
    memcpy(ba.data + at, &units, sizeof(units));
    float nan = NAN;
    memcpy(ba.data + at + sizeof(uint32_t), &nan, sizeof(nan));
    nlu_model_t *x = NULL;
    assert_int_equal(nlu_model_load(ba.data, ba.len, &x, &err), CORE_ERR_INVALID);
    assert_null(x);
    assert_non_null(strstr(err.msg, "non-finite hidden weight"));
    /* cut anywhere in the layer's part: refused */
    for (size_t n = at; n < ba.len; n += 1 + (ba.len - at) / 64) {
        assert_int_equal(nlu_model_load(ba.data, n, &x, &err), CORE_ERR_INVALID);
        assert_null(x);
    }
    core_buf_dispose(&ba);
    core_buf_dispose(&bb);
    core_buf_dispose(&bc);
    nlu_model_free(a);
    nlu_model_free(b);
    nlu_model_free(c);
    nlu_model_free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_layer_learns_word_pairs),
        cmocka_unit_test(test_small_sets_train_no_layer),
        cmocka_unit_test(test_repeatable_and_saved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
