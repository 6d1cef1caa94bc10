/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Enrollment: a fresh DEK, wrapped by the KMS and bound to the volume's LUKS UUID, becomes a
 * LUKS2 keyslot plus a keyd token. All or nothing: a failure leaves the device as it was. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"
#include "luks.h"
#include "token.h"

struct enroll_request {
	const char *device;	    /* resolved device node */
	const struct kms_key *keys; /* the DEK is wrapped by each, in this order (any-of) */
	size_t n_keys;
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
	char key_version[KMS_VERSION_MAX + 1]; /* of the first key */
	struct token_changes converged;	       /* what convergence of an earlier run did first */
};

/* Returns -errno; err says which step failed and why ("wrap with KMS 'x': ..."). -EEXIST: not
 * blank (--format) or already enrolled; -ENOKEY: LUKS2 without @req->auth. Never logs. */
int enroll(const struct enroll_request *req, struct enroll_result *res, struct error *err);
