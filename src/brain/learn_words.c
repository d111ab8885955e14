/* Names for clusters: the words of a cluster's utterances ranked by how much
 * more often they occur in it than in all the utterances (count x log lift),
 * skipping short words, numbers and function words. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/learn_int.h"

static const char *const stopwords[] = {
    "the",   "and",   "for",  "you",    "your",   "can",   "could", "would", "what",  "how",
    "when",  "where", "why",  "who",    "which",  "with",  "have",  "has",   "had",   "does",
    "did",   "are",   "was",  "were",   "this",   "that",  "there", "their", "them",  "they",
    "will",  "want",  "need", "please", "from",   "about", "into",  "just",  "any",   "some",
    "not",   "but",   "get",  "got",    "its",    "it's",  "i'm",   "i'd",   "don't", "can't",
    "our",   "out",   "all",  "too",    "also",   "than",  "then",  "here",  "hello", "thanks",
    "thank", "know",  "tell", "like",   "should", "may",   "much",  "many",  "help",
};

static int skip_word(const char *p, size_t len)
{
    if (len < 3)
        return 1;
    size_t digits = 0;
    for (size_t i = 0; i < len; i++)
        digits += p[i] >= '0' && p[i] <= '9';
    if (digits * 2 >= len)
        return 1;
    for (size_t i = 0; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
        if (strlen(stopwords[i]) == len && memcmp(stopwords[i], p, len) == 0)
            return 1;
    return 0;
}

static uint64_t hash_word(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static lword_t *words_slot(lwords_t *w, const char *p, size_t len)
{
    if ((w->n + 1) * 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        lword_t *s = core_xcalloc(cap, sizeof(*s));
        for (size_t i = 0; i < w->cap; i++) {
            if (w->slots[i].p == NULL)
                continue;
            size_t q = hash_word(w->slots[i].p, w->slots[i].len) & (cap - 1);
            while (s[q].p)
                q = (q + 1) & (cap - 1);
            s[q] = w->slots[i];
        }
        free(w->slots);
        w->slots = s;
        w->cap = cap;
    }
    size_t q = hash_word(p, len) & (w->cap - 1);
    while (w->slots[q].p && (w->slots[q].len != len || memcmp(w->slots[q].p, p, len) != 0))
        q = (q + 1) & (w->cap - 1);
    if (w->slots[q].p == NULL) {
        w->slots[q] = (lword_t){p, len, 0};
        w->n++;
    }
    return &w->slots[q];
}

/* Adds the words of one item to w, each once per item, weighted. */
static void count_item(lwords_t *w, const litem_t *it)
{
    const char *s = it->norm;
    while (*s) {
        while (*s == ' ')
            s++;
        const char *e = s;
        while (*e && *e != ' ')
            e++;
        size_t len = (size_t)(e - s);
        if (len > 0 && !skip_word(s, len)) {
            words_slot(w, s, len)->count += it->weight;
            w->total += it->weight;
        }
        s = e;
    }
}

void learn__top_words(learn_t *l, lclus_t *c)
{
    lwords_t *g = &l->words;
    if (g->total == 0)
        for (size_t i = 0; i < l->n_items; i++)
            count_item(g, &l->items[i]);
    lwords_t local = {0};
    for (size_t k = 0; k < c->n; k++)
        count_item(&local, &l->items[c->items[k]]);
    const lword_t *best[3] = {NULL, NULL, NULL};
    double score[3] = {0, 0, 0};
    for (size_t i = 0; i < local.cap; i++) {
        const lword_t *w = &local.slots[i];
        if (w->p == NULL)
            continue;
        const lword_t *gw = words_slot(g, w->p, w->len);
        double lift = (double)w->count / (double)local.total /
                      ((double)gw->count / (double)(g->total ? g->total : 1));
        double s = (double)w->count * log(1.0 + lift);
        for (int r = 0; r < 3; r++) {
            int better = best[r] == NULL || s > score[r] ||
                         (s == score[r] &&
                          (w->len < best[r]->len ||
                           (w->len == best[r]->len && memcmp(w->p, best[r]->p, w->len) < 0)));
            if (!better)
                continue;
            memmove(&best[r + 1], &best[r], (size_t)(2 - r) * sizeof(*best));
            memmove(&score[r + 1], &score[r], (size_t)(2 - r) * sizeof(*score));
            best[r] = w;
            score[r] = s;
            break;
        }
    }
    size_t bytes = 0;
    for (int r = 0; r < 3; r++)
        bytes += best[r] ? best[r]->len + 1 : 0;
    c->words = core_xmalloc(bytes + 1);
    char *p = c->words;
    int n = 0;
    for (int r = 0; r < 3; r++) {
        if (best[r] == NULL)
            continue;
        memcpy(p, best[r]->p, best[r]->len);
        p[best[r]->len] = '\0';
        c->top[n++] = p;
        p += best[r]->len + 1;
    }
    c->top[n] = NULL;
    free(local.slots);
}
