// SPDX-License-Identifier: GPL-2.0-or-later
/* volume_unbind: keyd's keyslot and token leave a LUKS2 header, keyslot first, under the
 * rotation lock, after convergence. Counts the keyslots that remain so it never leaves a
 * volume nothing opens unless told to; never logs, never touches another keyslot. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rotate.h"
#include "unbind.h"

/* Active keyslots other than @except. */
static int unbind_other_keyslots(struct crypt_device *cd, int except)
{
	int n = 0;

	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, s);

		/* An unbound keyslot holds no volume key: it opens nothing. */
		n += s != except && (st == CRYPT_SLOT_ACTIVE || st == CRYPT_SLOT_ACTIVE_LAST);
	}
	return n;
}

int volume_unbind(const char *device, struct kms *kms, bool force, struct unbind_result *res,
		  struct error *err)
{
	struct crypt_device *cd = NULL;
	struct keyd_token tok = {.id = -1, .keyslot = -1};
	struct error je;
	int lock, r;

	*res = (struct unbind_result){.token = -1, .keyslot = -1};
	lock = volume_lock_rotation(device);
	if (lock < 0)
		return error_set(err, lock, "lock %s: %s", device, strerror(-lock));
	r = cryptsetup_load(device, &cd);
	if (r < 0) {
		error_set(err, r, "read header of %s: %s", device, cryptsetup_load_strerror(r));
		goto out;
	}
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(cd));
	r = token_converge(cd, &(struct kms_key){.kms = kms}, kms ? 1 : 0, &res->changes, err);
	if (r < 0)
		goto out;
	res->converged = r;
	r = token_find(cd, &tok, &je);
	if (r < 0) {
		error_set(err, r, "read tokens: %s", je.msg);
		goto out;
	}
	if (tok.id < 0) {
		r = error_set(err, -ENOKEY, "%s is not enrolled (no keyd token)", device);
		goto out;
	}
	res->token = tok.id;
	res->keyslot = tok.keyslot;
	res->other_keyslots = unbind_other_keyslots(cd, tok.keyslot);
	if (res->other_keyslots == 0 && !force) {
		r = error_set(err, -ENOTRECOVERABLE,
			      "keyslot %d is the only one that opens %s: removing it would leave "
			      "the data unreadable (add a passphrase with cryptsetup luksAddKey "
			      "first, or --force to destroy the last way in)",
			      tok.keyslot, device);
		goto out;
	}
	/* Keyslot first: a token without its keyslot is what convergence already removes. */
	r = token_remove(cd, &tok, false, err);
out:
	token_done(&tok);
	crypt_free(cd);
	close(lock);
	return r;
}
