/* The padded copy a regular expression matches on: the same bytes, then
 * zeros a vector load past the end may read; an oversized subject is used
 * where it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/regex_subject.h"

static void test_copy_then_zeros(void **state)
{
    (void)state;
    char text[] = "booking ABC123 please";
    const char *s = re_subject(text, 14); /* a prefix: no terminator of its own */
    assert_ptr_not_equal(s, text);
    assert_memory_equal(s, text, 14);
    for (size_t i = 14; i < 14 + 32; i++)
        assert_int_equal(s[i], 0);
    s = re_subject("", 0);
    assert_int_equal(s[0], 0);
    assert_int_equal(s[31], 0);
}

static void test_oversized_is_used_in_place(void **state)
{
    (void)state;
    size_t n = 64 * 1024 + 1;
    char *big = malloc(n);
    memset(big, 'x', n);
    assert_ptr_equal(re_subject(big, n), big);
    const char *s = re_subject(big, n - 1); /* the largest copied */
    assert_ptr_not_equal(s, big);
    assert_int_equal(s[n - 2], 'x');
    assert_int_equal(s[n - 1], 0);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_then_zeros),
        cmocka_unit_test(test_oversized_is_used_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
