/* PII detectors: each with valid and invalid cases, the shapes people type,
 * and the benign look-alikes that must pass (order numbers, dates, IP
 * addresses, versions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "brain/guard_int.h"

typedef void (*scan_fn)(const char *t, size_t n, gd_spans_t *out);

/* Returns the first match of scan in text as a static string, "" if none. */
static const char *first(scan_fn scan, const char *text)
{
    static char out[256];
    gd_spans_t sp = {0};
    scan(text, strlen(text), &sp);
    out[0] = '\0';
    if (sp.len > 0)
        snprintf(out, sizeof(out), "%.*s", (int)(sp.items[0].end - sp.items[0].start),
                 text + sp.items[0].start);
    gd_spans_dispose(&sp);
    return out;
}

/* The span list grows without bound, keeps the first of overlapping spans
 * whatever order they come in, and sorts them. */
static void test_spans(void **state)
{
    gd_spans_t sp = {0};
    for (size_t i = 0; i < 500; i++) /* one detector, left to right */
        gd_spans_add(&sp, 10 * i + 5, 10 * i + 8, GD_CARD);
    for (size_t i = 500; i-- > 0;) /* another, in reverse order, half of them overlapping */
        gd_spans_add(&sp, 10 * i + (i % 2 ? 0 : 6), 10 * i + (i % 2 ? 3 : 9), GD_EMAIL);
    gd_spans_add(&sp, 0, 5000, GD_PHONE); /* overlaps everything */
    gd_spans_sort(&sp);
    assert_int_equal(sp.len, 750);
    size_t cards = 0;
    for (size_t i = 0; i < sp.len; i++) {
        cards += sp.items[i].kind == GD_CARD;
        if (i > 0)
            assert_true(sp.items[i - 1].end <= sp.items[i].start);
    }
    assert_int_equal(cards, 500);
    gd_spans_dispose(&sp);
    assert_null(sp.items);
    assert_int_equal(sp.len, 0);
}

static void test_luhn(void **state)
{
    assert_true(gd_luhn_ok("4111111111111111", 16));
    assert_false(gd_luhn_ok("4111111111111112", 16));
    assert_true(gd_luhn_ok("378282246310005", 15));
    assert_true(gd_luhn_ok("79927398713", 11));
    assert_false(gd_luhn_ok("79927398710", 11));
    assert_false(gd_luhn_ok("", 0));
}

static void test_card_prefixes(void **state)
{
    assert_true(gd_card_prefix_ok("4111111111111111", 16));
    assert_true(gd_card_prefix_ok("5555555555554444", 16));
    assert_true(gd_card_prefix_ok("2223003122003222", 16));
    assert_true(gd_card_prefix_ok("378282246310005", 15));
    assert_true(gd_card_prefix_ok("6011111111111117", 16));
    assert_true(gd_card_prefix_ok("3530111333300000", 16));
    assert_false(gd_card_prefix_ok("1234567812345670", 16)); /* no issuer starts with 1 */
    assert_false(gd_card_prefix_ok("378282246310005X", 16)); /* Amex is 15 digits */
}

static void test_cards(void **state)
{
    assert_string_equal(first(gd_scan_cards, "card 4111 1111 1111 1111 exp 12/27"),
                        "4111 1111 1111 1111");
    assert_string_equal(first(gd_scan_cards, "4111-1111-1111-1111"), "4111-1111-1111-1111");
    assert_string_equal(first(gd_scan_cards, "my amex is 3782 822463 10005."), "3782 822463 10005");
    assert_string_equal(first(gd_scan_cards, "5555555555554444"), "5555555555554444");
    /* a trailing amount is not part of the number */
    assert_string_equal(first(gd_scan_cards, "pay 4111 1111 1111 1111 20 dollars"),
                        "4111 1111 1111 1111");
    /* failing Luhn, wrong prefix, odd grouping, glued to letters */
    assert_string_equal(first(gd_scan_cards, "4111 1111 1111 1112"), "");
    assert_string_equal(first(gd_scan_cards, "ref 1234567812345670"), "");
    assert_string_equal(first(gd_scan_cards, "41111-11111-11111-1"), "");
    assert_string_equal(first(gd_scan_cards, "x4111111111111111"), "");
    /* a Luhn-valid number after "order" is an order number, unless card words say not */
    assert_string_equal(first(gd_scan_cards, "order number 4532015112830366"), "");
    assert_string_equal(first(gd_scan_cards, "order paid with card 4532015112830366"),
                        "4532015112830366");
    assert_string_equal(first(gd_scan_cards, "4111.1111.1111.1111"), "4111.1111.1111.1111");
    assert_string_equal(first(gd_scan_cards, "transaction id 4539148803436467"), "");
}

static void test_ssn(void **state)
{
    assert_true(gd_ssn_ok(123, 45, 6789));
    assert_false(gd_ssn_ok(0, 45, 6789));
    assert_false(gd_ssn_ok(666, 45, 6789));
    assert_false(gd_ssn_ok(900, 45, 6789));
    assert_false(gd_ssn_ok(999, 45, 6789));
    assert_true(gd_ssn_ok(899, 99, 9999));
    assert_false(gd_ssn_ok(123, 0, 6789));
    assert_false(gd_ssn_ok(123, 45, 0));
    assert_false(gd_ssn_ok(78, 5, 1120));
    assert_true(gd_ssn_ok(1, 1, 1));
}

static void test_ssns(void **state)
{
    assert_string_equal(first(gd_scan_ssns, "ssn 536-22-1234 thanks"), "536-22-1234");
    assert_string_equal(first(gd_scan_ssns, "it's 536 22 1234"), "536 22 1234");
    assert_string_equal(first(gd_scan_ssns, "my social security number is 536221234"), "536221234");
    assert_string_equal(first(gd_scan_ssns, "tracking 536221234"), "");
    assert_string_equal(first(gd_scan_ssns, "000-12-3456"), "");
    assert_string_equal(first(gd_scan_ssns, "666-12-3456"), "");
    assert_string_equal(first(gd_scan_ssns, "912-12-3456"), "");
    assert_string_equal(first(gd_scan_ssns, "536-00-1234"), "");
    assert_string_equal(first(gd_scan_ssns, "536-22-0000"), "");
    assert_string_equal(first(gd_scan_ssns, "536-22 1234"), ""); /* mixed separators */
    /* dates and longer numbers */
    assert_string_equal(first(gd_scan_ssns, "born 1985-03-12"), "");
    assert_string_equal(first(gd_scan_ssns, "on 03-12-1985"), "");
    assert_string_equal(first(gd_scan_ssns, "call 555-123-4567"), "");
    assert_string_equal(first(gd_scan_ssns, "part 536-22-1234-9"), "");
    assert_string_equal(first(gd_scan_ssns, "build 536-22-1234-beta"), "");
    assert_string_equal(first(gd_scan_ssns, "phone 555-12-1234"), "");
    assert_string_equal(first(gd_scan_ssns, "SSN 536-22-1234."), "536-22-1234");
}

static void test_iban(void **state)
{
    assert_true(gd_iban_ok("DE89370400440532013000", 22));
    assert_true(gd_iban_ok("GB82WEST12345698765432", 22));
    assert_true(gd_iban_ok("FR1420041010050500013M02606", 27));
    assert_true(gd_iban_ok("NL91ABNA0417164300", 18));
    assert_true(gd_iban_ok("ES9121000418450200051332", 24));
    assert_true(gd_iban_ok("BE68539007547034", 16));
    assert_true(gd_iban_ok("gb82west12345698765432", 22));
    assert_false(gd_iban_ok("DE89370400440532013001", 22)); /* checksum */
    assert_false(gd_iban_ok("DE8937040044053201300", 21));  /* length for DE */
    assert_false(gd_iban_ok("ZZ89370400440532013000", 22)); /* no such country */
}

static void test_ibans(void **state)
{
    assert_string_equal(first(gd_scan_ibans, "iban: DE89 3704 0044 0532 0130 00 please"),
                        "DE89 3704 0044 0532 0130 00");
    assert_string_equal(first(gd_scan_ibans, "send to GB82WEST12345698765432."),
                        "GB82WEST12345698765432");
    assert_string_equal(first(gd_scan_ibans, "FR14 2004 1010 0505 0001 3M02 606"),
                        "FR14 2004 1010 0505 0001 3M02 606");
    assert_string_equal(first(gd_scan_ibans, "DE89 3704 0044 0532 0130 01"), "");
    assert_string_equal(first(gd_scan_ibans, "model DE12 engine"), "");
}

static void test_emails(void **state)
{
    assert_string_equal(first(gd_scan_emails, "mail jane.doe+x@example.co.uk."),
                        "jane.doe+x@example.co.uk");
    assert_string_equal(first(gd_scan_emails, "<bob@mail.example.com>"), "bob@mail.example.com");
    assert_string_equal(first(gd_scan_emails, "twitter @handle"), "");
    assert_string_equal(first(gd_scan_emails, "a@b"), "");
    assert_string_equal(first(gd_scan_emails, "x@-bad.com"), "");
    assert_string_equal(first(gd_scan_emails, "meet @ 5pm"), "");
    assert_string_equal(first(gd_scan_spelled_emails, "my email is jane at example dot com ok"),
                        "jane at example dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "john.smith[at]gmail[dot]com"),
                        "john.smith[at]gmail[dot]com");
    assert_string_equal(first(gd_scan_spelled_emails, "i'm at home dot"), "");
    assert_string_equal(first(gd_scan_spelled_emails, "look at the site."), "");
    assert_string_equal(first(gd_scan_spelled_emails, "I'm at example dot com now"), "");
}

static void test_phones(void **state)
{
    assert_string_equal(first(gd_scan_phones, "call +14155552671 now"), "+14155552671");
    assert_string_equal(first(gd_scan_phones, "+44 20 7946 0958"), "+44 20 7946 0958");
    assert_string_equal(first(gd_scan_phones, "(415) 555-2671"), "(415) 555-2671");
    assert_string_equal(first(gd_scan_phones, "415-555-2671"), "415-555-2671");
    assert_string_equal(first(gd_scan_phones, "415.555.2671"), "415.555.2671");
    assert_string_equal(first(gd_scan_phones, "1-800-555-0199"), "1-800-555-0199");
    assert_string_equal(first(gd_scan_phones, "07700 900123"), "07700 900123");
    assert_string_equal(first(gd_scan_phones, "06 12 34 56 78"), "06 12 34 56 78");
    assert_string_equal(first(gd_scan_phones, "0044 20 7946 0958"), "0044 20 7946 0958");
    assert_string_equal(first(gd_scan_phones, "my number is 4155552671"), "4155552671");
    assert_string_equal(first(gd_scan_phones, "+44 (0)20 7946 0958"), "+44 (0)20 7946 0958");
    /* look-alikes */
    assert_string_equal(first(gd_scan_phones, "order 4155552671"), "");
    assert_string_equal(first(gd_scan_phones, "on 2023-11-05 at 10:30"), "");
    assert_string_equal(first(gd_scan_phones, "server 255.255.255.0"), "");
    assert_string_equal(first(gd_scan_phones, "version 1.2.3"), "");
    assert_string_equal(first(gd_scan_phones, "05 03 2024 10"), "");
    assert_string_equal(first(gd_scan_phones, "555-1234"), "");
    assert_string_equal(first(gd_scan_phones, "1234567890"), ""); /* area code 123 */
    assert_string_equal(first(gd_scan_phones, "+0 123 456 789"), "");
}

/* Context words are whole words: "ref" is not "refund", "tel" not "tell";
 * and a label only keeps a valid card number when it names that number. */
static void test_context_words(void **state)
{
    assert_string_equal(first(gd_scan_cards, "Please refund it to 4111 1111 1111 1111"),
                        "4111 1111 1111 1111");
    assert_string_equal(first(gd_scan_cards, "In both cases use 4111 1111 1111 1111"),
                        "4111 1111 1111 1111");
    assert_string_equal(first(gd_scan_cards, "Booking ABC123, pay with 4111 1111 1111 1111"),
                        "4111 1111 1111 1111");
    assert_string_equal(first(gd_scan_ssns, "I will tell you: 123-45-6789"), "123-45-6789");
    assert_string_equal(first(gd_scan_ssns, "my partner's is 123-45-6789"), "123-45-6789");
    assert_string_equal(first(gd_scan_phones, "I was referred by 4155552671"), "4155552671");
    assert_string_equal(first(gd_scan_phones, "Casey said 4155552671"), "4155552671");
    /* labels right before the number, alone or with "number", "no", "id", "#" */
    assert_string_equal(first(gd_scan_cards, "booking ref 4111111111111111"), "");
    assert_string_equal(first(gd_scan_cards, "reference 4882264801964252"), "");
    assert_string_equal(first(gd_scan_cards, "my order number is 4525739031032015"), "");
    assert_string_equal(first(gd_scan_cards, "order #5148922558193451"), "");
    assert_string_equal(first(gd_scan_cards, "Membership no.: 4111 1111 1111 1111"), "");
    assert_string_equal(first(gd_scan_cards, "account 4111111111111111"), "");
    /* explicit inflections and prefixes */
    assert_string_equal(first(gd_scan_ssns, "telephone 123-45-6789"), "");
    assert_string_equal(first(gd_scan_cards, "expiring 12/27, order 4532015112830366"),
                        "4532015112830366");
}

/* A bare " at " is an address only with evidence: an e-mail word labels it,
 * the local part looks like one, or the domain is a mail provider's. Sites
 * and places are not addresses. */
static void test_spelled_email_evidence(void **state)
{
    const char *sites[] = {"I bought it at amazon.com last week",
                           "look at google.com",
                           "I booked this at expedia dot com",
                           "You can check in online at chorusair.com or call us.",
                           "Find our fares at www.chorusair.com/deals",
                           "it's jane at example dot com ok",
                           "Mail us at www.chorusair.com",
                           "email info at chorusair.com/contact",
                           "jo[at]www.example.com",
                           "log in at gmail.com",
                           "Check your settings at outlook.com",
                           "I saw it. at amazon.com"};
    for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++)
        if (first(gd_scan_spelled_emails, sites[i])[0] != '\0')
            fail_msg("\"%s\" taken as an address", sites[i]);
    assert_string_equal(first(gd_scan_spelled_emails, "my email is jane at gmail dot com"),
                        "jane at gmail dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "E-mail: li_wei at example dot com"),
                        "li_wei at example dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "email me at tom at example.org"),
                        "tom at example.org");
    assert_string_equal(first(gd_scan_spelled_emails, "my email? it's tom at example.org"),
                        "tom at example.org");
    assert_string_equal(first(gd_scan_spelled_emails, "it is jdoe99 at example dot com"),
                        "jdoe99 at example dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "write to jane dot doe at example dot com"),
                        "jane dot doe at example dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "jane at sign example dot com"),
                        "jane at sign example dot com");
    assert_string_equal(first(gd_scan_spelled_emails, "reach jane at gmail dot com"),
                        "jane at gmail dot com");
}

/* Addresses in any script: letters beyond ASCII are part of the local part
 * and of domain labels; a change of script ends a part, so an address in
 * text without spaces is found alone. */
static void test_emails_any_script(void **state)
{
    assert_string_equal(first(gd_scan_emails, "mail j\u00f6hn.doe@example.com"),
                        "j\u00f6hn.doe@example.com");
    assert_string_equal(first(gd_scan_emails, "mail jos\u00e9@example.com"),
                        "jos\u00e9@example.com");
    assert_string_equal(first(gd_scan_emails, "mail jose\u0301@example.com"),
                        "jose\u0301@example.com"); /* decomposed accent */
    assert_string_equal(first(gd_scan_emails, "mail john@m\u00fcller.de"), "john@m\u00fcller.de");
    assert_string_equal(first(gd_scan_emails, "\u0438\u0432\u0430\u043d@\u043f\u043e\u0447"
                                              "\u0442\u0430.\u0440\u0444"),
                        "\u0438\u0432\u0430\u043d@\u043f\u043e\u0447\u0442\u0430.\u0440\u0444");
    assert_string_equal(first(gd_scan_emails, "\u201cjane@example.com\u201d"), "jane@example.com");
    assert_string_equal(first(gd_scan_emails, "\u30e1\u30fc\u30eb\u306fjane@example.com\u3067"
                                              "\u3059"),
                        "jane@example.com");
    assert_string_equal(first(gd_scan_emails, "jane@example.c\u00b7m"), ""); /* '·' is no letter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_card_prefixes),
        cmocka_unit_test(test_cards),
        cmocka_unit_test(test_ssn),
        cmocka_unit_test(test_ssns),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ibans),
        cmocka_unit_test(test_emails),
        cmocka_unit_test(test_phones),
        cmocka_unit_test(test_context_words),
        cmocka_unit_test(test_spelled_email_evidence),
        cmocka_unit_test(test_emails_any_script),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
