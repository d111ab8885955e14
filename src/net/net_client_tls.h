/* net_client_tls.h — between net_client.c and net_client_tls.c (not a
 * contract): how a transfer verifies its peer, from the process-wide
 * settings of net_client_set_tls() (chorus/net_client.h). */
#ifndef CHORUS_NET_CLIENT_TLS_H
#define CHORUS_NET_CLIENT_TLS_H

#include <curl/curl.h>

/* Sets the CA bundle and verification of easy for url; insecure is the
 * request's own (test-only) switch. */
void net__client_tls_apply(CURL *easy, const char *url, int insecure);

#endif
