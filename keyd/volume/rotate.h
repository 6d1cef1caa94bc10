/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rotation of a volume's key material: rewrap (new root key version, same DEK), re-key (new
 * DEK, keyslot and token), and convergence of an interrupted enrollment or re-key to exactly
 * one active keyd token and keyslot. Every step is one header write; order makes it crash-safe. */
#pragma once

#include <stddef.h>

#include "kms.h"
#include "luks.h"

struct rotate_result {
	char uuid[LUKS_UUID_MAX];
	int old_keyslot, new_keyslot;
	int old_token, new_token;
	char old_version[KMS_VERSION_MAX + 1];
	char new_version[KMS_VERSION_MAX + 1];
	int converged; /* header changes convergence made first (0: the header was clean) */
};

/* Finishes or rolls back an interrupted enrollment or re-key on the open header @cd of
 * @device: pending tokens get their keyslot (found by trying the unwrapped DEK) and become
 * active, or are removed; of several active tokens the highest generation stays and the others
 * go with their keyslots. Needs @kms only when a pending token has no keyslot yet. Returns the
 * number of header changes made. */
int token_converge(struct crypt_device *cd, const char *device, struct kms *kms, struct error *err);

/* Takes the volume's rotation lock (flock on the device node: one rotation at a time, and
 * udev leaves the device alone meanwhile). Returns an fd to close, or -errno. */
int volume_lock_rotation(const char *device);

/* New DEK, wrapped by @kms/@key_id (NULL: the current token's key), new keyslot, new token;
 * then the old token and keyslot go. The volume stays unlockable through the KMS at every
 * instant. */
int volume_rekey(const char *device, struct kms *kms, const char *key_id, struct rotate_result *res,
		 struct error *err);

/* Rewraps the WDEK to the root key's newest version (KMS rewrap; the DEK never leaves the KMS
 * for providers that support it) and rewrites the token in one header write. With @wrapped
 * (a rewrapped ciphertext the KMS already handed back on unwrap), stores that instead. */
int volume_rewrap(const char *device, struct kms *kms, const struct kms_wrapped *wrapped,
		  struct rotate_result *res, struct error *err);
