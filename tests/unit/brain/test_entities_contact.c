/* Emails and phone numbers: accepted shapes, normalisation, rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_entities.h"

#define EMAIL(text, want) assert_string_equal(find_in(ENT_EMAIL, (text), &ctx), (want))
#define PHONE(text, want) assert_string_equal(find_in(ENT_PHONE, (text), &ctx), (want))

static void test_emails(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    EMAIL("john@example.com", "john@example.com");
    EMAIL("mail me at John.Doe@Example.COM.", "john.doe@example.com");
    EMAIL("<a_b+tag@mail.example.co.uk>", "a_b+tag@mail.example.co.uk");
    EMAIL("mailto:x@y.io", "x@y.io");
    EMAIL("first-last@sub-domain.example.org", "first-last@sub-domain.example.org");
    EMAIL("john@localhost", "-");
    EMAIL("john@@example.com", "-");
    EMAIL("john..doe@example.com", "-");
    EMAIL("john.@example.com", "-");
    EMAIL("@example.com", "-");
    EMAIL("john@-example.com", "-");
    EMAIL("john@example.c", "-");
    EMAIL("john@example.123", "-");
    EMAIL("no email here", "-");
}

static void test_phones_us(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    PHONE("(415) 555-0100", "+14155550100");
    PHONE("415.555.0100", "+14155550100");
    PHONE("415-555-0100", "+14155550100");
    PHONE("call 415 555 0100 now", "+14155550100");
    PHONE("4155550100", "+14155550100");
    PHONE("1-415-555-0100", "+14155550100");
    PHONE("+1 415 555 0100", "+14155550100");
    PHONE("(415)555-0100", "+14155550100");
    PHONE("555-0100", "-");             /* too short */
    PHONE("415 555 01000", "-");        /* 11 digits not starting with 1 */
    PHONE("015-555-0100", "-");         /* no area code starts with 0 */
    PHONE("1 2 3 4 5 6 7 8 9 10", "-"); /* a list of numbers */
}

static void test_phones_international(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    PHONE("+44 20 7946 0958", "+442079460958");
    PHONE("+44 (0)20 7946 0958", "+442079460958");
    PHONE("+33 1 23 45 67 89", "+33123456789");
    PHONE("0044 20 7946 0958", "+442079460958");
    PHONE("+49 30 123456", "+4930123456");
    PHONE("(+44) 20 7946 0958", "+442079460958");
    PHONE("+44 7911 123456", "+447911123456");
    PHONE("+91 98765 43210", "+919876543210");
    PHONE("tel: +1-415-555-0100", "+14155550100");
    PHONE("+1 (415) 555-0100", "+14155550100");
    PHONE("+1 015 555 0100", "-"); /* not a North American number */
    PHONE("415-555-0100 ext 12", "+14155550100");
    PHONE("+1234", "-");              /* too short */
    PHONE("+12345678901234567", "-"); /* longer than E.164 */
    ent_ctx_t gb = ref_ctx();
    gb.default_country = "GB";
    assert_string_equal(find_in(ENT_PHONE, "020 7946 0958", &gb), "+442079460958");
    assert_string_equal(find_in(ENT_PHONE, "07700 900123", &gb), "+447700900123");
    assert_string_equal(find_in(ENT_PHONE, "7946 0958", &gb), "-");
    ent_ctx_t fr = ref_ctx();
    fr.default_country = "FR";
    assert_string_equal(find_in(ENT_PHONE, "01 23 45 67 89", &fr), "+33123456789");
    ent_ctx_t it = ref_ctx();
    it.default_country = "IT";
    assert_string_equal(find_in(ENT_PHONE, "06 1234 5678", &it), "+390612345678");
    ent_ctx_t xx = ref_ctx();
    xx.default_country = "XX"; /* unknown: only international numbers */
    assert_string_equal(find_in(ENT_PHONE, "415 555 0100", &xx), "-");
    assert_string_equal(find_in(ENT_PHONE, "+44 20 7946 0958", &xx), "+442079460958");
}

static void test_phone_beats_number(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    assert_string_equal(extract_all("2 bags, call 415 555 0100", &ctx),
                        "number:2 phone:+14155550100");
    assert_string_equal(extract_all("2026-12-04", &ctx), "date:2026-12-04");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emails),
        cmocka_unit_test(test_phones_us),
        cmocka_unit_test(test_phones_international),
        cmocka_unit_test(test_phone_beats_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
