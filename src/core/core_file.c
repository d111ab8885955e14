/* Whole-file reads for start-up, chorusctl and worker threads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"

int core_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len, core_err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return core_err_set(err, CORE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    core_buf_t b;
    core_buf_init(&b, max_bytes);
    char chunk[16384];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (core_buf_append(&b, chunk, n) != 0) {
            rc = core_err_set(err, CORE_ERR_LIMIT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = core_err_set(err, CORE_ERR_IO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (rc != 0) {
        core_buf_dispose(&b);
        return rc;
    }
    *out = core_buf_steal(&b, out_len);
    return 0;
}

int core_file_readable(const char *what, const char *path, core_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return core_err_set(err, CORE_ERR_IO, "%s \"%s\": cannot read: %s", what, path,
                            strerror(errno));
    fclose(f);
    return 0;
}
