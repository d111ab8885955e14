/* Hex encoding and SHA-256 as hex: the FIPS 180-2 test vectors, every byte
 * value, and random ids of the asked length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/core.h"

static void test_sha256_vectors(void **state)
{
    char hex[65];
    core_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    core_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    (void)state;
}

static void test_hex_every_byte(void **state)
{
    unsigned char bytes[256];
    char out[513];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    memset(out, 'x', sizeof(out));
    core_hex_encode(bytes, sizeof(bytes), out);
    assert_int_equal(strlen(out), 512);
    for (int i = 0; i < 256; i++) {
        assert_int_equal(core_hex_digit(out[2 * i]) * 16 + core_hex_digit(out[2 * i + 1]), i);
        assert_false(out[2 * i] >= 'A' && out[2 * i] <= 'F'); /* lowercase */
    }
    core_hex_encode(bytes, 0, out);
    assert_string_equal(out, "");
    (void)state;
}

static void test_random_hex(void **state)
{
    char a[33], b[33];
    core_random_hex(a, 16);
    core_random_hex(b, 16);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 32; i++)
        assert_true(core_hex_digit(a[i]) >= 0);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hex_every_byte),
        cmocka_unit_test(test_random_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
