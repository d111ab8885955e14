/* entities_time.c — times of day: "14:30", "2:30pm", "2 pm", "14h30",
 * "noon", "midnight", "five o'clock", "half past three", "quarter to five".
 * The value is "HH:MM" (24-hour); number is minutes since midnight. A time
 * said without am/pm keeps the hour as said ("half past three" is 03:30).
 * See docs/entities.md. */
#include <stdio.h>
#include <string.h>

#include "brain/entities_int.h"

enum { MER_NONE, MER_AM, MER_PM, MER_NIGHT };

/* "am", "pm", "a.m.", "p.m." right after q (spaces allowed); returns end. */
static size_t meridiem(const ent__scan_t *sc, size_t q, int *mer)
{
    size_t r = ent__skip_ws(sc, q), e;
    *mer = MER_NONE;
    if ((e = ent__word(sc, r, "am")) || (e = ent__word(sc, r, "a.m.")) ||
        (e = ent__word(sc, r, "a.m"))) {
        *mer = MER_AM;
        return e;
    }
    if ((e = ent__word(sc, r, "pm")) || (e = ent__word(sc, r, "p.m.")) ||
        (e = ent__word(sc, r, "p.m"))) {
        *mer = MER_PM;
        return e;
    }
    return q;
}

/* "in the morning", "in the afternoon", "in the evening", "at night". */
static size_t day_part(const ent__scan_t *sc, size_t q, int *mer)
{
    size_t r = ent__skip_ws(sc, q), e;
    if (r == q)
        return q;
    if ((e = ent__word(sc, r, "at"))) {
        size_t r2 = ent__skip_ws(sc, e);
        if (r2 > e && (e = ent__word(sc, r2, "night"))) {
            *mer = MER_NIGHT;
            return e;
        }
        return q;
    }
    if (!(e = ent__word(sc, r, "in")))
        return q;
    r = ent__skip_ws(sc, e);
    if (r == e || !(e = ent__word(sc, r, "the")))
        return q;
    r = ent__skip_ws(sc, e);
    if (r == e)
        return q;
    if ((e = ent__word(sc, r, "morning"))) {
        *mer = MER_AM;
        return e;
    }
    if ((e = ent__word(sc, r, "afternoon")) || (e = ent__word(sc, r, "evening"))) {
        *mer = MER_PM;
        return e;
    }
    return q;
}

/* am/pm or a part of the day after a time ending at q. */
static size_t qualifier(const ent__scan_t *sc, size_t q, int *mer)
{
    size_t e = meridiem(sc, q, mer);
    if (*mer != MER_NONE)
        return e;
    return day_part(sc, q, mer);
}

static size_t emit(int h, int m, int mer, size_t end, ent_t *out)
{
    /* "at night" is the evening up to 11 and the small hours after
     * midnight: "11 at night" is 23:00, "12 at night" 00:00, "2" 02:00 */
    if (mer == MER_NIGHT)
        mer = h == 12 || (h >= 0 && h <= 4) ? MER_AM : MER_PM;
    if (mer != MER_NONE) {
        if (h == 0 && mer == MER_PM)
            return 0;
        if (h > 12)
            return mer == MER_PM && h < 24 ? emit(h, m, MER_NONE, end, out) : 0;
        if (mer == MER_AM && h == 12)
            h = 0;
        else if (mer == MER_PM && h < 12)
            h += 12;
    }
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return 0;
    out->number = h * 60 + m;
    snprintf(out->value, sizeof(out->value), "%02d:%02d", h, m);
    return end;
}

/* "o'clock" in its spellings; returns end or 0. */
static size_t oclock(const ent__scan_t *sc, size_t q)
{
    size_t r = ent__skip_ws(sc, q), e;
    if (r == q)
        return 0;
    size_t o = ent__word(sc, r, "o"), r2 = o ? ent__skip_ws(sc, o) : 0;
    if (o && r2 > o && (e = ent__word(sc, r2, "clock")))
        return e; /* "2 o clock" as speech recognisers write it */
    if ((e = ent__word(sc, r, "o'clock")) || (e = ent__word(sc, r, "oclock")) ||
        (e = ent__word(sc, r,
                       "o\xe2\x80\x99"
                       "clock")))
        return e;
    return 0;
}

/* "14:30", "2:30pm", "14:30:00", "14h30", "2.30 pm", "2 pm", "2pm",
 * "3 o'clock". */
static size_t digital(const ent__scan_t *sc, size_t p, ent_t *out)
{
    long h, m = 0, sec;
    int nh = ent__digits(sc, p, 3, &h), mer = MER_NONE;
    if (nh == 0 || nh > 2)
        return 0;
    size_t q = p + (size_t)nh, e;
    char sep = q < sc->len ? sc->s[q] : 0;
    if ((sep == ':' || sep == '.' || sep == 'h' || sep == 'H') && q + 1 < sc->len &&
        ent__is_digit((unsigned char)sc->s[q + 1])) {
        if (ent__digits(sc, q + 1, 3, &m) != 2)
            return 0;
        q += 3;
        if (sep == ':' && q + 2 < sc->len && sc->s[q] == ':' &&
            ent__digits(sc, q + 1, 3, &sec) == 2 && sec < 60)
            q += 3; /* seconds are dropped */
        if (q < sc->len && (sc->s[q] == 'h' || sc->s[q] == 'H' || sc->s[q] == 'Z') &&
            ent__word_end_ok(sc, q + 1))
            q++; /* "09:00h", the UTC "Z" of "T10:00:00Z" */
        e = qualifier(sc, q, &mer);
        if (sep == '.' && mer == MER_NONE)
            return 0; /* "2.30" is a number */
    } else if ((sep == 'h' || sep == 'H') && ent__word_end_ok(sc, q + 1)) {
        return emit((int)h, 0, MER_NONE, q + 1, out); /* "14h" */
    } else if ((e = oclock(sc, q))) {
        e = qualifier(sc, e, &mer);
    } else {
        e = qualifier(sc, q, &mer);
        if (mer == MER_NONE)
            return 0; /* a bare "2" is a number */
    }
    if (e == q && !ent__word_end_ok(sc, q))
        return 0;
    return emit((int)h, (int)m, mer, e, out);
}

/* "noon", "midday", "midnight", "12 noon". */
static size_t named(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t q = p, e;
    if ((e = ent__word(sc, q, "12")) || (e = ent__word(sc, q, "twelve"))) {
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
    }
    if ((e = ent__word(sc, q, "noon")) || (e = ent__word(sc, q, "midday")))
        return emit(12, 0, MER_NONE, e, out);
    if ((e = ent__word(sc, q, "midnight")))
        return emit(0, 0, MER_NONE, e, out);
    return 0;
}

/* An hour 1..12 (or 0..23 in digits) said as digits or words. */
static size_t hour_at(const ent__scan_t *sc, size_t p, int *h)
{
    size_t e = ent__small_number(sc, p, 23, h);
    if (e == 0 || (!ent__is_digit((unsigned char)sc->s[p]) && *h > 12))
        return 0;
    return e;
}

/* "half past three", "quarter to five", "ten past 4", "twenty five minutes to six". */
/* The minutes of "half past", "a quarter to", "ten past", "25 minutes to":
 * returns the position of "past"/"to" (after spaces) or 0. */
static size_t minutes_part(const ent__scan_t *sc, size_t p, int *minutes)
{
    size_t q = p, e;
    if ((e = ent__word(sc, q, "a"))) {
        q = ent__skip_ws(sc, e);
        if (q == e || !ent__word(sc, q, "quarter"))
            return 0;
    }
    if ((e = ent__word(sc, q, "half")))
        *minutes = 30;
    else if ((e = ent__word(sc, q, "quarter")))
        *minutes = 15;
    else if ((e = ent__small_number(sc, q, 59, minutes)) == 0 || *minutes == 0)
        return 0;
    q = ent__skip_ws(sc, e);
    if (q == e)
        return 0;
    if ((e = ent__word(sc, q, "minutes")) || (e = ent__word(sc, q, "minute")) ||
        (e = ent__word(sc, q, "mins"))) {
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
    }
    return q;
}

static size_t past_to(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t q, e;
    int minutes;
    if ((q = minutes_part(sc, p, &minutes)) == 0)
        return 0;
    int before;
    if ((e = ent__word(sc, q, "past")) || (e = ent__word(sc, q, "after")))
        before = 0;
    else if ((e = ent__word(sc, q, "to")) || (e = ent__word(sc, q, "before")) ||
             (e = ent__word(sc, q, "till")))
        before = 1;
    else
        return 0;
    if (minutes == 30 && before)
        return 0;
    q = ent__skip_ws(sc, e);
    int h, mer = MER_NONE;
    if (q == e)
        return 0;
    size_t e2;
    if ((e2 = ent__word(sc, q, "noon")) || (e2 = ent__word(sc, q, "midday"))) {
        h = 12; /* "quarter past noon" */
        mer = MER_NONE;
        e = e2;
    } else if ((e2 = ent__word(sc, q, "midnight"))) {
        h = 0;
        e = e2;
    } else if ((e = hour_at(sc, q, &h)) == 0) {
        return 0;
    }
    size_t oc = oclock(sc, e);
    e = qualifier(sc, oc ? oc : e, &mer);
    if (!before)
        return emit(h, minutes, mer, e, out);
    if (mer != MER_NONE) { /* convert first: "quarter to 1 pm" is 12:45 */
        ent_t tmp;
        if (emit(h, 0, mer, e, &tmp) == 0)
            return 0;
        h = (int)tmp.number / 60;
        mer = MER_NONE;
    }
    h = (h + 23) % 24;
    return emit(h, 60 - minutes, MER_NONE, e, out);
}

/* "five o'clock", "three pm", "seven thirty in the evening" (words need a
 * qualifier, else "seven thirty" is just numbers). */
static size_t spoken(const ent__scan_t *sc, size_t p, ent_t *out)
{
    int h, m = 0, mer = MER_NONE;
    size_t e = hour_at(sc, p, &h);
    if (e == 0)
        return 0;
    /* a digit hour is this recogniser's only in "7 oh 5 pm" (speech
     * recognisers write it so); "7 pm" and "7:05" have their own */
    if (ent__is_digit((unsigned char)sc->s[p])) {
        size_t q = ent__skip_ws(sc, e);
        if (q == e || !ent__word(sc, q, "oh"))
            return 0;
    }
    size_t oc = oclock(sc, e);
    if (oc) {
        size_t end = qualifier(sc, oc, &mer);
        return emit(h, 0, mer, end, out);
    }
    size_t q = ent__skip_ws(sc, e), e2;
    int mm;
    if (q > e && (e2 = ent__word(sc, q, "oh")) && ent__skip_ws(sc, e2) > e2 &&
        (e2 = ent__small_number(sc, ent__skip_ws(sc, e2), 9, &mm))) {
        m = mm; /* "seven oh five" */
        e = e2;
    } else if (q > e && (e2 = ent__small_number(sc, q, 59, &mm)) && mm >= 10 &&
               !ent__is_digit((unsigned char)sc->s[q])) {
        m = mm;
        e = e2;
    }
    size_t end = qualifier(sc, e, &mer);
    if (mer == MER_NONE)
        return 0;
    return emit(h, m, mer, end, out);
}

/* A duration in minutes: "2 hours", "an hour", "half an hour", "30 minutes",
 * "45 mins". Returns the end or 0. */
static size_t duration(const ent__scan_t *sc, size_t p, int *minutes)
{
    static const char *const hour_words[] = {"hour", "hours", "hr", "hrs", NULL};
    static const char *const minute_words[] = {"minute", "minutes", "min", "mins", NULL};
    size_t q = p, e;
    int n = 0, half = 0;
    if ((e = ent__word(sc, q, "half"))) {
        half = 1; /* "half an hour" */
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
    }
    if ((e = ent__word(sc, q, "a")) || (e = ent__word(sc, q, "an")))
        n = 1;
    else if (half || (e = ent__small_number(sc, q, 999, &n)) == 0)
        return 0;
    q = ent__skip_ws(sc, e);
    if (q == e)
        return 0;
    if (ent__word_in(sc, q, hour_words, &e) >= 0) {
        *minutes = half ? 30 : n * 60;
        return e;
    }
    if (!half && ent__word_in(sc, q, minute_words, &e) >= 0) {
        *minutes = n;
        return e;
    }
    return 0;
}

/* "in 2 hours", "in half an hour", "30 minutes from now": the reference time
 * plus the duration, wrapping at midnight. */
static size_t relative(const ent__scan_t *sc, size_t p, ent_t *out)
{
    const ent_ctx_t *c = sc->ctx;
    if (c == NULL || c->hour < 0 || c->hour > 23 || c->minute < 0 || c->minute > 59)
        return 0;
    int minutes;
    size_t e, q, end;
    if ((e = ent__word(sc, p, "in")) || (e = ent__word(sc, p, "within"))) {
        q = ent__skip_ws(sc, e);
        if (q == e || (end = duration(sc, q, &minutes)) == 0)
            return 0;
    } else {
        if ((e = duration(sc, p, &minutes)) == 0)
            return 0;
        q = ent__skip_ws(sc, e);
        size_t e2 = q > e ? ent__word(sc, q, "from") : 0;
        size_t r = e2 ? ent__skip_ws(sc, e2) : 0;
        if (e2 == 0 || r == e2 || (end = ent__word(sc, r, "now")) == 0)
            return 0;
    }
    int t = (c->hour * 60 + c->minute + minutes) % (24 * 60);
    return emit(t / 60, t % 60, MER_NONE, end, out);
}

size_t ent__rec_time(const ent__scan_t *sc, size_t p, ent_t *out)
{
    static const ent__rec_fn fns[] = {digital, named, past_to, spoken, relative};
    return ent__longest_at(sc, p, fns, sizeof(fns) / sizeof(fns[0]), out);
}
