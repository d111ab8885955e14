/* ctl_admin_http.h — what chorusctl's admin commands (token, audit, flows, rollout) share: the
 * admin token of the caller (CHORUS_ADMIN_TOKEN, or a --token-file that
 * only its owner may read), one blocking request to a running daemon's admin
 * API, and the database path of --db / --data-dir for offline work. Only
 * chorusctl uses these; they may block and print to stderr. */
#ifndef CHORUS_CTL_ADMIN_HTTP_H
#define CHORUS_CTL_ADMIN_HTTP_H

#include <jansson.h>
#include <stddef.h>

/* The admin token: read from token_file when given (refused unless its mode
 * is 0600 or stricter, so a token never sits in a world-readable file), else
 * $CHORUS_ADMIN_TOKEN. Returns an owned string, or NULL after printing why
 * (prefixed with cmd). */
char *ctl_admin_token(const char *cmd, const char *token_file);

/* One request to base_url + path with the bearer token and, when body is not
 * NULL, a JSON body. Returns the HTTP status (0 when the daemon could not
 * be reached, after printing why) and the parsed answer in *out (owned; NULL
 * when the body is not JSON). */
long ctl_admin_request(const char *cmd, const char *base_url, const char *method, const char *path,
                       const char *token, const json_t *body, json_t **out);

/* The length of url without its trailing slashes: "http://h:1/" and
 * "http://h:1" name the same base, to which paths ("/v1/...") are added. */
size_t ctl_url_base_len(const char *url);

/* s percent-encoded for a query string; owned (free()). */
char *ctl_admin_escape(const char *s);

/* Prints an error answer ({"error": {"code", "message"}}) to stderr. */
void ctl_admin_print_error(const char *cmd, long status, const json_t *answer);

/* Prints doc on stdout as indented JSON: what --json shows. */
void ctl_admin_print_json(const json_t *doc);

/* The database of --db FILE or --data-dir DIR (DIR/chorus.db) into buf;
 * NULL when neither was given. */
const char *ctl_admin_db_path(const char *db, const char *data_dir, char *buf, size_t size);

#endif
