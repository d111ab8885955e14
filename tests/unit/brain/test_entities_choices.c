/* Pattern slots (PCRE2) and choice slots (synonyms, folding, numbered
 * answers, typos, ambiguity). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_entities.h"

static const char *pattern_in(const ent_pattern_t *p, const char *text)
{
    static char out[ENT_VALUE_MAX];
    ent_t e;
    if (ent_pattern_find(p, text, strlen(text), &e) != 0)
        return "-";
    snprintf(out, sizeof(out), "%s", e.value);
    return out;
}

static void test_pattern_booking_code(void **state)
{
    core_err_t err = {0};
    ent_pattern_t *p = ent_pattern_new("[A-Z0-9]{6}", 1, &err);
    assert_non_null(p);
    assert_string_equal(pattern_in(p, "abc123"), "ABC123");
    assert_string_equal(pattern_in(p, "change booking abc123"), "ABC123");
    assert_string_equal(pattern_in(p, "my ref is QWERTY thanks"), "QWERTY");
    assert_string_equal(pattern_in(p, "ref: x7k9p2."), "X7K9P2");
    assert_string_equal(pattern_in(p, "abc12"), "-");
    assert_string_equal(pattern_in(p, "I lost my booking"), "-"); /* never "BOOKIN" */
    assert_string_equal(pattern_in(p, "abc1234"), "-");           /* seven is not six */
    assert_string_equal(pattern_in(p, "codes abc1234 and xyz789"), "XYZ789");
    assert_string_equal(pattern_in(p, ""), "-");
    ent_t e;
    const char *t = "booking ZZ9ZZ9";
    assert_int_equal(ent_pattern_find(p, t, strlen(t), &e), 0);
    assert_int_equal(e.type, ENT_PATTERN);
    assert_int_equal(e.start, 8);
    assert_int_equal(e.end, 14);
    ent_pattern_free(p);

    /* a capture group is the value */
    p = ent_pattern_new("ref[- ]?([0-9]{4})", 1, &err);
    assert_non_null(p);
    assert_string_equal(pattern_in(p, "it is REF-1234"), "1234");
    assert_int_equal(ent_pattern_find(p, "ref 5678", 8, &e), 0);
    assert_int_equal(e.start, 4);
    ent_pattern_free(p);
    /* invalid UTF-8 in the text is tolerated */
    p = ent_pattern_new("caf\u00e9", 1, &err);
    assert_non_null(p);
    assert_string_equal(pattern_in(p, "\xff un café \xfe"), "CAFÉ");
    ent_pattern_free(p);

    p = ent_pattern_new("[A-Z]{2}[0-9]{3,4}", 0, &err);
    assert_non_null(p);
    assert_string_equal(pattern_in(p, "flight BA2490 today"), "BA2490");
    assert_string_equal(pattern_in(p, "flight ba2490 today"), "-");
    ent_pattern_free(p);
}

static void test_pattern_errors(void **state)
{
    core_err_t err = {0};
    assert_null(ent_pattern_new("([A-Z]{6}", 1, &err));
    assert_int_equal(err.code, CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "at offset 9"));
    assert_non_null(strstr(err.msg, "([A-Z]{6}"));
    assert_null(ent_pattern_new("", 0, &err));
    assert_null(ent_pattern_new(NULL, 0, &err));
    assert_null(ent_pattern_new("a{2,1}", 0, &err));
    assert_non_null(strstr(err.msg, "offset"));
}

static ent_choices_t *seats(void)
{
    ent_choices_t *c = ent_choices_new();
    static const char *const window[] = {"by the window", NULL};
    static const char *const aisle[] = {"corridor", NULL};
    ent_choices_add(c, "window", window);
    ent_choices_add(c, "aisle", aisle);
    ent_choices_add(c, "middle", NULL);
    return c;
}

static const char *choice_in(const ent_choices_t *c, const char *text, int *rc)
{
    static char out[ENT_VALUE_MAX];
    ent_t e;
    *rc = ent_choices_find(c, text, strlen(text), &e);
    if (*rc != 0)
        return "-";
    snprintf(out, sizeof(out), "%s", e.value);
    return out;
}

#define CHOICE(c, text, want)                                                                      \
    do {                                                                                           \
        int rc_;                                                                                   \
        assert_string_equal(choice_in((c), (text), &rc_), (want));                                 \
    } while (0)
#define AMBIGUOUS(c, text)                                                                         \
    do {                                                                                           \
        int rc_;                                                                                   \
        choice_in((c), (text), &rc_);                                                              \
        assert_int_equal(rc_, CORE_ERR_EXISTS);                                                    \
    } while (0)

static void test_choices_exact_and_synonyms(void **state)
{
    ent_choices_t *c = seats();
    CHOICE(c, "window", "window");
    CHOICE(c, "WINDOW please", "window");
    CHOICE(c, "I'd like a seat by the window", "window");
    CHOICE(c, "corridor", "aisle");
    CHOICE(c, "the middle one", "middle");
    CHOICE(c, "nothing of the sort", "-");
    CHOICE(c, "", "-");
    AMBIGUOUS(c, "window or aisle");
    ent_choices_free(c);
}

static void test_choices_numbered(void **state)
{
    ent_choices_t *c = seats();
    CHOICE(c, "1", "window");
    CHOICE(c, "2", "aisle");
    CHOICE(c, "first", "window");
    CHOICE(c, "the second one", "aisle");
    CHOICE(c, "3rd", "middle");
    CHOICE(c, "option 3", "middle");
    CHOICE(c, "one", "window");
    CHOICE(c, "no one", "-"); /* a refusal, not "no. 1" */
    CHOICE(c, "the last one", "middle");
    CHOICE(c, "#2", "aisle");
    CHOICE(c, "2\xEF\xB8\x8F\xE2\x83\xA3", "aisle"); /* a keycap emoji */
    CHOICE(c, "option 3\xE2\x83\xA3", "middle");
    CHOICE(c, "no. 3", "middle");
    CHOICE(c, "2)", "aisle");
    CHOICE(c, "I'll take the first one please", "window");
    CHOICE(c, "4", "-");
    CHOICE(c, "2 and 3", "-");
    ent_choices_free(c);
}

static void test_choices_folding_and_typos(void **state)
{
    ent_choices_t *c = ent_choices_new();
    ent_choices_add(c, "Café", NULL);
    ent_choices_add(c, "Thé", NULL);
    ent_choices_add(c, "economy", NULL);
    ent_choices_add(c, "premium economy", NULL);
    ent_choices_add(c, "business", NULL);
    CHOICE(c, "CAFE", "Café");
    CHOICE(c, "un thé", "Thé");
    CHOICE(c, "premium economy", "premium economy"); /* the longer phrase wins */
    CHOICE(c, "economy", "economy");
    CHOICE(c, "econmy", "economy");    /* deletion, 7 letters: 1 allowed */
    CHOICE(c, "ecnoomy", "economy");   /* transposition */
    CHOICE(c, "buisness", "business"); /* transposition, 8 letters */
    CHOICE(c, "busness", "business");
    CHOICE(c, "bisnes", "-");                       /* 3 edits */
    CHOICE(c, "buisnes", "business");               /* two edits: allowed from 8 letters */
    CHOICE(c, "ecnmy", "-");                        /* two edits on 7 letters: too far */
    CHOICE(c, "cafx", "Café");                      /* 4 letters: 1 edit */
    CHOICE(c, "th", "-");                           /* 3 letters: exact only */
    CHOICE(c, "premum economy", "premium economy"); /* a typo in the longer phrase */
    CHOICE(c, "PREMIUM ÉCONOMY", "premium economy");
    CHOICE(c, "2 economy", "economy"); /* a number next to a value is not a position */
    ent_t e;
    const char *t = "econmy";
    assert_int_equal(ent_choices_find(c, t, strlen(t), &e), 0);
    assert_true(e.confidence < 1.0 && e.confidence > 0.5);
    assert_int_equal(e.type, ENT_CHOICE);
    ent_choices_free(c);
}

static void test_choices_values_that_are_numbers(void **state)
{
    /* exact values come before positions: "2" is the value "2", not the second */
    ent_choices_t *c = ent_choices_new();
    ent_choices_add(c, "3", NULL);
    ent_choices_add(c, "2", NULL);
    ent_choices_add(c, "no", NULL);
    CHOICE(c, "2", "2");
    CHOICE(c, "no", "no");
    CHOICE(c, "first", "3");
    ent_t e;
    assert_int_equal(ent_choices_find(c, "2", 1, &e), 0);
    assert_int_equal((int)e.number, 2);
    assert_true(e.confidence == 1.0);
    ent_choices_free(c);
}

static void test_choices_shared_synonym_is_ambiguous(void **state)
{
    ent_choices_t *c = ent_choices_new();
    static const char *const a[] = {"front", NULL};
    static const char *const b[] = {"front", NULL};
    ent_choices_add(c, "row 1", a);
    ent_choices_add(c, "exit row", b);
    AMBIGUOUS(c, "front");
    CHOICE(c, "exit row", "exit row");
    ent_choices_free(c);
    ent_choices_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_booking_code),
        cmocka_unit_test(test_pattern_errors),
        cmocka_unit_test(test_choices_exact_and_synonyms),
        cmocka_unit_test(test_choices_numbered),
        cmocka_unit_test(test_choices_folding_and_typos),
        cmocka_unit_test(test_choices_values_that_are_numbers),
        cmocka_unit_test(test_choices_shared_synonym_is_ambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
