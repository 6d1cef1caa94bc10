/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The node's Ed25519 signing key (wipe certificates, audit checkpoints) and signatures over
 * canonical JSON. The private key is read into OpenSSL only; never logged or copied out. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#include "error.h"

#define SIGN_KEY_PATH_DEFAULT "/var/lib/keyd/node.key"

/* Loads the PEM private key at @path, creating it (mode 0600, owner root, parent 0700) if it
 * does not exist. -EPERM if the file is not root's with mode 0600, -EBADMSG if not Ed25519. */
int sign_key_load(const char *path, EVP_PKEY **ret);
/* SHA-256 of the raw public key, lowercase hex (65 bytes with NUL): the key's name. */
int sign_key_fingerprint(EVP_PKEY *key, char out[65]);
/* SHA-256 of @p, lowercase hex: key names here, the audit log's hash chain. -EIO. */
int sign_sha256_hex(const void *p, size_t n, char out[65]);

/* Adds "signature": {"alg": "ed25519", "key": fingerprint, "public_key": b64 raw,
 * "value": b64} to @record, signing the canonical form (compact, sorted keys, without the
 * "signature" member). */
int sign_json(EVP_PKEY *key, json_t *record);
/* Checks @record's signature. With @trusted, the signing key must be that key; without, the
 * embedded public key is used (integrity only; the caller reports the fingerprint).
 * 0 valid; -EBADMSG bad signature or altered record (err says which); -ENOKEY unsigned. */
int sign_json_verify(json_t *record, EVP_PKEY *trusted, struct error *err);
