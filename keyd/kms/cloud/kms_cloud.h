/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the public-cloud providers (aws, tencent) share: credentials (key id, secret, optional
 * session token) from a root 0600 file or from the instance's role through its metadata
 * service, cached and refreshed before they expire; and the encryption context that binds a
 * WDEK to a LUKS UUID. Secrets live in secure memory only and never reach a message. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "http.h"
#include "jsonx.h"
#include "kms.h"

#define CLOUD_ID_MAX	   128
#define CLOUD_SECRET_MAX   256
#define CLOUD_TOKEN_MAX	   8192
#define CLOUD_ROLE_MAX	   64
#define CLOUD_UUID_MAX	   40
#define CLOUD_METADATA_MAX (CLOUD_TOKEN_MAX + 2048)
/* The context both providers send: {"keyd:luks-uuid": "<UUID>"}. */
#define CLOUD_CONTEXT_KEY "keyd:luks-uuid"

struct cloud_creds {
	char *id;		  /* secure memory */
	char *secret;		  /* secure memory */
	char *token;		  /* secure memory; NULL: long-term credentials */
	uint64_t expires_real_us; /* 0: no expiry */
};
void cloud_creds_done(struct cloud_creds *c);
/* Role credentials as a metadata service gave them, copied into secure memory. -ENOMEM with
 * @pe. */
int cloud_creds_set(struct cloud_creds *ret, const char *id, const char *secret, const char *token,
		    uint64_t expires_real_us, struct error *pe);

/* The names of a credentials file's three keys (token optional). */
struct cloud_file_keys {
	const char *id, *secret, *token;
};

/* Parses a credentials file in secure memory: "key = value" lines, '#' and ';' comments,
 * blank lines and at most a [default] section header. Unknown keys, duplicates and a missing
 * id or secret are -EINVAL with @why naming the line or key (never a value). */
int cloud_creds_parse(const char *text, size_t n, const struct cloud_file_keys *keys,
		      struct cloud_creds *ret, struct error *pe);

/* Role credentials from a metadata service (the provider's own request and reply). */
typedef int (*cloud_fetch_fn)(struct kms *kms, struct cloud_creds *ret, struct error *e);

struct cloud_auth {
	char *file;	      /* credentials_file, or NULL: the role, through fetch */
	const char *file_key; /* its config key, for messages */
	const struct cloud_file_keys *keys;
	cloud_fetch_fn fetch;

	pthread_mutex_t lock; /* guards what follows */
	struct cloud_creds creds;
	uint64_t gen;		/* bumped by every new set of credentials */
	uint64_t refresh_at_us; /* real clock, as the expiry is; UINT64_MAX: never */
	struct stat file_st;	/* the file as last read: re-read when it changed */
};
void cloud_auth_init(struct cloud_auth *a);
void cloud_auth_done(struct cloud_auth *a);

/* Copies the credentials to use now into @ret (secure memory; cloud_creds_done it). Reads or
 * fetches anew when there are none, when the file changed, when they are due for refresh, or
 * when they are the ones of generation @stale (the KMS refused them). While a refresh fails,
 * credentials that have not expired are still used. -errno with @e filled. */
int cloud_auth_get(struct kms *kms, struct cloud_auth *a, uint64_t stale, struct cloud_creds *ret,
		   uint64_t *ret_gen, struct error *e);

/* A metadata service URL from the config: http:// to a link-local address (169.254.x.x,
 * [fd00:ec2::254]), to @dns_name (the vendor's own name for it), or to loopback (tests). */
int cloud_metadata_url(const char *s, const char *path, const char *dns_name, char **ret,
		       struct error *e);

/* One request to a metadata service; the reply must be 200 and lands in secure memory. */
int cloud_metadata_call(struct http_client *http, const char *method, const char *url,
			const char *const *headers, long timeout_ms, const char *where,
			struct http_response *resp, struct error *e);

/* The LUKS UUID out of the AAD "keyd:v1:<UUID>" (hex digits and '-'), into @buf. */
int cloud_context_uuid(const char *aad, char *buf, size_t size);
