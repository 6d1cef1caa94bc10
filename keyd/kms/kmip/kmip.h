/* SPDX-License-Identifier: GPL-2.0-or-later */
/* KMIP messages keyd sends and reads (KMIP 1.2 and 1.4): one batch item per request, built
 * with ttlv.c; replies checked against the request and taken apart into plain fields that
 * point into the reply buffer. No I/O, no logging, no policy: kms_kmip.c decides. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ttlv.h"

/* Unique Identifiers keyd accepts (it stores one as the token's key_version). */
#define KMIP_UID_MAX	  128
#define KMIP_MESSAGE_MAX  240 /* a Result Message, as quoted in errors */
#define KMIP_VERSIONS_MAX 16

enum kmip_operation {
	KMIP_OP_CREATE = 0x01,
	KMIP_OP_REKEY = 0x04,
	KMIP_OP_GET = 0x0A,
	KMIP_OP_GET_ATTRIBUTES = 0x0B,
	KMIP_OP_ACTIVATE = 0x12,
	KMIP_OP_REVOKE = 0x13,
	KMIP_OP_DESTROY = 0x14,
	KMIP_OP_QUERY = 0x18,
	KMIP_OP_DISCOVER_VERSIONS = 0x1E,
	KMIP_OP_ENCRYPT = 0x1F,
	KMIP_OP_DECRYPT = 0x20,
};

enum kmip_result_status {
	KMIP_STATUS_SUCCESS = 0,
	KMIP_STATUS_FAILED = 1,
	KMIP_STATUS_PENDING = 2,
	KMIP_STATUS_UNDONE = 3,
};

enum kmip_result_reason {
	KMIP_REASON_ITEM_NOT_FOUND = 0x01,
	KMIP_REASON_RESPONSE_TOO_LARGE = 0x02,
	KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL = 0x03,
	KMIP_REASON_INVALID_MESSAGE = 0x04,
	KMIP_REASON_OPERATION_NOT_SUPPORTED = 0x05,
	KMIP_REASON_MISSING_DATA = 0x06,
	KMIP_REASON_INVALID_FIELD = 0x07,
	KMIP_REASON_FEATURE_NOT_SUPPORTED = 0x08,
	KMIP_REASON_OPERATION_CANCELED = 0x09,
	KMIP_REASON_CRYPTOGRAPHIC_FAILURE = 0x0A,
	KMIP_REASON_ILLEGAL_OPERATION = 0x0B,
	KMIP_REASON_PERMISSION_DENIED = 0x0C,
	KMIP_REASON_OBJECT_ARCHIVED = 0x0D,
	KMIP_REASON_INDEX_OUT_OF_BOUNDS = 0x0E,
	KMIP_REASON_NAMESPACE_NOT_SUPPORTED = 0x0F,
	KMIP_REASON_KEY_FORMAT_NOT_SUPPORTED = 0x10,
	KMIP_REASON_KEY_COMPRESSION_NOT_SUPPORTED = 0x11,
	KMIP_REASON_ENCODING_OPTION_ERROR = 0x12,
	KMIP_REASON_KEY_VALUE_NOT_PRESENT = 0x13,
	KMIP_REASON_ATTESTATION_REQUIRED = 0x14,
	KMIP_REASON_ATTESTATION_FAILED = 0x15,
	KMIP_REASON_SENSITIVE = 0x16,
	KMIP_REASON_NOT_EXTRACTABLE = 0x17,
	KMIP_REASON_OBJECT_ALREADY_EXISTS = 0x18,
	KMIP_REASON_GENERAL_FAILURE = 0x100,
};

/* The State attribute (KMIP 1.4 section 3.22). */
enum kmip_state {
	KMIP_STATE_PRE_ACTIVE = 1,
	KMIP_STATE_ACTIVE = 2,
	KMIP_STATE_DEACTIVATED = 3,
	KMIP_STATE_COMPROMISED = 4,
	KMIP_STATE_DESTROYED = 5,
	KMIP_STATE_DESTROYED_COMPROMISED = 6,
};

#define KMIP_MODE_CBC		    0x01 /* Block Cipher Mode */
#define KMIP_MODE_GCM		    0x09
#define KMIP_PADDING_NONE	    0x01 /* Padding Method */
#define KMIP_PADDING_PKCS5	    0x03
#define KMIP_ALGORITHM_AES	    0x03 /* Cryptographic Algorithm */
#define KMIP_FORMAT_RAW		    0x01 /* Key Format Type */
#define KMIP_FORMAT_TRANSPARENT_SYM 0x07
#define KMIP_OBJECT_SYMMETRIC_KEY   0x02  /* Object Type */
#define KMIP_LINK_REPLACEMENT	    0x106 /* Link Type: the key that replaced this one */
#define KMIP_CREDENTIAL_USER_PASS   0x01  /* Credential Type */
#define KMIP_USAGE_ENCRYPT	    0x04  /* Cryptographic Usage Mask bits */
#define KMIP_USAGE_DECRYPT	    0x08

struct kmip_version {
	int32_t major, minor;
};

/* What every request carries: the protocol version and, optionally, a Username and Password
 * Credential (secure memory; the caller's encoder buffer must be secure too). */
struct kmip_header {
	struct kmip_version version;
	const char *username; /* NULL: no Authentication */
	const char *password; /* NULL: a Credential without a password */
};

/* One Encrypt or Decrypt. AES always; GCM carries @aad and @tag, CBC pads with PKCS#5. */
struct kmip_crypt {
	const char *uid;
	uint32_t mode; /* KMIP_MODE_GCM or KMIP_MODE_CBC */
	const uint8_t *data, *iv, *aad, *tag;
	size_t data_len, iv_len, aad_len, tag_len;
};

/* Request builders: one whole Request Message with one Batch Item into @e (ttlv_finish says
 * whether it fit). */
void kmip_req_discover_versions(struct ttlv_enc *e, const struct kmip_header *h,
				const struct kmip_version *versions, size_t n);
/* @names: NULL-terminated attribute names ("State", "Link", …). */
void kmip_req_get_attributes(struct ttlv_enc *e, const struct kmip_header *h, const char *uid,
			     const char *const *names);
/* Get in Raw format (the key as bytes). */
void kmip_req_get(struct ttlv_enc *e, const struct kmip_header *h, const char *uid);
void kmip_req_encrypt(struct ttlv_enc *e, const struct kmip_header *h, const struct kmip_crypt *c);
void kmip_req_decrypt(struct ttlv_enc *e, const struct kmip_header *h, const struct kmip_crypt *c);

/* A parsed Response Message with its one Batch Item. */
struct kmip_response {
	struct ttlv_doc doc;
	struct kmip_version version;
	int64_t time_stamp;
	uint32_t operation;	 /* 0 when the server left it out (allowed in error replies) */
	uint32_t status, reason; /* reason 0: none given */
	char message[KMIP_MESSAGE_MAX];	 /* Result Message, printable ASCII; "" if none */
	const struct ttlv_item *payload; /* NULL when there is none */
};

/* Parses and checks a reply to @op: one Batch Item, its Operation @op when present, a Result
 * Status, and on success a Response Payload. -EBADMSG/-E2BIG with the reason in @e. A
 * failed operation is not an error here: look at r->status. */
int kmip_parse_response(const uint8_t *p, size_t n, uint32_t op, struct kmip_response *r,
			struct error *e);

/* Payload readers. Each checks what it reads and returns -EBADMSG naming the field. */
int kmip_resp_versions(const struct kmip_response *r, struct kmip_version *ret, size_t max,
		       size_t *ret_n, struct error *e);

struct kmip_attrs {
	char uid[KMIP_UID_MAX + 1];
	bool has_state, has_algorithm, has_length, has_usage, has_initial_date;
	uint32_t state, algorithm;
	int32_t length, usage;
	int64_t initial_date;
	char replacement[KMIP_UID_MAX + 1]; /* Link of type Replacement Object; "" if none */
};
int kmip_resp_attributes(const struct kmip_response *r, const char *uid, struct kmip_attrs *ret,
			 struct error *e);

/* A Get reply's symmetric key: *ret_key points into the reply buffer (secure memory). */
int kmip_resp_key(const struct kmip_response *r, const char *uid, const uint8_t **ret_key,
		  size_t *ret_len, uint32_t *ret_algorithm, struct error *e);

/* An Encrypt or Decrypt reply: Data, and IV/Counter/Nonce and the Authenticated Encryption
 * Tag when present (NULL and 0 otherwise). */
struct kmip_crypt_reply {
	const uint8_t *data, *iv, *tag;
	size_t data_len, iv_len, tag_len;
};
int kmip_resp_crypt(const struct kmip_response *r, const char *uid, struct kmip_crypt_reply *ret,
		    struct error *e);

/* KMIP's names for messages: "Get Attributes", "Item Not Found", "Deactivated". NULL if
 * unknown. */
const char *kmip_operation_name(uint32_t op);
const char *kmip_reason_name(uint32_t reason);
const char *kmip_state_name(uint32_t state);

/* @s is a Unique Identifier keyd accepts: 1 to KMIP_UID_MAX printable ASCII characters, no
 * space. */
bool kmip_uid_valid(const char *s);
