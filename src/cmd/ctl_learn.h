/* ctl_learn.h — the pieces of `chorusctl learn`: mining and ranking
 * (ctl_learn_mine.c) and output (ctl_learn_out.c). chorusctl only. */
#ifndef CHORUS_CTL_LEARN_H
#define CHORUS_CTL_LEARN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "chorus/store.h"

typedef struct learn_args_s {
    const char *db, *data_dir, *from, *to, *flows, *format, *out;
    int64_t from_us, to_us;
    double top, min_size, threshold, handle_s, low_conf, export_id;
} learn_args_t;

/* The whole report as JSON (docs/flywheel.md): {"window", "unhandled_turns",
 * "opportunities": [ranked, each with "utterances"], "drop_offs", "intents",
 * "confusions"}. Returns 0 or an error with err filled. */
int learn_mine(const learn_args_t *a, store_db_t *db, json_t **out, core_err_t *err);

/* Prints the report as tables (top opportunities first). */
void learn_print(const json_t *report, FILE *out);

/* Writes opportunity a->export_id of report as a draft flow file a->out;
 * returns the exit code. */
int learn_export(const learn_args_t *a, const json_t *report);

#endif
