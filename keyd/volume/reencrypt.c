// SPDX-License-Identifier: GPL-2.0-or-later
/* Re-encryption with a new volume key through libcryptsetup. The DEK lives in secure memory for
 * the call only; the keyd token is written before libcryptsetup's reencryption metadata exists,
 * never while it does (libcryptsetup refuses token writes then). A library: it neither prints
 * nor logs; progress goes to the caller's callback. docs/reencrypt.md walks through every state
 * a crash can leave. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "reencrypt.h"
#include "rotate.h"
#include "secmem.h"
#include "token.h"
#include "util.h"

/* --- The header as libcryptsetup dumps it: digests tie keyslots to data segments. --- */

static int id_num(const char *s)
{
	uint32_t v;

	return s && parse_u32(s, &v) == 0 && v < 1000 ? (int)v : -1;
}

static bool array_has(json_t *a, int id)
{
	size_t i;
	json_t *v;

	json_array_foreach (a, i, v)
		if (id_num(json_string_value(v)) == id)
			return true;
	return false;
}

static json_t *header_json(struct crypt_device *cd)
{
	const char *dump = NULL;

	if (crypt_dump_json(cd, &dump, 0) < 0 || !dump)
		return NULL;
	return json_loads(dump, 0, NULL);
}

/* The digest (that is, the volume key) of keyslot @slot, or of segment @segment; -1 if none. */
static int digest_of(json_t *hdr, const char *what, int id)
{
	const char *d;
	json_t *v;

	json_object_foreach (json_object_get(hdr, "digests"), d, v)
		if (array_has(json_object_get(v, what), id))
			return id_num(d);
	return -1;
}

/* The segment carrying @flag ("backup-previous": the old volume key's, "backup-final": the
 * new one's), or -1. */
static int segment_flagged(json_t *hdr, const char *flag)
{
	const char *s;
	json_t *v, *f;
	size_t i;

	json_object_foreach (json_object_get(hdr, "segments"), s, v)
		json_array_foreach (json_object_get(v, "flags"), i, f)
			if (json_is_string(f) && strcmp(json_string_value(f), flag) == 0)
				return id_num(s);
	return -1;
}

static size_t digest_keyslots(json_t *hdr, int digest)
{
	char id[16];

	snprintf(id, sizeof(id), "%d", digest);
	return json_array_size(
		json_object_get(json_object_get(json_object_get(hdr, "digests"), id), "keyslots"));
}

/* Bytes already under the new volume key: its data segments (a forward run grows the first
 * one). A "dynamic" size reaches the end of the device. */
static uint64_t done_bytes(json_t *hdr, int digest_new, uint64_t total)
{
	const char *s;
	json_t *v;
	uint64_t done = 0, n;

	json_object_foreach (json_object_get(hdr, "segments"), s, v) {
		const char *size = json_string_value(json_object_get(v, "size"));

		if (json_object_get(v, "flags") ||
		    digest_of(hdr, "segments", id_num(s)) != digest_new)
			continue;
		if (size && strcmp(size, "dynamic") == 0)
			return total;
		if (size && parse_u64(size, &n) == 0)
			done += n;
	}
	return done < total ? done : total;
}

/* Keyslots (bits) that hold a key of a data segment. */
static uint32_t bound_keyslots(struct crypt_device *cd)
{
	uint32_t bits = 0;

	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, s);

		if (st == CRYPT_SLOT_ACTIVE || st == CRYPT_SLOT_ACTIVE_LAST)
			bits |= UINT32_C(1) << s;
	}
	return bits;
}

/* --- The device: offline or under its mapping. --- */

/* The dm-crypt mapping of this LUKS2 volume among @device's holders: 1 with its name in @name,
 * 0 when nothing holds the device, -EBUSY (the holder in @name) when something else does.
 * libcryptsetup names its mappings' DM UUID "CRYPT-LUKS2-<UUID without dashes>-<name>". */
static int find_mapping(const char *device, const char *uuid, char *name, size_t size)
{
	char path[96], prefix[80], dmuuid[256];
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	DIR *d;
	int r = 0;

	if (stat(device, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode))
		return 0;
	n = (size_t)snprintf(prefix, sizeof(prefix), "CRYPT-LUKS2-");
	for (const char *c = uuid; *c && n + 2 < sizeof(prefix); c++)
		if (*c != '-')
			prefix[n++] = *c;
	prefix[n++] = '-';
	prefix[n] = 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(st.st_rdev),
		 minor(st.st_rdev));
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while (r != 1 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/block/%.32s/dm/uuid", e->d_name);
		if (read_line_file(path, dmuuid, sizeof(dmuuid)) == 0 &&
		    strncmp(dmuuid, prefix, strlen(prefix)) == 0) {
			snprintf(path, sizeof(path), "/sys/block/%.32s/dm/name", e->d_name);
			r = read_line_file(path, name, size) == 0 ? 1 : -EIO;
		} else {
			snprintf(name, size, "%.32s", e->d_name);
			r = -EBUSY;
		}
	}
	closedir(d);
	return r;
}

/* --- Steps. --- */

static int token_set_keyslot(struct crypt_device *cd, struct keyd_token *tok, int slot)
{
	char now[40], *saved = tok->updated;
	int r;

	format_rfc3339_us(now_real_us(), now, sizeof(now));
	tok->keyslot = slot;
	tok->updated = now;
	r = token_write(cd, tok);
	tok->updated = saved;
	return r < 0 ? r : 0;
}

/* Before a fresh start, undo what an interrupted earlier start left: the token already on the
 * new keyslot while that is still unbound, and unbound keyslots. An unbound keyslot holds a
 * key that encrypts no data of the volume (keyd makes them only as the new volume key of a
 * re-encryption that has not started), so removing it cannot cost data; one whose area a
 * crash half-wiped opens with nothing, so the test is "unbound", not "the DEK opens it".
 * What it did goes to res (token_moved_*, unbound_removed). Returns the number of changes. */
static int reencrypt_tidy(struct crypt_device *cd, struct keyd_token *tok, const uint8_t *dek,
			  struct reencrypt_result *res, struct error *err)
{
	crypt_keyslot_info st = crypt_keyslot_status(cd, tok->keyslot);
	int changes = 0, r;

	if (st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST) {
		int slot = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)dek,
							LUKS_DEK_LEN, 0);

		if (slot < 0)
			return error_set(
				err, slot,
				"the data key opens no keyslot of the data (token %d names "
				"keyslot %d)",
				tok->id, tok->keyslot);
		res->token_moved_from = tok->keyslot;
		r = token_set_keyslot(cd, tok, slot);
		if (r < 0)
			return error_set(err, r, "write token %d: %s", tok->id, strerror(-r));
		res->token_moved_to = slot;
		changes++;
	}
	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++) {
		if (crypt_keyslot_status(cd, s) != CRYPT_SLOT_UNBOUND)
			continue;
		r = crypt_keyslot_destroy(cd, s);
		if (r < 0)
			return error_set(err, r, "remove keyslot %d: %s", s, strerror(-r));
		res->unbound_removed |= UINT32_C(1) << s;
		changes++;
	}
	return changes;
}

/* Start, step (2): a keyslot of the new volume key (that of keyslot @slot) for the kept
 * passphrase, which opens keyslot @keep, at the cost its old keyslot had. */
static int reencrypt_keep_keyslot(struct crypt_device *cd, const struct reencrypt_request *req,
				  int slot, int keep, const uint8_t *dek,
				  struct reencrypt_result *res, struct error *err)
{
	_cleanup_secure_ uint8_t *vk = NULL;
	size_t vk_len = (size_t)crypt_get_volume_key_size(cd);
	struct crypt_pbkdf_type pbkdf;
	int r;

	vk = secmem_alloc(vk_len);
	r = vk ? crypt_volume_key_get(cd, slot, (char *)vk, &vk_len, (const char *)dek,
				      LUKS_DEK_LEN)
	       : -ENOMEM;
	if (r >= 0)
		r = crypt_keyslot_get_pbkdf(cd, keep, &pbkdf);
	if (r >= 0) {
		pbkdf.flags |= CRYPT_PBKDF_NO_BENCHMARK;
		r = crypt_set_pbkdf_type(cd, &pbkdf);
	}
	if (r >= 0)
		r = crypt_keyslot_add_by_key(
			cd, CRYPT_ANY_SLOT, (const char *)vk, vk_len, (const char *)req->keep,
			req->keep_len, CRYPT_VOLUME_KEY_NO_SEGMENT | CRYPT_VOLUME_KEY_DIGEST_REUSE);
	if (r < 0)
		return error_set(err, r, "add a keyslot of the new volume key for the key file: %s",
				 strerror(-r));
	res->keep_old = keep;
	res->keep_new = r;
	return 0;
}

/* Undoes a fresh start's steps (1)-(3). The new keyslots go only once the token is off them:
 * destroying a keyslot unassigns it from its token, and a token without keyslot would be
 * retired with its WDEK. If this fails, the next run's reencrypt_tidy() does the same. */
static void reencrypt_start_undo(struct crypt_device *cd, struct keyd_token *tok, int old,
				 struct reencrypt_result *res)
{
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE ||
	    (tok->keyslot != old && token_set_keyslot(cd, tok, old) != 0))
		return;
	if (res->keep_new >= 0)
		crypt_keyslot_destroy(cd, res->keep_new);
	crypt_keyslot_destroy(cd, res->new_keyslot);
	res->keep_new = res->new_keyslot = -1;
}

/* A fresh start, each step one header write: (1) a keyslot of a new volume key for the DEK,
 * unbound; (2) one for the kept passphrase; (3) the token names the new keyslot; (4)
 * libcryptsetup's reencryption metadata. A failure before (4) undoes (1)-(3). */
static int reencrypt_start(struct crypt_device *cd, const struct reencrypt_request *req,
			   const char *name, struct keyd_token *tok, const uint8_t *dek,
			   struct reencrypt_result *res, struct error *err)
{
	struct crypt_params_luks2 luks2 = {.sector_size = (uint32_t)crypt_get_sector_size(cd)};
	struct crypt_params_reencrypt params = {
		.mode = CRYPT_REENCRYPT_REENCRYPT,
		.direction = CRYPT_REENCRYPT_FORWARD,
		.resilience = REENCRYPT_RESILIENCE,
		.hash = REENCRYPT_HASH,
		.max_hotzone_size = REENCRYPT_HOTZONE_BYTES >> 9,
		.luks2 = &luks2,
	};
	int vk_size = crypt_get_volume_key_size(cd), old = tok->keyslot, slot, keep = -1, r;
	char cipher[64], mode[64];

	/* Same cipher, key size and sector size: only the key changes. */
	if (!crypt_get_cipher(cd) || !crypt_get_cipher_mode(cd) || vk_size <= 0)
		return error_set(err, -EINVAL, "the header names no cipher for the data");
	snprintf(cipher, sizeof(cipher), "%s", crypt_get_cipher(cd));
	snprintf(mode, sizeof(mode), "%s", crypt_get_cipher_mode(cd));
	if (req->keep) {
		keep = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT,
						    (const char *)req->keep, req->keep_len, 0);
		if (keep < 0)
			return error_set(err, keep, "the key file opens no keyslot: %s",
					 keep == -EPERM ? "wrong passphrase" : strerror(-keep));
		keep = keep == old ? -1 : keep;
	}

	r = luks_set_keyd_pbkdf(cd);
	if (r < 0)
		return error_set(err, r, "set PBKDF: %s", strerror(-r));
	slot = crypt_keyslot_add_by_key(cd, CRYPT_ANY_SLOT, NULL, (size_t)vk_size,
					(const char *)dek, LUKS_DEK_LEN,
					CRYPT_VOLUME_KEY_NO_SEGMENT);
	if (slot < 0)
		return error_set(err, slot, "add a keyslot for the new volume key: %s",
				 strerror(-slot));
	res->old_keyslot = old;
	res->new_keyslot = slot;

	r = keep >= 0 ? reencrypt_keep_keyslot(cd, req, slot, keep, dek, res, err) : 0;
	/* The token moves now: libcryptsetup removes the old keyslot when it finishes, and
	 * refuses token writes until then. A token naming no keyslot would be retired by
	 * token_converge(). */
	if (r >= 0) {
		r = token_set_keyslot(cd, tok, slot);
		if (r < 0)
			error_set(err, r, "write token %d: %s", tok->id, strerror(-r));
	}
	if (r >= 0) {
		r = crypt_reencrypt_init_by_passphrase(cd, name, (const char *)dek, LUKS_DEK_LEN,
						       old, slot, cipher, mode, &params);
		if (r < 0)
			error_set(err, r, "start the re-encryption: %s%s",
				  r == -EBUSY ? "the device is in use (mounted or mapped?)"
					      : strerror(-r),
				  crypt_reencrypt_status(cd, NULL) == CRYPT_REENCRYPT_NONE
					  ? ""
					  : "; the header records it: run it again to resume");
	}
	if (r < 0)
		reencrypt_start_undo(cd, tok, old, res);
	return r < 0 ? r : 0;
}

/* The digests of the old and the new volume key of a re-encryption (-1: none recorded). */
static void reencrypt_digests(json_t *hdr, int *dold, int *dnew)
{
	*dnew = hdr ? digest_of(hdr, "segments", segment_flagged(hdr, "backup-final")) : -1;
	*dold = hdr ? digest_of(hdr, "segments", segment_flagged(hdr, "backup-previous")) : -1;
}

/* Whether a header in reencryption has every byte of data under the new volume key: no
 * segment in reencryption, and the data segments all of the new key's digest. A forward run
 * cut after committing its last step and before finishing leaves it; libcryptsetup 2.6.1 (and
 * main) then counts one data segment as offset 0 (_offset_forward) whatever its key, and a
 * resume re-encrypts the finished data from the start: decrypted with the old key, it is
 * garbage (docs/upstream/cryptsetup-reencrypt-resume-finished.md). */
static bool reencrypt_data_done(struct crypt_device *cd)
{
	json_auto_t *hdr = header_json(cd);
	const char *s;
	json_t *v;
	int dold, dnew, data = 0;

	reencrypt_digests(hdr, &dold, &dnew);
	if (dnew < 0 || dold < 0 || dold == dnew || segment_flagged(hdr, "in-reencryption") >= 0)
		return false;
	json_object_foreach (json_object_get(hdr, "segments"), s, v) {
		if (json_array_size(json_object_get(v, "flags")))
			continue; /* the backups */
		if (digest_of(hdr, "segments", id_num(s)) != dnew)
			return false;
		data++;
	}
	return data > 0;
}

/* Returns 1 when the recovery of a crashed last step finished the whole re-encryption. */
static int reencrypt_resume(struct crypt_device *cd, const char *name, const uint8_t *dek,
			    crypt_reencrypt_info ri, int keyslot, struct error *err)
{
	struct crypt_params_reencrypt params = {.max_hotzone_size = REENCRYPT_HOTZONE_BYTES >> 9,
						.flags = CRYPT_REENCRYPT_RESUME_ONLY};
	int r;

	if (ri == CRYPT_REENCRYPT_CRASH) {
		/* Killed inside a step: the resilience data tells which of its sectors were
		 * already written; libcryptsetup finishes the step from it. */
		r = crypt_reencrypt_init_by_passphrase(
			cd, NULL, (const char *)dek, LUKS_DEK_LEN, CRYPT_ANY_SLOT, CRYPT_ANY_SLOT,
			NULL, NULL,
			&(struct crypt_params_reencrypt){.flags = CRYPT_REENCRYPT_RECOVERY});
		if (r < 0 && reencrypt_stuck(cd, r))
			return reencrypt_stuck_error(err, crypt_get_device_name(cd), keyslot);
		if (r < 0)
			return error_set(err, r, "recover the interrupted step: %s", strerror(-r));
		if (crypt_reencrypt_status(cd, NULL) == CRYPT_REENCRYPT_NONE)
			return 1;
	}
	if (reencrypt_data_done(cd))
		return error_set(
			err, -ENOTRECOVERABLE,
			"the re-encryption of %s finished with the data (all of it under the new "
			"volume key, keyslot %d), but was cut before libcryptsetup's last header "
			"writes; libcryptsetup 2.6.1 would take this state for one not begun and "
			"re-encrypt the data a second time, destroying it, so keyd does not resume "
			"it. The data is whole and keyd still opens the volume: see \"Stuck at the "
			"end\" in docs/reencrypt.md",
			crypt_get_device_name(cd), keyslot);
	r = crypt_reencrypt_init_by_passphrase(cd, name, (const char *)dek, LUKS_DEK_LEN,
					       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &params);
	if (r < 0 && reencrypt_stuck(cd, r))
		return reencrypt_stuck_error(err, crypt_get_device_name(cd), keyslot);
	return r < 0 ? error_set(err, r, "resume the re-encryption: %s",
				 r == -EBUSY ? "the device is in use (mounted or mapped?)"
					     : strerror(-r))
		     : 0;
}

/* One call of volume_reencrypt: what it works on, and libcryptsetup's progress so far. */
struct reencrypt_run {
	const struct reencrypt_request *req;
	struct reencrypt_result *res;
	int lock; /* the rotation lock, an fd of the device */
	struct crypt_device *cd;
	crypt_reencrypt_info ri; /* as the header said when we began */
	struct keyd_token tok;
	uint8_t *dek; /* secure memory */
	uint64_t t0, start_done, last_offset;
	unsigned calls; /* from libcryptsetup */
};

static void reencrypt_run_done(struct reencrypt_run *x)
{
	token_done(&x->tok);
	secmem_free(x->dek);
	crypt_free(x->cd);
	if (x->lock >= 0)
		close(x->lock);
}

static int reencrypt_report(struct reencrypt_run *x, uint64_t total, uint64_t done)
{
	struct reencrypt_progress p = {
		.done = done,
		.total = total,
		.run_done = done > x->start_done ? done - x->start_done : 0,
		.elapsed_us = x->t0 ? now_mono_us() - x->t0 : 0,
	};

	x->res->done = p.done;
	x->res->total = p.total;
	x->res->run_bytes = p.run_done;
	return x->req->progress && x->req->progress(x->req->userdata, &p) != 0;
}

/* libcryptsetup calls once with the progress at the start, after each step with the progress
 * as it was *before* that step (it advances its counter after the call), and once more at the
 * end with everything done. A step is as long as the one before it; the first, at most
 * REENCRYPT_HOTZONE_BYTES. */
static int reencrypt_on_step(uint64_t size, uint64_t offset, void *u)
{
	struct reencrypt_run *x = u;
	uint64_t done = offset, len;

	if (x->calls++ == 0)
		x->start_done = offset;
	else if (offset < size) {
		len = x->calls > 2 && offset > x->last_offset ? offset - x->last_offset
							      : REENCRYPT_HOTZONE_BYTES;
		done = len < size - offset ? offset + len : size;
	}
	x->last_offset = offset;
	return reencrypt_report(x, size, done);
}

/* Proof from the header on disk: no reencryption left, the token names @slot, and the DEK
 * opens it. Returns the keyslots now bound. */
static int reencrypt_verify_finished(const char *device, int token, int slot, const uint8_t *dek,
				     uint32_t *bound, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token t;
	struct error je;
	int r;

	r = cryptsetup_load(device, &cd);
	if (r < 0)
		return error_set(err, r, "read the header back: %s", strerror(-r));
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
		return error_set(err, -EIO, "the header still records a re-encryption");
	r = token_find(cd, &t, &je);
	if (r < 0)
		return error_set(err, r, "read tokens: %s", je.msg);
	r = t.id == token && t.keyslot == slot ? 0 : -EIO;
	token_done(&t);
	if (r < 0)
		return error_set(err, r, "token %d does not name keyslot %d", token, slot);
	r = luks_activate(cd, NULL, slot, dek, LUKS_DEK_LEN, 0);
	if (r < 0)
		return error_set(err, r, "the data key does not open keyslot %d: %s", slot,
				 strerror(-r));
	*bound = bound_keyslots(cd);
	return 0;
}

/* The rotation lock, the header and what it allows; a header with no re-encryption under way
 * is converged first (token writes are refused during one). */
static int reencrypt_open(struct reencrypt_run *x, struct error *err)
{
	const struct reencrypt_request *req = x->req;
	uint32_t req_flags = 0;
	int r;

	x->lock = volume_lock_rotation(req->device);
	if (x->lock < 0)
		return error_set(err, x->lock, "lock %s: %s", req->device, strerror(-x->lock));
	r = cryptsetup_load(req->device, &x->cd);
	if (r < 0)
		return error_set(err, r, "read header of %s: %s", req->device,
				 cryptsetup_load_strerror(r));
	snprintf(x->res->uuid, sizeof(x->res->uuid), "%s", crypt_get_uuid(x->cd));
	x->ri = crypt_reencrypt_status(x->cd, NULL);
	if (x->ri == CRYPT_REENCRYPT_INVALID ||
	    crypt_persistent_flags_get(x->cd, CRYPT_FLAGS_REQUIREMENTS, &req_flags) < 0 ||
	    (req_flags & ~CRYPT_REQUIREMENT_ONLINE_REENCRYPT))
		return error_set(err, -EOPNOTSUPP,
				 "the header has requirements this libcryptsetup cannot re-encrypt "
				 "(0x%" PRIx32 ")",
				 req_flags);
	if (x->ri != CRYPT_REENCRYPT_NONE)
		return 0;
	if (req->resume_only)
		return error_set(err, -ENOENT, "%s has no interrupted re-encryption", req->device);
	r = token_converge(x->cd, &(struct kms_key){.kms = req->kms}, 1, &x->res->changes, err);
	if (r < 0)
		return r;
	x->res->converged = r;
	return 0;
}

/* The active token, and its DEK through the request's KMS. */
static int reencrypt_unwrap(struct reencrypt_run *x, struct error *err)
{
	struct error je;
	int r;

	r = token_find(x->cd, &x->tok, &je);
	if (r < 0)
		return error_set(err, r, "read tokens: %s", je.msg);
	if (x->tok.id < 0)
		return error_set(err, -ENOKEY, "%s is not enrolled (no active keyd token)",
				 x->req->device);
	x->res->token = x->tok.id;
	/* Any one KMS of a multi-KMS token will do: -EXDEV if the token has no wrap for it. */
	return token_unwrap(x->req->kms, &x->tok, x->res->uuid, &x->dek, NULL, NULL, NULL, NULL,
			    err);
}

/* Online under the volume's own mapping; offline only when nothing holds the device
 * (libcryptsetup then holds it open exclusively, so nothing can map or mount it). */
static int reencrypt_where(struct reencrypt_run *x, struct error *err)
{
	const struct reencrypt_request *req = x->req;
	struct reencrypt_result *res = x->res;
	char why[160];
	int r, fd;

	if (req->name)
		snprintf(res->mapping, sizeof(res->mapping), "%s", req->name);
	else {
		r = find_mapping(req->device, res->uuid, res->mapping, sizeof(res->mapping));
		if (r == -EBUSY)
			return error_set(err, r,
					 "%s is in use by %s, which is not its dm-crypt mapping",
					 req->device, res->mapping);
		if (r <= 0)
			res->mapping[0] = 0;
	}
	if (res->mapping[0]) {
		if (!luks_dm_available(why, sizeof(why)))
			return error_set(err, -EOPNOTSUPP, "online re-encryption of %s: %s",
					 res->mapping, why);
		return 0;
	}
	/* libcryptsetup opens the device exclusively, but only after its metadata is written:
	 * find out first, while nothing has changed. */
	fd = open(req->device, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY)
		return error_set(err, -EBUSY,
				 "%s is in use (mounted, mapped or opened exclusively); offline "
				 "re-encryption needs it unused",
				 req->device);
	if (fd >= 0)
		close(fd);
	return 0;
}

bool reencrypt_stuck(struct crypt_device *cd, int r)
{
	json_auto_t *hdr = header_json(cd);
	int dold, dnew;

	reencrypt_digests(hdr, &dold, &dnew);
	return dnew >= 0 && dold >= 0 && dold != dnew &&
	       (digest_keyslots(hdr, dold) == 0 || r == -ENOENT);
}

int reencrypt_stuck_error(struct error *err, const char *device, int keyslot)
{
	return error_set(err, -ENOTRECOVERABLE,
			 "the re-encryption of %s finished, but libcryptsetup was stopped while "
			 "removing the old volume key's keyslots, before its last header write; it "
			 "cannot resume from there. The data is whole under the new key (keyslot "
			 "%d): see \"Stuck at the end\" in docs/reencrypt.md",
			 device, keyslot);
}

/* An interrupted re-encryption: keyd's own (the token is on the new volume key's keyslot),
 * resumable (the old key's keyslots not yet removed), and how far it got. */
static int reencrypt_inspect_resume(struct reencrypt_run *x, struct error *err)
{
	json_auto_t *hdr = header_json(x->cd);
	int dnew, dold;

	reencrypt_digests(hdr, &dold, &dnew);
	if (dnew < 0 || dold < 0)
		return error_set(err, -EBADMSG, "cannot read the reencryption metadata");
	if (dold != dnew && digest_keyslots(hdr, dold) == 0)
		return reencrypt_stuck_error(err, x->req->device, x->tok.keyslot);
	if (digest_of(hdr, "keyslots", x->tok.keyslot) != dnew)
		return error_set(
			err, -EPROTO,
			"token %d names keyslot %d, which holds the old volume key: this "
			"re-encryption was not started by keyd, and finishing it would leave the "
			"token without a keyslot; finish it with cryptsetup and enroll again",
			x->tok.id, x->tok.keyslot);
	x->res->resumed = true;
	x->res->new_keyslot = x->tok.keyslot;
	x->start_done = done_bytes(hdr, dnew, x->res->total);
	return 0;
}

/* The data area's size, and what an interrupted run already did. */
static int reencrypt_measure(struct reencrypt_run *x, struct error *err)
{
	off_t size = lseek(x->lock, 0, SEEK_END);
	int r;

	if (size < 0) {
		r = negative_errno();
		return error_set(err, r, "size of %s: %s", x->req->device, strerror(-r));
	}
	x->res->total = (uint64_t)size - crypt_get_data_offset(x->cd) * 512;
	return x->ri == CRYPT_REENCRYPT_NONE ? 0 : reencrypt_inspect_resume(x, err);
}

/* Starts (after tidying) or resumes, then lets libcryptsetup run to the end or until the
 * progress callback stops it; @before: the keyslots bound before any change. */
static int reencrypt_go(struct reencrypt_run *x, uint32_t *before, struct error *err)
{
	struct reencrypt_result *res = x->res;
	const char *name = res->mapping[0] ? res->mapping : NULL;
	int r;

	if (x->ri == CRYPT_REENCRYPT_NONE) {
		r = reencrypt_tidy(x->cd, &x->tok, x->dek, res, err);
		if (r < 0)
			return r;
		res->converged += r;
		*before = bound_keyslots(x->cd);
		r = reencrypt_start(x->cd, x->req, name, &x->tok, x->dek, res, err);
	} else {
		*before = bound_keyslots(x->cd);
		r = reencrypt_resume(x->cd, name, x->dek, x->ri, x->tok.keyslot, err);
	}
	if (r < 0)
		return r;

	x->t0 = now_mono_us();
	r = r > 0 ? 0 : crypt_reencrypt_run(x->cd, reencrypt_on_step, x);
	res->run_us = now_mono_us() - x->t0;
	if (r < 0)
		return error_set(err, r,
				 "re-encrypting at %.1f%%: %s; the header records how far it got: "
				 "run it again to resume",
				 res->total ? 100.0 * (double)res->done / (double)res->total : 0.0,
				 strerror(-r));
	if (crypt_reencrypt_status(x->cd, NULL) != CRYPT_REENCRYPT_NONE)
		return error_set(
			err, -EINTR,
			"stopped at %.1f%%; the header records how far it got: run it again to "
			"resume",
			res->total ? 100.0 * (double)res->done / (double)res->total : 0.0);
	return 0;
}

int volume_reencrypt(const struct reencrypt_request *req, struct reencrypt_result *res,
		     struct error *err)
{
	_cleanup_(reencrypt_run_done) struct reencrypt_run x = {
		.req = req, .res = res, .lock = -1, .tok = {.id = -1, .keyslot = -1}};
	uint32_t before = 0, after = 0;
	int r;

	*res = (struct reencrypt_result){.token = -1,
					 .old_keyslot = -1,
					 .new_keyslot = -1,
					 .keep_old = -1,
					 .keep_new = -1,
					 .token_moved_from = -1,
					 .token_moved_to = -1};
	r = reencrypt_open(&x, err);
	if (r >= 0)
		r = reencrypt_unwrap(&x, err);
	if (r >= 0)
		r = reencrypt_where(&x, err);
	if (r >= 0)
		r = reencrypt_measure(&x, err);
	if (r < 0)
		return r;
	/* The caller may still stop here: nothing has changed yet. */
	if (reencrypt_report(&x, res->total, x.start_done))
		return error_set(err, -EINTR, "stopped before starting; nothing changed");
	r = reencrypt_go(&x, &before, err);
	if (r < 0)
		return r;
	res->done = res->total;
	r = reencrypt_verify_finished(req->device, x.tok.id, x.tok.keyslot, x.dek, &after, err);
	if (r < 0)
		return r;
	res->removed = before & ~after;
	return 0;
}
