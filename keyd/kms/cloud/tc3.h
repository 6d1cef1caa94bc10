/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TC3-HMAC-SHA256, Tencent Cloud API 3.0's request signature ("Signature v3"), for a POST of a
 * JSON body to "/" with content-type and host signed. OpenSSL does every primitive; the secret
 * key and the keys derived from it stay in secure memory and never reach a message. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TC3_ALGORITHM "TC3-HMAC-SHA256"
#define TC3_AUTH_MAX  512
#define TC3_FIELD_MAX 255 /* secret id, service, host, content type */

struct tc3_request {
	const char *secret_id;
	const uint8_t *secret_key; /* secure memory */
	size_t secret_key_len;
	const char *service; /* the credential scope's service: "kms" */
	const char *host;    /* exactly as sent in the Host header */
	const char *content_type;
	uint64_t timestamp; /* X-TC-Timestamp: seconds since the epoch */
	const char *payload;
	size_t payload_len;
};

/* The string to sign (algorithm, timestamp, credential scope, hashed canonical request), for
 * tests against Tencent's documented example. -EINVAL, -ENAMETOOLONG, -EIO. */
int tc3_string_to_sign(const struct tc3_request *r, char *buf, size_t size);

/* The Authorization header's value: "TC3-HMAC-SHA256 Credential=…, SignedHeaders=
 * content-type;host, Signature=…". -EINVAL, -ENAMETOOLONG, -ENOMEM, -EIO. */
int tc3_authorization(const struct tc3_request *r, char *buf, size_t size);
