/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A token wrapped by several KMS, unwrapped through all of them at once: the first DEK that
 * comes back wins, so a KMS that is down costs nothing while another answers. Owns the threads
 * of that race and nothing else; never logs, never holds a DEK past the call. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kms.h"
#include "token.h"

struct unwrap_any_result {
	int key;		      /* index into the caller's keys of the KMS that answered */
	int wrap;		      /* index into the token's wraps */
	struct kms_wrapped rewrapped; /* that KMS's rewrapped ciphertext, if it gave one */
};

/* The indexes into @keys of the KMS that can unwrap @t: a wrap for it in the token and, where
 * keys[k].key_id is set, the same key. Fills @use (KMS_KEYS_MAX) and returns how many; with
 * none, -EXDEV and @e says what the token names and what was offered. */
int unwrap_any_candidates(const struct kms_key *keys, size_t n_keys, const struct keyd_token *t,
			  int *use, struct error *e);

/* Unwraps @t bound to @uuid through every candidate of @keys concurrently (one thread each;
 * inline when there is one) and returns the first DEK in *ret_dek (secure memory, the caller
 * frees it). @wait is called for each KMS's pauses, never two at once; @stop ends all of them.
 * The others are stopped and joined before return, so one that hangs costs at most its
 * per-try timeout after the winner answered. Errors: -EXDEV as unwrap_any_candidates, else
 * the first KMS's -errno with @e naming what each KMS said. */
int unwrap_any(const struct kms_key *keys, size_t n_keys, const struct keyd_token *t,
	       const char *uuid, uint8_t **ret_dek, struct unwrap_any_result *res, kms_wait_fn wait,
	       void *userdata, const volatile bool *stop, struct error *e);
