/* A small lexicon sentiment scorer for the escalation policy: customer
 * service words scored -3..3, negation ("not happy", "isn't working")
 * flipping and damping the next three words, intensifiers ("very") scaling
 * the next one, and the sum squashed into -1..1 as s / sqrt(s^2 + 15).
 * It reads the folded tokens of guard_text.c, so "terr1ble" still counts;
 * policy_evaluate() passes the fold the input rails already made.
 * Its accuracy on the labelled set is measured by `chorusctl guard eval`. */
#include <math.h>
#include <string.h>

#include "brain/guard_int.h"
#include "chorus/policy.h"

typedef struct {
    const char *word;
    signed char score;
} lex_t;

/* Sorted for bsearch. */
static const lex_t lexicon[] = {
    {"abysmal", -3},      {"amazing", 3},       {"angry", -3},
    {"annoyed", -2},      {"annoying", -2},     {"appalling", -3},
    {"appreciate", 2},    {"appreciated", 2},   {"awesome", 3},
    {"awful", -3},        {"bad", -2},          {"best", 2},
    {"brilliant", 3},     {"broken", -2},       {"bullshit", -3},
    {"cheated", -3},      {"complain", -2},     {"complaint", -2},
    {"confused", -1},     {"confusing", -1},    {"cool", 1},
    {"crap", -2},         {"crappy", -3},       {"damaged", -2},
    {"delighted", 3},     {"disappointed", -2}, {"disappointing", -2},
    {"disgusted", -3},    {"disgusting", -3},   {"dreadful", -3},
    {"easy", 1},          {"excellent", 3},     {"fail", -2},
    {"failed", -2},       {"failing", -2},      {"fantastic", 3},
    {"fast", 1},          {"fine", 1},          {"frustrated", -2},
    {"frustrating", -2},  {"furious", -3},      {"garbage", -3},
    {"glad", 2},          {"good", 2},          {"great", 3},
    {"happy", 2},         {"hate", -3},         {"hell", -2},
    {"helpful", 2},       {"helpless", -2},     {"hopeless", -2},
    {"horrible", -3},     {"idiot", -3},        {"idiotic", -3},
    {"ignored", -2},      {"incompetent", -3},  {"infuriating", -3},
    {"insane", -2},       {"irritated", -2},    {"joke", -1},
    {"late", -1},         {"liar", -3},         {"lied", -3},
    {"lies", -2},         {"love", 3},          {"lovely", 3},
    {"mad", -2},          {"mess", -2},         {"miserable", -3},
    {"missing", -1},      {"moron", -3},        {"nice", 2},
    {"nightmare", -3},    {"nonsense", -2},     {"ok", 1},
    {"okay", 1},          {"outraged", -3},     {"overcharged", -2},
    {"pathetic", -3},     {"perfect", 3},       {"pissed", -3},
    {"pleased", 2},       {"pointless", -2},    {"poor", -2},
    {"problem", -1},      {"quick", 1},         {"ridiculous", -2},
    {"robbed", -3},       {"rubbish", -2},      {"rude", -2},
    {"sad", -2},          {"satisfied", 2},     {"scam", -3},
    {"shit", -3},         {"shocking", -2},     {"sick", -1},
    {"slow", -1},         {"solved", 2},        {"sorted", 1},
    {"stupid", -2},       {"suck", -2},         {"sucks", -3},
    {"superb", 3},        {"terrible", -3},     {"thank", 2},
    {"thanks", 2},        {"tired", -1},        {"ugh", -2},
    {"unacceptable", -3}, {"unhappy", -2},      {"unhelpful", -2},
    {"upset", -2},        {"useless", -3},      {"waste", -2},
    {"wasted", -2},       {"wonderful", 3},     {"worked", 1},
    {"works", 1},         {"worse", -2},        {"worst", -3},
    {"worthless", -3},    {"wrong", -1},        {"wtf", -3},
};

static const char *const negators[] = {"not",    "no",      "never",   "dont",    "doesnt",
                                       "didnt",  "isnt",    "wasnt",   "arent",   "cant",
                                       "cannot", "wont",    "nobody",  "nothing", "hardly",
                                       "aint",   "couldnt", "wouldnt", "havent",  NULL};
static const char *const intensifiers[] = {"very",       "really",     "so",         "extremely",
                                           "totally",    "absolutely", "completely", "utterly",
                                           "incredibly", "super",      "seriously",  NULL};

static int tok_is(const gd_norm_t *nm, size_t t, const char *w)
{
    /* most list words differ from the token in their first letter: every
     * token of every turn is looked up in two lists */
    if (nm->buf[nm->toks[t].off] != w[0])
        return 0;
    size_t wl = strlen(w);
    return nm->toks[t].len == wl && memcmp(nm->buf + nm->toks[t].off, w, wl) == 0;
}

static int in_words(const gd_norm_t *nm, size_t t, const char *const *list)
{
    for (const char *const *p = list; *p; p++)
        if (tok_is(nm, t, *p))
            return 1;
    return 0;
}

static int lex_score(const gd_norm_t *nm, size_t t)
{
    size_t lo = 0, hi = sizeof(lexicon) / sizeof(lexicon[0]);
    const char *s = nm->buf + nm->toks[t].off;
    size_t n = nm->toks[t].len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(lexicon[mid].word, s, n);
        if (c == 0 && lexicon[mid].word[n] != '\0')
            c = 1;
        if (c == 0)
            return lexicon[mid].score;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int gap_has_stop(const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (strchr(",.;:!?", text[i]) != NULL)
            return 1;
    return 0;
}

double gd_sentiment(const gd_norm_t *nm, const char *text)
{
    double sum = 0, boost = 1;
    size_t negated_until = 0;
    for (size_t t = 0; t < nm->n_toks; t++) {
        /* punctuation ends a negation's scope: "no, that's wrong" */
        if (t > 0 && gap_has_stop(text, nm->toks[t - 1].end, nm->toks[t].start))
            negated_until = 0;
        if (in_words(nm, t, negators)) {
            negated_until = t + 4;
            continue;
        }
        if (in_words(nm, t, intensifiers)) {
            boost = 1.5;
            continue;
        }
        double s = lex_score(nm, t) * boost;
        boost = 1;
        if (t < negated_until)
            s *= -0.5; /* "not good" is mildly bad, "not bad" mildly good */
        sum += s;
    }
    return sum / sqrt(sum * sum + 15.0);
}

double policy_sentiment(const char *text, size_t len)
{
    if (text == NULL || len == 0)
        return 0;
    gd_norm_t nm;
    gd_norm_build(&nm, text, len);
    double s = gd_sentiment(&nm, text);
    gd_norm_dispose(&nm);
    return s;
}
