/* Out-of-scope examples in flows: the reserved intent "oos" (settings and
 * training files add its examples, no flow may declare it or test it)
 * routes to the fallback whether a message matches an example exactly,
 * comes as the oos payload or is classified so; and with enough examples
 * (20 out of scope, 1,000 in scope) and no confidence_threshold of its own,
 * a flowset's router is calibrated on them when it compiles,
 * deterministically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_brain_util.h"

/* clang-format off */
#define FLOWS_TEXT                                                                                 \
    "{\"name\": \"book\", \"intents\": {\"book_flight\": [\"book a flight to paris\",\n"           \
    "  \"i need a plane ticket to rome\", \"fly me to berlin next week\",\n"                       \
    "  \"reserve a flight for tomorrow\", \"get me a seat on a plane\", \"book me a flight\",\n"   \
    "  \"i want to fly to madrid\", \"buy a plane ticket\"]},\n"                                   \
    " \"nodes\": {\"hi\": {\"type\": \"say\", \"message\": \"Booking.\"}}}"
#define FLOWS_TEXT2                                                                                \
    "{\"name\": \"bags\", \"intents\": {\"baggage\": [\"how many bags can i take\",\n"            \
    "  \"what is the baggage allowance\", \"can i bring a suitcase\", \"is my bag too heavy\",\n"  \
    "  \"how much luggage is allowed\", \"carry on size\", \"checked bag fees\",\n"                \
    "  \"can i take two suitcases\"]},\n"                                                          \
    " \"nodes\": {\"hi\": {\"type\": \"say\", \"message\": \"Bags.\"}}}"
#define FLOWS_TEXT3                                                                                \
    "{\"name\": \"refund\", \"intents\": {\"refund\": [\"where is my refund\",\n"                  \
    "  \"i want my money back\", \"refund my ticket\", \"has my refund been paid\",\n"             \
    "  \"when will i get my money\", \"status of my refund\", \"give me a refund\",\n"             \
    "  \"i was charged twice, refund me\"]},\n"                                                    \
    " \"nodes\": {\"hi\": {\"type\": \"say\", \"message\": \"Refunds.\"}}}"
#define OOS_20                                                                                     \
    "\"tell me a joke\", \"who won the football game\", \"what is the meaning of life\",\n"        \
    " \"what is the capital of france\", \"how tall is mount everest\", \"sing me a song\",\n"     \
    " \"recommend a good movie\", \"how do i bake bread\", \"what is two plus two\",\n"            \
    " \"play some music\", \"set an alarm for seven\", \"how old is the universe\",\n"             \
    " \"translate hello into spanish\", \"what is your favourite colour\",\n"                      \
    " \"who is the president\", \"how many calories in an apple\", \"tell me about black holes\",\n" \
    " \"what's a good name for a dog\", \"how do magnets work\", \"what is the stock price of acme\""
/* clang-format on */

/* A training file with 1,080 more in-scope examples (3 intents x 8
 * phrasings x 45 cities): with fewer than 1,000 a flowset is not tuned. */
static const char *big_training(void)
{
    static char buf[96 * 1024];
    if (buf[0] != '\0')
        return buf;
    static const char *const intents[3] = {"book_flight", "baggage", "refund"};
    static const char *const phrasings[3][8] = {
        /* each followed by a city */
        {"book a flight to", "i need a plane ticket to", "next week fly me to", "reserve a seat to",
         "get me on a plane to", "flights please to", "i want to fly to", "buy a ticket to"},
        {"how many bags can i take to", "baggage allowance for", "can i bring a suitcase to",
         "is my bag too heavy for", "luggage rules for", "carry on size flying to",
         "checked bag fees to", "two suitcases to"},
        {"refund my ticket to", "i want my money back for", "where is my refund for",
         "has my refund been paid for", "cancelled trip, refund me for", "refund status",
         "money back for the flight to", "give me a refund for"},
    };
    static const char *const cities[45] = {
        "paris",     "rome",       "berlin",   "madrid",  "lisbon", "oslo",      "vienna",
        "prague",    "dublin",     "london",   "athens",  "warsaw", "budapest",  "helsinki",
        "stockholm", "copenhagen", "zurich",   "geneva",  "milan",  "naples",    "porto",
        "seville",   "valencia",   "munich",   "hamburg", "lyon",   "nice",      "brussels",
        "amsterdam", "riga",       "vilnius",  "tallinn", "sofia",  "bucharest", "zagreb",
        "split",     "krakow",     "gdansk",   "bergen",  "malaga", "bilbao",    "florence",
        "venice",    "turin",      "marseille"};
    size_t used = (size_t)snprintf(buf, sizeof(buf), "{\"training\": {");
    for (int i = 0; i < 3; i++) {
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s\"%s\": [", i ? ", " : "",
                                 intents[i]);
        for (int p = 0; p < 8; p++)
            for (int c = 0; c < 45; c++) {
                used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s\"%s %s\"",
                                         p || c ? ", " : "", phrasings[i][p], cities[c]);
            }
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "]");
    }
    snprintf(buf + used, sizeof(buf) - used, "}}");
    return buf;
}

typedef enum {
    ROUTES_ONLY, /* validate_only: exact examples and payloads, no router */
    SMALL,       /* the three flows' 24 examples: too few to calibrate */
    LARGE,       /* and the training file's 1,080 */
} examples_t;

/* Compiles the three flows, a settings file holding settings_body (the
 * inside of "settings": {...}) and with LARGE the big training file, with
 * opts; returns the diagnostics. */
static const char *compile_with(const char *settings_body, examples_t kind,
                                const brain_compile_opts_t *opts, brain_flowset_t **out)
{
    char settings[4096];
    snprintf(settings, sizeof(settings), "{\"settings\": {%s}}", settings_body);
    const char *names[] = {"book.json", "bags.json", "refund.json", "settings.json", "big.json"};
    const char *texts[] = {FLOWS_TEXT, FLOWS_TEXT2, FLOWS_TEXT3, settings, big_training()};
    return compile_opts(names, texts, kind == LARGE ? 5 : 4, opts, out);
}

static const char *compile_oos(const char *settings_body, examples_t kind, brain_flowset_t **out)
{
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.no_guard = 1;
    opts.validate_only = kind == ROUTES_ONLY;
    return compile_with(settings_body, kind, &opts, out);
}

static void assert_fallback(harness_t *h, const char *text, const char *intent)
{
    h_send(h, text, intent);
    assert_int_equal(h->rc, BRAIN_DONE);
    assert_int_equal(h->out.out_of_scope, 1);
    assert_null(h->out.intent);
    assert_true(strstr(h_said(h), "understand") != NULL);
}

static void test_oos_examples_route_to_the_fallback(void **state)
{
    brain_flowset_t *fs;
    assert_string_equal(
        compile_oos("\"intents\": {\"oos\": [\"Tell me a joke!\"]}", ROUTES_ONLY, &fs), "");
    harness_t h;
    h_init(&h, fs, BRAIN_CH_CHAT);
    assert_fallback(&h, "tell me a JOKE", NULL); /* an example, exactly (folded) */
    assert_true(h.out.confidence == 0);
    assert_fallback(&h, NULL, "oos");     /* the payload intent */
    h_send(&h, "refund my ticket", NULL); /* in-scope examples still route */
    assert_string_equal(h.out.intent, "refund");
    assert_string_equal(h_said(&h), "Refunds.");
    h_dispose(&h);
}

/* A name typed when no flow waits for one is out of scope: an unknown word
 * counts in the router's norm, so the character pair or two it shares with
 * a built-in intent ("agent", "cancel") does not carry it there, let alone
 * to a person. One of the twelve, "Berlin", still shares enough with
 * "start from the beginning" to restart; none reaches the agent intent. */
static void test_unknown_names_go_to_the_fallback(void **state)
{
    brain_flowset_t *fs;
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts); /* the router trained, the guardrails on */
    const char *names_[] = {"signup.json"};
    const char *texts[] = {
        "{\"name\": \"signup\", \"intents\": {\"signup\": [\"sign me up\", \"start signup\",\n"
        "  \"register me\", \"I want to sign up\", \"new signup\"]},\n"
        " \"slots\": {\"name\": {\"type\": \"text\"}},\n"
        " \"nodes\": {\"ask\": {\"type\": \"ask\", \"slot\": \"name\",\n"
        "  \"prompt\": \"What is your name?\"}}}"};
    assert_string_equal(compile_opts(names_, texts, 1, &opts, &fs), "");
    static const char *const names[] = {"Ada",    "London",     "Bob",    "Grace Hopper",
                                        "Alice",  "Paris",      "Sam",    "anna",
                                        "Berlin", "John Smith", "Madrid", "Oslo"};
    size_t fallback = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        harness_t h;
        h_init(&h, brain_flowset_ref(fs), BRAIN_CH_CHAT);
        h_send(&h, names[i], NULL);
        assert_int_equal(h.rc, BRAIN_DONE);
        assert_int_not_equal(h.out.status, BRAIN_ST_HANDOFF);
        fallback += h.out.out_of_scope && h.out.intent == NULL;
        h_dispose(&h);
    }
    assert_true(fallback >= 11);
    brain_flowset_unref(fs);
}

static void test_oos_is_reserved(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1("{\"name\": \"f\", \"intents\": {\"oos\": [\"tell me a joke\"]},\n"
                             " \"nodes\": {\"hi\": {\"type\": \"say\", \"message\": \"x\"}}}",
                             &fs);
    assert_null(fs);
    assert_non_null(strstr(e, "t.json:1:34: intents.oos: intent \"oos\" is reserved for "
                              "out-of-scope examples (give them in settings.intents.oos)"));
    e = compile1("{\"name\": \"f\", \"intents\": {\"go\": [\"go\"]},\n"
                 " \"nodes\": {\"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"intent\": "
                 "\"oos\"}, \"next\": \"s\"}], \"default\": \"s\"},\n"
                 "  \"s\": {\"type\": \"say\", \"message\": \"x\"}}}",
                 &fs);
    assert_null(fs);
    assert_non_null(strstr(e, "a condition cannot test intent \"oos\": out-of-scope messages go "
                              "to the fallback"));
    e = compile_oos("\"intents\": {\"weather\": [\"will it rain\"]}", ROUTES_ONLY, &fs);
    assert_null(fs);
    assert_non_null(strstr(e, "settings may only add examples to cancel, start_over, help, "
                              "agent, oos"));
}

static void test_training_file_adds_oos_examples(void **state)
{
    brain_flowset_t *fs;
    const char *names[] = {"book.json", "labels.training.json"};
    const char *texts[] = {FLOWS_TEXT, "{\"training\": {\"oos\": [\"what is the capital of "
                                       "france\"], \"book_flight\": [\"a flight to oslo\"]}}"};
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    harness_t h;
    h_init(&h, fs, BRAIN_CH_CHAT);
    assert_fallback(&h, "What is the capital of France?", NULL);
    h_send(&h, "a flight to oslo", NULL);
    assert_string_equal(h.out.intent, "book_flight");
    h_dispose(&h);
}

/* The temperature of a router trained with nothing tuned. */
static double builtin_temperature(void)
{
    brain_flowset_t *fs;
    assert_string_equal(compile_oos("", LARGE, &fs), "");
    double t = nlu_model_temperature(brain_flowset_nlu(fs));
    assert_true(brain_flowset_threshold(fs) == 0.45); /* the settings' default */
    brain_flowset_unref(fs);
    return t;
}

static void test_tuned_when_it_compiles(void **state)
{
    double builtin = builtin_temperature();
    brain_flowset_t *a, *b, *given, *few, *small;
    assert_string_equal(compile_oos("\"intents\": {\"oos\": [" OOS_20 "]}", LARGE, &a), "");
    const nlu_model_t *m = brain_flowset_nlu(a);
    assert_non_null(m);
    /* calibrated: the temperature moved, and the flows' threshold is the router's */
    assert_true(nlu_model_temperature(m) != builtin);
    assert_true(brain_flowset_threshold(a) == nlu_model_threshold(m));
    assert_true(brain_flowset_threshold(a) > 0 && brain_flowset_threshold(a) < 1);
    /* the same sources give the same router */
    assert_string_equal(compile_oos("\"intents\": {\"oos\": [" OOS_20 "]}", LARGE, &b), "");
    assert_true(nlu_model_temperature(brain_flowset_nlu(b)) == nlu_model_temperature(m));
    assert_true(brain_flowset_threshold(b) == brain_flowset_threshold(a));
    assert_string_equal(brain_flowset_nlu_hash(b), brain_flowset_nlu_hash(a));
    /* the oos class learnt from the examples: a paraphrase is out of scope */
    nlu_result_t r;
    nlu_route(m, "tell me a funny joke", 20, NULL, &r);
    assert_int_equal(r.out_of_scope, 1);
    nlu_route(m, "i want to fly to paris", 22, NULL, &r);
    assert_int_equal(r.out_of_scope, 0);
    assert_string_equal(r.top[0].intent, "book_flight");

    /* a confidence_threshold of its own is kept, untuned, under another key */
    assert_string_equal(compile_oos("\"confidence_threshold\": 0.3, \"intents\": {\"oos\": [" OOS_20
                                    "]}",
                                    LARGE, &given),
                        "");
    assert_true(brain_flowset_threshold(given) == 0.3);
    assert_true(nlu_model_threshold(brain_flowset_nlu(given)) == 0.3);
    assert_true(nlu_model_temperature(brain_flowset_nlu(given)) == builtin);
    assert_string_not_equal(brain_flowset_nlu_hash(given), brain_flowset_nlu_hash(a));
    /* fewer than 20 out-of-scope examples, or fewer than 1,000 in scope:
     * the oos class is trained, nothing tuned */
    assert_string_equal(
        compile_oos("\"intents\": {\"oos\": [\"tell me a joke\", \"sing a song\"]}", LARGE, &few),
        "");
    assert_true(nlu_model_temperature(brain_flowset_nlu(few)) == builtin);
    assert_true(brain_flowset_threshold(few) == 0.45);
    assert_string_equal(compile_oos("\"intents\": {\"oos\": [" OOS_20 "]}", SMALL, &small), "");
    assert_true(nlu_model_temperature(brain_flowset_nlu(small)) == builtin);
    assert_true(brain_flowset_threshold(small) == 0.45);
    nlu_route(brain_flowset_nlu(small), "tell me a funny joke", 20, NULL, &r);
    assert_int_equal(r.out_of_scope, 1);
    brain_flowset_unref(a);
    brain_flowset_unref(b);
    brain_flowset_unref(given);
    brain_flowset_unref(few);
    brain_flowset_unref(small);
}

/* A tuned router read back from the cache is the one trained: the
 * threshold comes with it. */
static void test_tuned_router_from_the_cache(void **state)
{
    brain_flowset_t *a, *b;
    assert_string_equal(compile_oos("\"intents\": {\"oos\": [" OOS_20 "]}", LARGE, &a), "");
    core_buf_t buf;
    core_buf_init(&buf, 64u << 20);
    assert_int_equal(brain_flowset_nlu_save(a, &buf), 0);
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.no_guard = 1;
    opts.nlu_cache = buf.data;
    opts.nlu_cache_len = buf.len;
    opts.nlu_cache_hash = brain_flowset_nlu_hash(a);
    assert_string_equal(compile_with("\"intents\": {\"oos\": [" OOS_20 "]}", LARGE, &opts, &b), "");
    assert_int_equal(brain_flowset_nlu_from_cache(b), 1);
    assert_true(brain_flowset_threshold(b) == brain_flowset_threshold(a));
    assert_true(nlu_model_temperature(brain_flowset_nlu(b)) ==
                nlu_model_temperature(brain_flowset_nlu(a)));
    core_buf_dispose(&buf);
    brain_flowset_unref(a);
    brain_flowset_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oos_examples_route_to_the_fallback),
        cmocka_unit_test(test_oos_is_reserved),
        cmocka_unit_test(test_unknown_names_go_to_the_fallback),
        cmocka_unit_test(test_training_file_adds_oos_examples),
        cmocka_unit_test(test_tuned_when_it_compiles),
        cmocka_unit_test(test_tuned_router_from_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
