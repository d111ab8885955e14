/* core_buf: appends that fit, appends that grow the allocation, and the
 * limit, which holds whatever room the allocation has, leaving the buffer
 * as it was when an append would pass it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/core.h"

static void test_first_append_allocates(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 1000);
    assert_null(b.data);
    assert_int_equal(core_buf_append(&b, "ab", 2), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    assert_true(b.cap > b.len);
    core_buf_dispose(&b);

    core_buf_init(&b, 1000);
    assert_int_equal(core_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    core_buf_dispose(&b);
}

/* Many small appends, some of which land exactly on the end of the
 * allocation (where the terminating NUL needs one more byte), keep every
 * byte in order. */
static void test_small_appends_across_growth(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 100000);
    char want[5000];
    size_t n = 0;
    for (unsigned i = 0; n + 7 < sizeof(want); i++) {
        size_t k = i % 7; /* 0..6 bytes */
        char piece[7];
        for (size_t j = 0; j < k; j++)
            piece[j] = (char)('a' + (i + j) % 26);
        size_t cap_before = b.cap;
        assert_int_equal(core_buf_append(&b, piece, k), 0);
        memcpy(want + n, piece, k);
        n += k;
        assert_int_equal(b.len, n);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
        if (cap_before && b.cap != cap_before)
            assert_true(b.cap >= cap_before * 2);
    }
    assert_memory_equal(b.data, want, n);
    core_buf_dispose(&b);
}

/* The allocation grows by doubling from 64 bytes, so a 10-byte limit leaves
 * room the limit must still refuse. */
static void test_limit_holds_with_room_to_spare(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 10);
    assert_int_equal(core_buf_append(&b, "0123", 4), 0);
    assert_true(b.cap > 11);
    assert_int_equal(core_buf_append(&b, "456789", 6), 0); /* exactly the limit */
    assert_int_equal(b.len, 10);
    assert_int_equal(core_buf_append(&b, "x", 1), CORE_ERR_LIMIT);
    assert_int_equal(core_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    core_buf_reset(&b);
    assert_int_equal(core_buf_append(&b, "0123456789a", 11), CORE_ERR_LIMIT);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    core_buf_dispose(&b);
}

/* An append past the limit that would also need a larger allocation. */
static void test_limit_when_growing(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 100);
    char big[101];
    memset(big, 'z', sizeof(big));
    assert_int_equal(core_buf_append(&b, big, 60), 0);
    assert_int_equal(core_buf_append(&b, big, 41), CORE_ERR_LIMIT);
    assert_int_equal(b.len, 60);
    assert_int_equal(core_buf_append(&b, big, 40), 0);
    assert_int_equal(b.len, 100);
    assert_int_equal(b.data[100], '\0');
    core_buf_dispose(&b);
}

/* Cutting text at a byte budget never leaves half a UTF-8 sequence. */
static void test_utf8_cut(void **state)
{
    (void)state;
    const char *s = "ab\xd0\x96\xe2\x82\xac\xf0\x9f\x99\x82z"; /* a b Ж € 🙂 z */
    size_t len = strlen(s);
    assert_int_equal(core_utf8_cut(s, len, 100), len); /* fits: whole */
    assert_int_equal(core_utf8_cut(s, len, 2), 2);
    assert_int_equal(core_utf8_cut(s, len, 3), 2); /* inside Ж */
    assert_int_equal(core_utf8_cut(s, len, 4), 4);
    assert_int_equal(core_utf8_cut(s, len, 5), 4); /* inside € */
    assert_int_equal(core_utf8_cut(s, len, 6), 4);
    assert_int_equal(core_utf8_cut(s, len, 7), 7);
    assert_int_equal(core_utf8_cut(s, len, 10), 7); /* inside 🙂 */
    assert_int_equal(core_utf8_cut(s, len, 11), 11);
    assert_int_equal(core_utf8_cut(s, len, 0), 0);
    /* the sequence each position begins, as jansson would take it */
    assert_int_equal(core_utf8_seq(s, len), 1);
    assert_int_equal(core_utf8_seq(s + 2, len - 2), 2);    /* Ж */
    assert_int_equal(core_utf8_seq(s + 3, len - 3), 0);    /* its continuation byte */
    assert_int_equal(core_utf8_seq(s + 4, len - 4), 3);    /* € */
    assert_int_equal(core_utf8_seq(s + 7, len - 7), 4);    /* 🙂 */
    assert_int_equal(core_utf8_seq(s + 7, 2), 0);          /* cut short */
    assert_int_equal(core_utf8_seq("\xc0\xaf", 2), 0);     /* overlong '/' */
    assert_int_equal(core_utf8_seq("\xed\xa0\x80", 3), 0); /* a surrogate */
    assert_int_equal(core_utf8_seq("\xff", 1), 0);
    assert_int_equal(core_utf8_seq(s, 0), 0);
    /* scrubbing: each byte that begins no sequence becomes '?', in place */
    char bad[] = "a\xd0\x96\xff\xc0\xaf"
                 "b\xe2\x82";
    assert_int_equal(core_utf8_scrub(bad, strlen(bad)), 5);
    assert_string_equal(bad, "a\xd0\x96???b??");
    char good[] = "ok \xe2\x82\xac";
    assert_int_equal(core_utf8_scrub(good, strlen(good)), 0);
    assert_string_equal(good, "ok \xe2\x82\xac");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_append_allocates),
        cmocka_unit_test(test_small_appends_across_growth),
        cmocka_unit_test(test_limit_holds_with_room_to_spare),
        cmocka_unit_test(test_limit_when_growing),
        cmocka_unit_test(test_utf8_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
