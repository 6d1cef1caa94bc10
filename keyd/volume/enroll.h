/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Enrollment: a fresh DEK, wrapped by the KMS and bound to the volume's LUKS UUID, becomes a
 * LUKS2 keyslot plus a keyd token. All or nothing: a failure leaves the device as it was. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"
#include "luks.h"

struct enroll_request {
	const char *device; /* resolved device node */
	struct kms *kms;
	const char *key_id;
	const char *name; /* volume name for the token */
	bool format;	  /* blank device: create LUKS2 first */
	/* Existing LUKS2 device: a passphrase or key file content authorising the new slot. */
	const uint8_t *auth;
	size_t auth_len;
};

struct enroll_result {
	char uuid[LUKS_UUID_MAX];
	int keyslot;
	int token;
	char key_version[KMS_VERSION_MAX + 1];
};

/* Returns -errno; err says which step failed and why ("wrap with KMS 'x': ..."). */
int enroll(const struct enroll_request *req, struct enroll_result *res, struct error *err);

/* Unwraps the keyd token of the LUKS2 device at @path with @kms and opens its keyslot:
 * as mapping @name, or check-only when @name is NULL. The shared unlock path of keyd and the
 * enroll round-trip proof. */
struct unlock_request {
	const char *device;
	struct kms *kms;	   /* must match the token's KMS name */
	const char *expect_key_id; /* NULL: accept the token's */
	const char *name;	   /* NULL: check only */
	bool converge;		   /* first finish or roll back an interrupted enroll/re-key */
	bool resume;		   /* resume the suspended mapping @name instead of activating */
	kms_wait_fn wait;
	void *userdata;
	const volatile bool *stop;
};
struct unlock_result {
	char uuid[LUKS_UUID_MAX];
	char key_id[KMS_KEY_ID_MAX + 1];
	int keyslot;
	int token;
	char key_version[KMS_VERSION_MAX + 1];
	char step[32]; /* the step that failed; "adopted" when the mapping was already open */
	/* A ciphertext the KMS rewrapped to a newer root key version while unwrapping (Key
	 * Protect after a rotation): the caller stores it (volume_rewrap) and frees it. */
	struct kms_wrapped rewrapped;
};
int volume_unlock(const struct unlock_request *req, struct unlock_result *res, struct error *err);
