/* entities_date_rel.c — dates relative to the reference date: "today",
 * "the day after tomorrow", "next friday", "in 3 days", "2 weeks ago".
 * Which friday "next friday" is: docs/entities.md. */
#include <string.h>

#include "brain/entities_int.h"

/* "today", "tomorrow", "yesterday", "the day after tomorrow". */
static size_t relative_word(const ent__scan_t *sc, size_t p, long ref, ent_t *out)
{
    static const struct {
        const char *word;
        int delta;
    } words[] = {
        {"today", 0},     {"tonight", 0}, {"tomorrow", 1}, {"tomorow", 1},    {"tommorow", 1},
        {"tommorrow", 1}, {"tmrw", 1},    {"tmr", 1},      {"yesterday", -1},
    };
    size_t q = p, e, r;
    if ((e = ent__word(sc, q, "the"))) {
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
    }
    if ((e = ent__word(sc, q, "day"))) {
        r = ent__skip_ws(sc, e);
        int delta = 0;
        if (r > e && (e = ent__word(sc, r, "after")))
            delta = 2;
        else if (r > e && (e = ent__word(sc, r, "before")))
            delta = -2;
        if (delta == 0)
            return 0;
        r = ent__skip_ws(sc, e);
        if (r == e || !(e = ent__word(sc, r, delta > 0 ? "tomorrow" : "yesterday")))
            return 0;
        return ent__emit_days(ref + delta, e, out);
    }
    if (q != p)
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if ((e = ent__word(sc, p, words[i].word)))
            return ent__emit_days(ref + words[i].delta, e, out);
    }
    return 0;
}

/* "friday", "on fri", "this friday", "next friday", "last friday",
 * "friday next week"; also "next week", "next month", "next year". */
static size_t weekday_expr(const ent__scan_t *sc, size_t p, long ref, ent_t *out)
{
    size_t q = p, e, r;
    int mode = 0; /* 0 this/bare: the coming one; 1 next week's; -1 the last one */
    if ((e = ent__word(sc, q, "this")) || (e = ent__word(sc, q, "coming")) ||
        (e = ent__word(sc, q, "next")) || (e = ent__word(sc, q, "last"))) {
        mode = (sc->s[q] | 0x20) == 'n' ? 1 : (sc->s[q] | 0x20) == 'l' ? -1 : 0;
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
        if (mode == 0 && (e = ent__word(sc, q, "coming"))) {
            q = ent__skip_ws(sc, e);
            if (q == e)
                return 0;
        }
    }
    if (q > p && mode == 1) {
        if ((e = ent__word(sc, q, "week")))
            return ent__emit_days(ref + 7, e, out);
        if ((e = ent__word(sc, q, "month")))
            return ent__emit_days(ent__add_months(ref, 1), e, out);
        if ((e = ent__word(sc, q, "year")))
            return ent__emit_days(ent__add_months(ref, 12), e, out);
    }
    int abbrev, wd = ent__weekday_word(sc, q, &e, &abbrev);
    if (wd < 0)
        return 0;
    if (abbrev && q == p) {
        char prev[16];
        ent__prev_word(sc, p, prev, sizeof(prev));
        if (strcmp(prev, "on") != 0)
            return 0; /* a bare "sun" or "sat" is rarely a day */
    }
    int today = ent__weekday(ref);
    r = ent__skip_ws(sc, e);
    size_t e2, r2, e3;
    if (mode == 0 && q == p && r > e && (e2 = ent__word(sc, r, "next")) &&
        (r2 = ent__skip_ws(sc, e2)) > e2 && (e3 = ent__word(sc, r2, "week"))) {
        mode = 1;
        e = e3;
    }
    long target;
    if (mode == 0)
        target = ref + (wd - today + 7) % 7;
    else if (mode == 1)
        target = ref - today + 7 + wd;
    else
        target = ref - ((today - wd + 6) % 7 + 1);
    return ent__emit_days(target, e, out);
}

/* A count and a unit: "3 days", "two weeks", "a month". Sets *days or
 * *months; returns the end or 0. */
static size_t count_unit(const ent__scan_t *sc, size_t p, long *days, long *months)
{
    static const char *const unit_words[] = {
        "day",   "days",   "week", "weeks", "fortnight", "fortnights",
        "month", "months", "year", "years", NULL,
    };
    static const int unit_days[] = {1, 1, 7, 7, 14, 14, 0, 0, 0, 0};
    static const int unit_months[] = {0, 0, 0, 0, 0, 0, 1, 1, 12, 12};
    int n;
    size_t e;
    if ((e = ent__word(sc, p, "a")) || (e = ent__word(sc, p, "an")))
        n = 1;
    else if ((e = ent__small_number(sc, p, 999, &n)) == 0)
        return 0;
    size_t q = ent__skip_ws(sc, e);
    if (q == e)
        return 0;
    int i = ent__word_in(sc, q, unit_words, &e);
    if (i < 0)
        return 0;
    *days = (long)n * unit_days[i];
    *months = (long)n * unit_months[i];
    return e;
}

static long shift(long base, long days, long months, int sign)
{
    return months ? ent__add_months(base, sign * months) : base + sign * days;
}

/* "in 3 days", "in two weeks", "3 days from now", "a week from tomorrow",
 * "2 months ago". */
static size_t offset_expr(const ent__scan_t *sc, size_t p, long ref, ent_t *out)
{
    long days, months;
    size_t e, q, r;
    if ((e = ent__word(sc, p, "in")) || (e = ent__word(sc, p, "within"))) {
        q = ent__skip_ws(sc, e);
        if (q == e || (e = count_unit(sc, q, &days, &months)) == 0)
            return 0;
        r = ent__skip_ws(sc, e);
        size_t e2 = r > e ? ent__word(sc, r, "time") : 0; /* "in 3 days time" */
        return ent__emit_days(shift(ref, days, months, 1), e2 ? e2 : e, out);
    }
    if ((e = count_unit(sc, p, &days, &months)) == 0)
        return 0;
    r = ent__skip_ws(sc, e);
    if (r == e)
        return 0;
    size_t e2, e3;
    if ((e2 = ent__word(sc, r, "ago")))
        return ent__emit_days(shift(ref, days, months, -1), e2, out);
    if ((e2 = ent__word(sc, r, "from")) || (e2 = ent__word(sc, r, "after"))) {
        size_t r2 = ent__skip_ws(sc, e2);
        if (r2 == e2)
            return 0;
        if ((e3 = ent__word(sc, r2, "now")) || (e3 = ent__word(sc, r2, "today")))
            return ent__emit_days(shift(ref, days, months, 1), e3, out);
        if ((e3 = ent__word(sc, r2, "tomorrow")))
            return ent__emit_days(shift(ref + 1, days, months, 1), e3, out);
    }
    return 0;
}

size_t ent__date_relative(const ent__scan_t *sc, size_t p, long ref, ent_t *out)
{
    typedef size_t (*rel_fn)(const ent__scan_t *sc, size_t p, long ref, ent_t *out);
    static const rel_fn rels[] = {relative_word, weekday_expr, offset_expr};
    size_t best = 0;
    for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++) {
        ent_t tmp = *out;
        size_t end = rels[i](sc, p, ref, &tmp);
        if (end > best) {
            best = end;
            *out = tmp;
        }
    }
    return best;
}
