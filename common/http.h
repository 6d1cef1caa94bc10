/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP(S) client for KMS providers (libcurl, loaded on first use) and for keydctl and wipe
 * (HTTP over keyd's Unix socket, http_unix.c, no libcurl). Responses land in capped secure
 * buffers; TLS >= 1.2 with verification always on. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "secmem.h"

#define HTTP_RESPONSE_MAX (256 * 1024)

/* One per provider instance: shares connections and TLS sessions between calls and threads. */
struct http_client {
	void *share; /* CURLSH */
	pthread_mutex_t locks[4];
};

struct http_request {
	const char *method; /* "GET", "POST", ... */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL */
	const char *body;	    /* sent as is, not copied (may be secure memory) */
	size_t body_len;
	const char *ca_file;	 /* NULL: system trust store */
	const char *unix_socket; /* http_unix_perform's: HTTP over this Unix socket */
	long timeout_ms;	 /* whole request, connect included; 0 = 30 s */
	/* Signed by libcurl with AWS Signature Version 4: "aws:amz:REGION:SERVICE", the access
	 * key id and the secret (secure memory; libcurl's copy is wiped on free). */
	const char *aws_sigv4;
	const char *aws_key_id;
	const char *aws_secret;
	bool plain_http; /* http:// too: an instance metadata service on a link-local address */
};

struct http_response {
	long status;
	struct secbuf body;
	long retry_after_s; /* -1 when absent */
};

/* Once per process, before threads. libcurl itself is loaded and initialised on the first
 * http_client_init or HTTPS request (-ELIBACC when it cannot be loaded, -EIO when it will not
 * initialise), so programs that only use the control socket never load it. */
int http_global_init(void);
/* -ELIBACC/-EIO/-ENOMEM with @e saying why (which library, what dlopen said). */
int http_client_init(struct http_client *c, struct error *e);
void http_client_done(struct http_client *c);

/* Performs one request over TCP (libcurl; a Unix socket is http_unix.c's). On transport failure returns -errno (-ECONNREFUSED, -ETIMEDOUT,
 * -ECONNRESET (also a TLS handshake cut off by the network), -EHOSTUNREACH, -EPROTO for a
 * certificate that does not verify, -ECONNABORTED for a handshake the server refused, -E2BIG
 * for an oversized reply) and
 * fills @e with libcurl's reason (and whether another try may help). Any HTTP status is
 * success here (resp->status). */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp,
		 struct error *e);
void http_response_done(struct http_response *resp);
/* Requests this thread performs from now on are abandoned (-ECANCELED) soon after *@stop is
 * set (libcurl looks at least about once a second); NULL: never. */
void http_set_stop(const volatile bool *stop);

/* Transport errors worth another try (the connection may work next time). */
bool http_errno_retryable(int r);
/* A Retry-After header's value in seconds: the delta-seconds form only (blanks before it
 * allowed), under a day; an HTTP date or anything else is -1 (absent). */
long http_retry_after(const char *v);
