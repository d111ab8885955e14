/* The Twilio helpers and the SMS text rules: X-Twilio-Signature (Twilio's
 * documented example and our own vectors, also checked against the official
 * npm helper in tests/integration/test_twilio_signature.mjs; the URL with
 * and without its port, a pair sent twice signed once), form decoding,
 * XML escaping, GSM-7 detection with the extension table, segment counts,
 * splitting at sentence ends, the carrier keywords and the last menu read
 * back from a stored record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channels/chan_twilio_int.h"

static twilio_form_t form(const char *body)
{
    twilio_form_t f;
    core_err_t err = {0};
    assert_int_equal(twilio__form_parse(body, strlen(body), &f, &err), 0);
    return f;
}

static void test_signature_documented_example(void **state)
{
    (void)state;
    /* Twilio's own example: token 12345, a voice callback with a query */
    twilio_form_t f = form("To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030"
                           "&CallSid=CA1234567890ABCDE");
    char sig[TWILIO_SIG_LEN + 1];
    twilio__signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &f, sig);
    assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert_true(twilio__signature_ok("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &f,
                                     "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    /* another URL, token, header or value: rejected */
    assert_false(twilio__signature_ok("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &f,
                                      "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert_false(twilio__signature_ok("12346", "https://mycompany.com/myapp.php?foo=1&bar=2", &f,
                                      "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert_false(twilio__signature_ok("", "https://mycompany.com/myapp.php?foo=1&bar=2", &f,
                                      "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert_false(
        twilio__signature_ok("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &f, NULL));
    assert_false(twilio__signature_ok("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &f,
                                      "0/KCTR6DLpKmkAf8muzZqo1nDgQ"));
    twilio__form_dispose(&f);
}

static void test_signature_own_vectors(void **state)
{
    (void)state;
    /* UTF-8 and XML-special characters in a value; params sorted by name */
    twilio_form_t f = form("Body=H%C3%A9llo+%26+%3Cbye%3E&From=%2B15551230001&MessageSid=SM1"
                           "&To=%2B15559870000&NumMedia=0");
    assert_string_equal(twilio__form_get(&f, "Body"), "H\xc3\xa9llo & <bye>");
    char sig[TWILIO_SIG_LEN + 1];
    twilio__signature("secret", "https://bot.example.com/v1/sms/twilio", &f, sig);
    assert_string_equal(sig, "jo5gB3Pa5z1dtULdQq4IAmr7Iok=");
    twilio__form_dispose(&f);
    /* no params at all: the URL alone */
    twilio_form_t e = form("");
    twilio__signature("secret", "https://bot.example.com/v1/voice/twilio", &e, sig);
    assert_int_equal(strlen(sig), TWILIO_SIG_LEN);
    twilio__form_dispose(&e);
}

/* 1 when a header signed (token "secret") for signed_url passes the check
 * against the URL chorusd built. */
static int accepts(const char *built_url, const char *signed_url, const twilio_form_t *f)
{
    char sig[TWILIO_SIG_LEN + 1];
    twilio__signature("secret", signed_url, f, sig);
    return twilio__signature_ok("secret", built_url, f, sig);
}

static void test_signature_with_and_without_the_port(void **state)
{
    (void)state;
    twilio_form_t f = form("Body=hi&From=%2B15551230001&To=%2B15559870000");
    /* a port named: Twilio may sign the URL without it, never another one */
    const char *p8443 = "https://bot.example.com:8443/v1/sms/twilio";
    assert_true(accepts(p8443, p8443, &f));
    assert_true(accepts(p8443, "https://bot.example.com/v1/sms/twilio", &f));
    assert_false(accepts(p8443, "https://bot.example.com:443/v1/sms/twilio", &f));
    assert_false(accepts(p8443, "https://bot.example.com:8444/v1/sms/twilio", &f));
    /* no port: Twilio may sign it with the scheme's default one */
    const char *https = "https://bot.example.com/v1/sms/twilio";
    assert_true(accepts(https, https, &f));
    assert_true(accepts(https, "https://bot.example.com:443/v1/sms/twilio", &f));
    assert_false(accepts(https, "https://bot.example.com:80/v1/sms/twilio", &f));
    assert_false(accepts(https, "https://bot.example.com:8443/v1/sms/twilio", &f));
    assert_true(accepts("http://h.example/x", "http://h.example:80/x", &f));
    assert_false(accepts("http://h.example/x", "http://h.example:443/x", &f));
    /* the default port named: Twilio drops it */
    assert_true(accepts("https://h.example:443/x", "https://h.example/x", &f));
    /* the Host header's form (no sms.public_url) */
    assert_true(
        accepts("http://127.0.0.1:5000/v1/sms/twilio", "http://127.0.0.1/v1/sms/twilio", &f));
    assert_false(
        accepts("http://127.0.0.1:5000/v1/sms/twilio", "http://127.0.0.1:80/v1/sms/twilio", &f));
    /* the port is the authority's: not a colon of the userinfo, of an IPv6
     * literal, of the path or of the query */
    assert_true(accepts("https://[::1]:8443/x", "https://[::1]/x", &f));
    assert_true(accepts("https://[::1]/x", "https://[::1]:443/x", &f));
    assert_true(accepts("https://u:pw@h.example/x", "https://u:pw@h.example:443/x", &f));
    assert_true(accepts("https://h.example/a:b?t=1:2", "https://h.example:443/a:b?t=1:2", &f));
    assert_false(accepts("https://h.example/a:b?t=1:2", "https://h.example/a?t=1:2", &f));
    assert_true(accepts("https://h.example?t=1:2", "https://h.example:443?t=1:2", &f));
    /* another path or scheme is another URL */
    assert_false(accepts(https, "http://bot.example.com/v1/sms/twilio", &f));
    assert_false(accepts(https, "https://bot.example.com/v1/voice/twilio", &f));
    twilio__form_dispose(&f);
}

static void test_signature_repeated_pairs(void **state)
{
    (void)state;
    /* a (name, value) pair sent twice is signed once, as the npm helper's
     * getExpectedTwilioSignature computes it (test_twilio_signature.mjs) */
    twilio_form_t f = form("MediaUrl0=https%3A%2F%2Fx%2F1&Body=hi&From=%2B15551230001"
                           "&MediaUrl0=https%3A%2F%2Fx%2F1&To=%2B15559870000");
    char sig[TWILIO_SIG_LEN + 1], once[TWILIO_SIG_LEN + 1];
    twilio__signature("secret", "https://bot.example.com/v1/sms/twilio", &f, sig);
    assert_string_equal(sig, "YrVMiyomUxVoYcv340ZhVex8GOY=");
    twilio_form_t g = form("Body=hi&From=%2B15551230001&MediaUrl0=https%3A%2F%2Fx%2F1"
                           "&To=%2B15559870000");
    twilio__signature("secret", "https://bot.example.com/v1/sms/twilio", &g, once);
    assert_string_equal(sig, once);
    assert_true(twilio__signature_ok("secret", "https://bot.example.com/v1/sms/twilio", &f, sig));
    /* the same name with other values: each value counts */
    twilio_form_t h = form("A=1&A=2&A=1");
    twilio_form_t k = form("A=1&A=2");
    twilio_form_t m = form("A=1");
    twilio__signature("secret", "https://h.example/x", &h, sig);
    twilio__signature("secret", "https://h.example/x", &k, once);
    assert_string_equal(sig, once);
    twilio__signature("secret", "https://h.example/x", &m, once);
    assert_string_not_equal(sig, once);
    twilio__form_dispose(&f);
    twilio__form_dispose(&g);
    twilio__form_dispose(&h);
    twilio__form_dispose(&k);
    twilio__form_dispose(&m);
}

static void test_form_errors(void **state)
{
    (void)state;
    twilio_form_t f;
    core_err_t err = {0};
    assert_int_equal(twilio__form_parse("Body=%zz", 8, &f, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "percent-escape"));
    assert_int_equal(twilio__form_parse("Body=%4", 7, &f, &err), CORE_ERR_INVALID);
    assert_int_equal(twilio__form_parse("Body=a%00b", 10, &f, &err), CORE_ERR_INVALID);
    assert_int_equal(twilio__form_parse("=x", 2, &f, &err), CORE_ERR_INVALID);
    twilio_form_t g = form("A=1&&B&C=%41%2b");
    assert_int_equal(g.n, 3);
    assert_string_equal(twilio__form_get(&g, "B"), "");
    assert_string_equal(twilio__form_get(&g, "C"), "A+");
    assert_null(twilio__form_get(&g, "D"));
    twilio__form_dispose(&g);
}

static void test_xml_escape(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    const char in[] = "a<b>&\"c'\x01\td";
    twilio__xml_escape(&b, in, sizeof(in) - 1);
    core_buf_append(&b, "", 1);
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;c&apos;\td");
    core_buf_dispose(&b);
}

static void test_gsm7(void **state)
{
    (void)state;
    assert_int_equal(sms__gsm7_septets("Hello @ $5_", 11), 11);
    assert_int_equal(sms__gsm7_septets("\xe2\x82\xac", 3), 2); /* euro: extension table */
    assert_int_equal(sms__gsm7_septets("[x]{}", 5), 9);
    assert_int_equal(sms__gsm7_septets("caf\xc3\xa9 \xc3\x87", 8), 6); /* é, Ç are basic */
    assert_int_equal(sms__gsm7_septets("\xc3\xa7", 2), -1);            /* ç is not */
    assert_int_equal(sms__gsm7_septets("`", 1), -1);
    assert_int_equal(sms__gsm7_septets("\xf0\x9f\x99\x82", 4), -1); /* emoji */
    assert_int_equal(sms__ucs2_units("\xf0\x9f\x99\x82"
                                     "a",
                                     5),
                     3);
    assert_int_equal(sms__gsm7_septets("\xce\xa9\xce\x94", 4), 2); /* Ω Δ are basic */
}

static char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

static void test_segments(void **state)
{
    (void)state;
    char *a160 = repeat("a", 160), *a161 = repeat("a", 161);
    char *e80 = repeat("\xe2\x82\xac", 80), *e81 = repeat("\xe2\x82\xac", 81);
    char *z70 = repeat("\xd0\x96", 70), *z71 = repeat("\xd0\x96", 71);
    assert_int_equal(sms__segments(a160, strlen(a160)), 1);
    assert_int_equal(sms__segments(a161, strlen(a161)), 2);
    assert_int_equal(sms__segments(e80, strlen(e80)), 1); /* 160 septets */
    assert_int_equal(sms__segments(e81, strlen(e81)), 2);
    assert_int_equal(sms__segments(z70, strlen(z70)), 1);
    assert_int_equal(sms__segments(z71, strlen(z71)), 2);
    assert_int_equal(sms__segments("", 0), 0);
    free(a160);
    free(a161);
    free(e80);
    free(e81);
    free(z70);
    free(z71);
}

static void check_parts(const char *text, size_t limit, size_t want_min_parts)
{
    char **parts;
    size_t n;
    sms__split(text, strlen(text), &parts, &n);
    assert_true(n >= want_min_parts);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        long g = sms__gsm7_septets(parts[i], strlen(parts[i]));
        size_t units = g >= 0 ? (size_t)g : sms__ucs2_units(parts[i], strlen(parts[i]));
        assert_true(units <= limit);
        assert_true(units > 0);
        total += strlen(parts[i]);
    }
    /* nothing lost but the spaces at the cuts */
    assert_true(total + n - 1 >= strlen(text) - n);
    sms__parts_free(parts, n);
}

static void test_split_at_sentences(void **state)
{
    (void)state;
    const char *text = "Your flight CH 101 from London Heathrow to New York JFK is confirmed. "
                       "It leaves on Saturday 12 December 2026 at 09:40 from terminal 5. "
                       "Check-in closes sixty minutes before departure. "
                       "Bring the card you paid with! Any questions? Reply HELP.";
    char **parts;
    size_t n;
    sms__split(text, strlen(text), &parts, &n);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(sms__gsm7_septets(parts[i], strlen(parts[i])) <= SMS_GSM_PART);
        char last = parts[i][strlen(parts[i]) - 1];
        assert_true(last == '.' || last == '!' || last == '?'); /* cut after a sentence */
    }
    assert_string_equal(parts[0], "Your flight CH 101 from London Heathrow to New York JFK is "
                                  "confirmed. It leaves on Saturday 12 December 2026 at 09:40 from "
                                  "terminal 5.");
    sms__parts_free(parts, n);
    /* a short one stays whole */
    sms__split("Hi.", 3, &parts, &n);
    assert_int_equal(n, 1);
    assert_string_equal(parts[0], "Hi.");
    sms__parts_free(parts, n);
}

static void test_split_limits(void **state)
{
    (void)state;
    char *words = repeat("abcdefghi ", 60); /* no sentence end: cut at spaces */
    check_parts(words, SMS_GSM_PART, 4);
    char *euros = repeat("\xe2\x82\xac", 200); /* two septets each, no spaces */
    check_parts(euros, SMS_GSM_PART, 3);
    char *cyr = repeat("\xd0\x96\xd0\xb8\xd0\xbc. ", 60); /* UCS-2 */
    check_parts(cyr, SMS_UCS_PART, 5);
    char *emoji = repeat("\xf0\x9f\x99\x82", 100); /* surrogate pairs: 2 units */
    check_parts(emoji, SMS_UCS_PART, 3);
    free(words);
    free(euros);
    free(cyr);
    free(emoji);
    /* "Р" is U+0420, whose low byte is a space's: cuts fall between words */
    char *er = repeat("\xd0\xa0\xd0\xa0\xd0\xa0\xd0\xa0\xd0\xa0\xd0\xa0\xd0\xa0\xd0\xa0 ", 30);
    char **parts;
    size_t n;
    sms__split(er, strlen(er), &parts, &n);
    assert_true(n >= 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal((strlen(parts[i]) + 1) % 17, 0); /* whole words of 16 bytes */
    sms__parts_free(parts, n);
    free(er);
}

static void test_keywords(void **state)
{
    (void)state;
    assert_int_equal(sms__keyword("STOP", 4), SMS_KW_STOP);
    assert_int_equal(sms__keyword("  stop. ", 8), SMS_KW_STOP);
    assert_int_equal(sms__keyword("Unsubscribe", 11), SMS_KW_STOP);
    assert_int_equal(sms__keyword("cancel", 6), SMS_KW_STOP);
    assert_int_equal(sms__keyword("END", 3), SMS_KW_STOP);
    assert_int_equal(sms__keyword("quit", 4), SMS_KW_STOP);
    assert_int_equal(sms__keyword("STOPALL", 7), SMS_KW_STOP);
    assert_int_equal(sms__keyword("start", 5), SMS_KW_START);
    assert_int_equal(sms__keyword("UNSTOP", 6), SMS_KW_START);
    assert_int_equal(sms__keyword("yes", 3), SMS_KW_YES);
    assert_int_equal(sms__keyword("Help", 4), SMS_KW_HELP);
    assert_int_equal(sms__keyword("info", 4), SMS_KW_HELP);
    assert_int_equal(sms__keyword("please stop", 11), SMS_KW_NONE);
    assert_int_equal(sms__keyword("stopped", 7), SMS_KW_NONE);
    assert_int_equal(sms__keyword("", 0), SMS_KW_NONE);
}

/* The runtime key of an SMS conversation back into its two numbers, the
 * customer's first; a letters-only prefix stays with its number. */
static void test_sms_key(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"sms:+15551230001:+15559870000", "+15551230001", "+15559870000"},
        {"sms:whatsapp:+15551230001:whatsapp:+15559870000", "whatsapp:+15551230001",
         "whatsapp:+15559870000"},
        {"sms:+15551230001:whatsapp:+15559870000", "+15551230001", "whatsapp:+15559870000"},
        {"sms:12345:+15559870000", "12345", "+15559870000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *customer = NULL, *ours = NULL;
        assert_int_equal(twilio__sms_key(cases[i][0], &customer, &ours), 0);
        assert_string_equal(customer, cases[i][1]);
        assert_string_equal(ours, cases[i][2]);
        free(customer);
        free(ours);
    }
    char *a, *b;
    assert_int_equal(twilio__sms_key("chat:abc", &a, &b), CORE_ERR_INVALID);
    assert_int_equal(twilio__sms_key("sms:+1555", &a, &b), CORE_ERR_INVALID);
    assert_int_equal(twilio__sms_key("sms:+1555:", &a, &b), CORE_ERR_INVALID);
    assert_int_equal(twilio__sms_key("sms::+1555", &a, &b), CORE_ERR_INVALID);
}

/* The last menu from a stored record: the reply of the last outbound row
 * decides, its last message with choices gives them (value, else title, at
 * most max), and a last reply without choices (or none at all) gives none. */
static void test_last_choices_from_a_record(void **state)
{
    (void)state;
    char **ch = NULL;
    json_t *rec = json_loads(
        "{\"turns\":[{\"seq\":1,\"direction\":\"out\"},{\"seq\":2,\"direction\":\"in\"},"
        "{\"seq\":3,\"direction\":\"out\"}],"
        "\"events\":[{\"kind\":\"reply\",\"turn_seq\":1,\"detail\":{\"messages\":["
        "{\"text\":\"old\",\"choices\":[{\"title\":\"Old\",\"value\":\"old\"}]}]}},"
        "{\"kind\":\"handoff\",\"turn_seq\":3,\"detail\":{}},"
        "{\"kind\":\"reply\",\"turn_seq\":3,\"detail\":{\"messages\":["
        "{\"text\":\"a\",\"choices\":[{\"title\":\"A\",\"value\":\"pick a\"},{\"title\":\"B\"}]},"
        "{\"text\":\"b\",\"choices\":[]}]}}]}",
        0, NULL);
    assert_non_null(rec);
    assert_int_equal(twilio__last_choices(rec, 9, &ch), 2);
    assert_string_equal(ch[0], "pick a");
    assert_string_equal(ch[1], "B");
    twilio__choices_free(ch, 2);
    /* a menu says at most max of them (nine keys on a phone) */
    assert_int_equal(twilio__last_choices(rec, 1, &ch), 1);
    assert_string_equal(ch[0], "pick a");
    twilio__choices_free(ch, 1);
    json_decref(rec);

    /* the last outbound row had no reply event: no list, the older one is gone */
    rec = json_loads(
        "{\"turns\":[{\"seq\":1,\"direction\":\"out\"},{\"seq\":4,\"direction\":\"out\"}],"
        "\"events\":[{\"kind\":\"reply\",\"turn_seq\":1,\"detail\":{\"messages\":["
        "{\"text\":\"x\",\"choices\":[{\"title\":\"X\",\"value\":\"x\"}]}]}}]}",
        0, NULL);
    assert_int_equal(twilio__last_choices(rec, 9, &ch), 0);
    assert_null(ch);
    json_decref(rec);

    /* nothing usable: no list, and no crash */
    const char *odd[] = {"{}", "{\"turns\":7,\"events\":\"x\"}",
                         "{\"turns\":[{\"seq\":\"1\",\"direction\":\"out\"}],\"events\":[]}"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        rec = json_loads(odd[i], 0, NULL);
        assert_int_equal(twilio__last_choices(rec, 9, &ch), 0);
        assert_null(ch);
        json_decref(rec);
    }
    assert_int_equal(twilio__last_choices(NULL, 9, &ch), 0);
}

/* The last reply from a stored record: the last outbound row's text, its
 * reply event's messages and the slot it confirms, borrowed from the record;
 * a row without a reply event has its text alone; no outbound row, none. */
static void test_last_reply_from_a_record(void **state)
{
    (void)state;
    twilio_reply_t r;
    json_t *rec = json_loads(
        "{\"turns\":[{\"seq\":1,\"direction\":\"out\",\"text\":\"Hi\\nMenu\"},"
        "{\"seq\":2,\"direction\":\"in\",\"text\":\"ABC123\"},"
        "{\"seq\":3,\"direction\":\"out\",\"text\":\"I heard ABC123.\\nIs that right?\"}],"
        "\"events\":[{\"kind\":\"reply\",\"turn_seq\":1,\"detail\":{\"messages\":[]}},"
        "{\"kind\":\"reply\",\"turn_seq\":3,\"detail\":{\"messages\":["
        "{\"text\":\"I heard ABC123.\",\"choices\":[]},{\"text\":\"Is that right?\","
        "\"choices\":[]}],\"confirm\":\"booking_ref\"}}]}",
        0, NULL);
    assert_non_null(rec);
    assert_int_equal(twilio__last_reply(rec, &r), 0);
    assert_string_equal(r.text, "I heard ABC123.\nIs that right?");
    assert_int_equal(json_array_size(r.messages), 2);
    assert_string_equal(r.confirm, "booking_ref");
    json_decref(rec);

    /* no reply event for the last row: the text alone, no older messages */
    rec = json_loads("{\"turns\":[{\"seq\":1,\"direction\":\"out\",\"text\":\"a\"},"
                     "{\"seq\":4,\"direction\":\"out\",\"text\":\"Say it again.\"}],"
                     "\"events\":[{\"kind\":\"reply\",\"turn_seq\":1,\"detail\":{"
                     "\"messages\":[],\"confirm\":\"x\"}}]}",
                     0, NULL);
    assert_int_equal(twilio__last_reply(rec, &r), 0);
    assert_string_equal(r.text, "Say it again.");
    assert_null(r.messages);
    assert_null(r.confirm);
    json_decref(rec);

    /* an outbound row without text (a turn that said nothing): "" */
    rec = json_loads("{\"turns\":[{\"seq\":2,\"direction\":\"out\"}]}", 0, NULL);
    assert_int_equal(twilio__last_reply(rec, &r), 0);
    assert_string_equal(r.text, "");
    json_decref(rec);

    /* no outbound row */
    const char *none[] = {"{}", "{\"turns\":[{\"seq\":1,\"direction\":\"in\",\"text\":\"hi\"}]}",
                          "{\"turns\":7,\"events\":\"x\"}"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        rec = json_loads(none[i], 0, NULL);
        assert_int_equal(twilio__last_reply(rec, &r), CORE_ERR_NOT_FOUND);
        assert_null(r.text);
        json_decref(rec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_documented_example),
        cmocka_unit_test(test_signature_own_vectors),
        cmocka_unit_test(test_signature_with_and_without_the_port),
        cmocka_unit_test(test_signature_repeated_pairs),
        cmocka_unit_test(test_form_errors),
        cmocka_unit_test(test_xml_escape),
        cmocka_unit_test(test_gsm7),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_split_at_sentences),
        cmocka_unit_test(test_split_limits),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_sms_key),
        cmocka_unit_test(test_last_choices_from_a_record),
        cmocka_unit_test(test_last_reply_from_a_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
