/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unlock: the keyd token of a LUKS2 device unwrapped through its KMS, and its keyslot opened
 * as a mapping, resumed, or only checked. The path keyd's workers, its lifecycle thread and
 * enroll's round-trip proof share. Never logs above debug level; the DEK lives for the call. */
#pragma once

#include <stdbool.h>

#include "kms.h"
#include "luks.h"
#include "token.h"

struct unlock_request {
	const char *device;
	/* The root keys to ask, all at once (unwrap_any): those of the token's wraps whose KMS
	 * is here and, where key_id is set, the same key. key_id NULL: accept the token's. */
	const struct kms_key *keys;
	size_t n_keys;
	const char *name; /* NULL: check only */
	bool converge;	  /* first finish or roll back an interrupted enroll/re-key */
	bool resume;	  /* resume the suspended mapping @name instead of activating */
	kms_wait_fn wait;
	void *userdata;
	const volatile bool *stop;
};

struct unlock_result {
	char uuid[LUKS_UUID_MAX];
	char kms[KMS_NAME_MAX + 1]; /* the KMS that answered first; key_id and key_version its */
	char key_id[KMS_KEY_ID_MAX + 1];
	int keyslot;
	int token;
	char key_version[KMS_VERSION_MAX + 1];
	char step[32]; /* the step that failed; "adopted" when the mapping was already open */
	/* A ciphertext the KMS rewrapped to a newer root key version while unwrapping (Key
	 * Protect after a rotation): the caller stores it (volume_rewrap with KMS @kms) and
	 * frees it. */
	struct kms_wrapped rewrapped;
	struct token_changes converged; /* what convergence did first, for the caller's log */
	/* Every wrap of the token read (any-of: each KMS's key and version, for polling). */
	struct unlock_wrap {
		char kms[KMS_NAME_MAX + 1];
		char key_id[KMS_KEY_ID_MAX + 1];
		char key_version[KMS_VERSION_MAX + 1];
	} wraps[KMS_KEYS_MAX];
	unsigned n_wraps;
};

/* Unwraps the keyd token of the LUKS2 device @req->device through @req->keys (the first of them
 * to answer) and opens its keyslot:
 * as mapping @req->name, or check-only when that is NULL. -EMEDIUMTYPE: no LUKS2 header;
 * -EEXIST: the mapping name belongs to another device; -ENOKEY: not enrolled, or only an
 * unfinished token; -EXDEV: the token names none of the KMS or keys; -EBADMSG: the KMS returned a
 * key of the wrong length; -EPERM: the key does not open the keyslot; the KMS's -errno. @err
 * says why, res->step in which step. */
int volume_unlock(const struct unlock_request *req, struct unlock_result *res, struct error *err);
