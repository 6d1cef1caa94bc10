// SPDX-License-Identifier: GPL-2.0-or-later
/* Rewrap and re-key. The invariant, after every single header write: the active keyd token of
 * the highest generation opens its keyslot through the KMS. A crash between two writes leaves
 * a pending token or a second active token, which token_converge() resolves. Logs nothing. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "rotate.h"
#include "secmem.h"
#include "token.h"
#include "unwrap_any.h"
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

/* Proves that @wdek unwraps (bound to this volume) to a key that opens @slot (or equals
 * @expect when the keyslot does not exist yet): a token is never rewritten with a WDEK that
 * would leave the volume unlockable by nobody. */
static int verify_wdek(struct crypt_device *cd, struct kms *kms, const char *key_id,
		       const char *wdek, int slot, const uint8_t *expect, const volatile bool *stop,
		       struct error *err)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token t = {.id = -1, .n_wraps = 1};
	int r;

	t.wrap[0] = (struct token_wrap){
		.kms = kms->name, .key_id = (char *)key_id, .wdek = (char *)wdek};
	r = token_unwrap(kms, &t, crypt_get_uuid(cd), &dek, NULL, NULL, NULL, stop, err);
	if (r < 0)
		return r;
	if (expect)
		r = CRYPTO_memcmp(dek, expect, LUKS_DEK_LEN) == 0 ? 0 : -EBADMSG;
	else
		r = luks_activate(cd, NULL, slot, dek, LUKS_DEK_LEN, 0);
	if (r < 0)
		return error_set(err, r,
				 "the new wrapped key does not open the volume (KMS '%s', key %s); "
				 "nothing was changed",
				 kms->name, key_id);
	return 0;
}

/* A rotation under way: its lock, the header, the active token it starts from, and the flag
 * that ends its KMS calls' retries early (keyd stopping; NULL: none). */
struct rotation {
	int lock;
	struct crypt_device *cd;
	struct keyd_token tok;
	const volatile bool *stop;
};
#define ROTATION_INIT                                                                              \
	{                                                                                          \
		.lock = -1, .tok = {.id = -1, .keyslot = -1 }                                      \
	}

static void rotation_end(struct rotation *x)
{
	token_done(&x->tok);
	crypt_free(x->cd);
	if (x->lock >= 0)
		close(x->lock);
}

/* Locks @device, loads its header, converges it (through @keys), and finds the active token. */
static int rotation_begin(const char *device, const struct kms_key *keys, size_t n_keys,
			  struct rotation *x, struct rotate_result *res, struct error *err)
{
	struct error je;
	int r;

	*res = (struct rotate_result){
		.old_keyslot = -1, .new_keyslot = -1, .old_token = -1, .new_token = -1};
	x->lock = volume_lock_rotation(device);
	if (x->lock < 0)
		return error_set(err, x->lock, "lock %s: %s", device, strerror(-x->lock));
	r = cryptsetup_load(device, &x->cd);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", device,
				 cryptsetup_load_strerror(r));
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(x->cd));
	r = token_converge(x->cd, keys, n_keys, &res->changes, err);
	if (r < 0)
		return r;
	res->converged = r;
	r = token_find(x->cd, &x->tok, &je);
	if (r < 0)
		return error_set(err, r, "read tokens: %s", je.msg);
	if (x->tok.id < 0)
		return error_set(err, -ENOKEY, "%s is not enrolled (no keyd token)", device);
	res->old_token = x->tok.id;
	res->old_keyslot = x->tok.keyslot;
	snprintf(res->old_version, sizeof(res->old_version), "%s",
		 x->tok.key_version ? x->tok.key_version : "");
	return 0;
}

/* The keys a re-key wraps with: @keys, each key_id NULL taken from the token's wrap of that
 * KMS. -EINVAL if the token has none to take. */
static int rekey_keys(const struct rotation *x, const struct kms_key *keys, size_t n_keys,
		      struct kms_key *out, struct error *err)
{
	for (size_t k = 0; k < n_keys; k++) {
		int w = token_wrap_index(&x->tok, keys[k].kms->name);

		out[k] = keys[k];
		if (out[k].key_id)
			continue;
		if (w < 0)
			return error_set(err, -EINVAL,
					 "KMS '%s' has no wrap in the token: give its key id",
					 keys[k].kms->name);
		out[k].key_id = x->tok.wrap[w].key_id;
	}
	return 0;
}

/* Re-key, before anything on disk changes: the old DEK unwrapped (any KMS of the token), the
 * new one generated, wrapped by each of @keys and each wrap proven to unwrap again. */
static int rekey_prepare(struct rotation *x, const struct kms_key *keys, size_t n_keys,
			 uint8_t **old_dek, uint8_t **new_dek, struct kms_wrapped *w,
			 struct error *err)
{
	struct kms_key any[KMS_KEYS_MAX];
	struct unwrap_any_result ar;
	struct error ke;
	char aad[KMS_AAD_MAX];
	int r;

	for (size_t k = 0; k < n_keys; k++)
		any[k] = (struct kms_key){.kms = keys[k].kms};
	r = unwrap_any(any, n_keys, &x->tok, crypt_get_uuid(x->cd), old_dek, &ar, NULL, NULL,
		       x->stop, err);
	if (r < 0)
		return r;
	kms_wrapped_done(&ar.rewrapped);
	*new_dek = secmem_alloc(LUKS_DEK_LEN);
	if (!*new_dek || RAND_priv_bytes(*new_dek, LUKS_DEK_LEN) != 1)
		return error_set(err, -ENOMEM, "generate key: no secure memory or randomness");
	kms_aad_for_uuid(crypt_get_uuid(x->cd), aad, sizeof(aad));
	for (size_t k = 0; k < n_keys; k++) {
		r = kms_wrap(keys[k].kms, keys[k].key_id, *new_dek, LUKS_DEK_LEN, aad, &w[k], &ke,
			     NULL, NULL, x->stop);
		if (r < 0)
			return error_set(err, r, "wrap with KMS '%s' (key %s): %s",
					 keys[k].kms->name, keys[k].key_id, ke.msg);
		r = verify_wdek(x->cd, keys[k].kms, keys[k].key_id, w[k].wdek, -1, *new_dek,
				x->stop, err);
		if (r < 0)
			return r;
	}
	r = luks_set_keyd_pbkdf(x->cd);
	return r < 0 ? error_set(err, r, "set PBKDF: %s", strerror(-r)) : 0;
}

/* Re-key's header writes, each one write and each undone if a later one fails: (1) the new
 * token, pending, without keyslot; (2) the new keyslot, authorised by the old DEK; (3) the new
 * token active with its keyslot: from here the new DEK unlocks. */
static int rekey_write(struct rotation *x, const struct kms_key *keys, size_t n_keys,
		       const uint8_t *old_dek, const uint8_t *new_dek, const struct kms_wrapped *w,
		       struct rotate_result *res, struct error *err)
{
	char aad[KMS_AAD_MAX], now[40];
	struct keyd_token nt;
	int r;

	kms_aad_for_uuid(crypt_get_uuid(x->cd), aad, sizeof(aad));
	format_rfc3339_us(now_real_us(), now, sizeof(now));
	nt = (struct keyd_token){.id = CRYPT_ANY_TOKEN,
				 .keyslot = -1,
				 .state = TOKEN_PENDING,
				 .generation = x->tok.generation + 1,
				 .name = x->tok.name,
				 .aad = aad,
				 .created = x->tok.created,
				 .updated = now};
	token_set_wraps(&nt, keys, n_keys, w);
	r = token_write(x->cd, &nt);
	if (r < 0)
		return error_set(err, r, "write new token: %s", strerror(-r));
	nt.id = res->new_token = r;

	r = luks_keyslot_add(x->cd, x->tok.keyslot, old_dek, new_dek, LUKS_DEK_LEN);
	if (r < 0) {
		error_set(err, r, "add keyslot: %s", strerror(-r));
		crypt_token_json_set(x->cd, nt.id, NULL);
		return r;
	}
	nt.keyslot = res->new_keyslot = r;

	nt.state = TOKEN_ACTIVE;
	r = token_write(x->cd, &nt);
	if (r < 0) {
		error_set(err, r, "activate new token: %s", strerror(-r));
		crypt_keyslot_destroy(x->cd, nt.keyslot);
		crypt_token_json_set(x->cd, nt.id, NULL);
		return r;
	}
	return 0;
}

int volume_rekey(const char *device, const struct kms_key *keys, size_t n_keys,
		 const volatile bool *stop, struct rotate_result *res, struct error *err)
{
	_cleanup_(rotation_end) struct rotation x = ROTATION_INIT;
	_cleanup_secure_ uint8_t *old_dek = NULL, *new_dek = NULL;
	struct kms_wrapped w[KMS_KEYS_MAX] = {0};
	struct kms_key use[KMS_KEYS_MAX];
	int r;

	if (n_keys < 1 || n_keys > KMS_KEYS_MAX)
		return error_set(err, -EINVAL, "re-key: 1 to %d KMS, not %zu", KMS_KEYS_MAX,
				 n_keys);
	x.stop = stop;
	r = rotation_begin(device, keys, n_keys, &x, res, err);
	if (r >= 0)
		r = rekey_keys(&x, keys, n_keys, use, err);
	if (r >= 0)
		r = rekey_prepare(&x, use, n_keys, &old_dek, &new_dek, w, err);
	if (r >= 0)
		r = rekey_write(&x, use, n_keys, old_dek, new_dek, w, res, err);
	/* (4) The old keyslot, then the old token: what token_converge does after a crash. */
	if (r >= 0)
		r = token_converge(x.cd, use, n_keys, NULL, err);
	if (r >= 0) {
		snprintf(res->new_version, sizeof(res->new_version), "%s",
			 w[0].key_version ? w[0].key_version : "");
		r = 0;
	}
	for (size_t k = 0; k < KMS_KEYS_MAX; k++)
		kms_wrapped_done(&w[k]);
	return r;
}

int volume_rewrap(const char *device, struct kms *kms, const struct kms_wrapped *wrapped,
		  const volatile bool *stop, struct rotate_result *res, struct error *err)
{
	_cleanup_(rotation_end) struct rotation x = ROTATION_INIT;
	struct keyd_token *tok = &x.tok;
	struct token_wrap *tw;
	struct kms_wrapped w = {0};
	struct error ke;
	char aad[KMS_AAD_MAX], now[40];
	const struct kms_wrapped *use = wrapped;
	char *old_wdek, *old_version;
	int r, i;

	r = rotation_begin(device, &(struct kms_key){.kms = kms}, 1, &x, res, err);
	if (r < 0)
		return r;
	i = token_wrap_index(tok, kms->name);
	if (i < 0)
		return error_set(err, -EXDEV, "token %d holds no key wrapped by KMS '%s'", tok->id,
				 kms->name);
	tw = &tok->wrap[i];
	snprintf(res->old_version, sizeof(res->old_version), "%s",
		 tw->key_version ? tw->key_version : "");
	if (!use) {
		kms_aad_for_uuid(res->uuid, aad, sizeof(aad));
		r = kms_rewrap(kms, tw->key_id, tw->wdek, aad, &w, &ke, NULL, NULL, stop);
		if (r < 0) {
			error_set(err, r, "rewrap with KMS '%s' (key %s): %s", kms->name,
				  tw->key_id, ke.msg);
			goto out;
		}
		use = &w;
	}
	res->new_token = res->old_token;
	res->new_keyslot = res->old_keyslot = tok->keyslot;
	r = verify_wdek(x.cd, kms, tw->key_id, use->wdek, tok->keyslot, NULL, stop, err);
	if (r < 0)
		goto out;
	/* The same version (or a provider without versions): the token already says all a
	 * rewrap could, so nothing is written. The check above still proved the key works. */
	if (strcmp(use->key_version ? use->key_version : "",
		   tw->key_version ? tw->key_version : "") == 0) {
		snprintf(res->new_version, sizeof(res->new_version), "%s", res->old_version);
		r = 1;
		goto out;
	}
	/* One header write swaps this KMS's WDEK: no keyslot changes, nothing to converge. */
	format_rfc3339_us(now_real_us(), now, sizeof(now));
	old_wdek = tw->wdek;
	old_version = tw->key_version;
	free(tok->updated);
	tok->updated = now;
	tw->wdek = use->wdek;
	tw->key_version = use->key_version;
	r = token_write(x.cd, tok);
	tw->wdek = old_wdek;
	tw->key_version = old_version;
	tok->updated = NULL;
	if (r < 0) {
		error_set(err, r, "write token: %s", strerror(-r));
		goto out;
	}
	snprintf(res->new_version, sizeof(res->new_version), "%s",
		 use->key_version ? use->key_version : "");
	r = 0;
out:
	kms_wrapped_done(&w);
	return r;
}
