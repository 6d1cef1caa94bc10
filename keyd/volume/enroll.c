// SPDX-License-Identifier: GPL-2.0-or-later
/* Enrollment, in four steps that are the functions below: read the header (or check a blank
 * device), wrap a fresh DEK, write the header, prove the round trip. The DEK lives only in
 * secure memory and only for the call; a failure names its step and undoes every write. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "enroll.h"
#include "secmem.h"
#include "signatures.h"
#include "token.h"
#include "unlock.h"
#include "util.h"

/* What enroll_write has changed so far: what enroll_undo takes back. */
struct enroll_undo {
	bool formatted;
	int token, keyslot;
};

static void new_uuid(char *buf, size_t size)
{
	uint8_t u[16];

	RAND_bytes(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4 */
	u[8] = (u[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(buf, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/* -EEXIST when @cd already carries an active keyd token: re-keying is rotate's job. */
static int refuse_enrolled(struct crypt_device *cd, const char *device, struct error *err)
{
	struct keyd_token old;
	struct error je;
	int r;

	r = token_find(cd, &old, &je);
	if (r < 0)
		return error_set(err, r, "read header: %s", r == -EINVAL ? je.msg : strerror(-r));
	if (r == 0 || old.id < 0)
		return 0;
	error_set(err, -EEXIST,
		  "read header: %s is already enrolled (token %d, keyslot %d, KMS '%s', key %s); "
		  "rotate it instead of enrolling again",
		  device, old.id, old.keyslot, old.kms, old.key_id);
	token_done(&old);
	return -EEXIST;
}

/* A LUKS2 header on a device given --format. An enrollment interrupted before its first
 * keyslot leaves one with at most a pending token: rolled back, it holds nothing and counts
 * as blank (1). -EEXIST if it is enrolled or libcryptsetup cannot read it; 0: not blank. */
static int enroll_reuse_empty(const struct enroll_request *req, struct token_changes *changes,
			      struct error *err)
{
	_cleanup_crypt_ struct crypt_device *probe = NULL;
	int r;

	if (cryptsetup_load(req->device, &probe) < 0)
		return error_set(err, -EEXIST,
				 "format: %s holds a LUKS signature that libcryptsetup cannot read "
				 "(a format interrupted mid-write?); check it, and if it holds "
				 "nothing, wipe it (wipefs -a %s) and enroll again",
				 req->device, req->device);
	if (token_converge(probe, req->keys, req->n_keys, changes, err) >= 0 &&
	    luks_is_empty(req->device))
		return 1;
	r = refuse_enrolled(probe, req->device, err);
	return r == -EEXIST ? r : 0;
}

/* Step 1 with --format: the device must be blank; the UUID is ours, so that the DEK can be
 * wrapped (bound to it) before anything is written. */
static int enroll_read_blank(const struct enroll_request *req, struct enroll_result *res,
			     struct crypt_device **cd, struct error *err)
{
	json_auto_t *found = NULL;
	char luks_uuid[SIGNATURES_UUID_MAX], sigs[256];
	size_t n;
	int r;

	r = signatures_probe(req->device, &found, luks_uuid);
	if (r < 0)
		return error_set(err, r, "probe %s: %s", req->device, strerror(-r));
	signatures_format(found, sigs, sizeof(sigs));
	n = json_array_size(found);
	if (n == 1 && luks_uuid[0]) {
		r = enroll_reuse_empty(req, &res->converged, err);
		if (r < 0)
			return r;
		n = r ? 0 : n;
	}
	if (n > 0)
		return error_set(err, -EEXIST,
				 "format: %s is not blank (found: %s); refusing to overwrite it. "
				 "Wipe it first, or enroll it without --format if it is LUKS2",
				 req->device, sigs);
	r = crypt_init(cd, req->device);
	if (r < 0)
		return error_set(err, r, "open %s: %s", req->device, strerror(-r));
	new_uuid(res->uuid, sizeof(res->uuid));
	return 0;
}

/* Step 1 on a LUKS2 device: converged, not enrolled yet, and the given passphrase opens a
 * keyslot (checked before anything is written, so a wrong one changes no byte). */
static int enroll_read_luks(const struct enroll_request *req, struct enroll_result *res,
			    struct crypt_device **cd, struct error *err)
{
	int r;

	r = cryptsetup_load(req->device, cd);
	if (r == -EMEDIUMTYPE)
		return error_set(err, r,
				 "read header: %s holds no LUKS2 header (use --format for a blank "
				 "device; LUKS1 must be converted with cryptsetup convert first)",
				 req->device);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", req->device, strerror(-r));
	r = token_converge(*cd, req->keys, req->n_keys, &res->converged, err);
	if (r >= 0)
		r = refuse_enrolled(*cd, req->device, err);
	if (r < 0)
		return r;
	if (!req->auth)
		return error_set(err, -ENOKEY,
				 "authorise: %s is LUKS2 already: give an existing passphrase or "
				 "key file (--key-file FILE, or - for standard input)",
				 req->device);
	r = crypt_activate_by_passphrase(*cd, NULL, CRYPT_ANY_SLOT, (const char *)req->auth,
					 req->auth_len, 0);
	if (r < 0)
		return error_set(err, r, "authorise: %s",
				 r == -EPERM ? "the passphrase or key file opens no keyslot"
					     : strerror(-r));
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(*cd));
	return 0;
}

/* Step 2: the DEK, and its wrap by each KMS bound to @aad, into @w (one per key). All must
 * wrap: a volume enrolled with fewer KMS than configured would not survive the loss of the
 * ones it has. */
static int enroll_wrap(const struct enroll_request *req, const char *aad, uint8_t **dek,
		       struct kms_wrapped *w, struct error *err)
{
	struct error ke;
	int r;

	*dek = secmem_alloc(LUKS_DEK_LEN);
	if (!*dek)
		return error_set(err, -ENOMEM, "generate key: out of secure memory");
	if (RAND_priv_bytes(*dek, LUKS_DEK_LEN) != 1)
		return error_set(err, -EIO, "generate key: RAND_priv_bytes failed");
	for (size_t k = 0; k < req->n_keys; k++) {
		const struct kms_key *key = &req->keys[k];

		r = kms_wrap(key->kms, key->key_id, *dek, LUKS_DEK_LEN, aad, &w[k], &ke, NULL, NULL,
			     NULL);
		if (r < 0)
			return error_set(err, r, "wrap with KMS '%s' (key %s): %s", key->kms->name,
					 key->key_id, ke.msg);
	}
	return 0;
}

/* Step 3: the header changes, each one header write, in an order that a crash at any instant
 * leaves recoverable (token_converge): format, a pending token with the WDEK, the keyslot,
 * then the token made active with its keyslot. @undo records each change as it is made. */
static int enroll_write(struct crypt_device *cd, const struct enroll_request *req, const char *uuid,
			const char *aad, const uint8_t *dek, const struct kms_wrapped *w,
			struct enroll_undo *undo, struct error *err)
{
	struct crypt_params_luks2 p = {.sector_size = LUKS_SECTOR_SIZE};
	struct keyd_token tok;
	char now[40];
	int r;

	r = luks_set_keyd_pbkdf(cd);
	if (r < 0)
		return error_set(err, r, "set PBKDF: %s", strerror(-r));
	if (req->format) {
		r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", uuid, NULL, 64, &p);
		if (r < 0)
			return error_set(err, r, "format %s as LUKS2: %s", req->device,
					 strerror(-r));
		undo->formatted = true;
		r = luks_set_keyd_pbkdf(cd);
		if (r < 0)
			return error_set(err, r, "set PBKDF: %s", strerror(-r));
	}

	format_rfc3339_us(now_real_us(), now, sizeof(now));
	tok = (struct keyd_token){.id = CRYPT_ANY_TOKEN,
				  .keyslot = -1,
				  .state = TOKEN_PENDING,
				  .generation = 1,
				  .name = (char *)req->name,
				  .aad = (char *)aad,
				  .created = now};
	token_set_wraps(&tok, req->keys, req->n_keys, w);
	r = token_write(cd, &tok);
	if (r < 0)
		return error_set(err, r, "write token: %s", strerror(-r));
	undo->token = tok.id = r;

	if (req->format)
		r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)dek,
						    LUKS_DEK_LEN);
	else
		r = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)req->auth,
						    req->auth_len, (const char *)dek, LUKS_DEK_LEN);
	if (r < 0)
		return error_set(err, r, "add keyslot: %s",
				 r == -EPERM ? "the passphrase or key file opens no keyslot"
					     : strerror(-r));
	undo->keyslot = tok.keyslot = r;
	tok.state = TOKEN_ACTIVE;
	r = token_write(cd, &tok);
	return r < 0 ? error_set(err, r, "activate token: %s", strerror(-r)) : 0;
}

/* Step 4, the proof: read the header back from disk, unwrap through each KMS in turn (every
 * wrap must open the volume, not only the quickest), open the keyslot, and find the very token
 * and keyslot step 3 wrote. */
static int enroll_verify(const struct enroll_request *req, const struct enroll_undo *written,
			 struct error *err)
{
	struct unlock_result ur;
	int r;

	for (size_t k = 0; k < req->n_keys; k++) {
		r = volume_unlock(&(struct unlock_request){.device = req->device,
							   .keys = &req->keys[k],
							   .n_keys = 1},
				  &ur, err);
		if (r < 0)
			return error_prefix(err, r, "verify round trip");
		kms_wrapped_done(&ur.rewrapped);
		if (ur.keyslot != written->keyslot || ur.token != written->token)
			return error_set(
				err, -EIO,
				"verify round trip: found token %d/keyslot %d, wrote %d/%d",
				ur.token, ur.keyslot, written->token, written->keyslot);
	}
	return 0;
}

/* Undoes step 3 in reverse order, so the device is as we found it; a header we formatted is
 * zeroed back to blank (the device was blank before we began). */
static void enroll_undo(struct crypt_device *cd, const struct enroll_undo *undo)
{
	uint64_t len;

	if (undo->token >= 0)
		crypt_token_json_set(cd, undo->token, NULL);
	if (undo->keyslot >= 0)
		crypt_keyslot_destroy(cd, undo->keyslot);
	if (undo->formatted) {
		len = crypt_get_data_offset(cd) * 512;
		if (len)
			crypt_wipe(cd, NULL, CRYPT_WIPE_ZERO, 0, len, 1024 * 1024, 0, NULL, NULL);
	}
}

int enroll(const struct enroll_request *req, struct enroll_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	struct enroll_undo undo = {.token = -1, .keyslot = -1};
	struct kms_wrapped w[KMS_KEYS_MAX] = {0};
	char aad[KMS_AAD_MAX];
	int r;

	*res = (struct enroll_result){.keyslot = -1, .token = -1};
	if (req->n_keys < 1 || req->n_keys > KMS_KEYS_MAX)
		return error_set(err, -EINVAL, "enroll: 1 to %d KMS, not %zu", KMS_KEYS_MAX,
				 req->n_keys);
	r = req->format ? enroll_read_blank(req, res, &cd, err)
			: enroll_read_luks(req, res, &cd, err);
	if (r < 0)
		return r;
	if (kms_aad_for_uuid(res->uuid, aad, sizeof(aad)) < 0)
		return error_set(err, -ENAMETOOLONG, "read header: LUKS UUID too long");
	r = enroll_wrap(req, aad, &dek, w, err);
	if (r >= 0)
		r = enroll_write(cd, req, res->uuid, aad, dek, w, &undo, err);
	if (r >= 0)
		r = enroll_verify(req, &undo, err);
	if (r < 0) {
		enroll_undo(cd, &undo);
	} else {
		res->keyslot = undo.keyslot;
		res->token = undo.token;
		snprintf(res->key_version, sizeof(res->key_version), "%s",
			 w[0].key_version ? w[0].key_version : "");
	}
	for (size_t k = 0; k < KMS_KEYS_MAX; k++)
		kms_wrapped_done(&w[k]);
	return r < 0 ? r : 0;
}
