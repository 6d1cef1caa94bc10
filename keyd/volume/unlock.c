// SPDX-License-Identifier: GPL-2.0-or-later
/* Unlock, step by step: read the header, converge, find the token (where a mapping of this
 * very volume is adopted), unwrap it bound to the header's UUID, open the keyslot. The DEK
 * lives only in secure memory and only for the call; each step's start is logged at debug
 * level. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "secmem.h"
#include "unlock.h"
#include "util.h"

struct unlock_run {
	const struct unlock_request *req;
	struct unlock_result *res;
	uint64_t t0;
};

/* Names the step in res->step (what a failure reports) and logs its start at debug level. */
static void unlock_step(struct unlock_run *x, const char *step)
{
	snprintf(x->res->step, sizeof(x->res->step), "%s", step);
	log_debug("%s: %s (+%.2f ms)", x->req->device, step,
		  (double)(now_mono_us() - x->t0) / 1000);
}

/* keyd restarted while its volumes stay open: a mapping of this very volume is adopted (1),
 * one of another device refused. 0: no mapping of that name. The caller still converges and
 * reads the token, so that an adopted volume has its key version and keyslot like one keyd
 * opened itself (polling rewraps it after a rotation). */
static int unlock_adoptable(const struct unlock_request *req, const struct unlock_result *res,
			    struct error *err)
{
	char uuid[LUKS_UUID_MAX];

	if (!req->name || req->resume || luks_mapping_uuid(req->name, uuid, sizeof(uuid)) < 0)
		return 0;
	if (strcmp(uuid, res->uuid) != 0)
		return error_set(err, -EEXIST, "/dev/mapper/%s already exists and is not %s",
				 req->name, req->device);
	return 1;
}

/* The token to unlock with, checked against what the caller expects. */
static int unlock_find_token(struct crypt_device *cd, const struct unlock_request *req,
			     struct unlock_result *res, struct keyd_token *tok, struct error *err)
{
	struct error je;
	int r;

	r = token_find(cd, tok, &je);
	if (r < 0)
		return error_set(err, r, "%s: bad keyd token: %s", req->device,
				 r == -EINVAL ? je.msg : strerror(-r));
	if (r == 0)
		return error_set(err, -ENOKEY, "%s carries no keyd token (not enrolled)",
				 req->device);
	if (tok->id < 0)
		return error_set(
			err, -ENOKEY,
			"%s has only an unfinished keyd token (an enrollment or re-key was "
			"interrupted; keyd finishes or rolls it back before unlocking)",
			req->device);
	res->keyslot = tok->keyslot;
	res->token = tok->id;
	snprintf(res->key_id, sizeof(res->key_id), "%s", tok->key_id);
	snprintf(res->key_version, sizeof(res->key_version), "%s",
		 tok->key_version ? tok->key_version : "");
	if (strcmp(tok->kms, req->kms->name) != 0)
		return error_set(err, -EXDEV,
				 "%s: token names KMS '%s', the configuration says '%s'",
				 req->device, tok->kms, req->kms->name);
	if (req->expect_key_id && strcmp(tok->key_id, req->expect_key_id) != 0)
		return error_set(err, -EXDEV,
				 "%s: token is wrapped by key %s, the configuration says %s",
				 req->device, tok->key_id, req->expect_key_id);
	return 0;
}

/* Opens (or resumes, or only checks) the token's keyslot with @dek. */
static int unlock_open(struct crypt_device *cd, const struct unlock_request *req,
		       const struct keyd_token *tok, const uint8_t *dek, struct error *err)
{
	const char *what = req->resume ? "resuming" : req->name ? "activating" : "checking";
	int r;

	if (req->resume)
		r = luks_resume(cd, req->name, tok->keyslot, dek, LUKS_DEK_LEN);
	else
		r = luks_activate(cd, req->name, tok->keyslot, dek, LUKS_DEK_LEN, 0);
	if (r < 0)
		return error_set(err, r, "%s keyslot %d of %s: %s", what, tok->keyslot, req->device,
				 r == -EPERM ? "the unwrapped key does not open it" : strerror(-r));
	return 0;
}

int volume_unlock(const struct unlock_request *req, struct unlock_result *res, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token tok = {.id = -1, .keyslot = -1};
	struct unlock_run x = {.req = req, .res = res, .t0 = now_mono_us()};
	bool adopt;
	int r;

	*res = (struct unlock_result){.keyslot = -1, .token = -1};
	unlock_step(&x, "read header");
	r = cryptsetup_load(req->device, &cd);
	if (r == -EMEDIUMTYPE)
		return error_set(err, r, "%s holds no LUKS2 header", req->device);
	if (r < 0)
		return error_set(err, r, "cannot read the LUKS2 header of %s: %s", req->device,
				 strerror(-r));
	snprintf(res->uuid, sizeof(res->uuid), "%s", crypt_get_uuid(cd));
	r = unlock_adoptable(req, res, err);
	if (r < 0)
		return r;
	adopt = r > 0;

	if (req->converge) {
		unlock_step(&x, "converge");
		r = token_converge(cd, req->kms, &res->converged, err);
		if (r < 0)
			return r;
	}

	unlock_step(&x, "read token");
	r = unlock_find_token(cd, req, res, &tok, err);
	if (r >= 0 && adopt) {
		snprintf(res->step, sizeof(res->step), "adopted");
		token_done(&tok);
		return 0;
	}
	if (r >= 0) {
		unlock_step(&x, "unwrap");
		r = token_unwrap(req->kms, &tok, res->uuid, &dek, &res->rewrapped, req->wait,
				 req->userdata, req->stop, err);
	}
	if (r >= 0) {
		unlock_step(&x, req->resume ? "resume" : req->name ? "activate" : "check keyslot");
		r = unlock_open(cd, req, &tok, dek, err);
	}
	if (r >= 0) {
		unlock_step(&x, "done");
		res->step[0] = 0;
	} else {
		kms_wrapped_done(&res->rewrapped);
	}
	token_done(&tok);
	return r < 0 ? r : 0;
}
