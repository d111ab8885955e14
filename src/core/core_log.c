/* logfmt logging to stderr: one line per event, written with one write(2) so
 * that lines from several threads never interleave. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chorus/core.h"

volatile int core__log_level = CORE_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int core_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void core_log_set_level(core_log_level_t level)
{
    core__log_level = (int)level;
}

void core_log_write(core_log_level_t level, const char *module, const char *fmt, ...)
{
    char line[4096];
    char ts[40];
    core_time_format(ts, sizeof(ts), core_wall_us());
    int n = snprintf(line, sizeof(line), "ts=%s level=%s module=%s ", ts,
                     level_names[level < 0 || level > 3 ? 0 : level], module);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* cut, still one line */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere to report a failed log write */
}

const char *core_log_quote(char *out, size_t out_size, const char *s, size_t len, size_t max_chars)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (out_size < 8) {
        if (out_size > 0)
            out[0] = '\0';
        return out;
    }
    if (s == NULL)
        s = "";
    if (len == (size_t)-1)
        len = strlen(s);
    int cut = len > max_chars;
    if (cut)
        len = max_chars;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= out_size) {
            cut = 1;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (cut) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
