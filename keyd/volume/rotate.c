// SPDX-License-Identifier: GPL-2.0-or-later
/* Rewrap, re-key and convergence. The invariant, after every single header write: the active
 * keyd token of the highest generation opens its keyslot through the KMS. A crash between two
 * writes leaves a pending token or a second active token, which token_converge() resolves. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "log.h"
#include "rotate.h"
#include "secmem.h"
#include "token.h"
#include "util.h"

int volume_lock_rotation(const char *device)
{
	int fd = open(device, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return negative_errno();
	if (flock(fd, LOCK_EX) < 0) {
		int r = negative_errno();

		close(fd);
		return r;
	}
	return fd;
}

static bool keyslot_taken(const struct keyd_token *all, int n, int slot, int except)
{
	for (int i = 0; i < n; i++)
		if (i != except && all[i].keyslot == slot)
			return true;
	return false;
}

static int unwrap_token(struct kms *kms, const struct keyd_token *t, const char *uuid,
			uint8_t **dek, size_t *len, struct error *err)
{
	struct error ke;
	char aad[KMS_AAD_MAX];
	int r;

	kms_aad_for_uuid(uuid, aad, sizeof(aad));
	r = kms_unwrap(kms, t->key_id, t->wdek, aad, dek, len, NULL, &ke, NULL, NULL, NULL);
	if (r < 0)
		return error_set(err, r, "unwrap token %d with KMS '%s' (key %s): %s", t->id,
				 kms->name, t->key_id, ke.msg);
	if (*len != LUKS_DEK_LEN) {
		secmem_free(*dek);
		*dek = NULL;
		return error_set(err, -EBADMSG, "KMS '%s' returned a %zu-byte key", kms->name,
				 *len);
	}
	return 0;
}

/* Proves that @wdek unwraps (bound to this volume) to a key that opens @slot (or equals
 * @expect when the keyslot does not exist yet): a token is never rewritten with a WDEK that
 * would leave the volume unlockable by nobody. */
static int verify_wdek(struct crypt_device *cd, struct kms *kms, const char *key_id,
		       const char *wdek, int slot, const uint8_t *expect, struct error *err)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token t = {.id = -1, .key_id = (char *)key_id, .wdek = (char *)wdek};
	size_t len = 0;
	int r;

	r = unwrap_token(kms, &t, crypt_get_uuid(cd), &dek, &len, err);
	if (r < 0)
		return r;
	if (expect)
		r = CRYPTO_memcmp(dek, expect, len) == 0 ? 0 : -EBADMSG;
	else
		r = luks_activate(cd, NULL, slot, dek, len, 0);
	if (r < 0)
		return error_set(err, r,
				 "the new wrapped key does not open the volume (KMS '%s', key %s); "
				 "nothing was changed",
				 kms->name, key_id);
	return 0;
}

/* A pending token without keyslot: the crash came after the token write, maybe after the
 * keyslot was added. Find the keyslot its DEK opens among those no token claims. */
static int converge_pending(struct crypt_device *cd, struct keyd_token *all, int n, int i,
			    struct kms *kms, struct error *err)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token *t = &all[i];
	size_t len = 0;
	int r, slot = -1;

	if (t->keyslot < 0) {
		if (!kms || strcmp(kms->name, t->kms) != 0)
			return error_set(
				err, -ENOKEY,
				"token %d is an interrupted enrollment or re-key for KMS '%s'; "
				"it needs that KMS to finish",
				t->id, t->kms);
		r = unwrap_token(kms, t, crypt_get_uuid(cd), &dek, &len, err);
		if (r < 0)
			return r;
		for (int s = 0; s < 32 && slot < 0; s++)
			if ((crypt_keyslot_status(cd, s) == CRYPT_SLOT_ACTIVE ||
			     crypt_keyslot_status(cd, s) == CRYPT_SLOT_ACTIVE_LAST) &&
			    !keyslot_taken(all, n, s, i) &&
			    luks_activate(cd, NULL, s, dek, len, 0) >= 0)
				slot = s;
		if (slot < 0) {
			/* The keyslot was never written: roll back. */
			log_info("%s: removing token %d, an interrupted enrollment or re-key",
				 crypt_get_device_name(cd), t->id);
			r = crypt_token_json_set(cd, t->id, NULL);
			return r < 0 ? error_set(err, r, "remove token %d: %s", t->id, strerror(-r))
				     : 1;
		}
		t->keyslot = slot;
	}
	/* The keyslot exists: roll forward. */
	log_info("%s: finishing token %d (keyslot %d), an interrupted enrollment or re-key",
		 crypt_get_device_name(cd), t->id, t->keyslot);
	t->state = TOKEN_ACTIVE;
	r = token_write(cd, t);
	return r < 0 ? error_set(err, r, "activate token %d: %s", t->id, strerror(-r)) : 1;
}

/* Removes an active token superseded by a newer generation: keyslot first, then the token, so
 * no keyslot is ever left that no token accounts for. */
static int retire(struct crypt_device *cd, struct keyd_token *all, int n, int i, struct error *err)
{
	struct keyd_token *t = &all[i];
	int r;

	log_debug("%s: removing superseded token %d (generation %u) and keyslot %d",
		  crypt_get_device_name(cd), t->id, t->generation, t->keyslot);
	if (t->keyslot >= 0 && !keyslot_taken(all, n, t->keyslot, i) &&
	    crypt_keyslot_status(cd, t->keyslot) != CRYPT_SLOT_INACTIVE) {
		r = crypt_keyslot_destroy(cd, t->keyslot);
		if (r < 0)
			return error_set(err, r, "destroy keyslot %d: %s", t->keyslot,
					 strerror(-r));
	}
	r = crypt_token_json_set(cd, t->id, NULL);
	return r < 0 ? error_set(err, r, "remove token %d: %s", t->id, strerror(-r)) : 1;
}

int token_converge(struct crypt_device *cd, const char *device, struct kms *kms, struct error *err)
{
	struct keyd_token all[TOKENS_MAX];
	struct error je;
	int changes = 0, n, r = 0, best = -1;

	(void)device;
	n = token_list(cd, all, &je);
	if (n < 0)
		return error_set(err, n, "read tokens: %s", je.msg);
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_PENDING) {
			r = converge_pending(cd, all, n, i, kms, err);
			changes += r > 0;
		}
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_ACTIVE && all[i].keyslot >= 0 &&
		    (best < 0 || all[i].generation > all[best].generation))
			best = i;
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_ACTIVE && i != best) {
			r = retire(cd, all, n, i, err);
			changes += r > 0;
		}
	token_list_done(all, n);
	return r < 0 ? r : changes;
}

static int load_converged(const char *device, struct kms *kms, struct crypt_device **cd,
			  struct keyd_token *tok, struct rotate_result *res, struct error *err)
{
	struct error je;
	int r;

	r = cryptsetup_load(device, cd);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", device,
				 r == -EMEDIUMTYPE ? "no LUKS2 header" : strerror(-r));
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(*cd));
	r = token_converge(*cd, device, kms, err);
	if (r < 0)
		return r;
	res->converged = r;
	r = token_find(*cd, tok, &je);
	if (r < 0)
		return error_set(err, r, "read tokens: %s", je.msg);
	if (tok->id < 0)
		return error_set(err, -ENOKEY, "%s is not enrolled (no keyd token)", device);
	if (strcmp(tok->kms, kms->name) != 0) {
		error_set(err, -EXDEV, "token names KMS '%s', not '%s'", tok->kms, kms->name);
		token_done(tok);
		return -EXDEV;
	}
	res->old_token = tok->id;
	res->old_keyslot = tok->keyslot;
	snprintf(res->old_version, sizeof(res->old_version), "%s",
		 tok->key_version ? tok->key_version : "");
	return 0;
}

int volume_rekey(const char *device, struct kms *kms, const char *key_id, struct rotate_result *res,
		 struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secure_ uint8_t *old_dek = NULL, *new_dek = NULL;
	_cleanup_close_ int lock = -1;
	struct keyd_token old = {.id = -1}, nt;
	struct kms_wrapped w = {0};
	struct error ke;
	char aad[KMS_AAD_MAX], now[40];
	size_t old_len = 0;
	int r;

	*res = (struct rotate_result){
		.old_keyslot = -1, .new_keyslot = -1, .old_token = -1, .new_token = -1};
	lock = volume_lock_rotation(device);
	if (lock < 0)
		return error_set(err, lock, "lock %s: %s", device, strerror(-lock));
	r = load_converged(device, kms, &cd, &old, res, err);
	if (r < 0)
		goto out;
	key_id = key_id ? key_id : old.key_id;

	/* Nothing on disk changes until the new DEK is wrapped and the old one unwrapped. */
	r = unwrap_token(kms, &old, res->uuid, &old_dek, &old_len, err);
	if (r < 0)
		goto out;
	new_dek = secmem_alloc(LUKS_DEK_LEN);
	if (!new_dek || RAND_priv_bytes(new_dek, LUKS_DEK_LEN) != 1) {
		r = error_set(err, -ENOMEM, "generate key: no secure memory or randomness");
		goto out;
	}
	kms_aad_for_uuid(res->uuid, aad, sizeof(aad));
	r = kms_wrap(kms, key_id, new_dek, LUKS_DEK_LEN, aad, &w, &ke, NULL, NULL, NULL);
	if (r < 0) {
		error_set(err, r, "wrap with KMS '%s' (key %s): %s", kms->name, key_id, ke.msg);
		goto out;
	}
	r = verify_wdek(cd, kms, key_id, w.wdek, -1, new_dek, err);
	if (r < 0)
		goto out;
	r = luks_set_keyd_pbkdf(cd);
	if (r < 0) {
		error_set(err, r, "set PBKDF: %s", strerror(-r));
		goto out;
	}

	/* 1. The new token, pending, without keyslot. */
	format_rfc3339_us(now_real_us(), now, sizeof(now));
	nt = (struct keyd_token){.id = CRYPT_ANY_TOKEN,
				 .keyslot = -1,
				 .state = TOKEN_PENDING,
				 .generation = old.generation + 1,
				 .name = old.name,
				 .provider = old.provider,
				 .kms = old.kms,
				 .key_id = (char *)key_id,
				 .key_version = w.key_version,
				 .wdek = w.wdek,
				 .aad = aad,
				 .created = old.created,
				 .updated = now};
	r = token_write(cd, &nt);
	if (r < 0) {
		error_set(err, r, "write new token: %s", strerror(-r));
		goto out;
	}
	nt.id = res->new_token = r;

	/* 2. The new keyslot, authorised by the old DEK. */
	r = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)old_dek, old_len,
					    (const char *)new_dek, LUKS_DEK_LEN);
	if (r < 0) {
		error_set(err, r, "add keyslot: %s", strerror(-r));
		crypt_token_json_set(cd, nt.id, NULL);
		goto out;
	}
	nt.keyslot = res->new_keyslot = r;

	/* 3. The new token active with its keyslot: from here the new DEK unlocks. */
	nt.state = TOKEN_ACTIVE;
	r = token_write(cd, &nt);
	if (r < 0) {
		error_set(err, r, "activate new token: %s", strerror(-r));
		crypt_keyslot_destroy(cd, nt.keyslot);
		crypt_token_json_set(cd, nt.id, NULL);
		goto out;
	}

	/* 4. The old keyslot, then the old token (token_converge does the same after a crash). */
	r = token_converge(cd, device, kms, err);
	if (r < 0)
		goto out;
	snprintf(res->new_version, sizeof(res->new_version), "%s",
		 w.key_version ? w.key_version : "");
	r = 0;
out:
	kms_wrapped_done(&w);
	token_done(&old);
	return r;
}

int volume_rewrap(const char *device, struct kms *kms, const struct kms_wrapped *wrapped,
		  struct rotate_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_close_ int lock = -1;
	struct keyd_token tok = {.id = -1};
	struct kms_wrapped w = {0};
	struct error ke;
	char aad[KMS_AAD_MAX], now[40];
	const struct kms_wrapped *use = wrapped;
	char *old_wdek, *old_version;
	int r;

	*res = (struct rotate_result){
		.old_keyslot = -1, .new_keyslot = -1, .old_token = -1, .new_token = -1};
	lock = volume_lock_rotation(device);
	if (lock < 0)
		return error_set(err, lock, "lock %s: %s", device, strerror(-lock));
	r = load_converged(device, kms, &cd, &tok, res, err);
	if (r < 0)
		goto out;
	if (!use) {
		kms_aad_for_uuid(res->uuid, aad, sizeof(aad));
		r = kms_rewrap(kms, tok.key_id, tok.wdek, aad, &w, &ke, NULL, NULL, NULL);
		if (r < 0) {
			error_set(err, r, "rewrap with KMS '%s' (key %s): %s", kms->name,
				  tok.key_id, ke.msg);
			goto out;
		}
		use = &w;
	}
	r = verify_wdek(cd, kms, tok.key_id, use->wdek, tok.keyslot, NULL, err);
	if (r < 0)
		goto out;
	/* One header write swaps the WDEK: no keyslot changes, nothing to converge. */
	format_rfc3339_us(now_real_us(), now, sizeof(now));
	old_wdek = tok.wdek;
	old_version = tok.key_version;
	free(tok.updated);
	tok.updated = now;
	tok.wdek = use->wdek;
	tok.key_version = use->key_version;
	r = token_write(cd, &tok);
	tok.wdek = old_wdek;
	tok.key_version = old_version;
	tok.updated = NULL;
	if (r < 0) {
		error_set(err, r, "write token: %s", strerror(-r));
		goto out;
	}
	res->new_token = res->old_token;
	res->new_keyslot = res->old_keyslot = tok.keyslot;
	snprintf(res->new_version, sizeof(res->new_version), "%s",
		 use->key_version ? use->key_version : "");
	r = 0;
out:
	kms_wrapped_done(&w);
	token_done(&tok);
	return r;
}
