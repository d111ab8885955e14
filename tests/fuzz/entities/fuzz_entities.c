/* Fuzz target: utterance bytes -> every entity recogniser (ent_extract), a
 * booking-code pattern and a choice set with typo matching. Input is any
 * bytes (invalid UTF-8, no NUL); results must stay inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/entities.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ent_pattern_t *code_pattern;
static ent_choices_t *cabins;

static void setup(void)
{
    core_err_t err;
    code_pattern = ent_pattern_new("\\b[A-Z0-9]{6}\\b", 1, &err);
    cabins = ent_choices_new();
    static const char *const premium[] = {"premium", "premium eco", NULL};
    static const char *const business[] = {"biz", "business class", NULL};
    ent_choices_add(cabins, "economy", NULL);
    ent_choices_add(cabins, "premium economy", premium);
    ent_choices_add(cabins, "business", business);
}

static void check_range(const ent_t *e, size_t size)
{
    if (e->start > e->end || e->end > size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (code_pattern == NULL)
        setup();
    /* an exact-size copy so that any read past the input is caught */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    ent_ctx_t ctx = {.year = 2026, .month = 2, .day = 28, .hour = 23, .minute = 59};
    ent_list_t list;
    if (ent_extract(text, size, &ctx, &list) == 0)
        for (size_t i = 0; i < list.len; i++)
            check_range(&list.items[i], size);
    ent_t e;
    for (int t = ENT_NUMBER; t <= ENT_PHONE; t++)
        if (ent_find((ent_type_t)t, text, size, &ctx, &e) == 0)
            check_range(&e, size);
    if (code_pattern != NULL && ent_pattern_find(code_pattern, text, size, &e) == 0)
        check_range(&e, size);
    if (ent_choices_find(cabins, text, size, &e) == 0)
        check_range(&e, size);
    free(text);
    return 0;
}
