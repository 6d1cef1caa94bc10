/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the public-cloud providers (aws, tencent) do alike, around what each does its own way:
 * the configuration (region, endpoints, a credentials file or the instance's role, ca_file),
 * the call loop over the endpoints with one fresh set of role credentials when the KMS calls
 * them stale, role discovery at the metadata service, the tables of key states and error
 * codes, and the checks of a reply's base64 fields. A provider fills a `struct cloud_vendor`
 * (names, limits, its signed request) and embeds a `struct cloud` first in its own state.
 * Never puts a secret, a token or a key in a message. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "kms.h"
#include "kms_cloud.h"

#define CLOUD_WHERE_MAX	 (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 64)
#define CLOUD_DEK_LEN	 32
#define CLOUD_CHARS_ROLE KMS_CHARS_ALNUM "+=,.@_-"

struct cloud;

/* One signed request to endpoint @i; *ret is the reply's JSON (the object holding the
 * results). *ret_refresh: the KMS called the credentials stale or unknown. */
typedef int (*cloud_send_fn)(struct kms *kms, size_t i, const char *op, const char *body,
			     const struct cloud_creds *c, const char *where, json_t **ret,
			     bool *ret_refresh, struct error *e);

struct cloud_vendor {
	const char *label;	 /* "AWS KMS": the first words of its messages */
	const char *region_hint; /* "an AWS region such as us-east-1" */
	size_t region_max;
	const char *role_key;	    /* the config key of the instance's role: "instance_role" */
	const char *metadata_key;   /* its metadata service's key: "imds_endpoint" */
	const char *metadata_url;   /* the metadata service by default */
	const char *metadata_dns;   /* the vendor's DNS name for it, or NULL */
	const char *role_kind;	    /* "IAM", "CAM" */
	const char *role_name_hint; /* "an IAM role name" */
	const char *key_noun;	    /* "key", "CMK" */
	const char *usage_hint;	    /* what a key must be: "keyd needs an ENCRYPT_DECRYPT CMK" */
	const char *key_id_chars;   /* what a key id may hold */
	const char *key_id_kinds;   /* "a key ID, key ARN or alias" */
	const struct cloud_file_keys *file_keys;
	/* The regional endpoint, "https://…" without a trailing '/'. */
	void (*endpoint)(const char *region, char *buf, size_t size);
	cloud_fetch_fn fetch;
	cloud_send_fn send;
};

struct cloud {
	const struct cloud_vendor *vendor;
	char *region;
	char **endpoints; /* without trailing '/' */
	size_t n_endpoints;
	char *ca_file;
	char *metadata; /* the instance's role: the metadata service; NULL with a credentials file */
	char *role;	/* NULL: the instance's one role, as the metadata service lists it */
	struct http_client http;
	struct cloud_auth auth;
};

/* Parses a cloud provider's configuration (region, endpoints, credentials_file, the role,
 * ca_file) into @c. -EINVAL with @e naming the key. */
int cloud_parse(struct cloud *c, const struct cloud_vendor *v, json_t *obj, const char *path,
		struct error *e);
/* The CA file check and the HTTP client; the role's fetch is armed. */
int cloud_open(struct kms *kms, struct cloud *c, struct error *e);
void cloud_done(struct cloud *c);

/* The role's name: the configured one, or the first line of the metadata service's list at
 * @list_url. Into @role (CLOUD_ROLE_MAX + 1 bytes). */
int cloud_role_name(struct kms *kms, struct cloud *c, const char *list_url,
		    const char *const *headers, const char *where, char *role, struct error *e);

/* Runs @op with @req against the endpoints in order, moving on only after a retryable
 * failure. Role credentials that the KMS calls expired or unknown buy one fresh set and one
 * more try at the same endpoint. @where names the last endpoint tried. */
int cloud_call(struct kms *kms, struct cloud *c, const char *op, const char *key_id, json_t *req,
	       json_t **ret, char *where, size_t where_size, struct error *e);

/* "<prefix><token>" in secure memory (a header carrying a session token). NULL: no memory. */
char *cloud_token_header(const char *prefix, const char *token);

/* A key state as the KMS names it, and what it means here. */
struct cloud_state {
	const char *name;
	enum kms_key_state state;
	int error; /* 0: usable for encryption */
	const char *effect;
};
/* The index of @name in @states, or SIZE_MAX. */
size_t cloud_state_find(const struct cloud_state *states, size_t n, const char *name);
/* 0 if the key in @s can encrypt now and is symmetric; else a clear refusal. */
int cloud_state_usable(const struct cloud *c, const struct cloud_state *s, bool symmetric,
		       const char *where, struct error *e);

/* An error code as the KMS names it, and what it means here. */
struct cloud_error {
	const char *code;
	int error;
	bool retryable;
	bool new_credentials; /* fresh role credentials may help, once */
	const char *hint;
};
/* The entry of @code: exact, or "<entry>.<more>" for an entry that ends with '.'; or NULL. */
const struct cloud_error *cloud_error_find(const struct cloud_error *table, size_t n,
					   const char *code);
/* Fails @e with "<where>: <what>[: <msg>][ (<hint>)]" after the entry @t (NULL: unknown code,
 * -EIO, retryable if @retryable). */
int cloud_fail_code(struct error *e, const struct cloud_error *t, bool retryable, const char *where,
		    const char *what, const char *msg);

/* The volume's encryption context {"keyd:luks-uuid": "<UUID>"} from the AAD; NULL with @e. */
json_t *cloud_context(const struct cloud *c, const char *aad, struct error *e);
int cloud_fail_reply(struct error *e, const char *where, const char *why);
/* A reply's base64 field (of @chars) at "<path>.<key>", at most @max bytes. */
int cloud_reply_b64(json_t *reply, const char *path, const char *key, const char *chars, size_t max,
		    const char **ret, struct error *jxe);
/* The WDEK and key version (NULL or "": none) into @w. */
int cloud_wrapped_set(const struct cloud *c, struct kms_wrapped *w, const char *wdek,
		      const char *version, struct error *e);
/* The WDEK out of a reply's base64 field "<path>.<key>" (of @chars), with @version, into @w. */
int cloud_reply_wrapped(const struct cloud *c, json_t *reply, const char *path, const char *key,
			const char *chars, const char *where, const char *version,
			struct kms_wrapped *w, struct error *e);
/* The refusal of a key that is not CLOUD_DEK_LEN bytes. */
int cloud_check_dek_len(const struct cloud *c, size_t dek_len, struct error *e);
/* The DEK out of a reply's base64 plaintext at "<path>.<key>", into secure memory. */
int cloud_reply_dek(const struct cloud *c, json_t *reply, const char *path, const char *key,
		    const char *chars, const char *where, uint8_t **ret_dek, size_t *ret_len,
		    struct error *e);
/* The DEK in base64 (secure memory) for a request; NULL with @e. */
char *cloud_dek_b64(const struct cloud *c, const uint8_t *dek, size_t dek_len, struct error *e);
