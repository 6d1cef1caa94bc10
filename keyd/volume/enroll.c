// SPDX-License-Identifier: GPL-2.0-or-later
/* Enroll and unlock: the two paths that hold a plaintext DEK. The DEK lives only in secure
 * memory and only for the duration of the call; every failure names its step and rolls back. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "enroll.h"
#include "log.h"
#include "rotate.h"
#include "secmem.h"
#include "signatures.h"
#include "token.h"
#include "util.h"

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

/* Puts a freshly formatted header back to blank: the device was blank before we began. */
static void unformat(struct crypt_device *cd)
{
	uint64_t len = crypt_get_data_offset(cd) * 512;

	if (len)
		crypt_wipe(cd, NULL, CRYPT_WIPE_ZERO, 0, len, 1024 * 1024, 0, NULL, NULL);
}

static int now_token_time(char *buf, size_t size)
{
	format_rfc3339_us(now_real_us(), buf, size);
	return 0;
}

int enroll(const struct enroll_request *req, struct enroll_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	struct kms_wrapped w = {0};
	struct keyd_token tok = {.id = CRYPT_ANY_TOKEN}, old = {.id = -1};
	struct error ke;
	struct error je;
	struct unlock_result ur;
	char aad[KMS_AAD_MAX], sigs[256], now[40];
	bool formatted = false;
	int slot = -1, token = -1, r;

	*res = (struct enroll_result){.keyslot = -1, .token = -1};

	/* 1. The header: an existing LUKS2 one, or a UUID of our own for a blank device so the
	 *    DEK can be wrapped (bound to it) before anything is written. */
	if (req->format) {
		json_auto_t *found = NULL;
		char luks_uuid[SIGNATURES_UUID_MAX];

		r = signatures_probe(req->device, &found, luks_uuid);
		if (r < 0)
			return error_set(err, r, "probe %s: %s", req->device, strerror(-r));
		signatures_format(found, sigs, sizeof(sigs));
		r = (int)json_array_size(found);
		if (r == 1 && luks_uuid[0]) {
			_cleanup_crypt_ struct crypt_device *probe = NULL;

			if (cryptsetup_load(req->device, &probe) < 0)
				return error_set(
					err, -EEXIST,
					"format: %s holds a LUKS signature that libcryptsetup "
					"cannot read (a format interrupted mid-write?); check it, "
					"and if it holds nothing, wipe it (wipefs -a %s) and "
					"enroll again",
					req->device, req->device);
			/* An enrollment interrupted before its first keyslot leaves a header
			 * with, at most, a pending token: roll that back, then it holds nothing. */
			if (token_converge(probe, req->device, req->kms, err) >= 0 &&
			    luks_is_empty(req->device))
				r = 0;
			else if (token_find(probe, &old, &je) > 0 && old.id >= 0)
				goto enrolled;
		}
		if (r > 0)
			return error_set(
				err, -EEXIST,
				"format: %s is not blank (found: %s); refusing to overwrite it. "
				"Wipe it first, or enroll it without --format if it is LUKS2",
				req->device, sigs);
		r = crypt_init(&cd, req->device);
		if (r < 0)
			return error_set(err, r, "open %s: %s", req->device, strerror(-r));
		new_uuid(res->uuid, sizeof(res->uuid));
	} else {
		r = cryptsetup_load(req->device, &cd);
		if (r == -EMEDIUMTYPE)
			return error_set(
				err, r,
				"read header: %s holds no LUKS2 header (use --format for a blank "
				"device; LUKS1 must be converted with cryptsetup convert first)",
				req->device);
		if (r < 0)
			return error_set(err, r, "read header of %s: %s", req->device,
					 strerror(-r));
		r = token_converge(cd, req->device, req->kms, err);
		if (r < 0)
			return r;
		r = token_find(cd, &old, &je);
		if (r < 0)
			return error_set(err, r, "read header: %s",
					 r == -EINVAL ? je.msg : strerror(-r));
		if (r > 0 && old.id >= 0) {
		enrolled:
			error_set(
				err, -EEXIST,
				"read header: %s is already enrolled (token %d, keyslot %d, KMS '%s', "
				"key %s); rotate it instead of enrolling again",
				req->device, old.id, old.keyslot, old.kms, old.key_id);
			token_done(&old);
			return -EEXIST;
		}
		if (!req->auth)
			return error_set(
				err, -ENOKEY,
				"authorise: %s is LUKS2 already: give an existing passphrase or "
				"key file (--key-file FILE, or - for standard input)",
				req->device);
		/* Checked before anything is written, so a wrong one changes no byte. */
		r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)req->auth,
						 req->auth_len, 0);
		if (r < 0)
			return error_set(err, r, "authorise: %s",
					 r == -EPERM ? "the passphrase or key file opens no keyslot"
						     : strerror(-r));
		snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(cd));
	}
	r = kms_aad_for_uuid(res->uuid, aad, sizeof(aad));
	if (r < 0)
		return error_set(err, r, "read header: LUKS UUID too long");

	/* 2. The DEK, and its wrap by the KMS. */
	dek = secmem_alloc(LUKS_DEK_LEN);
	if (!dek)
		return error_set(err, -ENOMEM, "generate key: out of secure memory");
	if (RAND_priv_bytes(dek, LUKS_DEK_LEN) != 1)
		return error_set(err, -EIO, "generate key: RAND_priv_bytes failed");
	r = kms_wrap(req->kms, req->key_id, dek, LUKS_DEK_LEN, aad, &w, &ke, NULL, NULL, NULL);
	if (r < 0)
		return error_set(err, r, "wrap with KMS '%s' (key %s): %s", req->kms->name,
				 req->key_id, ke.msg);

	/* 3. Header changes, each one header write, in an order that a crash at any instant
	 *    leaves recoverable (token_converge): format, a pending token with the WDEK, the
	 *    keyslot, then the token made active with its keyslot. */
	r = luks_set_keyd_pbkdf(cd);
	if (r < 0) {
		error_set(err, r, "set PBKDF: %s", strerror(-r));
		goto out;
	}
	if (req->format) {
		struct crypt_params_luks2 p = {.sector_size = LUKS_SECTOR_SIZE};

		r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", res->uuid, NULL, 64, &p);
		if (r < 0) {
			error_set(err, r, "format %s as LUKS2: %s", req->device, strerror(-r));
			goto out;
		}
		formatted = true;
		r = luks_set_keyd_pbkdf(cd);
		if (r < 0) {
			error_set(err, r, "set PBKDF: %s", strerror(-r));
			goto out;
		}
	}

	now_token_time(now, sizeof(now));
	tok = (struct keyd_token){.id = CRYPT_ANY_TOKEN,
				  .keyslot = -1,
				  .state = TOKEN_PENDING,
				  .generation = 1,
				  .name = (char *)req->name,
				  .provider = (char *)req->kms->provider->name,
				  .kms = req->kms->name,
				  .key_id = (char *)req->key_id,
				  .key_version = w.key_version,
				  .wdek = w.wdek,
				  .aad = aad,
				  .created = now};
	r = token_write(cd, &tok);
	if (r < 0) {
		error_set(err, r, "write token: %s", strerror(-r));
		goto out;
	}
	token = tok.id = r;

	if (req->format)
		r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)dek,
						    LUKS_DEK_LEN);
	else
		r = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)req->auth,
						    req->auth_len, (const char *)dek, LUKS_DEK_LEN);
	if (r < 0) {
		error_set(err, r, "add keyslot: %s",
			  r == -EPERM ? "the passphrase or key file opens no keyslot"
				      : strerror(-r));
		goto out;
	}
	slot = tok.keyslot = r;
	tok.state = TOKEN_ACTIVE;
	r = token_write(cd, &tok);
	if (r < 0) {
		error_set(err, r, "activate token: %s", strerror(-r));
		goto out;
	}

	/* 4. Proof: read the header back from disk, unwrap through the KMS, open the keyslot. */
	r = volume_unlock(&(struct unlock_request){.device = req->device,
						   .kms = req->kms,
						   .expect_key_id = req->key_id},
			  &ur, err);
	if (r < 0) {
		error_prefix(err, r, "verify round trip");
		goto out;
	}
	kms_wrapped_done(&ur.rewrapped);
	if (ur.keyslot != slot || ur.token != token) {
		r = error_set(err, -EIO,
			      "verify round trip: found token %d/keyslot %d, wrote %d/%d", ur.token,
			      ur.keyslot, token, slot);
		goto out;
	}
	res->keyslot = slot;
	res->token = token;
	snprintf(res->key_version, sizeof(res->key_version), "%s",
		 w.key_version ? w.key_version : "");
	r = 0;
out:
	if (r < 0) {
		/* Undo in reverse order so the device is as we found it. */
		if (token >= 0)
			crypt_token_json_set(cd, token, NULL);
		if (slot >= 0)
			crypt_keyslot_destroy(cd, slot);
		if (formatted)
			unformat(cd);
	}
	kms_wrapped_done(&w);
	return r;
}

int volume_unlock(const struct unlock_request *req, struct unlock_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token tok;
	struct error ke;
	struct error je;
	char aad[KMS_AAD_MAX];
	size_t dek_len = 0;
	int r;

	*res = (struct unlock_result){.keyslot = -1, .token = -1};
	uint64_t t0 = now_mono_us();
	/* Each step's start is logged at debug level with the time since the first. */
#define STEP(s)                                                                                    \
	do {                                                                                       \
		snprintf(res->step, sizeof(res->step), "%s", s);                                   \
		log_debug("%s: %s (+%.2f ms)", req->device, s,                                     \
			  (double)(now_mono_us() - t0) / 1000);                                    \
	} while (0)
	STEP("read header");
	r = cryptsetup_load(req->device, &cd);
	if (r == -EMEDIUMTYPE)
		return error_set(err, r, "%s holds no LUKS2 header", req->device);
	if (r < 0)
		return error_set(err, r, "cannot read the LUKS2 header of %s: %s", req->device,
				 strerror(-r));
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(cd));

	/* keyd restarted while its volumes stay open: adopt a mapping of this very volume. */
	if (req->name && !req->resume) {
		char uuid[LUKS_UUID_MAX];

		r = luks_mapping_uuid(req->name, uuid, sizeof(uuid));
		if (r >= 0 && strcmp(uuid, res->uuid) != 0)
			return error_set(err, -EEXIST,
					 "/dev/mapper/%s already exists and is not %s", req->name,
					 req->device);
		if (r >= 0) {
			snprintf(res->step, sizeof(res->step), "adopted");
			return 0;
		}
	}

	if (req->converge) {
		STEP("converge");
		r = token_converge(cd, req->device, req->kms, err);
		if (r < 0)
			return r;
	}

	STEP("read token");
	r = token_find(cd, &tok, &je);
	if (r < 0)
		return error_set(err, r, "%s: bad keyd token: %s", req->device,
				 r == -EINVAL ? je.msg : strerror(-r));
	if (r == 0)
		return error_set(err, -ENOKEY, "%s carries no keyd token (not enrolled)",
				 req->device);
	if (tok.id < 0)
		return error_set(
			err, -ENOKEY,
			"%s has only an unfinished keyd token (an enrollment or re-key was "
			"interrupted; keyd finishes or rolls it back before unlocking)",
			req->device);
	res->keyslot = tok.keyslot;
	res->token = tok.id;
	snprintf(res->key_id, sizeof(res->key_id), "%s", tok.key_id);
	snprintf(res->key_version, sizeof(res->key_version), "%s",
		 tok.key_version ? tok.key_version : "");
	if (strcmp(tok.kms, req->kms->name) != 0) {
		r = error_set(err, -EXDEV, "%s: token names KMS '%s', the configuration says '%s'",
			      req->device, tok.kms, req->kms->name);
		goto out;
	}
	if (req->expect_key_id && strcmp(tok.key_id, req->expect_key_id) != 0) {
		r = error_set(err, -EXDEV,
			      "%s: token is wrapped by key %s, the configuration says %s",
			      req->device, tok.key_id, req->expect_key_id);
		goto out;
	}

	/* Never the token's own "aad": the binding is to this header's UUID. */
	STEP("unwrap");
	kms_aad_for_uuid(res->uuid, aad, sizeof(aad));
	r = kms_unwrap(req->kms, tok.key_id, tok.wdek, aad, &dek, &dek_len, &res->rewrapped, &ke,
		       req->wait, req->userdata, req->stop);
	if (r < 0) {
		error_set(err, r, "unwrap with KMS '%s' (key %s): %s", req->kms->name, tok.key_id,
			  ke.msg);
		goto out;
	}
	if (dek_len != LUKS_DEK_LEN) {
		r = error_set(err, -EBADMSG, "KMS '%s' returned a %zu-byte key, expected %d",
			      req->kms->name, dek_len, LUKS_DEK_LEN);
		goto out;
	}

	STEP(req->resume ? "resume" : req->name ? "activate" : "check keyslot");
	if (req->resume)
		r = luks_resume(cd, req->name, tok.keyslot, dek, dek_len);
	else
		r = luks_activate(cd, req->name, tok.keyslot, dek, dek_len, 0);
	if (r < 0) {
		error_set(err, r, "%s keyslot %d of %s: %s",
			  req->resume ? "resuming"
			  : req->name ? "activating"
				      : "checking",
			  tok.keyslot, req->device,
			  r == -EPERM ? "the unwrapped key does not open it" : strerror(-r));
		goto out;
	}
	STEP("done");
	res->step[0] = 0;
	r = 0;
out:
#undef STEP
	if (r < 0)
		kms_wrapped_done(&res->rewrapped);
	token_done(&tok);
	return r;
}
