/* The intent router on small data: normalisation, features, training
 * determinism, routing, out-of-scope, the model's byte format, threshold
 * tuning, data files and bad input. */
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
    NLU_TOY_EXAMPLES,
};
#define N_TOY (sizeof(toy) / sizeof(toy[0]))

static const char *norm(const char *s)
{
    static nlu__text_t t;
    nlu__normalize(s, strlen(s), &t);
    return t.buf;
}

static void test_normalize(void **state)
{
    assert_string_equal(norm("Hello, World!"), "hello world");
    assert_string_equal(norm("  CAFÉ  crème "), "cafe creme");
    assert_string_equal(norm("Straße"), "strasse");
    assert_string_equal(norm("don't STOP"), "don't stop");
    assert_string_equal(norm("it\xE2\x80\x99s fine"), "it's fine"); /* U+2019 */
    assert_string_equal(norm("'quoted' words'"), "quoted words");
    assert_string_equal(norm("pay $1,200.50 now"), "pay $ 1,200.50 now");
    assert_string_equal(norm("ends with 3. next"), "ends with 3 next");
    assert_string_equal(norm("50% off"), "50 % off");
    assert_string_equal(norm("ﬁle"), "file"); /* compatibility ligature */
    assert_string_equal(norm(""), "");
    assert_string_equal(norm("!!! ??"), "");
    /* invalid UTF-8 separates tokens and never crashes */
    assert_string_equal(norm("ab\xFF\xFE"
                             "cd\xC3"),
                        "ab cd");
}

static void test_normalize_huge(void **state)
{
    size_t n = 1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 7 == 6 ? ' ' : 'a' + (char)(i % 26));
    nlu__text_t *t = malloc(sizeof(*t));
    nlu__normalize(big, n, t);
    assert_true(t->n_tok > 0 && t->n_tok <= NLU__TOKENS_MAX);
    assert_true(t->len < sizeof(t->buf));
    /* bytes that expand when folded (U+FDFA is 18 code points) */
    for (size_t i = 0; i + 3 <= n; i += 3)
        memcpy(big + i, "\xEF\xB7\xBA", 3);
    nlu__normalize(big, n, t);
    assert_true(t->len < sizeof(t->buf));
    free(t);
    free(big);
}

static void test_features(void **state)
{
    nlu__text_t t;
    nlu__feats_t f, g;
    nlu__fcfg_t cfg = {.char_min = 2, .char_max = 4, .flags = NLU__F_BIGRAMS, .view_scale = {1, 1}};
    nlu__normalize("book book a flight", 18, &t);
    nlu__features(&t, &cfg, &f);
    size_t words = 0, counted2 = 0;
    for (size_t i = 0; i < f.len; i++) {
        assert_true(f.items[i].hash != 0);
        words += f.items[i].view == NLU__VIEW_WORD;
        counted2 += f.items[i].count == 2.0f;
        for (size_t j = i + 1; j < f.len; j++)
            assert_true(f.items[i].hash != f.items[j].hash);
    }
    /* 3 distinct words + <num>? no; 5 bigrams with the edges */
    assert_int_equal(words, 3 + 5);
    assert_true(counted2 >= 2); /* "book" and its char n-grams */
    nlu__normalize("BOOK book A Flight!", 19, &t);
    nlu__features(&t, &cfg, &g);
    assert_int_equal(f.len, g.len);
    for (size_t i = 0; i < f.len; i++)
        assert_true(f.items[i].hash == g.items[i].hash);
    /* trigrams and skip-grams add one feature each per position from the third word */
    nlu__normalize("a b c d", 7, &t);
    cfg.flags = 0;
    cfg.char_max = 0;
    nlu__features(&t, &cfg, &f);
    assert_int_equal(f.len, 4);
    cfg.flags = NLU__F_TRIGRAMS | NLU__F_SKIPGRAMS;
    nlu__features(&t, &cfg, &f);
    assert_int_equal(f.len, 4 + 2 + 2);
    /* character n-grams within words only: no window spans a space */
    cfg.flags = NLU__F_CHAR_IN_WORD;
    cfg.char_min = cfg.char_max = 3;
    nlu__normalize("ab cd", 5, &t);
    nlu__features(&t, &cfg, &f);
    assert_int_equal(f.len, 2 + 4); /* words + " ab", "ab ", " cd", "cd " but not "b c" */
    cfg.flags = 0;
    nlu__features(&t, &cfg, &f);
    assert_int_equal(f.len, 2 + 5); /* " ab", "ab ", "b c", " cd", "cd " */
    cfg.char_max = 0;
    nlu__normalize("pay 20 now", 10, &t);
    nlu__features(&t, &cfg, &f);
    assert_int_equal(f.len, 4); /* pay, 20, <num>, now */
}

static nlu_model_t *train_toy(uint64_t seed)
{
    nlu_train_opts_t o;
    nlu_model_t *m = NULL;
    core_err_t err = {0};
    nlu_train_opts_init(&o);
    o.seed = seed;
    assert_int_equal(nlu_train(toy, N_TOY, &o, &m, &err), 0);
    assert_non_null(m);
    return m;
}

static void test_train_route(void **state)
{
    nlu_model_t *m = train_toy(1);
    nlu_result_t r;
    assert_int_equal(nlu_model_intent_count(m), 3);
    assert_string_equal(nlu_model_intent(m, 0), "book_flight");
    assert_string_equal(nlu_model_intent(m, 2), "balance");
    assert_null(nlu_model_intent(m, 3));
    const char *q = "please book me a flight to london";
    assert_int_equal(nlu_route(m, q, strlen(q), NULL, &r), 0);
    assert_string_equal(r.top[0].intent, "book_flight");
    assert_int_equal(r.out_of_scope, 0);
    assert_int_equal(r.n_top, 3);
    assert_true(r.confidence == r.top[0].score);
    assert_true(r.top[0].score >= r.top[1].score && r.top[1].score >= r.top[2].score);
    double sum = 0;
    for (size_t i = 0; i < r.n_top; i++) {
        assert_true(r.top[i].score > 0 && r.top[i].score < 1);
        sum += r.top[i].score;
    }
    assert_true(sum <= 1.0 + 1e-6);
    q = "Will it RAIN on Friday?";
    nlu_route(m, q, strlen(q), NULL, &r);
    assert_string_equal(r.top[0].intent, "weather");
    q = "what is my balance";
    nlu_route(m, q, strlen(q), NULL, &r);
    assert_string_equal(r.top[0].intent, "balance");
    /* nothing known, or nothing at all: out of scope, no crash */
    nlu_route(m, "zzqx vvkj", 9, NULL, &r);
    assert_int_equal(r.out_of_scope, 1);
    assert_int_equal(nlu_route(m, "", 0, NULL, &r), 0);
    assert_int_equal(r.out_of_scope, 1);
    assert_int_equal(nlu_route(m, NULL, 0, NULL, &r), 0);
    assert_int_equal(nlu_route(m, "\xFF\xFE\xFD", 3, NULL, &r), 0);
    assert_int_equal(r.out_of_scope, 1);
    assert_int_equal(nlu_route(m, NULL, 5, NULL, &r), CORE_ERR_INVALID);
    /* the threshold is respected */
    nlu_model_set_threshold(m, 1.0);
    q = "book a flight to paris";
    nlu_route(m, q, strlen(q), NULL, &r);
    assert_int_equal(r.out_of_scope, 1);
    assert_string_equal(r.top[0].intent, "book_flight");
    nlu_model_set_threshold(m, 7);
    assert_true(nlu_model_threshold(m) == 1.0);
    nlu_model_free(m);
    nlu_model_free(NULL);
}

static double sum_of_squares(const nlu_model_t *m, const char *text)
{
    static nlu__vec_t v;
    nlu__vectorize(m, text, strlen(text), &v);
    double sq = 0;
    for (size_t i = 0; i < v.len; i++)
        sq += (double)v.val[i] * v.val[i];
    return sq;
}

/* Unknown features count in their view's norm, so the known part of an
 * utterance weighs what it is worth: a training example's views have their
 * full length (1 and the character view's 1.5), one with an unknown word
 * added is shorter, and the intent stays (test_flow_oos.c checks names
 * typed alone). */
static void test_unknown_words_count(void **state)
{
    nlu_model_t *m = train_toy(1);
    nlu_result_t r;
    assert_float_equal(sum_of_squares(m, "book a flight to paris"), 1 + 1.5 * 1.5, 1e-4);
    double sq = sum_of_squares(m, "book a flight to paris zqxv");
    assert_true(sq < 3.0 && sq > 1.0);
    assert_float_equal(sum_of_squares(m, "zqxv"), 0, 0); /* nothing known: nothing */
    nlu_route(m, "book a flight to paris zqxv", 27, NULL, &r);
    assert_string_equal(r.top[0].intent, "book_flight");
    nlu_model_free(m);
}

static void test_determinism_and_io(void **state)
{
    nlu_model_t *a = train_toy(7), *b = train_toy(7), *c = NULL;
    core_buf_t ba, bb;
    core_err_t err = {0};
    core_buf_init(&ba, 64 << 20);
    core_buf_init(&bb, 64 << 20);
    assert_int_equal(nlu_model_save(a, &ba), 0);
    assert_int_equal(nlu_model_save(b, &bb), 0);
    assert_int_equal(ba.len, bb.len);
    assert_memory_equal(ba.data, bb.data, ba.len);
    assert_int_equal(nlu_model_load(ba.data, ba.len, &c, &err), 0);
    nlu_result_t ra, rc;
    const char *q = "is it cold outside in reykjavik"; /* an unseen word too */
    nlu_route(a, q, strlen(q), NULL, &ra);
    nlu_route(c, q, strlen(q), NULL, &rc);
    assert_string_equal(ra.top[0].intent, rc.top[0].intent);
    assert_true(ra.confidence == rc.confidence);
    /* every truncation and a flipped header byte are refused cleanly */
    for (size_t n = 0; n < ba.len; n += 1 + n / 8) {
        nlu_model_t *bad = NULL;
        assert_true(nlu_model_load(ba.data, n, &bad, &err) < 0);
        assert_null(bad);
    }
    /* corrupted bytes anywhere: refused, or a model that routes without harm */
    uint64_t rng = 12345;
    for (int round = 0; round < 300; round++) {
        char *copy = malloc(ba.len);
        memcpy(copy, ba.data, ba.len);
        for (int k = 0; k < 1 + round % 4; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % (round < 150 ? 200 : ba.len);
            copy[pos] ^= (char)(1u << ((rng >> 20) & 7));
        }
        nlu_model_t *x = NULL;
        if (nlu_model_load(copy, ba.len, &x, &err) == 0) {
            nlu_result_t rx;
            assert_int_equal(nlu_route(x, q, strlen(q), NULL, &rx), 0);
            nlu_model_free(x);
        }
        free(copy);
    }
    nlu_model_t *bad = NULL;
    ba.data[0] ^= 1;
    assert_int_equal(nlu_model_load(ba.data, ba.len, &bad, &err), CORE_ERR_INVALID);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "not a chorus intent model"));
    core_buf_dispose(&ba);
    core_buf_dispose(&bb);
    nlu_model_free(a);
    nlu_model_free(b);
    nlu_model_free(c);
}

static void test_training_hash(void **state)
{
    char h1[65], h2[65], h3[65];
    nlu_train_opts_t o;
    nlu_train_opts_init(&o);
    nlu_training_hash(toy, N_TOY, &o, h1);
    nlu_training_hash(toy, N_TOY, &o, h2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    nlu_training_hash(toy, N_TOY - 1, &o, h3);
    assert_string_not_equal(h1, h3);
    o.seed = 2;
    nlu_training_hash(toy, N_TOY, &o, h3);
    assert_string_not_equal(h1, h3);
}

static void test_bad_training(void **state)
{
    nlu_model_t *m = NULL;
    core_err_t err = {0};
    nlu_example_t one[] = {{"hello", "greet"}, {"hi there", "greet"}};
    assert_int_equal(nlu_train(one, 2, NULL, &m, &err), CORE_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(err.msg, "need at least two intents"));
    nlu_example_t only_oos[] = {{"hello", "oos"}, {"hi there", "oos"}};
    assert_int_equal(nlu_train(only_oos, 2, NULL, &m, &err), CORE_ERR_INVALID);
    nlu_example_t empty[] = {{"hello", "greet"}, {"", "bye"}};
    assert_int_equal(nlu_train(empty, 2, NULL, &m, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "example 2 (intent \"bye\"): empty text"));
    nlu_example_t nolabel[] = {{"hello", "greet"}, {"bye", NULL}};
    assert_int_equal(nlu_train(nolabel, 2, NULL, &m, &err), CORE_ERR_INVALID);
    assert_int_equal(nlu_train(NULL, 0, NULL, &m, &err), CORE_ERR_INVALID);
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    nlu_example_t lng[] = {{"hello", "greet"}, {"bye", longname}};
    assert_int_equal(nlu_train(lng, 2, NULL, &m, &err), CORE_ERR_LIMIT);
    assert_null(m);
    /* one intent plus out-of-scope examples is enough */
    nlu_example_t one_oos[] = {{"hello", "greet"}, {"what time is it", "oos"}};
    assert_int_equal(nlu_train(one_oos, 2, NULL, &m, &err), 0);
    assert_int_equal(nlu_model_intent_count(m), 1);
    nlu_model_free(m);
    /* examples with no usable characters still train */
    nlu_example_t punct[] = {{"?!", "a"}, {"hello", "b"}};
    assert_int_equal(nlu_train(punct, 2, NULL, &m, &err), 0);
    nlu_model_free(m);
}

static void test_tune(void **state)
{
    nlu_model_t *m = train_toy(1);
    nlu_example_t val[] = {
        {"book me a flight", "book_flight"},    {"is it raining", "weather"},
        {"my balance please", "balance"},       {"sing me a song", "oos"},
        {"what is the capital of peru", "oos"},
    };
    core_err_t err = {0};
    double t = -1;
    assert_int_equal(nlu_tune_threshold(m, val, 5, "oos", 0.01, &t, &err), 0);
    assert_true(t >= 0 && t <= 1);
    assert_true(nlu_model_threshold(m) == t);
    assert_int_equal(nlu_tune_threshold(m, val, 3, "oos", 0.01, &t, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "out-of-scope"));
    nlu_model_free(m);
}

static int parse(nlu_format_t fmt, const char *text, nlu_dataset_t *ds, core_err_t *err)
{
    nlu_dataset_init(ds);
    return nlu_dataset_parse(ds, fmt, "train", "oos", text, strlen(text), "f", err);
}

static void test_data_files(void **state)
{
    nlu_dataset_t ds;
    core_err_t err = {0};
    assert_int_equal(parse(NLU_FORMAT_CSV,
                           "id,text,label\r\n1,hello,greet\r\n2,\"say \"\"hi\"\", ok\",greet\n"
                           "3,\"two\nlines\",x\n\n4,last,y",
                           &ds, &err),
                     0);
    assert_int_equal(ds.len, 4);
    assert_string_equal(ds.items[1].text, "say \"hi\", ok");
    assert_string_equal(ds.items[2].text, "two\nlines");
    assert_string_equal(ds.items[3].intent, "y");
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CSV, "text,category\na,b\nc,d,e\n", &ds, &err),
                     CORE_ERR_INVALID);
    assert_string_equal(err.msg, "f:3: 3 fields, the header has 2");
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CSV, "text,label\na,b\n\"open,b\n", &ds, &err),
                     CORE_ERR_INVALID);
    assert_string_equal(err.msg, "f:3: unterminated quoted field");
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CSV, "words,label\n", &ds, &err), CORE_ERR_INVALID);
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_JSONL,
                           "{\"text\":\"hi\",\"label\":\"greet\"}\n\n"
                           "{\"text\":\"bye\",\"intent\":\"leave\"}\n",
                           &ds, &err),
                     0);
    assert_int_equal(ds.len, 2);
    assert_string_equal(ds.items[1].intent, "leave");
    nlu_dataset_dispose(&ds);
    assert_int_equal(
        parse(NLU_FORMAT_JSONL, "{\"text\":\"hi\",\"label\":\"g\"}\n{\"text\":3}\n", &ds, &err),
        CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "f:2:"));
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_JSONL, "{\"text\":\"hi\",\n", &ds, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "f:1:"));
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CLINC,
                           "{\"train\": [[\"a b\", \"x\"], [\"c\", \"y\"]],\n"
                           " \"oos_train\": [[\"d\", \"oos\"]]}",
                           &ds, &err),
                     0);
    assert_int_equal(ds.len, 3);
    assert_string_equal(ds.items[2].intent, "oos");
    nlu_dataset_dispose(&ds);
    assert_int_equal(
        parse(NLU_FORMAT_CLINC, "{\"train\": [[\"a\", \"x\"],\n [\"c\", 5]]}", &ds, &err),
        CORE_ERR_INVALID);
    assert_string_equal(err.msg, "f:2:2: train[1]: expected [text, label] strings");
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CLINC, "{\"val\": []}", &ds, &err), CORE_ERR_INVALID);
    nlu_dataset_dispose(&ds);
    assert_int_equal(parse(NLU_FORMAT_CLINC, "{\"train\": [}", &ds, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "f:1:"));
    nlu_dataset_dispose(&ds);
    nlu_format_t f;
    assert_int_equal(nlu_format_guess("x/data.jsonl", &f), 0);
    assert_int_equal(f, NLU_FORMAT_JSONL);
    assert_int_equal(nlu_format_parse("tsv", &f), CORE_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),          cmocka_unit_test(test_normalize_huge),
        cmocka_unit_test(test_features),           cmocka_unit_test(test_train_route),
        cmocka_unit_test(test_determinism_and_io), cmocka_unit_test(test_training_hash),
        cmocka_unit_test(test_bad_training),       cmocka_unit_test(test_tune),
        cmocka_unit_test(test_data_files),         cmocka_unit_test(test_unknown_words_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
