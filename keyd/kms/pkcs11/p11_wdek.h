/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pkcs11 provider's words: key references ("pg-root", "label:…", "id:0a1b"), the wrapped-key
 * format "pkcs11:v1:<mech>:<hex CKA_ID>:<base64>", and the mechanisms it may name. Pure parsing:
 * talks to no token, holds no secret. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p11_pkcs11.h"

#define P11_LABEL_MAX	 128 /* CKA_LABEL of a key object, in a key_id */
#define P11_ID_MAX	 64  /* CKA_ID bytes */
#define P11_DEK_MIN	 16
#define P11_DEK_MAX	 64
#define P11_GCM_IV_LEN	 12
#define P11_GCM_TAG_LEN	 16
#define P11_KW_BLOCK	 8
#define P11_AAD_HASH_LEN 32 /* SHA-256 of the AAD, bound into key-wrap plaintexts */
/* The largest payload any mechanism makes from a P11_DEK_MAX key (key wrap: the padded
 * DEK || SHA-256(AAD) and its integrity block; GCM's IV || ciphertext || tag is smaller). */
#define P11_BLOB_MAX	(P11_DEK_MAX + P11_AAD_HASH_LEN + 2 * P11_KW_BLOCK)
#define P11_WDEK_PREFIX "pkcs11:v1:"

/* How a DEK is wrapped: AES-GCM with the AAD (C_Encrypt / C_Decrypt), or AES key wrap with
 * padding (C_WrapKey / C_UnwrapKey) of DEK || SHA-256(AAD) for tokens that only wrap. */
enum p11_wrap_kind {
	P11_WRAP_GCM,
	P11_WRAP_KEYWRAP,
};

struct p11_mech {
	const char *config; /* "mechanism" in keyd.json; NULL: only ever a fallback */
	const char *tag;    /* in the WDEK */
	const char *name;   /* CKM_… for messages */
	CK_MECHANISM_TYPE type;
	enum p11_wrap_kind kind;
	/* The key attributes that allow wrapping (CKA_ENCRYPT, CKA_WRAP) and unwrapping. */
	CK_ATTRIBUTE_TYPE protect, process;
	const char *protect_name, *process_name;
	const struct p11_mech *fallback; /* tried when the token lacks this one */
};

/* The row for a config name, or a WDEK tag; NULL if none. */
const struct p11_mech *p11_mech_by_config(const char *name);
const struct p11_mech *p11_mech_by_tag(const char *tag);
/* "aes-gcm, aes-key-wrap-kwp" for errors and docs. */
const char *p11_mech_config_names(void);

/* A volume's key_id: key objects with one CKA_LABEL (their CKA_IDs are its versions), or the
 * one object with a CKA_ID. */
struct p11_keyref {
	bool by_id;
	char label[P11_LABEL_MAX + 1];
	uint8_t id[P11_ID_MAX];
	size_t id_len;
};

/* "LABEL", "label:LABEL" or "id:HEX". A label is 1..P11_LABEL_MAX printable ASCII characters;
 * HEX is 2..2*P11_ID_MAX hex digits, an even count. -EINVAL otherwise. */
int p11_keyref_parse(const char *key_id, struct p11_keyref *ret);

/* A parsed WDEK; blob is the mechanism's output (GCM: IV || ciphertext || tag). */
struct p11_wdek {
	const struct p11_mech *mech;
	uint8_t id[P11_ID_MAX]; /* CKA_ID of the key object that made it */
	size_t id_len;
	uint8_t blob[P11_BLOB_MAX];
	size_t blob_len;
};

/* -EBADMSG unless @s is a well-formed WDEK whose payload has a length its mechanism can make
 * from a P11_DEK_MIN..P11_DEK_MAX byte key; -ENOMEM. */
int p11_wdek_parse(const char *s, struct p11_wdek *ret);
/* The WDEK string, malloc'd (ciphertext is not secret). -EINVAL, -ENOMEM. */
int p11_wdek_format(const struct p11_wdek *w, char **ret);

/* Orders CKA_IDs as unsigned big-endian numbers (leading zero bytes do not count), so "02"
 * is newer than "01" and "0100" newer than "ff". <0, 0, >0. */
int p11_id_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb);
/* Lowercase hex of @id into @buf (at least 2 * P11_ID_MAX + 1 bytes); "" for an empty id. */
const char *p11_id_hex(const uint8_t *id, size_t n, char *buf, size_t size);

/* The length of a blank-padded PKCS#11 text field (token label, serial) without the padding. */
size_t p11_field_len(const unsigned char *field, size_t size);
/* Whether the padded @field holds exactly @s. */
bool p11_field_eq(const unsigned char *field, size_t size, const char *s);
