/* Numbers, ordinals and money: digits, separators, words, signs, currencies,
 * and how they give way to longer entities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_entities.h"

#define NUM(text, want) assert_string_equal(find_in(ENT_NUMBER, (text), &ctx), (want))
#define ORD(text, want) assert_string_equal(find_in(ENT_ORDINAL, (text), &ctx), (want))
#define MONEY(text, want) assert_string_equal(money_of(text, &ctx), (want))

static const char *money_of(const char *text, const ent_ctx_t *ctx)
{
    static char out[ENT_VALUE_MAX + 8];
    ent_t e;
    if (ent_find(ENT_MONEY, text, strlen(text), ctx, &e) != 0)
        return "-";
    snprintf(out, sizeof(out), "%s %s", e.value, e.currency);
    return out;
}

static void test_numbers_digits(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    NUM("42", "42");
    NUM("ref 12345678901234567890", "-");     /* past 15 digits: an id, not a number */
    NUM("one hundred thousand million", "-"); /* no number, not 100000 */
    NUM("two thousand and five", "2005");
    NUM("I need 3 tickets", "3");
    NUM("about 1,200 people", "1200");
    NUM("1,234,567", "1234567");
    NUM("3.5 kilos", "3.5");
    NUM("-5 degrees", "-5");
    NUM("minus 7", "-7");
    NUM("0", "0");
    NUM("-0", "0");
    NUM("1.000.000", "1000000"); /* dots for thousands once there are two groups */
    NUM("1.234,5", "1234.5");
    NUM("1,200.50", "1200.5");
    NUM("1.000", "1"); /* one group: a decimal point */
    NUM("007", "7");
    NUM("2 million", "2000000");
    NUM("no digits here", "-");
    NUM("", "-");
    NUM("abc123", "-");
    NUM("5kg", "-");
    NUM("version 1.2.3", "-"); /* not "2.3" */
    NUM("room 101", "101");
    NUM("order #12345", "12345");
    NUM("5-10 people", "5");
    /* digits drawn as emoji keycaps, as phone keyboards send them */
    NUM("2\xEF\xB8\x8F\xE2\x83\xA3 bags", "2");
    NUM("option 3\xE2\x83\xA3", "3");
    NUM("4\xEF\xB8\x8F", "4");
    NUM("1\xEF\xB8\x8F\xE2\x83\xA3kg", "-"); /* still a word after the tail */
    NUM("a\xE2\x83\xA3", "-");
}

static void test_numbers_words(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    NUM("twenty five", "25");
    NUM("twenty-five", "25");
    NUM("a hundred and five", "105");
    NUM("one hundred", "100");
    NUM("three thousand four hundred and twelve", "3412");
    NUM("fifteen hundred", "1500");
    NUM("two million three hundred thousand", "2300000");
    NUM("zero", "0");
    NUM("Seven", "7");
    NUM("negative twelve", "-12");
    NUM("fourty two", "42");
    NUM("ninety-nine point five", "99.5");
    NUM("two point zero five", "2.05");
    NUM("one point", "1");
    NUM("someone", "-");
    NUM("a dog", "-");
}

static void test_ordinals(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    ORD("1st", "1");
    ORD("the 2nd one", "2");
    ORD("3rd", "3");
    ORD("11th", "11");
    ORD("21st", "21");
    ORD("third", "3");
    ORD("twenty-first", "21");
    ORD("twenty first", "21");
    ORD("the second one", "2");
    ORD("one hundredth", "100");
    ORD("2th", "-");
    ORD("wait a second", "-");
    /* the "one" of "the second one" is not also a number */
    assert_string_equal(extract_all("the second one", &ctx), "ordinal:2");
}

static void test_money(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    MONEY("$12.50", "12.50 USD");
    MONEY("-$5", "-5.00 USD");       /* a refund: the sign before the symbol */
    MONEY("$12.50,25", "12.50 USD"); /* no decimal comma after decimals */
    MONEY("12,50 EUR", "12.50 EUR");
    MONEY("$12345678901234567890", "-"); /* more digits than a double holds */
    MONEY("it costs $ 12", "12.00 USD");
    MONEY("12 bucks", "12.00 USD");
    MONEY("EUR 30", "30.00 EUR");
    MONEY("eur30", "30.00 EUR");
    MONEY("30 euros", "30.00 EUR");
    MONEY("30€", "30.00 EUR");
    MONEY("€30", "30.00 EUR");
    MONEY("£5", "5.00 GBP");
    MONEY("5 quid", "5.00 GBP");
    MONEY("30 EUR", "30.00 EUR");
    MONEY("fifty dollars", "50.00 USD");
    MONEY("12 dollars and 50 cents", "12.50 USD");
    MONEY("12 dollars 50", "12.50 USD");
    MONEY("50 cents", "0.50 USD");
    MONEY("$1,200.99", "1200.99 USD");
    MONEY("¥500", "500 JPY");
    MONEY("US$20", "20.00 USD");
    MONEY("$2 million", "2000000.00 USD");
    MONEY("$5k", "5000.00 USD");
    MONEY("5k dollars", "5000.00 USD");
    MONEY("12,50 EUR", "12.50 EUR"); /* decimal comma */
    MONEY("€12,50", "12.50 EUR");
    MONEY("1,000 USD", "1000.00 USD");
    MONEY("20 pence", "0.20 GBP");
    MONEY("C$5", "5.00 CAD");
    MONEY("can I get a refund of $45.99?", "45.99 USD");
    MONEY("$ 1.234,56", "1234.56 USD");
    MONEY("one dollar fifty", "1.50 USD");
    MONEY("a hundred bucks", "100.00 USD");
    MONEY("100usd", "100.00 USD");
    MONEY("12 apples", "-");
    MONEY("ABC 30", "-");
    ent_ctx_t cad = ref_ctx();
    cad.default_currency = "CAD";
    assert_string_equal(money_of("$5", &cad), "5.00 CAD");
    assert_string_equal(money_of("5 dollars", &cad), "5.00 CAD");
}

static void test_overlaps(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    /* a slot of one type takes what lost an overlap, when nothing else */
    NUM("415 555 0100", "415");
    NUM("4 December", "4");
    NUM("2 bags on 4 December", "2");
    NUM("the second one", "-"); /* its "one" belongs to the ordinal */
    ORD("2nd of May", "2");
    assert_string_equal(extract_all("2 bags on 4 December", &ctx), "number:2 date:2026-12-04");
    assert_string_equal(extract_all("$12.50 for 3", &ctx), "money:12.50 number:3");
    assert_string_equal(extract_all("1, 2, 3", &ctx), "number:1 number:2 number:3");
    assert_string_equal(extract_all("5 dollars two tickets", &ctx), "money:5.00 number:2");
    assert_string_equal(extract_all("first and second", &ctx), "ordinal:1 ordinal:2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_digits), cmocka_unit_test(test_numbers_words),
        cmocka_unit_test(test_ordinals),       cmocka_unit_test(test_money),
        cmocka_unit_test(test_overlaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
