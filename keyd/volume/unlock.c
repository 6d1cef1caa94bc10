// SPDX-License-Identifier: GPL-2.0-or-later
/* Unlock, step by step: read the header, converge, find the token (where a mapping of this
 * very volume is adopted), unwrap it bound to the header's UUID, open the keyslot. The DEK
 * lives only in secure memory and only for the call; each step's start is logged at debug
 * level, with the wall and CPU time (this thread's) since the unlock began. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reencrypt.h"
#include "secmem.h"
#include "unlock.h"
#include "unwrap_any.h"
#include "util.h"

struct unlock_run {
	const struct unlock_request *req;
	struct unlock_result *res;
	uint64_t t0, cpu0;
};

/* Names the step in res->step (what a failure reports) and logs its start at debug level. */
static void unlock_step(struct unlock_run *x, const char *step)
{
	snprintf(x->res->step, sizeof(x->res->step), "%s", step);
	log_debug("%s: %s (+%.2f ms, CPU %.2f ms)", x->req->device, step,
		  (double)(now_mono_us() - x->t0) / 1000,
		  (double)(thread_cpu_us() - x->cpu0) / 1000);
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

/* What the unlock went through: the KMS that answered, its key and version. */
static void unlock_record_wrap(struct unlock_result *res, const struct token_wrap *w)
{
	snprintf(res->kms, sizeof(res->kms), "%s", w->kms);
	snprintf(res->key_id, sizeof(res->key_id), "%s", w->key_id);
	snprintf(res->key_version, sizeof(res->key_version), "%s",
		 w->key_version ? w->key_version : "");
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
		return error_set(err, -ENOKEY, "%s has %s", req->device, TOKEN_UNFINISHED);
	res->keyslot = tok->keyslot;
	res->token = tok->id;
	unlock_record_wrap(res, &tok->wrap[0]);
	res->n_wraps = tok->n_wraps;
	for (unsigned i = 0; i < tok->n_wraps; i++) {
		const struct token_wrap *w = &tok->wrap[i];

		snprintf(res->wraps[i].kms, sizeof(res->wraps[i].kms), "%s", w->kms);
		snprintf(res->wraps[i].key_id, sizeof(res->wraps[i].key_id), "%s", w->key_id);
		snprintf(res->wraps[i].key_version, sizeof(res->wraps[i].key_version), "%s",
			 w->key_version ? w->key_version : "");
	}
	r = unwrap_any_candidates(req->keys, req->n_keys, tok, (int[KMS_KEYS_MAX]){0}, err);
	return r < 0 ? error_prefix(err, r, "%s", req->device) : 0;
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
	if (r < 0 && reencrypt_stuck(cd, r))
		return reencrypt_stuck_error(err, req->device, tok->keyslot);
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
	struct unlock_run x = {
		.req = req, .res = res, .t0 = now_mono_us(), .cpu0 = thread_cpu_us()};
	struct unwrap_any_result any;
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
		r = token_converge(cd, req->keys, req->n_keys, &res->converged, err);
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
		r = unwrap_any(req->keys, req->n_keys, &tok, res->uuid, &dek, &any, req->wait,
			       req->userdata, req->stop, err);
		if (r >= 0) {
			unlock_record_wrap(res, &tok.wrap[any.wrap]);
			res->rewrapped = any.rewrapped;
		}
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
