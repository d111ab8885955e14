/* ctl_common.h — helpers chorusctl's flow commands share (validate, chat,
 * test, bench-brain): reading a flows directory into sources, compiling it,
 * printing diagnostics, building turn inputs and performing effects. Only
 * chorusctl uses these; they may block and print. */
#ifndef CHORUS_CTL_COMMON_H
#define CHORUS_CTL_COMMON_H

#include <jansson.h>
#include <stdio.h>

#include "chorus/brain.h"

typedef struct ctl_sources_s {
    brain_source_t *items; /* owned names and texts */
    size_t n;
} ctl_sources_t;

/* Reads every *.json file directly in dir (sorted by name). */
int ctl_sources_read(const char *dir, ctl_sources_t *out, core_err_t *err);
void ctl_sources_free(ctl_sources_t *s);
/* Parses every *.json file directly in dir (sorted by name) and calls fn
 * with each document (borrowed for the call). Files that are not valid JSON
 * are skipped: `chorusctl validate` is what reports them. Returns the number
 * of documents, or -1 when dir cannot be read. */
int ctl_flow_docs(const char *dir, void (*fn)(json_t *doc, void *arg), void *arg);

/* Reads and compiles dir; prints every problem to stderr. Returns 0 or -1. */
int ctl_flowset_load(const char *dir, int validate_only, brain_flowset_t **out);
void ctl_print_diags(FILE *f, const core_diags_t *d);

/* Fills a message input at now_us (wall clock), with the reference date
 * taken from now_us in UTC. */
void ctl_input_message(brain_input_t *in, const char *text, int64_t now_us);
/* Parses "2026-11-29" or "2026-11-29T10:00:00Z" to microseconds; -1 if bad. */
int64_t ctl_parse_time(const char *s);

/* Performs an effect with libcurl's easy interface (blocking: chorusctl
 * only), retries included; fills res, whose body points into body. */
void ctl_effect_perform(const brain_effect_t *e, brain_effect_result_t *res, core_buf_t *body);

/* A check of a JSON file's shape against what a command reads from it
 * (test files, simulation scripts): each problem is printed to out as
 * "<prefix>FILE:LINE:COL: PATH: what" and counted. */
typedef struct ctl_check_s {
    const char *file;
    core_jsonpos_t *pos; /* of the file's text */
    FILE *out;
    const char *prefix;
    int problems;
} ctl_check_t;
void ctl_check_problem(ctl_check_t *c, const char *path, const char *msg);
/* A problem (msg) at each key of object o (at path) that is not in known
 * (NULL-ended); a typo in a key would otherwise check nothing. */
void ctl_check_known_keys(ctl_check_t *c, const json_t *o, const char *path,
                          const char *const *known, const char *msg);

/* Checks a conversation-test file (ctl_test_check.c) parsed from text:
 * prints one "FAIL FILE:LINE:COL: PATH: what" line per unknown key or
 * wrongly typed value and returns how many. */
int ctl_test_check(const char *file, const char *text, size_t len, const json_t *root);

/* Answers an effect from the first mock that matches it ("node",
 * "url_contains"; then "status", "body", "content" or "error": "timeout" |
 * anything), as the flow tests' mocks do. *body (owned by the caller) holds
 * the body res points into. Returns 0, or -1 when no mock matches (res then
 * says "no mock", an I/O error). */
int ctl_mock_answer(const json_t *mocks, const brain_effect_t *e, brain_effect_result_t *res,
                    char **body);

#endif
