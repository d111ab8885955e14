/* SHA-256 with the digest fetched once (see core.h). */
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
