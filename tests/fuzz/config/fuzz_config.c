/* Fuzz target: configuration text -> jansson -> option table checks, and the
 * JSON position index that error messages use. Any input must give either a
 * config or diagnostics, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "chorus/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t diags;
    core_diags_init(&diags);
    int rc = core_config_load_text(&cfg, "fuzz.json", (const char *)data, size, &diags);
    if (rc != 0 && diags.len == 0)
        abort(); /* a rejected file must say why */
    char line[2048];
    for (size_t i = 0; i < diags.len; i++)
        core_diag_format(&diags.items[i], line, sizeof(line));
    core_jsonpos_t *pos = core_jsonpos_new((const char *)data, size);
    int l, c;
    core_jsonpos_find(pos, "http.max_headers", &l, &c);
    core_jsonpos_free(pos);
    core_diags_dispose(&diags);
    core_config_dispose(&cfg);
    return 0;
}
