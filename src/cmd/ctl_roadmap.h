/* ctl_roadmap.h — the pieces of `chorusctl roadmap`: the workflows from the
 * flow files and their KPIs (ctl_roadmap_doc.c), and the Markdown page. */
#ifndef CHORUS_CTL_ROADMAP_H
#define CHORUS_CTL_ROADMAP_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct roadmap_args_s {
    const char *flows, *db, *data_dir, *format, *out;
    long window_days;
    int64_t at_us;
} roadmap_args_t;

/* {"workflows": [{name, description, owner, status, depends_on}],
 *  "status_counts": {...}} from the flow files of dir; NULL if none read. */
json_t *roadmap_workflows(const char *dir);

/* Adds "kpis", "previous" and "trend" to each workflow from the KPI rows by
 * flow of this window (now) and the one before. */
void roadmap_add_kpis(json_t *doc, const json_t *now, const json_t *before);

void roadmap_markdown(const json_t *doc, FILE *out);

#endif
