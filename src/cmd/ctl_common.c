/* Helpers shared by chorusctl's flow commands: see ctl_common.h. */
#include <curl/curl.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chorus/secret.h"
#include "cmd/ctl_common.h"

extern char **environ;

#define FLOW_FILE_MAX (4u << 20)

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ctl_sources_read(const char *dir, ctl_sources_t *out, core_err_t *err)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (d == NULL)
        return core_err_set(err, CORE_ERR_IO, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && e->d_name[0] != '.') {
            names = core_xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = core_xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (n > 0) /* qsort may not be given NULL, even for nothing */
        qsort(names, n, sizeof(char *), cmp_str);
    out->items = core_xcalloc(n + 1, sizeof(brain_source_t));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = core_xasprintf("%s/%s", dir, names[i]);
        char *text = NULL;
        size_t len = 0;
        if (rc == 0 && core_file_read(path, FLOW_FILE_MAX, &text, &len, err) == 0) {
            out->items[out->n++] = (brain_source_t){path, text, len};
        } else {
            rc = rc ? rc : CORE_ERR_IO;
            free(path);
        }
        free(names[i]);
    }
    free(names);
    if (rc != 0)
        ctl_sources_free(out);
    return rc;
}

void ctl_sources_free(ctl_sources_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->items[i].name);
        free((char *)s->items[i].text);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

void ctl_print_diags(FILE *f, const core_diags_t *d)
{
    for (size_t i = 0; i < d->len; i++) {
        char line[2048];
        fprintf(f, "%s\n", core_diag_format(&d->items[i], line, sizeof(line)));
    }
}

int ctl_flowset_load(const char *dir, int validate_only, brain_flowset_t **out)
{
    ctl_sources_t src;
    core_err_t err = {0};
    *out = NULL;
    if (ctl_sources_read(dir, &src, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.envp = (const char *const *)environ;
    opts.validate_only = validate_only;
    core_diags_t diags;
    core_diags_init(&diags);
    int rc = brain_flowset_compile(src.items, src.n, &opts, out, &diags);
    ctl_print_diags(stderr, &diags);
    core_diags_dispose(&diags);
    ctl_sources_free(&src);
    return rc == 0 ? 0 : -1;
}

void ctl_input_message(brain_input_t *in, const char *text, int64_t now_us)
{
    memset(in, 0, sizeof(*in));
    in->event = BRAIN_EV_MESSAGE;
    in->text = text;
    in->len = text ? strlen(text) : 0;
    in->now_us = now_us;
    time_t t = (time_t)(now_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    in->ref.year = tm.tm_year + 1900;
    in->ref.month = tm.tm_mon + 1;
    in->ref.day = tm.tm_mday;
    in->ref.hour = tm.tm_hour;
    in->ref.minute = tm.tm_min;
}

void ctl_check_problem(ctl_check_t *c, const char *path, const char *msg)
{
    int line = 0, col = 0;
    core_jsonpos_find(c->pos, path, &line, &col);
    fprintf(c->out, "%s%s:%d:%d: %s: %s\n", c->prefix, c->file, line, col, path, msg);
    c->problems++;
}

void ctl_check_known_keys(ctl_check_t *c, const json_t *o, const char *path,
                          const char *const *known, const char *msg)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], k) != 0)
            i++;
        if (known[i] == NULL) {
            char *p = core_jsonpath_key(path, k);
            ctl_check_problem(c, p, msg);
            free(p);
        }
    }
}

int64_t ctl_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end == NULL)
            return -1;
        tm.tm_hour = 10;
    }
    if (*end == 'Z')
        end++;
    if (*end != '\0') /* an offset or anything else: UTC only, said so */
        return -1;
    int64_t t;
    return core_time_from_tm(&tm, &t) == 0 ? t * 1000000 : -1;
}

/* ---- effects with libcurl easy (blocking, chorusctl only) ----------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    core_buf_t *b = ud;
    return core_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

static int perform_once(const brain_effect_t *e, core_buf_t *body, long *status, char *errbuf)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; i < e->n_headers; i++) {
        char *line = core_xasprintf("%s: %s", e->headers[i].name, e->headers[i].value);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }
    const char *key = e->api_key_env ? core_secret_get(e->api_key_env) : NULL;
    if (e->kind == BRAIN_EFFECT_LLM && key != NULL) {
        char *line = core_xasprintf("Authorization: Bearer %s", key);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }
    curl_easy_setopt(h, CURLOPT_URL, e->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, e->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (e->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, e->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)e->body_len);
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return CORE_ERR_TIMEOUT;
    return cc == CURLE_OK ? 0 : CORE_ERR_IO;
}

void ctl_effect_perform(const brain_effect_t *e, brain_effect_result_t *res, core_buf_t *body)
{
    static char errbuf[CURL_ERROR_SIZE];
    memset(res, 0, sizeof(*res));
    long status = 0;
    int rc = 0;
    for (uint32_t attempt = 0; attempt <= e->retries; attempt++) {
        if (attempt > 0)
            usleep((useconds_t)e->backoff_ms * 1000u << (attempt - 1));
        core_buf_reset(body);
        errbuf[0] = '\0';
        status = 0;
        rc = perform_once(e, body, &status, errbuf);
        if (rc == 0 && status < 500)
            break;
    }
    res->error = rc;
    res->error_text = rc ? errbuf : NULL;
    res->status = (int)status;
    res->body = body->data;
    res->body_len = body->len;
}

int ctl_mock_answer(const json_t *mocks, const brain_effect_t *e, brain_effect_result_t *res,
                    char **body)
{
    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i < json_array_size(mocks); i++) {
        json_t *m = json_array_get(mocks, i);
        const char *node = json_string_value(json_object_get(m, "node"));
        const char *url = json_string_value(json_object_get(m, "url_contains"));
        if ((node && (e->node == NULL || strcmp(node, e->node))) || (url && !strstr(e->url, url)) ||
            (!node && !url))
            continue;
        const char *err = json_string_value(json_object_get(m, "error"));
        if (err != NULL) {
            res->error = strcmp(err, "timeout") == 0 ? CORE_ERR_TIMEOUT : CORE_ERR_IO;
            return 0;
        }
        json_t *st = json_object_get(m, "status");
        res->status = st ? (int)json_integer_value(st) : 200;
        json_t *b = json_object_get(m, "body");
        *body = json_is_string(b) ? strdup(json_string_value(b))
                                  : (b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL);
        res->body = *body;
        res->body_len = *body ? strlen(*body) : 0;
        res->content = json_string_value(json_object_get(m, "content"));
        return 0;
    }
    res->error = CORE_ERR_IO;
    res->error_text = "no mock";
    return -1;
}

int ctl_flow_docs(const char *dir, void (*fn)(json_t *doc, void *arg), void *arg)
{
    ctl_sources_t src;
    core_err_t err = {0};
    if (dir == NULL || ctl_sources_read(dir, &src, &err) != 0)
        return -1;
    int n = 0;
    for (size_t i = 0; i < src.n; i++) {
        json_t *doc = json_loadb(src.items[i].text, src.items[i].len, 0, NULL);
        if (doc == NULL)
            continue;
        fn(doc, arg);
        json_decref(doc);
        n++;
    }
    ctl_sources_free(&src);
    return n;
}
