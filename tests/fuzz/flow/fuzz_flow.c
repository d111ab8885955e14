/* Fuzz target: a flow file -> compiler and validator; when it compiles, a
 * short conversation through the interpreter (every effect answered with a
 * small JSON body) and a state save/restore. Any input must give either a
 * flowset or diagnostics, never a crash, a hang or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/brain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void converse(brain_flowset_t *fs)
{
    static const char *inputs[] = {"hi", "ABC123", "yes", "2026-12-20", "help", "3", "cancel"};
    brain_conv_t c;
    brain_conv_init(&c, fs, BRAIN_CH_WEB, 1796032800LL * 1000000);
    brain_out_t o;
    brain_out_init(&o);
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        brain_input_t in = {.event = i == 0 ? BRAIN_EV_START : BRAIN_EV_MESSAGE,
                            .text = inputs[i],
                            .len = strlen(inputs[i]),
                            .now_us = 1796032800LL * 1000000 + (int64_t)i * 1000000,
                            .ref = {2026, 11, 29, 10, 0, NULL, NULL}};
        int rc = brain_turn(fs, &c, &in, &o);
        for (int k = 0; rc == BRAIN_NEED_EFFECT && k < 8; k++) {
            brain_effect_result_t r = {
                .status = k % 2 ? 500 : 200, .body = "{\"a\":[1]}", .body_len = 9};
            rc = brain_resume(fs, &c, &r, &o);
        }
        if (rc == BRAIN_NEED_EFFECT)
            abort(); /* a turn never needs more effects than its step budget allows */
    }
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    if (brain_conv_to_json(fs, &c, &b) == 0) {
        brain_conv_t r;
        if (brain_conv_from_json(fs, b.data, b.len, &r, NULL) != 0)
            abort(); /* what we saved must load */
        brain_conv_dispose(&r);
    }
    core_buf_dispose(&b);
    brain_out_dispose(&o);
    brain_conv_dispose(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    brain_source_t src = {"fuzz.json", (const char *)data, size};
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.validate_only = 1;
    opts.no_guard = 1;
    core_diags_t diags;
    core_diags_init(&diags);
    brain_flowset_t *fs = NULL;
    int rc = brain_flowset_compile(&src, 1, &opts, &fs, &diags);
    if ((rc != 0) != (fs == NULL) || (rc != 0 && diags.len == 0))
        abort(); /* a rejected file must say why */
    char line[2048];
    for (size_t i = 0; i < diags.len; i++)
        core_diag_format(&diags.items[i], line, sizeof(line));
    if (fs != NULL)
        converse(fs);
    brain_flowset_unref(fs);
    core_diags_dispose(&diags);
    return 0;
}
