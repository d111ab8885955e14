/* SHA-256 with the digest fetched once, and hex encoding (see core.h). */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#include "chorus/core.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL)
        abort(); /* OpenSSL without its default provider: nothing can be verified */
}

void core_sha256(const void *data, size_t len, uint8_t out[32])
{
    pthread_once(&sha256_once, fetch_sha256);
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, sha256_md, NULL);
}

void core_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t h[32];
    core_sha256(data, len, h);
    core_hex_encode(h, sizeof(h), out);
}

void core_hex_encode(const void *bytes, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}
