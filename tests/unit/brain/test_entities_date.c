/* Dates and times: absolute forms, relative ones against the reference date,
 * month/year rollover and leap years. The reference is Sunday 2026-11-29. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_entities.h"

#define DATE(text, want) assert_string_equal(find_in(ENT_DATE, (text), &ctx), (want))
#define ORD(text, want) assert_string_equal(find_in(ENT_ORDINAL, (text), &ctx), (want))
#define TIME(text, want) assert_string_equal(find_in(ENT_TIME, (text), &ctx), (want))

static void test_dates_numeric(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    DATE("2026-12-04", "2026-12-04");
    DATE("on 2026/12/04 please", "2026-12-04");
    DATE("12/04/2026", "2026-12-04"); /* US: month first */
    DATE("25/12/2026", "2026-12-25"); /* no 25th month: day first */
    DATE("12/04/26", "2026-12-04");
    DATE("12-04-2026", "2026-12-04");
    DATE("04.12.2026", "2026-12-04"); /* dotted: day first */
    DATE("12/25", "2026-12-25");
    DATE("1/15", "2027-01-15"); /* already past this year: next year */
    DATE("2026-02-30", "-");
    DATE("2026-13-01", "-");
    DATE("3.5", "-");
    ent_ctx_t gb = ref_ctx();
    gb.default_country = "GB";
    assert_string_equal(find_in(ENT_DATE, "12/04/2026", &gb), "2026-04-12");
}

static void test_dates_named(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    DATE("4 December", "2026-12-04");
    DATE("4th December", "2026-12-04");
    DATE("the 4th of December", "2026-12-04");
    DATE("Dec 4th", "2026-12-04");
    DATE("December 4", "2026-12-04");
    DATE("Dec. 4, 2027", "2027-12-04");
    DATE("December 4th, 2026", "2026-12-04");
    DATE("4 Dec 2026", "2026-12-04");
    DATE("4-Dec-2026", "2026-12-04");
    DATE("fourth of july", "2027-07-04");
    DATE("Friday 4 December", "2026-12-04");
    DATE("1 November", "2027-11-01");  /* passed: next year */
    DATE("29 November", "2026-11-29"); /* today counts */
    DATE("31 April", "-");
    DATE("February 29", "2028-02-29"); /* the next leap year */
    DATE("29 February 2027", "-");
    DATE("may I ask", "-");
    DATE("the 3rd of march at 10am", "2027-03-03");
    DATE("Monday, December 7th at 9:30", "2026-12-07");
    DATE("on the 4th of july 2027", "2027-07-04");
    DATE("I was born on 04/07/1985", "1985-04-07");
    DATE("in a fortnight", "2026-12-13");
}

static void test_dates_relative(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    DATE("today", "2026-11-29");
    DATE("tomorrow", "2026-11-30");
    DATE("yesterday", "2026-11-28");
    DATE("the day after tomorrow", "2026-12-01");
    DATE("day after tomorrow", "2026-12-01");
    DATE("the day before yesterday", "2026-11-27");
    DATE("in 3 days", "2026-12-02");
    DATE("in two weeks", "2026-12-13");
    DATE("in a week", "2026-12-06");
    DATE("in a month", "2026-12-29");
    DATE("in 2 months", "2027-01-29");
    DATE("3 days from now", "2026-12-02");
    DATE("a week from tomorrow", "2026-12-07");
    DATE("2 days ago", "2026-11-27");
    DATE("next week", "2026-12-06");
    DATE("next month", "2026-12-29");
    DATE("next year", "2027-11-29");
}

static void test_day_of_month_alone(void **state)
{
    ent_ctx_t ctx = ref_ctx(); /* 29 November */
    DATE("I need it by the 5th", "2026-12-05");
    DATE("on the 30th", "2026-11-30");
    DATE("on the 29th", "2026-11-29");
    DATE("on the 31st", "2026-12-31"); /* November has no 31st */
    DATE("by the twenty-first", "2026-12-21");
    DATE("the 5", "-");
    DATE("for the first time", "-");
    DATE("after the first one", "-");
    ORD("take the 5th", "5"); /* not after on/by/until/...: an ordinal */
    assert_string_equal(extract_all("the second one", &ctx), "ordinal:2");
    ent_ctx_t jan = ctx_at(2027, 1, 31);
    assert_string_equal(find_in(ENT_DATE, "on the 30th", &jan), "2027-03-30"); /* skips February */
}

static void test_weekdays(void **state)
{
    ent_ctx_t ctx = ref_ctx(); /* a Sunday */
    DATE("friday", "2026-12-04");
    DATE("on monday", "2026-11-30");
    DATE("this friday", "2026-12-04");
    DATE("next friday", "2026-12-04"); /* Friday of next week (weeks start Monday) */
    DATE("sunday", "2026-11-29");      /* today is a Sunday */
    DATE("next sunday", "2026-12-06");
    DATE("last friday", "2026-11-27");
    DATE("on fri", "2026-12-04");
    DATE("sun is out", "-");
    DATE("this coming friday", "2026-12-04");
    DATE("coming friday", "2026-12-04");
    DATE("on tues", "2026-12-01");
    DATE("next thurs", "2026-12-03");
    DATE("on Fri.", "2026-12-04");
    DATE("Fri, Dec 4th", "2026-12-04");
    DATE("last sunday", "2026-11-22");
    ent_ctx_t wed = ctx_at(2026, 12, 2); /* a Wednesday */
    assert_string_equal(find_in(ENT_DATE, "friday", &wed), "2026-12-04");
    assert_string_equal(find_in(ENT_DATE, "this friday", &wed), "2026-12-04");
    assert_string_equal(find_in(ENT_DATE, "next friday", &wed), "2026-12-11");
    assert_string_equal(find_in(ENT_DATE, "friday next week", &wed), "2026-12-11");
    assert_string_equal(find_in(ENT_DATE, "wednesday", &wed), "2026-12-02");
    assert_string_equal(find_in(ENT_DATE, "last wednesday", &wed), "2026-11-25");
}

static void test_rollover_and_leap(void **state)
{
    ent_ctx_t dec = ctx_at(2026, 12, 30);
    assert_string_equal(find_in(ENT_DATE, "in 3 days", &dec), "2027-01-02");
    assert_string_equal(find_in(ENT_DATE, "tomorrow", &dec), "2026-12-31");
    assert_string_equal(find_in(ENT_DATE, "the day after tomorrow", &dec), "2027-01-01");
    ent_ctx_t feb = ctx_at(2028, 2, 27);
    assert_string_equal(find_in(ENT_DATE, "in 2 days", &feb), "2028-02-29");
    assert_string_equal(find_in(ENT_DATE, "in 3 days", &feb), "2028-03-01");
    ent_ctx_t feb27 = ctx_at(2027, 2, 28);
    assert_string_equal(find_in(ENT_DATE, "tomorrow", &feb27), "2027-03-01");
    ent_ctx_t jan31 = ctx_at(2027, 1, 31);
    assert_string_equal(find_in(ENT_DATE, "in a month", &jan31), "2027-02-28");
    ent_ctx_t leap_jan31 = ctx_at(2028, 1, 31);
    assert_string_equal(find_in(ENT_DATE, "in a month", &leap_jan31), "2028-02-29");
    ent_ctx_t c1900 = ctx_at(2100, 2, 28); /* 2100 is not a leap year */
    assert_string_equal(find_in(ENT_DATE, "tomorrow", &c1900), "2100-03-01");
    /* without a reference date, relative expressions are not resolved */
    assert_string_equal(find_in(ENT_DATE, "tomorrow", NULL), "-");
    assert_string_equal(find_in(ENT_DATE, "2026-12-04", NULL), "2026-12-04");
}

static void test_times(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    TIME("14:30", "14:30");
    TIME("at 9:05", "09:05");
    TIME("14:30:15", "14:30");
    TIME("2:30pm", "14:30");
    TIME("2:30 p.m.", "14:30");
    TIME("2 pm", "14:00");
    TIME("2pm", "14:00");
    TIME("11am", "11:00");
    TIME("12am", "00:00");
    TIME("12pm", "12:00");
    TIME("noon", "12:00");
    TIME("midday", "12:00");
    TIME("midnight", "00:00");
    TIME("half past three", "03:30");
    TIME("quarter past 3", "03:15");
    TIME("quarter to five", "04:45");
    TIME("a quarter to five pm", "16:45");
    TIME("ten past four", "04:10");
    TIME("twenty to six", "05:40");
    TIME("five o'clock", "05:00");
    TIME("3 o'clock in the afternoon", "15:00");
    TIME("seven thirty in the evening", "19:30");
    TIME("14h30", "14:30");
    TIME("between 9am and 5pm", "09:00");
    TIME("twenty five minutes to six", "05:35");
    TIME("5 past 7", "07:05");
    TIME("half past 7 in the evening", "19:30");
    TIME("12 noon", "12:00");
    TIME("09:00h", "09:00");
    TIME("quarter past noon", "12:15");
    TIME("quarter to midnight", "23:45");
    TIME("half past midnight", "00:30");
    TIME("2 o clock", "02:00");
    TIME("5 oclock", "05:00");
    TIME("9 A.M.", "09:00");
    TIME("7.45pm", "19:45");
    TIME("2 in the afternoon", "14:00");
    TIME("25:00", "-");
    TIME("13pm", "13:00");
    TIME("13am", "-");
    TIME("2.5", "-");
    /* "at night": the evening, then the small hours after midnight */
    TIME("11 at night", "23:00");
    TIME("9 at night", "21:00");
    TIME("12 at night", "00:00");
    TIME("twelve thirty at night", "00:30");
    TIME("half past 12 at night", "00:30");
    TIME("2 at night", "02:00");
    TIME("quarter to 1 at night", "00:45");
    TIME("seven oh five pm", "19:05");
    TIME("7 oh 5 pm", "19:05"); /* as speech recognisers write it */
    TIME("7 oh 5", "-");        /* no am/pm: two numbers */
}

static void test_relative_times(void **state)
{
    ent_ctx_t ctx = ref_ctx(); /* 10:15 */
    TIME("in 2 hours", "12:15");
    TIME("in an hour", "11:15");
    TIME("in half an hour", "10:45");
    TIME("in 45 mins", "11:00");
    TIME("30 minutes from now", "10:45");
    TIME("in 20 hours", "06:15"); /* wraps at midnight */
    TIME("2 hours", "-");
    assert_string_equal(find_in(ENT_TIME, "in 2 hours", NULL), "-");
}

static void test_dates_and_times_together(void **state)
{
    ent_ctx_t ctx = ref_ctx();
    assert_string_equal(extract_all("tomorrow at 3pm", &ctx), "date:2026-11-30 time:15:00");
    assert_string_equal(extract_all("next friday at half past two", &ctx),
                        "date:2026-12-04 time:02:30");
    assert_string_equal(extract_all("in 3 days", &ctx), "date:2026-12-02");
    assert_string_equal(extract_all("2026-11-29T10:00", &ctx), "date:2026-11-29 time:10:00");
    assert_string_equal(extract_all("2026-11-29T10:00:00Z", &ctx), "date:2026-11-29 time:10:00");
    assert_string_equal(extract_all("next Monday at noon", &ctx), "date:2026-11-30 time:12:00");
    assert_string_equal(extract_all("10 Dec - 12 Dec", &ctx), "date:2026-12-10 date:2026-12-12");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_numeric),
        cmocka_unit_test(test_dates_named),
        cmocka_unit_test(test_dates_relative),
        cmocka_unit_test(test_weekdays),
        cmocka_unit_test(test_rollover_and_leap),
        cmocka_unit_test(test_day_of_month_alone),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_relative_times),
        cmocka_unit_test(test_dates_and_times_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
