/* The environment a Twilio number serves (sms.environments,
 * voice.environments), so one daemon answers a staging number and a
 * production number. The map is checked by the config loader. */
#include <stdio.h>
#include <string.h>

#include "channels/chan_twilio_int.h"

const char *twilio__env_for(const char *map, const char *number, char *buf, size_t size)
{
    if (map == NULL || number == NULL || number[0] == '\0')
        return NULL;
    size_t nl = strlen(number);
    for (const char *p = map; *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq != NULL && (size_t)(eq - p) == nl && memcmp(p, number, nl) == 0) {
            snprintf(buf, size, "%.*s", (int)(p + n - eq - 1), eq + 1);
            return buf;
        }
        p += n + (p[n] == ',');
    }
    return NULL;
}
