/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unbinding a volume from its KMS: keyd's keyslot and token leave the header (the inverse of
 * enroll, as clevis luks unbind is of bind). Never touches another keyslot; logs nothing. */
#pragma once

#include <stdbool.h>

#include "kms.h"
#include "luks.h"
#include "token.h"

struct unbind_result {
	char uuid[LUKS_UUID_MAX];
	int token, keyslot; /* what was removed; -1 before it is known */
	int other_keyslots; /* keyslots that still open the volume afterwards */
	int converged;	    /* header changes convergence made first */
	struct token_changes changes;
};

/* Removes @device's keyd keyslot, then its token (one header write each): a crash between
 * leaves an active token without a keyslot, which token_converge removes without needing the
 * KMS. Refuses with -ENOTRECOVERABLE when no other keyslot would be left, unless @force.
 * @kms (may be NULL) only for convergence of an interrupted enrollment. -ENOKEY: not enrolled;
 * header and lock -errno otherwise. */
int volume_unbind(const char *device, struct kms *kms, bool force, struct unbind_result *res,
		  struct error *err);
