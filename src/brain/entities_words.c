/* entities_words.c — the words a built-in entity can start with, and which
 * recognisers each one can start: the driver's cheap filter (entities.c). */
#include <stdlib.h>
#include <string.h>

#include "brain/entities_int.h"

/* Every word a built-in entity can start with (sorted for bsearch), and
 * which recognisers can start with it. A token start that is a word not
 * listed here can only begin an email address, so most words of an
 * utterance cost one lookup. A recogniser that learns a new first word must
 * add it here (the tests of each phrasing catch a missing one). */
#define N (1u << ENT_NUMBER)
#define O (1u << ENT_ORDINAL)
#define M (1u << ENT_MONEY)
#define D (1u << ENT_DATE)
#define T (1u << ENT_TIME)
typedef struct first_word_s {
    const char *word;
    unsigned mask; /* recognisers that may match from this word */
} first_word_t;

static const first_word_t first_words[] = {
    {"a", N | M | D | T},
    {"an", N | M | D | T},
    {"apr", D},
    {"april", D},
    {"aud", M},
    {"aug", D},
    {"august", D},
    {"brl", M},
    {"c", M},
    {"cad", M},
    {"chf", M},
    {"cny", M},
    {"coming", D},
    {"day", D},
    {"dec", D},
    {"december", D},
    {"dkk", M},
    {"eight", N | O | M | D | T},
    {"eighteen", N | O | M | D | T},
    {"eighteenth", O | D},
    {"eighth", O | D},
    {"eightieth", O | D},
    {"eighty", N | O | M | D | T},
    {"eleven", N | O | M | D | T},
    {"eleventh", O | D},
    {"eur", M},
    {"feb", D},
    {"february", D},
    {"fifteen", N | O | M | D | T},
    {"fifteenth", O | D},
    {"fifth", O | D},
    {"fiftieth", O | D},
    {"fifty", N | O | M | D | T},
    {"first", O | D},
    {"five", N | O | M | D | T},
    {"fortieth", O | D},
    {"forty", N | O | M | D | T},
    {"four", N | O | M | D | T},
    {"fourteen", N | O | M | D | T},
    {"fourteenth", O | D},
    {"fourth", O | D},
    {"fourty", N | O | M | D | T},
    {"fri", D},
    {"friday", D},
    {"gbp", M},
    {"half", T},
    {"hkd", M},
    {"hundred", N | O | M | D | T},
    {"hundredth", O | D},
    {"in", D | T},
    {"inr", M},
    {"jan", D},
    {"january", D},
    {"jpy", M},
    {"jul", D},
    {"july", D},
    {"jun", D},
    {"june", D},
    {"last", D},
    {"mar", D},
    {"march", D},
    {"may", D},
    {"midday", T},
    {"midnight", T},
    {"minus", N},
    {"mon", D},
    {"monday", D},
    {"mxn", M},
    {"negative", N},
    {"next", D},
    {"nine", N | O | M | D | T},
    {"nineteen", N | O | M | D | T},
    {"nineteenth", O | D},
    {"ninetieth", O | D},
    {"ninety", N | O | M | D | T},
    {"ninth", O | D},
    {"nok", M},
    {"noon", T},
    {"nov", D},
    {"november", D},
    {"nzd", M},
    {"oct", D},
    {"october", D},
    {"one", N | O | M | D | T},
    {"pln", M},
    {"quarter", T},
    {"sat", D},
    {"saturday", D},
    {"second", O | D},
    {"sek", M},
    {"sep", D},
    {"sept", D},
    {"september", D},
    {"seven", N | O | M | D | T},
    {"seventeen", N | O | M | D | T},
    {"seventeenth", O | D},
    {"seventh", O | D},
    {"seventieth", O | D},
    {"seventy", N | O | M | D | T},
    {"sgd", M},
    {"six", N | O | M | D | T},
    {"sixteen", N | O | M | D | T},
    {"sixteenth", O | D},
    {"sixth", O | D},
    {"sixtieth", O | D},
    {"sixty", N | O | M | D | T},
    {"sun", D},
    {"sunday", D},
    {"ten", N | O | M | D | T},
    {"tenth", O | D},
    {"the", D},
    {"third", O | D},
    {"thirteen", N | O | M | D | T},
    {"thirteenth", O | D},
    {"thirtieth", O | D},
    {"thirty", N | O | M | D | T},
    {"this", D},
    {"three", N | O | M | D | T},
    {"thu", D},
    {"thur", D},
    {"thurs", D},
    {"thursday", D},
    {"tmr", D},
    {"tmrw", D},
    {"today", D},
    {"tommorow", D},
    {"tommorrow", D},
    {"tomorow", D},
    {"tomorrow", D},
    {"tonight", D},
    {"tue", D},
    {"tues", D},
    {"tuesday", D},
    {"twelfth", O | D},
    {"twelve", N | O | M | D | T},
    {"twentieth", O | D},
    {"twenty", N | O | M | D | T},
    {"two", N | O | M | D | T},
    {"us", M},
    {"usd", M},
    {"wed", D},
    {"wednesday", D},
    {"within", D | T},
    {"yesterday", D},
    {"zar", M},
    {"zero", N | O | M | D | T},
    {"zeroth", O | D},
};
#undef N
#undef O
#undef M
#undef D
#undef T

static int cmp_word(const void *key, const void *item)
{
    return strcmp((const char *)key, ((const first_word_t *)item)->word);
}

unsigned ent__first_word_mask(const char *s, size_t len, size_t p)
{
    char w[16];
    size_t n = 0;
    while (p + n < len && ent__is_alpha((unsigned char)s[p + n])) {
        if (n == sizeof(w) - 1)
            return 0;
        w[n] = (char)(s[p + n] | 0x20); /* ASCII letters only here */
        n++;
    }
    w[n] = '\0';
    const first_word_t *f = bsearch(w, first_words, sizeof(first_words) / sizeof(first_words[0]),
                                    sizeof(first_words[0]), cmp_word);
    return f ? f->mask : 0;
}
