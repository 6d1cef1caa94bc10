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
	struct keyd_token tok, all[TOKENS_MAX];
	struct error je;
	int r, n;

	*res = (struct erase_result){.keyslot = -1, .token = -1};
	lock = volume_lock_rotation(device);
	if (lock < 0)
		return error_set(err, lock, "lock %s: %s", device, strerror(-lock));
	r = cryptsetup_load(device, &cd);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", device,
				 cryptsetup_load_strerror(r));
	r = token_find(cd, &tok, &je);
	if (r < 0)
		return error_set(err, r, "read tokens of %s: %s", device, je.msg);
	if (tok.id < 0)
		return error_set(err, -ENOKEY, "%s carries no keyd token to erase", device);
	res->keyslot = tok.keyslot;
	res->token = tok.id;
	token_done(&tok);
	/* Every keyd token, not only the active one: a re-key interrupted by a crash can leave
	 * a superseded or pending token whose keyslot opens the volume just as well. */
	n = token_list(cd, all, &je);
	if (n < 0)
		return error_set(err, n, "read tokens of %s: %s", device, je.msg);
	for (int i = 0; i < n && r >= 0; i++) {
		r = token_remove(cd, &all[i], false, err);
		if (r < 0)
			error_prefix(err, r, "%s", device);
	}
	token_list_done(all, n);
	return r < 0 ? r : 0;
}
