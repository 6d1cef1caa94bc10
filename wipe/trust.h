/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The public keys a certificate check trusts: the one --key names, else this host's node key
 * and the keys in the trust directory (auditors collect `wipe cert pubkey` of each host there).
 * A certificate is valid only when one of them signed it. Reads keys; never logs. */
#pragma once

#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define TRUST_DIR_DEFAULT "/etc/wipe/trusted-keys"
#define TRUST_KEYS_MAX	  1024
#define TRUST_FILE_MAX	  (64 * 1024)

struct trusted_key {
	EVP_PKEY *key;
	char fingerprint[65];
	char from[PATH_MAX]; /* the file it came from */
};

struct trust {
	size_t n;
	struct trusted_key *keys;
	bool explicit;	   /* from --key: the only key */
	char skipped[512]; /* files of the directory left out, and why (for the caller to say) */
};

/* With @key_file: that key alone (public or private PEM; -errno if unreadable, -EBADMSG if not
 * a key). Without: @node_key when it exists, and every *.pem in @dir that is a regular file
 * owned by root (or by us) and writable by nobody else; a missing directory is an empty one.
 * -ENOMEM. */
int trust_load(struct trust *t, const char *key_file, const char *node_key, const char *dir);

/* The trusted key whose fingerprint is @fingerprint, or NULL. */
const struct trusted_key *trust_find(const struct trust *t, const char *fingerprint);

void trust_done(struct trust *t);
