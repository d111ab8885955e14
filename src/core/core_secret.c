/* Secrets from files and the environment: see secret.h. Values are copied
 * only into the set and the configuration; nothing here logs or formats
 * one. */
#define LOG_MODULE "secrets"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chorus/core.h"
#include "chorus/secret.h"

#define SECRET_MAX_BYTES (64 * 1024)

typedef struct {
    char *name, *value;
} secret_t;

struct core_secrets_s {
    secret_t *items;
    size_t n, cap;
};

/* Options whose values are secrets: `secret:NAME` allowed, never echoed. */
static const char *const secret_options[] = {"admin.tokens", "chat.api_keys", "sms.account_sid"};
#define N_SECRET_OPTIONS (sizeof(secret_options) / sizeof(secret_options[0]))

static core_secrets_t *installed;

int core_secret_option(const char *path)
{
    for (size_t i = 0; i < N_SECRET_OPTIONS; i++)
        if (strcmp(secret_options[i], path) == 0)
            return 1;
    return 0;
}

int core_secret_name_ok(const char *name)
{
    size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
    return n > 0 && n <= 128 && name[n] == '\0';
}

void core_secrets_free(core_secrets_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        /* Do not leave the value in freed memory. */
        explicit_bzero(s->items[i].value, strlen(s->items[i].value));
        free(s->items[i].value);
        free(s->items[i].name);
    }
    free(s->items);
    free(s);
}

const char *core_secrets_find(const core_secrets_t *s, const char *name)
{
    for (size_t i = 0; s != NULL && i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0)
            return s->items[i].value;
    return NULL;
}

size_t core_secrets_count(const core_secrets_t *s)
{
    return s ? s->n : 0;
}

/* Reads one secret file: only its owner may have any permission on it. The
 * mode is checked on the opened descriptor, so the file read is the one
 * checked. Returns 0, 1 when it is not a regular file (skipped), or < 0. */
static int read_one(const char *path, char **value, core_diags_t *diags)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        core_diags_add(diags, path, 0, 0, "", "cannot open secret file: %s", strerror(errno));
        return CORE_ERR_IO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        core_diags_add(diags, path, 0, 0, "", "cannot stat secret file: %s", strerror(errno));
        rc = CORE_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        rc = 1;
    } else if ((st.st_mode & 077) != 0) {
        core_diags_add(diags, path, 0, 0, "",
                       "secret file has mode %04o: group or other users may access it; "
                       "chorusd refuses to start until it is `chmod 600` (owned by the user "
                       "chorusd runs as)",
                       (unsigned)(st.st_mode & 07777));
        rc = CORE_ERR_DENIED;
    } else if (st.st_size > SECRET_MAX_BYTES) {
        core_diags_add(diags, path, 0, 0, "", "secret file is larger than %d bytes",
                       SECRET_MAX_BYTES);
        rc = CORE_ERR_LIMIT;
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    char *buf = core_xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    ssize_t n;
    while (len < (size_t)st.st_size && (n = read(fd, buf + len, (size_t)st.st_size - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            core_diags_add(diags, path, 0, 0, "", "cannot read secret file: %s", strerror(errno));
            close(fd);
            free(buf);
            return CORE_ERR_IO;
        }
        len += (size_t)n;
    }
    close(fd);
    /* Editors and `echo` end files with a newline; it is not part of the value. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    *value = buf;
    return 0;
}

static void add(core_secrets_t *s, const char *name, char *value)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->items = core_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = (secret_t){core_xstrdup(name), value};
}

int core_secrets_read(const char *dir, core_secrets_t **out, core_diags_t *diags)
{
    core_secrets_t *s = core_xcalloc(1, sizeof(*s));
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') {
        *out = s;
        return 0;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        LOG_WARN("event=secrets_dir_unreadable dir=%s error=\"%s\" reason=\"secrets come from the "
                 "environment only\"",
                 dir, strerror(errno));
        *out = s;
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = core_xasprintf("%s/%s", dir, e->d_name);
        char *value = NULL;
        int r = read_one(path, &value, diags);
        free(path);
        if (r < 0 && rc == 0)
            rc = r;
        if (r == 0)
            add(s, e->d_name, value);
    }
    closedir(d);
    if (rc != 0) {
        core_secrets_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void core_secrets_install(core_secrets_t *s)
{
    core_secrets_t *old = installed;
    installed = s;
    core_secrets_free(old);
}

const char *core_secret_get(const char *name)
{
    const char *v = core_secrets_find(installed, name);
    if (v == NULL)
        v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The value of option path in cfg (every secret option is a string). */
static char **option_field(core_config_t *cfg, const char *path)
{
    if (strcmp(path, "admin.tokens") == 0)
        return &cfg->admin.tokens;
    if (strcmp(path, "chat.api_keys") == 0)
        return &cfg->chat.api_keys;
    if (strcmp(path, "sms.account_sid") == 0)
        return &cfg->sms.account_sid;
    return NULL;
}

static int resolve_one(core_config_t *cfg, const char *path, const core_secrets_t *s,
                       const char *dir, core_diags_t *diags)
{
    char **f = option_field(cfg, path);
    if (f == NULL || strncmp(*f, CORE_SECRET_REF, strlen(CORE_SECRET_REF)) != 0)
        return 0;
    char *name = core_xstrdup(*f + strlen(CORE_SECRET_REF));
    const char *v = core_secrets_find(s, name);
    char *source = v ? core_xasprintf("secret %s (file %s/%s)", name, dir, name)
                     : core_xasprintf("secret %s (environment)", name);
    if (v == NULL)
        v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        LOG_WARN("event=secret_unset option=%s secret=%s reason=\"no file in the secrets "
                 "directory and no environment variable: the option is empty\"",
                 path, name);
        v = "";
    }
    int rc = core_config_set(cfg, path, v, source, diags);
    free(source);
    free(name);
    return rc;
}

int core_config_load_secrets(core_config_t *cfg, core_diags_t *diags)
{
    const char *dir = cfg->secrets_dir;
    if (dir == NULL || dir[0] == '\0')
        dir = getenv("CREDENTIALS_DIRECTORY");
    core_secrets_t *s;
    if (core_secrets_read(dir, &s, diags) != 0)
        return CORE_ERR_DENIED;
    int bad = 0;
    for (size_t i = 0; i < N_SECRET_OPTIONS; i++)
        bad |= resolve_one(cfg, secret_options[i], s, dir ? dir : "", diags) != 0;
    if (bad) {
        core_secrets_free(s);
        return CORE_ERR_INVALID;
    }
    if (s->n > 0)
        LOG_INFO("event=secrets_loaded dir=%s files=%zu", dir, s->n);
    core_secrets_install(s);
    return 0;
}
