/* Shared by chorusctl's admin commands: see ctl_admin_http.h. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chorus/core.h"
#include "cmd/ctl_admin_http.h"

char *ctl_admin_token(const char *cmd, const char *token_file)
{
    if (token_file == NULL) {
        const char *t = getenv("CHORUS_ADMIN_TOKEN");
        if (t == NULL || t[0] == '\0') {
            fprintf(stderr, "%s: no admin token: set CHORUS_ADMIN_TOKEN or give --token-file\n",
                    cmd);
            return NULL;
        }
        return core_xstrdup(t);
    }
    struct stat st;
    if (stat(token_file, &st) != 0) {
        fprintf(stderr, "%s: %s: cannot read the token file\n", cmd, token_file);
        return NULL;
    }
    if ((st.st_mode & 077) != 0) {
        fprintf(stderr, "%s: %s: mode %03o lets others read the token; chmod 600 it\n", cmd,
                token_file, (unsigned)(st.st_mode & 0777));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    core_err_t err = {0};
    if (core_file_read(token_file, 4096, &text, &len, &err) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return NULL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "%s: %s: the token file is empty\n", cmd, token_file);
        free(text);
        return NULL;
    }
    return text;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return core_buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

long ctl_admin_request(const char *cmd, const char *base_url, const char *method, const char *path,
                       const char *token, const json_t *body, json_t **out)
{
    *out = NULL;
    CURL *c = curl_easy_init();
    char *url = core_xasprintf("%.*s%s", (int)ctl_url_base_len(base_url), base_url, path);
    char *auth = core_xasprintf("Authorization: Bearer %s", token);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *h = curl_slist_append(NULL, auth);
    if (text != NULL)
        h = curl_slist_append(h, "Content-Type: application/json");
    core_buf_t resp;
    core_buf_init(&resp, 64 << 20);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (text != NULL || strcmp(method, "POST") == 0) /* a POST always says its length */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text != NULL ? text : "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    if (res != CURLE_OK)
        fprintf(stderr, "%s: %s: %s\n", cmd, base_url, curl_easy_strerror(res));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 0 && resp.len > 0)
        *out = json_loadb(resp.data, resp.len, 0, NULL);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    core_buf_dispose(&resp);
    free(text), free(auth), free(url);
    return status;
}

size_t ctl_url_base_len(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return n;
}

char *ctl_admin_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = core_xstrdup(e != NULL ? e : "");
    curl_free(e);
    return out;
}

void ctl_admin_print_error(const char *cmd, long status, const json_t *answer)
{
    json_t *e = json_object_get(answer, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    fprintf(stderr, "%s: the daemon answered %ld %s: %s\n", cmd, status, code ? code : "",
            msg ? msg : "(no message)");
}

void ctl_admin_print_json(const json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2));
    printf("%s\n", s ? s : "null");
    free(s);
}

const char *ctl_admin_db_path(const char *db, const char *data_dir, char *buf, size_t size)
{
    if (db != NULL)
        return db;
    if (data_dir == NULL)
        return NULL;
    snprintf(buf, size, "%s/chorus.db", data_dir);
    return buf;
}
