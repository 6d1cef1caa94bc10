// SPDX-License-Identifier: GPL-2.0-or-later
/* volume_erase: the keyd keyslot, then its token, destroyed on one LUKS2 header. The header
 * is what it changes, and only that; deciding when (a confirmed deletion) is the caller's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "erase.h"
#include "rotate.h"
#include "token.h"

int volume_erase(const char *device, struct erase_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_close_ int lock = -1;
	struct keyd_token tok;
	struct error je;
	int r;

	*res = (struct erase_result){.keyslot = -1, .token = -1};
	lock = volume_lock_rotation(device);
	if (lock < 0)
		return error_set(err, lock, "lock %s: %s", device, strerror(-lock));
	r = cryptsetup_load(device, &cd);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", device, strerror(-r));
	r = token_find(cd, &tok, &je);
	if (r < 0)
		return error_set(err, r, "read tokens of %s: %s", device, je.msg);
	if (tok.id < 0)
		return error_set(err, -ENOKEY, "%s carries no keyd token to erase", device);
	r = crypt_keyslot_destroy(cd, tok.keyslot);
	if (r < 0) {
		error_set(err, r, "destroying keyslot %d of %s: %s", tok.keyslot, device,
			  strerror(-r));
		goto out;
	}
	res->keyslot = tok.keyslot;
	r = crypt_token_json_set(cd, tok.id, NULL);
	if (r < 0) {
		error_set(err, r, "removing token %d of %s: %s", tok.id, device, strerror(-r));
		goto out;
	}
	res->token = tok.id;
out:
	token_done(&tok);
	return r < 0 ? r : 0;
}
