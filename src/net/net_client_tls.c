/* Outbound certificate verification: the CA bundle for each host and the
 * hosts explicitly not verified. Set once at startup by
 * net_client_set_tls() and read by every transfer after that. */
#define LOG_MODULE "net_client"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chorus/net_client.h"
#include "net/net_client_tls.h"

typedef struct host_ca_s {
    char *host; /* lower case */
    char *path; /* NULL: not verified */
} host_ca_t;

static struct {
    char *ca_file; /* NULL: curl's default bundle */
    host_ca_t *hosts;
    size_t nhosts;
} tls;

static void tls_reset(void)
{
    free(tls.ca_file);
    for (size_t i = 0; i < tls.nhosts; i++) {
        free(tls.hosts[i].host);
        free(tls.hosts[i].path);
    }
    free(tls.hosts);
    memset(&tls, 0, sizeof(tls));
}

static void add_host(const char *host, size_t hlen, const char *path, size_t plen)
{
    tls.hosts = core_xrealloc(tls.hosts, (tls.nhosts + 1) * sizeof(*tls.hosts));
    host_ca_t *h = &tls.hosts[tls.nhosts++];
    h->host = core_xstrndup(host, hlen);
    for (char *p = h->host; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    h->path = path ? core_xstrndup(path, plen) : NULL;
}

/* "host=path,..." */
static int parse_ca_files(const char *list, core_err_t *err)
{
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq == NULL || eq == p || eq + 1 == p + n)
            return core_err_set(err, CORE_ERR_INVALID,
                                "outbound.ca_files: \"%.*s\" is not host=path", (int)n, p);
        add_host(p, (size_t)(eq - p), eq + 1, (size_t)(p + n - eq - 1));
        if (core_file_readable("outbound.ca_files", tls.hosts[tls.nhosts - 1].path, err) != 0)
            return err ? err->code : CORE_ERR_IO;
        p += n + (p[n] == ',');
    }
    return 0;
}

int net_client_set_tls(const char *ca_file, const char *ca_files, const char *insecure_hosts,
                       core_err_t *err)
{
    tls_reset();
    int rc = 0;
    if (ca_file && ca_file[0]) {
        tls.ca_file = core_xstrdup(ca_file);
        rc = core_file_readable("outbound.ca_file", ca_file, err);
    }
    if (rc == 0)
        rc = parse_ca_files(ca_files, err);
    for (const char *p = insecure_hosts; rc == 0 && p && *p;) {
        size_t n = strcspn(p, ", ");
        if (n > 0)
            add_host(p, n, NULL, 0);
        p += n + (p[n] != '\0');
    }
    if (rc != 0)
        tls_reset();
    return rc;
}

/* The host of an http(s) URL into out ("" when there is none). */
static void url_host(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = strstr(url, "://");
    if (p == NULL)
        return;
    p += 3;
    size_t auth = strcspn(p, "/?#");
    const char *at = memchr(p, '@', auth);
    if (at)
        p = at + 1;
    size_t n = *p == '[' ? strcspn(p, "]/?#") + (p[strcspn(p, "]/?#")] == ']') : strcspn(p, ":/?#");
    if (*p == '[') { /* [v6]: the address without brackets */
        p++;
        n = n >= 2 ? n - 2 : 0;
    }
    if (n >= size)
        return;
    memcpy(out, p, n);
    out[n] = '\0';
}

void net__client_tls_apply(CURL *e, const char *url, int insecure)
{
    char host[256];
    url_host(url, host, sizeof(host));
    const char *ca = tls.ca_file;
    for (size_t i = 0; i < tls.nhosts; i++) {
        if (strcasecmp(tls.hosts[i].host, host) != 0)
            continue;
        if (tls.hosts[i].path == NULL)
            insecure = 1;
        else
            ca = tls.hosts[i].path;
        break;
    }
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
}
