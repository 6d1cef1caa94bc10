/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rotation of a volume's key material: rewrap (new root key version, same DEK) and re-key (new
 * DEK, keyslot and token), each after converging what an interrupted run left (token.h). Every
 * step is one header write; order makes it crash-safe. Never logs: the result says what it did. */
#pragma once

#include <stddef.h>

#include "kms.h"
#include "luks.h"
#include "token.h"

struct rotate_result {
	char uuid[LUKS_UUID_MAX];
	int old_keyslot, new_keyslot;
	int old_token, new_token;
	char old_version[KMS_VERSION_MAX + 1];
	char new_version[KMS_VERSION_MAX + 1];
	int converged; /* header changes convergence made first (0: the header was clean) */
	struct token_changes changes; /* of those, the ones to tell the operator about */
};

/* Takes the volume's rotation lock (flock on the device node: one rotation at a time, and
 * udev leaves the device alone meanwhile). Returns an fd to close, or -errno. */
int volume_lock_rotation(const char *device);

/* New DEK, wrapped by every one of @keys (a key_id NULL: the key the current token has for
 * that KMS), new keyslot, new token with one wrap per key; then the old token and keyslot go.
 * The old DEK comes from whichever of @keys' KMS answers first. The volume stays unlockable
 * through the KMS at every instant. Re-key is how a volume gains or loses a KMS. @stop (may be
 * NULL) ends the KMS calls' retries early: keyd stopping. */
int volume_rekey(const char *device, const struct kms_key *keys, size_t n_keys,
		 const volatile bool *stop, struct rotate_result *res, struct error *err);

/* Rewraps the token's WDEK of @kms (only that one: the other KMS's wraps are theirs) to the
 * root key's newest version (KMS rewrap; the DEK never leaves the KMS for providers that
 * support it) and rewrites the token in one header write. With @wrapped (a rewrapped
 * ciphertext the KMS already handed back on unwrap), stores that instead. Returns 0 when
 * rewritten, 1 when there was nothing to rewrap (the key is at its newest version already, or
 * the provider has no versions): the header is left as it was. -EXDEV: the token has no wrap
 * of @kms. @stop as for volume_rekey. */
int volume_rewrap(const char *device, struct kms *kms, const struct kms_wrapped *wrapped,
		  const volatile bool *stop, struct rotate_result *res, struct error *err);
