/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Crypto-shredding on the host (erase_on_delete): the keyd keyslot and token of a LUKS2 volume
 * destroyed. Irreversible; never logs, never asks a KMS. */
#pragma once

#include "error.h"

struct erase_result {
	int keyslot; /* destroyed, or -1 */
	int token;   /* removed, or -1 */
};

/* Destroys the keyslot of each of @device's keyd tokens, then the token (the order
 * token_converge repairs), under the rotation lock so no re-key interleaves; @res names the
 * active one's. -ENOKEY when the device carries no active keyd token; -errno from the header;
 * @err says what. */
int volume_erase(const char *device, struct erase_result *res, struct error *err);
