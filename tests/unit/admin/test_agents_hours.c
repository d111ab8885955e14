/* A queue's business hours against the wall clock: offsets from the system's
 * TZif files (daylight saving both ways, zones west and far east of UTC,
 * local days that are not the UTC day), the close minute exclusive, and the
 * queues file's problems reported with their positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin/agents_int.h"

#define US(s) ((int64_t)(s)*1000000)

static char path[64];

/* Parses a queues file holding text; the caller disposes conf's queues. */
static int parse(const char *text, ag_conf_t *conf, core_diags_t *diags)
{
    snprintf(path, sizeof(path), "/tmp/chorus-hours-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    core_diags_init(diags);
    int rc = ag__conf_parse(path, conf, diags);
    unlink(path);
    return rc;
}

static void dispose(ag_conf_t *conf)
{
    ag__conf_dispose(conf);
}

#define WEEKDAYS                                                                                   \
    "\"mon\": \"09:00-17:30\", \"tue\": \"09:00-17:30\", \"wed\": \"09:00-17:30\","                \
    " \"thu\": \"09:00-17:30\", \"fri\": \"09:00-17:30\""

/* One queue open on days (a JSON fragment) in zone tz. */
static void one_queue(const char *days, const char *tz, ag_conf_t *conf)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"queues\": [{\"name\": \"q\", \"hours\": {\"tz\": \"%s\", %s}}]}", tz, days);
    core_diags_t diags;
    assert_int_equal(parse(text, conf, &diags), 0);
    assert_int_equal(diags.len, 0);
    core_diags_dispose(&diags);
    assert_int_equal(conf->n_queues, 1);
}

static void test_london_summer_and_winter(void **state)
{
    (void)state;
    ag_conf_t c;
    one_queue(WEEKDAYS, "Europe/London", &c);
    const ag_queue_t *q = &c.queues[0];
    /* Monday 30 March 2026, the day after the clocks went forward (BST, +1) */
    assert_true(ag__queue_open(q, US(1774859400)));  /* 08:30 UTC = 09:30 BST */
    assert_true(ag__queue_open(q, US(1774888140)));  /* 16:29 UTC = 17:29 BST */
    assert_false(ag__queue_open(q, US(1774888200))); /* 17:30 BST: closed (exclusive) */
    /* Friday 27 March 2026, still GMT */
    assert_false(ag__queue_open(q, US(1774600200))); /* 08:30 GMT */
    assert_true(ag__queue_open(q, US(1774602000)));  /* 09:00 GMT */
    /* Monday 5 January 2026 (GMT) and Monday 26 October 2026 (back to GMT) */
    assert_false(ag__queue_open(q, US(1767601800))); /* 08:30 GMT */
    assert_false(ag__queue_open(q, US(1793003400))); /* 08:30 GMT */
    /* Sunday 29 March 2026: no hours that day */
    assert_false(ag__queue_open(q, US(1774778400)));
    dispose(&c);
}

static void test_zones_west_and_east_of_utc(void **state)
{
    (void)state;
    ag_conf_t c;
    one_queue(WEEKDAYS, "America/New_York", &c);
    /* Monday 5 January 2026, EST (-5) */
    assert_false(ag__queue_open(&c.queues[0], US(1767621540))); /* 13:59 UTC = 08:59 */
    assert_true(ag__queue_open(&c.queues[0], US(1767621600)));  /* 14:00 UTC = 09:00 */
    dispose(&c);
    /* +14: Monday 09:30 local is Sunday 19:30 UTC */
    one_queue(WEEKDAYS, "Pacific/Kiritimati", &c);
    assert_true(ag__queue_open(&c.queues[0], US(1767555000))); /* Sun 4 Jan 19:30 UTC */
    /* Friday 9 January 19:30 UTC is Saturday 09:30 there: closed */
    assert_false(ag__queue_open(&c.queues[0], US(1767987000)));
    dispose(&c);
}

static void test_local_evening_on_the_next_utc_day(void **state)
{
    (void)state;
    ag_conf_t c;
    one_queue("\"mon\": \"22:00-23:59\"", "America/Los_Angeles", &c);
    /* Monday 5 January 2026 22:30 PST is Tuesday 06:30 UTC */
    assert_true(ag__queue_open(&c.queues[0], US(1767681000)));
    /* Tuesday 22:30 PST: no hours on Tuesday */
    assert_false(ag__queue_open(&c.queues[0], US(1767767400)));
    dispose(&c);
}

static void test_no_hours_is_always_open(void **state)
{
    (void)state;
    ag_conf_t c;
    core_diags_t diags;
    assert_int_equal(parse("{\"queues\": [{\"name\": \"any\"}]}", &c, &diags), 0);
    core_diags_dispose(&diags);
    assert_true(ag__queue_open(&c.queues[0], US(1767601800)));
    assert_true(ag__queue_open(&c.queues[0], 0));
    dispose(&c);
}

static void test_unknown_zones_are_refused(void **state)
{
    (void)state;
    ag_zone_t z = {0};
    assert_int_equal(ag__zone_load("Mars/Olympus_Mons", &z), -1);
    assert_int_equal(ag__zone_load("../../etc/passwd", &z), -1);
    assert_int_equal(ag__zone_load("Europe/London", &z), 0);
    assert_true(z.n > 100); /* the zone's recorded transitions */
    free(z.at), free(z.off);
}

static void test_problems_carry_their_position(void **state)
{
    (void)state;
    ag_conf_t c;
    core_diags_t diags;
    int rc = parse("{\"queues\": [\n {\"name\": \"q\",\n  \"hours\": {\"tz\": \"UTC\", \"mon\": "
                   "\"18:00-09:00\"}}],\n \"routez\": {}}",
                   &c, &diags);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_int_equal(diags.len, 2);
    char line[512];
    int saw_day = 0, saw_key = 0;
    for (size_t i = 0; i < diags.len; i++) {
        const char *s = core_diag_format(&diags.items[i], line, sizeof(line));
        saw_day |= strstr(s, ":3:33: queues[0].hours.mon: must be") != NULL;
        saw_key |= strstr(s, ":4:12: routez: unknown key") != NULL;
    }
    assert_true(saw_day);
    assert_true(saw_key);
    core_diags_dispose(&diags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_london_summer_and_winter),
        cmocka_unit_test(test_zones_west_and_east_of_utc),
        cmocka_unit_test(test_local_evening_on_the_next_utc_day),
        cmocka_unit_test(test_no_hours_is_always_open),
        cmocka_unit_test(test_unknown_zones_are_refused),
        cmocka_unit_test(test_problems_carry_their_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
