/* entities_date.c — calendar dates, absolute ("2026-12-04", "12/04/2026",
 * "4 December", "Dec 4th, 2026") and relative to the reference date in the
 * context ("tomorrow", "next friday", "in 3 days"). The value is ISO 8601
 * "YYYY-MM-DD". See docs/entities.md for the rules (which friday is "next
 * friday", month/day order, years left out). */
#include <stdio.h>
#include <string.h>

#include "brain/entities_int.h"

/* ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ---- */

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int valid_date(long y, int m, int d)
{
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, long *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Monday .. 6 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(long days)
{
    return (int)(((days % 7) + 7 + 3) % 7);
}

/* The reference date as a day number; 0 if the context has none. */
static int ref_days(const ent__scan_t *sc, long *days)
{
    const ent_ctx_t *c = sc->ctx;
    if (c == NULL || !valid_date(c->year, c->month, c->day))
        return 0;
    *days = days_from_civil(c->year, c->month, c->day);
    return 1;
}

static size_t emit_days(long days, size_t end, ent_t *out)
{
    long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    snprintf(out->value, sizeof(out->value), "%04ld-%02d-%02d", y, m, d);
    return end;
}

static size_t emit(long y, int m, int d, size_t end, ent_t *out)
{
    if (!valid_date(y, m, d))
        return 0;
    snprintf(out->value, sizeof(out->value), "%04ld-%02d-%02d", y, m, d);
    return end;
}

/* A month and day without a year: the next such date on or after the
 * reference date (Feb 29 waits for the next leap year). */
static size_t emit_yearless(const ent__scan_t *sc, int m, int d, size_t end, ent_t *out)
{
    long ref;
    if (!ref_days(sc, &ref) || m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    long y = sc->ctx->year;
    if (m < sc->ctx->month || (m == sc->ctx->month && d < sc->ctx->day))
        y++;
    for (int i = 0; i < 8 && !valid_date(y, m, d); i++)
        y++;
    return emit(y, m, d, end, out);
}

static long add_months(long days, long n)
{
    long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    long idx = y * 12 + (m - 1) + n;
    y = idx / 12;
    m = (int)(idx % 12) + 1;
    if (y < 1 || y > 9999)
        return days_from_civil(1, 1, 1) - 1; /* out of range: emit rejects it */
    if (d > days_in_month(y, m))
        d = days_in_month(y, m);
    return days_from_civil(y, m, d);
}

/* ---- words --------------------------------------------------------------- */

static const char *const month_names[] = {
    "january", "february", "march",    "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan",   "feb", "mar",  "apr",  "jun",    "jul",
    "aug",     "sep",      "sept",     "oct",   "nov", "dec",  NULL,
};
static const int month_of[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                               1, 2, 3, 4, 6, 7, 8, 9, 9, 10, 11, 12};

static const char *const weekdays[] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon", "tue",
    "tues",   "wed",     "thu",       "thur",     "thurs",  "fri",      "sat",    "sun", NULL,
};
static const int weekday_of[] = {0, 1, 2, 3, 4, 5, 6, 0, 1, 1, 2, 3, 3, 3, 4, 5, 6};
#define N_FULL_WEEKDAYS 7

/* A month name at p ("December", "Dec", "Dec."); returns end or 0. */
static size_t month_at(const ent__scan_t *sc, size_t p, int *month)
{
    size_t end;
    int i = ent__word_in(sc, p, month_names, &end);
    if (i < 0)
        return 0;
    *month = month_of[i];
    if (i >= 12 && end < sc->len && sc->s[end] == '.')
        end++;
    return end;
}

/* A day of the month: "4", "04", "4th", "fourth", "twenty-first". */
static size_t day_at(const ent__scan_t *sc, size_t p, int *day)
{
    long v;
    int n = ent__digits(sc, p, 3, &v);
    if (n > 0) {
        size_t q = p + (size_t)n;
        if (n > 2 || v < 1 || v > 31)
            return 0;
        if (q + 2 <= sc->len && ent__is_alpha((unsigned char)sc->s[q])) {
            char a = (char)(sc->s[q] | 0x20), b = (char)(sc->s[q + 1] | 0x20);
            if (!((a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') ||
                  (a == 't' && b == 'h')))
                return 0;
            q += 2;
        }
        if (!ent__word_end_ok(sc, q))
            return 0;
        *day = (int)v;
        return q;
    }
    double d;
    int ord;
    size_t end = ent__number_words(sc, p, &d, &ord);
    if (end == 0 || !ord || d < 1 || d > 31)
        return 0;
    *day = (int)d;
    return end;
}

/* ", 2026" or " 2026" after a day and month; returns end (or `end` if none). */
static size_t year_after(const ent__scan_t *sc, size_t end, long *year)
{
    size_t q = end;
    if (q < sc->len && sc->s[q] == ',')
        q++;
    q = ent__skip_ws(sc, q);
    if (q == end)
        return end;
    long v;
    int n = ent__digits(sc, q, 5, &v);
    if (n != 4 || !ent__word_end_ok(sc, q + 4) || (q + 5 < sc->full && sc->s[q + 4] == ':'))
        return end;
    *year = v;
    return q + 4;
}

static size_t finish(const ent__scan_t *sc, long year, int m, int d, size_t end, ent_t *out)
{
    if (year > 0)
        return emit(year, m, d, end, out);
    return emit_yearless(sc, m, d, end, out);
}

/* "4 December", "4th of Dec 2026", "the 4th of December". */
static size_t day_month(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t q = p, e;
    if ((e = ent__word(sc, q, "the")))
        q = ent__skip_ws(sc, e);
    int d, m;
    e = day_at(sc, q, &d);
    if (e == 0)
        return 0;
    q = ent__skip_ws(sc, e);
    if (q == e && !(q < sc->len && sc->s[q] == '-'))
        return 0;
    if (q < sc->len && sc->s[q] == '-')
        q++; /* 4-Dec-2026 */
    if ((e = ent__word(sc, q, "of")))
        q = ent__skip_ws(sc, e);
    e = month_at(sc, q, &m);
    if (e == 0)
        return 0;
    long year = 0, v;
    if (e < sc->len && sc->s[e] == '-' && ent__digits(sc, e + 1, 5, &v) == 4 &&
        ent__word_end_ok(sc, e + 5)) {
        year = v; /* 4-Dec-2026 */
        e += 5;
    } else {
        e = year_after(sc, e, &year);
    }
    return finish(sc, year, m, d, e, out);
}

/* "December 4", "Dec 4th, 2026", "December the 4th". */
static size_t month_day(const ent__scan_t *sc, size_t p, ent_t *out)
{
    int m, d;
    size_t e = month_at(sc, p, &m);
    if (e == 0)
        return 0;
    size_t q = ent__skip_ws(sc, e);
    if (q == e)
        return 0;
    size_t t = ent__word(sc, q, "the");
    if (t)
        q = ent__skip_ws(sc, t);
    e = day_at(sc, q, &d);
    if (e == 0)
        return 0;
    long year = 0;
    e = year_after(sc, e, &year);
    return finish(sc, year, m, d, e, out);
}

static int month_first(const ent__scan_t *sc)
{
    const char *c = sc->ctx ? sc->ctx->default_country : NULL;
    return c == NULL || !strcmp(c, "US") || !strcmp(c, "CA") || !strcmp(c, "PH");
}

/* "2026-12-04", "2026/12/04", "12/04/2026", "12/04/26", "12/04", "04.12.2026". */
static size_t numeric(const ent__scan_t *sc, size_t p, ent_t *out)
{
    long a, b, c;
    int na = ent__digits(sc, p, 5, &a);
    size_t q = p + (size_t)na;
    if (na == 0 || q + 1 >= sc->len)
        return 0;
    char sep = sc->s[q];
    if (sep != '-' && sep != '/' && sep != '.')
        return 0;
    int nb = ent__digits(sc, q + 1, 3, &b);
    if (nb == 0 || nb > 2)
        return 0;
    q += 1 + (size_t)nb;
    if (na == 4) { /* year first: ISO */
        if (sep == '.' || q + 1 >= sc->len || sc->s[q] != sep)
            return 0;
        int nc = ent__digits(sc, q + 1, 3, &c);
        q += 1 + (size_t)nc;
        if (nc == 0 || nc > 2 || !ent__word_end_ok(sc, q) || (q < sc->full && sc->s[q] == sep))
            return 0;
        return emit(a, (int)b, (int)c, q, out);
    }
    if (na > 2)
        return 0;
    long year = 0;
    if (q + 1 < sc->len && sc->s[q] == sep && ent__is_digit((unsigned char)sc->s[q + 1])) {
        int nc = ent__digits(sc, q + 1, 5, &year);
        if (nc != 2 && nc != 4)
            return 0;
        if (nc == 2)
            year += year < 70 ? 2000 : 1900;
        q += 1 + (size_t)nc;
    } else if (sep != '/') {
        return 0; /* "3.5" is a number and "5-10" a range; only "12/04" may drop the year */
    }
    if (!ent__word_end_ok(sc, q) || (q + 1 < sc->full && (sc->s[q] == sep || sc->s[q] == ':') &&
                                     ent__is_digit((unsigned char)sc->s[q + 1])))
        return 0;
    int m = (int)a, d = (int)b;
    if (sep == '.' || !month_first(sc) || a > 12) {
        m = (int)b; /* day first: dotted dates, day-first countries, "25/12" */
        d = (int)a;
    }
    if (m > 12 && d <= 12) {
        int t = m;
        m = d;
        d = t;
    }
    return finish(sc, year, m, d, q, out);
}

/* ---- relative to the reference date -------------------------------------- */

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
        return emit_days(ref + delta, e, out);
    }
    if (q != p)
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if ((e = ent__word(sc, p, words[i].word)))
            return emit_days(ref + words[i].delta, e, out);
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
            return emit_days(ref + 7, e, out);
        if ((e = ent__word(sc, q, "month")))
            return emit_days(add_months(ref, 1), e, out);
        if ((e = ent__word(sc, q, "year")))
            return emit_days(add_months(ref, 12), e, out);
    }
    int i = ent__word_in(sc, q, weekdays, &e);
    if (i < 0)
        return 0;
    if (i >= N_FULL_WEEKDAYS) {
        char prev[16];
        ent__prev_word(sc, p, prev, sizeof(prev));
        if (q == p && strcmp(prev, "on") != 0)
            return 0; /* a bare "sun" or "sat" is rarely a day */
        if (e < sc->len && sc->s[e] == '.')
            e++;
    }
    int wd = weekday_of[i], today = weekday(ref);
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
    return emit_days(target, e, out);
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
    return months ? add_months(base, sign * months) : base + sign * days;
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
        return emit_days(shift(ref, days, months, 1), e2 ? e2 : e, out);
    }
    if ((e = count_unit(sc, p, &days, &months)) == 0)
        return 0;
    r = ent__skip_ws(sc, e);
    if (r == e)
        return 0;
    size_t e2, e3;
    if ((e2 = ent__word(sc, r, "ago")))
        return emit_days(shift(ref, days, months, -1), e2, out);
    if ((e2 = ent__word(sc, r, "from")) || (e2 = ent__word(sc, r, "after"))) {
        size_t r2 = ent__skip_ws(sc, e2);
        if (r2 == e2)
            return 0;
        if ((e3 = ent__word(sc, r2, "now")) || (e3 = ent__word(sc, r2, "today")))
            return emit_days(shift(ref, days, months, 1), e3, out);
        if ((e3 = ent__word(sc, r2, "tomorrow")))
            return emit_days(shift(ref + 1, days, months, 1), e3, out);
    }
    return 0;
}

/* ---- entry point ---------------------------------------------------------- */

typedef size_t (*abs_fn)(const ent__scan_t *sc, size_t p, ent_t *out);
typedef size_t (*rel_fn)(const ent__scan_t *sc, size_t p, long ref, ent_t *out);

static size_t absolute_at(const ent__scan_t *sc, size_t p, ent_t *out)
{
    static const abs_fn fns[] = {numeric, day_month, month_day};
    size_t best = 0;
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        ent_t e = *out;
        size_t end = fns[i](sc, p, &e);
        if (end > best) {
            best = end;
            *out = e;
        }
    }
    return best;
}

size_t ent__rec_date(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t best = absolute_at(sc, p, out), e;
    /* "Friday 4 December", "Fri, Dec 4th": the date decides, the day is noise */
    int wd;
    if ((wd = ent__word_in(sc, p, weekdays, &e)) >= 0) {
        size_t q = e;
        if (q < sc->len && sc->s[q] == '.' && wd >= N_FULL_WEEKDAYS)
            q++;
        if (q < sc->len && sc->s[q] == ',')
            q++;
        size_t r = ent__skip_ws(sc, q);
        ent_t tmp = *out;
        size_t end = r > q ? absolute_at(sc, r, &tmp) : 0;
        if (end > best) {
            best = end;
            *out = tmp;
        }
    }
    long ref;
    if (!ref_days(sc, &ref))
        return best;
    static const rel_fn rels[] = {relative_word, weekday_expr, offset_expr};
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
