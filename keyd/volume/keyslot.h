/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyd's own opening of a LUKS2 keyslot of the kind keyd makes: PBKDF2, an aes-xts-plain64
 * area, the LUKS1 anti-forensic split (the LUKS2 on-disk format, keyslots section). */
#pragma once

#include <libcryptsetup.h>
#include <stddef.h>
#include <stdint.h>

/* The volume key that keyslot @slot of @cd's header holds under passphrase @pass, in secure
 * memory (*ret_vk, *ret_len), or -ENOTSUP for a keyslot of another kind (argon2, another
 * cipher or split), -EIO/-ENOMEM/-EINVAL when it cannot be read or computed. The key is NOT
 * checked here: the caller hands it to libcryptsetup (crypt_activate_by_volume_key), which
 * checks it against the header's digest; a wrong passphrase gives a key that fails there. */
int keyslot_volume_key(struct crypt_device *cd, int slot, const uint8_t *pass, size_t pass_len,
		       uint8_t **ret_vk, size_t *ret_len);
