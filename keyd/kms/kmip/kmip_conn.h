/* SPDX-License-Identifier: GPL-2.0-or-later */
/* KMIP's transport (KMIP 1.4 profiles, section 3.1): TTLV messages over TLS >= 1.2 with a
 * client certificate, through OpenSSL directly, every step bounded by one deadline. Verifies
 * the server certificate and its name or address; reads replies into secure memory only.
 * Never logs; errors are -errno plus a sentence that names no secret, and say (retryable)
 * whether another try or another endpoint may work. */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define KMIP_PORT_DEFAULT "5696"
#define KMIP_HOST_MAX	  253

/* "host", "host:port", "[v6]" or "[v6]:port" from the configuration. */
struct kmip_endpoint {
	char host[KMIP_HOST_MAX + 1];
	char port[6];
	bool is_ip;		       /* verify an IP address in the certificate, not a DNS name */
	char text[KMIP_HOST_MAX + 10]; /* as given, for messages */
};

/* -EINVAL for anything but the forms above (ports 1 to 65535). */
int kmip_endpoint_parse(const char *s, struct kmip_endpoint *ret);

/* One TLS client context per KMS: trust anchors, the client certificate (with any chain that
 * follows it in the PEM) and its key. @key is PEM in secure memory. */
struct kmip_tls {
	SSL_CTX *ctx;
};
/* -EINVAL (unreadable PEM, key not matching the certificate), -ENOENT (ca_file), -ENOMEM. */
int kmip_tls_init(struct kmip_tls *t, const char *ca_file, const uint8_t *cert, size_t cert_len,
		  const uint8_t *key, size_t key_len, struct error *e);
void kmip_tls_done(struct kmip_tls *t);

struct kmip_conn {
	int fd;
	SSL *ssl;
	uint64_t deadline_us; /* CLOCK_MONOTONIC, as now_mono_us() */
};

/* Connects and completes the TLS handshake before @deadline_us. Errors:
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ENETUNREACH, -ECONNRESET (worth another try);
 * -EPROTO (the server certificate did not verify, or TLS failed), -EACCES (the server refused
 * keyd's client certificate). */
int kmip_conn_open(struct kmip_conn *c, const struct kmip_tls *t, const struct kmip_endpoint *ep,
		   uint64_t deadline_us, struct error *e);
/* Sends one request and reads one whole reply into secure memory (*ret, *ret_n; the caller
 * frees it with secmem_free). The errors of kmip_conn_open, -EBADMSG for a reply that is not
 * a Response Message, -E2BIG past TTLV_MSG_MAX. */
int kmip_conn_call(struct kmip_conn *c, const uint8_t *req, size_t n, uint8_t **ret, size_t *ret_n,
		   struct error *e);
void kmip_conn_close(struct kmip_conn *c);
