/* JSON of the brain's output pieces that several channels and the store
 * write the same way (see brain.h). */
#include <string.h>

#include "chorus/brain.h"

static int is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

int brain_choice_json(core_buf_t *b, const brain_choice_t *ch, int first, int with_url)
{
    const char *title = ch->title ? ch->title : "", *value = ch->value ? ch->value : "";
    size_t mark = b->len, vlen = strlen(value);
    int rc = first ? 0 : core_buf_append_lit(b, ",");
    if (rc == 0)
        rc = core_buf_append_lit(b, "{\"title\":");
    if (rc == 0)
        rc = core_buf_json_str(b, title, strlen(title));
    if (rc == 0)
        rc = core_buf_append_lit(b, ",\"value\":");
    if (rc == 0)
        rc = core_buf_json_str(b, value, vlen);
    if (rc == 0 && with_url && is_url(value)) {
        rc = core_buf_append_lit(b, ",\"url\":");
        if (rc == 0)
            rc = core_buf_json_str(b, value, vlen);
    }
    if (rc == 0)
        rc = core_buf_append_lit(b, "}");
    if (rc != 0 && b->data != NULL) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    return rc;
}
