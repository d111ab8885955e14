/* Compact JSON serialization straight into an output buffer, for answers.
 *
 * Produces what json_dumpb(JSON_COMPACT) produces (same escapes, same
 * number formats, keys in insertion order) without its per-value printf
 * calls: answers are the server's hottest path. */
#define LOG_MODULE "net"
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"

enum { MAX_DEPTH = 2048 };

static void put_string(net_obuf_t *o, const char *s, size_t n)
{
    net__obuf_reserve(o, n + 2);
    o->data[o->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        net__obuf_put(o, s + run, i - run);
        run = i + 1;
        char esc[6];
        size_t len = core_json_escape(c, esc);
        net__obuf_put(o, esc, len);
    }
    net__obuf_put(o, s + run, n - run);
    net__obuf_put(o, "\"", 1);
}

static void put_integer(net_obuf_t *o, json_int_t v)
{
    if (v < 0) {
        net__obuf_put(o, "-", 1);
        net__obuf_put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        net__obuf_put_u64(o, (uint64_t)v);
    }
}

/* jansson's format: %.17g, with ".0" added when it would read as an integer. */
static int put_real(net_obuf_t *o, double v)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%.17g", v);
    if (n <= 0 || (size_t)n >= sizeof(buf) - 3 || strpbrk(buf, "in")) /* inf, nan */
        return -1;
    char *e = strchr(buf, 'e');
    if (e) {
        /* as jansson: no '+' and no leading zeros in the exponent */
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            *to++ = *from++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1] != '\0')
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(buf);
    } else if (strchr(buf, '.') == NULL) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    net__obuf_put(o, buf, (size_t)n);
    return 0;
}

static int put_value(net_obuf_t *o, const json_t *j, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(j)) {
    case JSON_NULL:
        net__obuf_put(o, "null", 4);
        return 0;
    case JSON_TRUE:
        net__obuf_put(o, "true", 4);
        return 0;
    case JSON_FALSE:
        net__obuf_put(o, "false", 5);
        return 0;
    case JSON_INTEGER:
        put_integer(o, json_integer_value(j));
        return 0;
    case JSON_REAL:
        return put_real(o, json_real_value(j));
    case JSON_STRING:
        put_string(o, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_ARRAY: {
        net__obuf_put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                net__obuf_put(o, ",", 1);
            if (put_value(o, json_array_get(j, i), depth + 1) != 0)
                return -1;
        }
        net__obuf_put(o, "]", 1);
        return 0;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        int first = 1;
        net__obuf_put(o, "{", 1);
        json_object_foreach((json_t *)j, key, v)
        {
            if (!first)
                net__obuf_put(o, ",", 1);
            first = 0;
            put_string(o, key, strlen(key));
            net__obuf_put(o, ":", 1);
            if (put_value(o, v, depth + 1) != 0)
                return -1;
        }
        net__obuf_put(o, "}", 1);
        return 0;
    }
    }
    return -1;
}

int net__json_write(net_obuf_t *o, const json_t *j)
{
    size_t start = o->len;
    if (j == NULL || put_value(o, j, 0) != 0) {
        o->len = start;
        return CORE_ERR_INVALID;
    }
    return 0;
}
