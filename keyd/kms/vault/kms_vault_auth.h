/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to keyd/kms/kms_vault*.c: the `vault` provider's login (token file or AppRole), for
 * the Transit calls of kms_vault.c. Never puts a token, a role ID or a secret ID in a message. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kms_vault_client.h"

/* Hands out a copy of the X-Vault-Token header for a request to @endpoint, logging in,
 * looking up, renewing or re-reading first as due. The lock is held across those requests,
 * so threads that need a token at the same time wait for one of them. */
int vault_auth(struct kms *kms, const char *endpoint, uint64_t stale, char **ret, uint64_t *ret_gen,
	       bool *ret_fresh, struct error *e);
