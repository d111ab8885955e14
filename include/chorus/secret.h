/* secret.h — where chorusd's secrets come from (docs/operations.md, "Secrets").
 *
 * Every secret has a name (TWILIO_AUTH_TOKEN, an LLM node's api_key_env,
 * CHORUS_ADMIN_TOKENS). Its value is the file of that name in the secrets
 * directory (`secrets_dir`, else systemd's $CREDENTIALS_DIRECTORY), else the
 * environment variable of that name. A secret file must be readable by its
 * owner only (no group or other permission bits): any other mode is an error
 * naming the file, so chorusd refuses to start (and --check fails, and a
 * reload is rejected). Options that hold secrets (core_secret_option) take
 * `secret:NAME` in the configuration file instead of the value itself.
 *
 * Values are never logged, printed in diagnostics or returned by an
 * endpoint: diagnostics name the secret and the file, never the content.
 *
 * Threads: core_secrets_read() blocks (file reads): start-up, reload, tools.
 * The installed set is process-wide; install it and call core_secret_get()
 * on the loop thread only once the loop runs (reload replaces it there), or
 * on any thread before other threads start.
 *
 * Ownership: a core_secrets_t belongs to its reader until installed; then to
 * this module, which frees the previous set on the next install. Pointers
 * returned by core_secret_get() are valid until the next install. */
#ifndef CHORUS_SECRET_H
#define CHORUS_SECRET_H

#include "chorus/config.h"
#include "chorus/core.h"

/* The prefix of an option value naming a secret: "secret:NAME". */
#define CORE_SECRET_REF "secret:"

typedef struct core_secrets_s core_secrets_t;

/* Reads every regular file directly in dir (names starting with '.' are
 * skipped) into *out. A missing dir gives an empty set and a warning. A file
 * with group or other permission bits, unreadable, or over 64 KiB is a
 * problem appended to diags (naming the file); then *out is NULL and
 * CORE_ERR_DENIED or CORE_ERR_IO is returned. dir NULL or "" gives an empty
 * set. */
int core_secrets_read(const char *dir, core_secrets_t **out, core_diags_t *diags);
void core_secrets_free(core_secrets_t *s);
/* The value of the file named name in s, or NULL. */
const char *core_secrets_find(const core_secrets_t *s, const char *name);
/* The number of secrets in s. */
size_t core_secrets_count(const core_secrets_t *s);

/* Makes s the process's secret set (NULL: none), freeing the previous one. */
void core_secrets_install(core_secrets_t *s);
/* The named secret: the installed file, else the environment variable; NULL
 * when neither is set or it is empty. */
const char *core_secret_get(const char *name);

/* Nonzero if the option at path holds a secret (admin.tokens,
 * chat.api_keys, sms.account_sid): its value may be `secret:NAME` and is never echoed. */
int core_secret_option(const char *path);
/* Nonzero if name is a valid secret name ([A-Za-z0-9_.-], 1-128 bytes). */
int core_secret_name_ok(const char *name);

/* The step after loading a configuration: reads the secrets directory of
 * cfg (secrets_dir, else $CREDENTIALS_DIRECTORY), replaces every
 * `secret:NAME` option value by the secret (an unset secret gives "" and a
 * warning), checks it as the option requires, and on success installs the
 * set. On any problem (appended to diags) returns nonzero and installs
 * nothing, so the running configuration keeps its secrets. */
int core_config_load_secrets(core_config_t *cfg, core_diags_t *diags);

#endif
