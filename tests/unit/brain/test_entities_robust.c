/* Any bytes in, no crash out: invalid UTF-8, inputs that are not
 * NUL-terminated (copied into exact-size heap buffers so the sanitizer
 * catches any read past the end), huge and adversarial inputs, and the
 * invariants every result keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_entities.h"

/* Result invariants: ranges inside the input, in order, not overlapping,
 * values terminated. */
static void check_list(const ent_list_t *l, size_t len)
{
    assert_true(l->len <= ENT_LIST_MAX);
    for (size_t i = 0; i < l->len; i++) {
        const ent_t *e = &l->items[i];
        assert_true(e->start < e->end);
        assert_true(e->end <= len);
        assert_true(memchr(e->value, '\0', sizeof(e->value)) != NULL);
        assert_true(e->value[0] != '\0');
        assert_true((unsigned)e->type < ENT__COUNT);
        if (i > 0)
            assert_true(l->items[i - 1].end <= e->start);
    }
}

typedef struct fixture_s {
    ent_pattern_t *code;
    ent_choices_t *seats;
} fixture_t;

static void run_all(const fixture_t *fx, const char *text, size_t len)
{
    /* an exact-size copy: no terminator to lean on */
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    ent_ctx_t ctx = ref_ctx();
    ent_list_t l;
    assert_int_equal(ent_extract(buf, len, &ctx, &l), 0);
    check_list(&l, len);
    assert_int_equal(ent_extract(buf, len, NULL, &l), 0);
    check_list(&l, len);
    for (int t = ENT_NUMBER; t <= ENT_PHONE; t++) {
        ent_t e;
        int rc = ent_find((ent_type_t)t, buf, len, &ctx, &e);
        assert_true(rc == 0 || rc == CORE_ERR_NOT_FOUND);
        if (rc == 0)
            assert_true(e.type == (ent_type_t)t && e.end <= len && e.start < e.end);
    }
    ent_t e;
    int rc = ent_pattern_find(fx->code, buf, len, &e);
    assert_true(rc == 0 || rc == CORE_ERR_NOT_FOUND);
    if (rc == 0)
        assert_true(e.end <= len && e.start < e.end);
    rc = ent_choices_find(fx->seats, buf, len, &e);
    assert_true(rc == 0 || rc == CORE_ERR_NOT_FOUND || rc == CORE_ERR_EXISTS);
    if (rc == 0)
        assert_true(e.end <= len && e.start < e.end);
    free(buf);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    core_err_t err;
    fx->code = ent_pattern_new("[A-Z0-9]{6}", 1, &err);
    fx->seats = ent_choices_new();
    static const char *const w[] = {"by the window", "fenêtre", NULL};
    ent_choices_add(fx->seats, "window", w);
    ent_choices_add(fx->seats, "aisle", NULL);
    ent_choices_add(fx->seats, "économie premium", NULL);
    *state = fx;
    return fx->code ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ent_pattern_free(fx->code);
    ent_choices_free(fx->seats);
    free(fx);
    return 0;
}

static void test_truncated_inputs(void **state)
{
    /* every prefix of phrasings that are longer than what is passed */
    static const char *const texts[] = {
        "2026-12-04",
        "12/04/2026",
        "$12.50",
        "john@example.com",
        "+44 20 7946 0958",
        "(415) 555-0100",
        "half past three",
        "2:30 p.m.",
        "twenty-first",
        "in 3 days",
        "the day after tomorrow",
        "30\xe2\x82\xac",
        "\302\2435", /* £5 */
        "4th December 2026",
        "a hundred and five",
        "window",
        "fenêtre",
        "14:30:15",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        for (size_t n = 0; n <= strlen(texts[i]); n++)
            run_all(*state, texts[i], n);
    /* a prefix is read as what it is */
    ent_ctx_t ctx = ref_ctx();
    ent_t e;
    assert_int_equal(ent_find(ENT_NUMBER, "12345", 2, &ctx, &e), 0);
    assert_string_equal(e.value, "12");
    assert_int_equal(ent_find(ENT_DATE, "2026-12-04", 7, &ctx, &e), CORE_ERR_NOT_FOUND);
}

static void test_invalid_utf8(void **state)
{
    static const char *const texts[] = {
        "\xff\xfe 12 \xc0\xaf",
        "\xe2\x82", /* a cut euro sign */
        "\xe2\x82 30",
        "30 \xe2\x82",
        "caf\xc3",                /* a cut é */
        "\xed\xa0\x80 window",    /* a UTF-16 surrogate */
        "\xf4\x90\x80\x80 aisle", /* beyond U+10FFFF */
        "john@exa\xffmple.com",
        "\x80\x80\x80\x80 4 December",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        run_all(*state, texts[i], strlen(texts[i]));
    int rc;
    ent_t e;
    const char *t = "\xff window \xfe";
    rc = ent_choices_find(((fixture_t *)*state)->seats, t, strlen(t), &e);
    assert_int_equal(rc, 0);
    assert_string_equal(e.value, "window");
    ent_ctx_t ctx = ref_ctx();
    assert_string_equal(find_in(ENT_NUMBER, "\xff 42 \xfe", &ctx), "42");
    /* embedded NUL bytes are just bytes */
    assert_int_equal(ent_find(ENT_NUMBER, "\0 7", 3, &ctx, &e), 0);
    assert_string_equal(e.value, "7");
}

static void test_random_bytes(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    static const char alphabet[] =
        "0123456789 ,.:/-+$@()abcdefhimnorstuwxyADEJ\xc2\xa3\xe2\x82\xac\xff";
    char buf[96];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)(seed >> 58) + 1;
        for (size_t i = 0; i < len && i < sizeof(buf); i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] =
                iter % 2 ? alphabet[(seed >> 33) % (sizeof(alphabet) - 1)] : (char)(seed >> 56);
        }
        run_all(*state, buf, len < sizeof(buf) ? len : sizeof(buf));
    }
}

static char *repeat(const char *unit, size_t total, size_t *len)
{
    size_t n = strlen(unit);
    char *s = malloc(total + 1);
    size_t i = 0;
    for (; i + n <= total; i += n)
        memcpy(s + i, unit, n);
    *len = i;
    s[i] = '\0';
    return s;
}

static void test_huge_inputs(void **state)
{
    /* adversarial 256 KiB inputs; linear work keeps each one fast */
    static const char *const units[] = {
        "1,000,", "11 ", "1 ", "a.",   "a.b@",       "in ", "twenty ", "9",
        "+",      "(1",  "$",  "the ", "half past ", "x",   "\xff",    "window ",
    };
    ent_ctx_t ctx = ref_ctx();
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t len;
        char *s = repeat(units[i], 256 << 10, &len);
        ent_list_t l;
        ent_extract(s, len, &ctx, &l);
        check_list(&l, len);
        ent_t e;
        ent_find(ENT_PHONE, s, len, &ctx, &e);
        fixture_t *fx = *state;
        ent_pattern_find(fx->code, s, len, &e);
        ent_choices_find(fx->seats, s, len, &e);
        free(s);
    }
    size_t len;
    char *s = repeat("2 ", 1 << 20, &len);
    ent_list_t l;
    ent_extract(s, len, &ctx, &l);
    assert_int_equal(l.len, ENT_LIST_MAX); /* capped, the first ones first */
    assert_int_equal(l.items[0].start, 0);
    free(s);
}

static void test_api_edges(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    ent_list_t l;
    ent_t e;
    assert_int_equal(ent_extract(NULL, 0, &ctx, &l), 0);
    assert_int_equal(l.len, 0);
    assert_int_equal(ent_find(ENT_NUMBER, "", 0, &ctx, &e), CORE_ERR_NOT_FOUND);
    assert_int_equal(ent_find(ENT_CHOICE, "1", 1, &ctx, &e), CORE_ERR_INVALID);
    assert_int_equal(ent_find(ENT__COUNT, "1", 1, &ctx, &e), CORE_ERR_INVALID);
    assert_string_equal(ent_type_name(ENT_DATE), "date");
    assert_string_equal(ent_type_name(ENT__COUNT), "unknown");
    ent_type_t t;
    assert_int_equal(ent_type_parse("phone", &t), 0);
    assert_int_equal(t, ENT_PHONE);
    assert_int_equal(ent_type_parse("colour", &t), CORE_ERR_NOT_FOUND);
    assert_int_equal(ent_type_parse(NULL, &t), CORE_ERR_NOT_FOUND);
    for (int i = 0; i < ENT__COUNT; i++) {
        assert_int_equal(ent_type_parse(ent_type_name((ent_type_t)i), &t), 0);
        assert_int_equal(t, i);
    }
    ent_pattern_free(NULL);
    assert_int_equal(ent_pattern_find(NULL, "x", 1, &e), CORE_ERR_NOT_FOUND);
    ent_choices_t *c = ent_choices_new();
    assert_int_equal(ent_choices_find(c, "1", 1, &e), CORE_ERR_NOT_FOUND); /* no values */
    ent_choices_add(c, "?!", NULL); /* no words: never matched by words */
    ent_choices_add(c, "yes", NULL);
    assert_int_equal(ent_choices_find(c, "yes", 3, &e), 0);
    assert_int_equal((int)e.number, 2);
    ent_choices_free(c);
    /* a bad reference date turns relative dates off, not into garbage */
    ent_ctx_t bad = ctx_at(2026, 2, 30);
    assert_string_equal(find_in(ENT_DATE, "tomorrow", &bad), "-");
    bad = ctx_at(9999, 12, 31);
    assert_string_equal(find_in(ENT_DATE, "tomorrow", &bad), "-");
    assert_string_equal(find_in(ENT_DATE, "in 999 years", &bad), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_inputs), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_random_bytes),     cmocka_unit_test(test_huge_inputs),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
