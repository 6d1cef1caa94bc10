/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to keyd/kms/kms_vault*.c, never included elsewhere: the `vault` provider's state, and
 * one request to one Vault endpoint with what Vault's statuses and messages mean. Shared by the
 * Transit calls (kms_vault.c) and the login (kms_vault_auth.c); never retries, never logs, never
 * puts a token in a message. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "kms.h"
#include "kms_rest.h"

#define VAULT_PATH_MAX	    128 /* mount, namespace, AppRole mount */
#define VAULT_TOKEN_MAX	    4096
#define VAULT_TTL_MAX	    (100ULL * 366 * 86400)
#define VAULT_PLAINTEXT_MAX 1024
#define VAULT_VERSION_MAX   4294967295ULL
#define VAULT_DEK_LEN	    32
#define VAULT_WHERE_MAX	    (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 2 * VAULT_PATH_MAX + 64)
#define VAULT_URL_MAX	    (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 2 * VAULT_PATH_MAX + 64)
/* After a failed renewal, try again this much later (the token still works meanwhile). */
#define VAULT_RENEW_RETRY_US (10 * 1000000ULL)
#define VAULT_NEVER	     UINT64_MAX

#define VAULT_TOKEN_HEADER     "X-Vault-Token: "
#define VAULT_NAMESPACE_HEADER "X-Vault-Namespace: "
#define VAULT_WDEK_PREFIX      "vault:v"

/* Transit key names match Vault's GenericNameRegex: word characters, '-' and '.'. */
#define CHARS_KEY_NAME KMS_CHARS_ALNUM "_-."
#define CHARS_PATH     KMS_CHARS_ALNUM "_-./"
#define CHARS_TOKEN    KMS_CHARS_ALNUM "-._~+/="

struct vault {
	char **endpoints; /* without trailing '/' */
	size_t n_endpoints;
	char *mount;
	char *namespace;    /* NULL: none */
	char *ns_header;    /* "X-Vault-Namespace: …", or NULL */
	char *token_file;   /* token auth, or NULL */
	char *role_id_file; /* AppRole auth, or NULL */
	char *secret_id_file;
	char *login_path;	      /* /v1/auth/<approle mount>/login */
	char *ca_file;		      /* NULL: system trust store */
	uint8_t *role_id, *secret_id; /* secure memory */
	size_t role_id_len, secret_id_len;
	struct http_client http;

	pthread_mutex_t lock; /* guards the token cache below */
	char *auth;	      /* "X-Vault-Token: …", secure memory */
	uint64_t auth_gen;    /* bumped by every new token */
	bool checked;	      /* token auth: lookup-self was asked about this token */
	bool renewable;
	uint64_t full_ttl_us;		     /* the token's whole TTL, for "past 2/3 of it" */
	uint64_t renew_at_us, expires_at_us; /* CLOCK_MONOTONIC; VAULT_NEVER */
};

/* One Vault request and, for messages, what it does to which key. */
struct vault_req {
	const char *what;   /* "decrypt with", "token lookup", … */
	const char *key_id; /* NULL: not about a key */
	const char *method;
	char path[VAULT_PATH_MAX * 2 + KMS_KEY_ID_MAX + 32]; /* "/v1/…" */
	const char *body;				     /* secure memory, or NULL */
};

/* "Vault <endpoint> [namespace N]: <what> [key <mount>/<key>]", for messages. */
const char *vault_where(char *buf, size_t size, const struct vault *v, const char *endpoint,
			const struct vault_req *req);
/* One request to one endpoint, with the token header @auth (NULL: none). The answer must be
 * 200 with a JSON object; other statuses are classified by Vault's tables. */
int vault_send(struct kms *kms, const struct vault_req *req, const char *endpoint, const char *auth,
	       long *ret_status, json_t **ret, struct error *e);
/* A 200 reply that is not what Vault documents: -EPROTO, not retryable. */
int vault_fail_reply(struct error *e, const struct vault *v, const char *endpoint,
		     const struct vault_req *req, const char *why);
/* The object at @key of a reply ("data", "auth"). */
json_t *vault_reply_object(json_t *reply, const char *key, struct error *jxe);
