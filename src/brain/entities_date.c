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
int ent__weekday(long days)
{
    return (int)(((days % 7) + 7 + 3) % 7);
}

/* The reference date as a day number; 0 if the context has none. */
int ent__ref_days(const ent__scan_t *sc, long *days)
{
    const ent_ctx_t *c = sc->ctx;
    if (c == NULL || !valid_date(c->year, c->month, c->day))
        return 0;
    *days = core_days_from_civil(c->year, c->month, c->day);
    return 1;
}

/* "YYYY-MM-DD" by hand: this runs for every date candidate. */
static void format_date(long y, int m, int d, char *out)
{
    out[0] = (char)('0' + y / 1000 % 10);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

size_t ent__emit_days(long days, size_t end, ent_t *out)
{
    long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    format_date(y, m, d, out->value);
    return end;
}

static size_t emit(long y, int m, int d, size_t end, ent_t *out)
{
    if (!valid_date(y, m, d))
        return 0;
    format_date(y, m, d, out->value);
    return end;
}

/* A month and day without a year: the next such date on or after the
 * reference date (Feb 29 waits for the next leap year). */
static size_t emit_yearless(const ent__scan_t *sc, int m, int d, size_t end, ent_t *out)
{
    long ref;
    if (!ent__ref_days(sc, &ref) || m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    long y = sc->ctx->year;
    if (m < sc->ctx->month || (m == sc->ctx->month && d < sc->ctx->day))
        y++;
    for (int i = 0; i < 8 && !valid_date(y, m, d); i++)
        y++;
    return emit(y, m, d, end, out);
}

long ent__add_months(long days, long n)
{
    long y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    long idx = y * 12 + (m - 1) + n;
    y = idx / 12;
    m = (int)(idx % 12) + 1;
    if (y < 1 || y > 9999)
        return core_days_from_civil(1, 1, 1) - 1; /* out of range: emit rejects it */
    if (d > days_in_month(y, m))
        d = days_in_month(y, m);
    return core_days_from_civil(y, m, d);
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

int ent__weekday_word(const ent__scan_t *sc, size_t p, size_t *end, int *abbrev)
{
    int i = ent__word_in(sc, p, weekdays, end);
    if (i < 0)
        return -1;
    *abbrev = i >= N_FULL_WEEKDAYS;
    if (*abbrev && *end < sc->len && sc->s[*end] == '.')
        (*end)++; /* "Fri." */
    return weekday_of[i];
}

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

/* "on the 5th", "by the twenty-first": a day of this month, or of the next
 * month that has it when it has passed. Only after a word that makes it a
 * date, so "the second one" stays an ordinal. */
static size_t day_only(const ent__scan_t *sc, size_t p, ent_t *out)
{
    static const char *const before[] = {"on",     "by",    "until", "till",
                                         "before", "after", "from",  NULL};
    static const char *const not_days[] = {"one", "ones", "time", "option", "choice", NULL};
    size_t e = ent__word(sc, p, "the"), q;
    int d;
    if (e == 0 || (q = ent__skip_ws(sc, e)) == e || (e = day_at(sc, q, &d)) == 0 ||
        !ent__is_alpha((unsigned char)sc->s[e - 1]))
        return 0; /* "the 5" is not a day; "the 5th" is */
    char prev[16];
    ent__prev_word(sc, p, prev, sizeof(prev));
    int known = 0;
    for (int i = 0; before[i] && !known; i++)
        known = strcmp(prev, before[i]) == 0;
    size_t r = ent__skip_ws(sc, e), ne;
    if (r > e && ent__word_in(sc, r, not_days, &ne) >= 0)
        return 0; /* "after the first one", "by the second time" */
    long ref;
    if (!known || !ent__ref_days(sc, &ref))
        return 0;
    long y = sc->ctx->year;
    int m = sc->ctx->month;
    if (d < sc->ctx->day && ++m > 12) {
        m = 1;
        y++;
    }
    for (int i = 0; i < 12 && d > days_in_month(y, m); i++) {
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
    return emit(y, m, d, e, out);
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
        int datetime = q + 1 < sc->full && (sc->s[q] | 0x20) == 't' &&
                       ent__is_digit((unsigned char)sc->s[q + 1]); /* 2026-12-04T10:00 */
        if (nc == 0 || nc > 2 || (!ent__word_end_ok(sc, q) && !datetime) ||
            (q < sc->full && sc->s[q] == sep))
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

/* ---- entry point ---------------------------------------------------------- */

static size_t absolute_at(const ent__scan_t *sc, size_t p, ent_t *out)
{
    static const ent__rec_fn fns[] = {numeric, day_month, month_day};
    return ent__longest_at(sc, p, fns, sizeof(fns) / sizeof(fns[0]), out);
}

size_t ent__rec_date(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t best = absolute_at(sc, p, out), e;
    /* "Friday 4 December", "Fri, Dec 4th": the date decides, the day is noise */
    int abbrev;
    if (ent__weekday_word(sc, p, &e, &abbrev) >= 0) {
        size_t q = e;
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
    if (!ent__ref_days(sc, &ref))
        return best;
    ent_t tmp = *out;
    size_t end = day_only(sc, p, &tmp);
    if (end > best) {
        best = end;
        *out = tmp;
    }
    tmp = *out;
    end = ent__date_relative(sc, p, ref, &tmp);
    if (end > best) {
        best = end;
        *out = tmp;
    }
    return best;
}
