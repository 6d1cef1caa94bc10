// SPDX-License-Identifier: GPL-2.0-or-later
/* The registry of the daemon's volumes (configured and discovered), their state, the audit
 * record that names one, and close/lock/release/rewrap. The lock guards state only: KMS calls
 * run outside it, under the volume's op_lock. */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "log.h"
#include "registry.h"
#include "token.h"
#include "util.h"

const char *const volume_state_names[] = {
	[VOLUME_PENDING] = "pending",	  [VOLUME_WAITING] = "waiting",
	[VOLUME_OPEN] = "open",		  [VOLUME_VERIFIED] = "verified",
	[VOLUME_FAILED] = "failed",	  [VOLUME_LOCKED] = "locked",
	[VOLUME_SUSPENDED] = "suspended", [VOLUME_REVOKED] = "revoked",
	[VOLUME_RELEASED] = "released",
};

int registry_init(struct registry *reg, size_t max)
{
	*reg = (struct registry){.max = max};
	pthread_mutex_init(&reg->lock, NULL);
	reg->volumes = calloc(max + 1, sizeof(*reg->volumes));
	return reg->volumes ? 0 : -ENOMEM;
}

void registry_done(struct registry *reg)
{
	for (size_t i = 0; i < reg->n; i++) {
		struct volume *v = &reg->volumes[i];

		free(v->name);
		free(v->device_spec);
		free(v->key_id);
		pthread_mutex_destroy(&v->op_lock);
	}
	free(reg->volumes);
	reg->volumes = NULL;
	reg->n = 0;
	pthread_mutex_destroy(&reg->lock);
}

static int add_volume(struct registry *reg, const char *name, const char *device, struct kms *kms,
		      const char *key_id, bool required, const struct volume_config *cfg)
{
	struct volume *v;

	if (reg->n >= reg->max)
		return -ENOSPC;
	v = &reg->volumes[reg->n];
	*v = (struct volume){.name = strdup(name),
			     .device_spec = strdup(device),
			     .kms = kms,
			     .key_id = key_id ? strdup(key_id) : NULL,
			     .required = required,
			     .discovered = !cfg,
			     .cfg = cfg,
			     .st = {.keyslot = -1, .since_us = now_real_us()}};
	pthread_mutex_init(&v->op_lock, NULL);
	if (!v->name || !v->device_spec || (key_id && !v->key_id)) {
		free(v->name);
		free(v->device_spec);
		free(v->key_id);
		pthread_mutex_destroy(&v->op_lock);
		return -ENOMEM;
	}
	reg->n++;
	return 0;
}

int registry_add(struct registry *reg, const struct volume_config *vc)
{
	return add_volume(reg, vc->name, vc->device, vc->kms, vc->key_id, vc->required, vc);
}

static bool device_is_configured(const struct keyd_config *cfg, const char *devname,
				 const char *uuid)
{
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		const char *spec = cfg->volumes[i].device;

		if (strcmp(spec, devname) == 0)
			return true;
		if (uuid && strncmp(spec, "UUID=", 5) == 0 && strcmp(spec + 5, uuid) == 0)
			return true;
	}
	return false;
}

/* Discovered volumes are never required: only the config can make a volume a boot
 * dependency. */
int registry_discover(struct registry *reg, const struct keyd_config *cfg)
{
	blkid_dev_iterate it;
	blkid_cache cache;
	blkid_dev dev;

	if (blkid_get_cache(&cache, "/dev/null") < 0)
		return -ENOMEM;
	blkid_probe_all(cache);
	it = blkid_dev_iterate_begin(cache);
	blkid_dev_set_search(it, "TYPE", "crypto_LUKS");
	while (reg->n < reg->max && blkid_dev_next(it, &dev) == 0) {
		const char *devname = blkid_dev_devname(dev);
		_cleanup_crypt_ struct crypt_device *cd = NULL;
		struct keyd_token tok;
		struct error je;
		struct kms *kms;

		if (cryptsetup_load(devname, &cd) < 0 ||
		    device_is_configured(cfg, devname, crypt_get_uuid(cd)))
			continue;
		if (token_find(cd, &tok, &je) <= 0)
			continue;
		kms = config_find_kms(cfg, tok.kms);
		if (!kms)
			log_warning(
				"%s: keyd token names KMS '%s', which is not configured; skipped",
				devname, tok.kms);
		else if (registry_find(reg, tok.name) || !volume_name_valid(tok.name))
			log_warning("%s: volume name '%s' is taken or invalid; skipped", devname,
				    tok.name);
		else if (add_volume(reg, tok.name, devname, kms, NULL, false, NULL) == 0)
			log_info("%s: discovered keyd volume '%s'", devname, tok.name);
		token_done(&tok);
	}
	blkid_dev_iterate_end(it);
	blkid_put_cache(cache);
	return 0;
}

struct volume *registry_find(struct registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->volumes[i].name, name) == 0)
			return &reg->volumes[i];
	return NULL;
}

void registry_wake(struct registry *reg)
{
	if (reg->wake)
		event_active(reg->wake, EV_READ, 0);
}

void registry_status(struct registry *reg, struct volume *v, struct volume_status *ret)
{
	pthread_mutex_lock(&reg->lock);
	*ret = v->st;
	pthread_mutex_unlock(&reg->lock);
}

enum volume_state registry_state(struct registry *reg, struct volume *v)
{
	enum volume_state s;

	pthread_mutex_lock(&reg->lock);
	s = v->st.state;
	pthread_mutex_unlock(&reg->lock);
	return s;
}

const char *registry_key_id_locked(const struct volume *v)
{
	return v->st.token_key_id[0] ? v->st.token_key_id : v->key_id ? v->key_id : "";
}

const char *registry_key_id(struct registry *reg, struct volume *v, char *buf, size_t size)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(buf, size, "%s", registry_key_id_locked(v));
	pthread_mutex_unlock(&reg->lock);
	return buf;
}

bool registry_device(struct registry *reg, struct volume *v, char *buf, size_t size)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(buf, size, "%s", v->st.state == VOLUME_RELEASED ? "" : v->st.device);
	pthread_mutex_unlock(&reg->lock);
	return buf[0] != 0;
}

void registry_set_state(struct registry *reg, struct volume *v, enum volume_state s,
			const char *msg)
{
	pthread_mutex_lock(&reg->lock);
	v->st.state = s;
	v->st.since_us = now_real_us();
	snprintf(v->st.error, sizeof(v->st.error), "%s", msg ? msg : "");
	pthread_mutex_unlock(&reg->lock);
	registry_wake(reg);
}

void registry_set_attempts(struct registry *reg, struct volume *v, unsigned attempts)
{
	pthread_mutex_lock(&reg->lock);
	v->st.attempts = attempts;
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_device(struct registry *reg, struct volume *v, const char *device)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(v->st.device, sizeof(v->st.device), "%s", device);
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_token(struct registry *reg, struct volume *v, const char *uuid,
			const char *key_id)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(v->st.uuid, sizeof(v->st.uuid), "%s", uuid);
	snprintf(v->st.token_key_id, sizeof(v->st.token_key_id), "%s", key_id);
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_unlocked(struct registry *reg, struct volume *v, const struct unlock_result *res,
			   bool ok)
{
	pthread_mutex_lock(&reg->lock);
	if (ok)
		v->st.revoked = false;
	snprintf(v->st.key_version, sizeof(v->st.key_version), "%s", res->key_version);
	snprintf(v->st.step, sizeof(v->st.step), "%s", res->step);
	v->st.keyslot = res->keyslot;
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_revoked(struct registry *reg, struct volume *v, bool was_open,
			  enum revoke_cause cause, bool shred)
{
	pthread_mutex_lock(&reg->lock);
	v->st.was_open |= was_open;
	v->st.revoked = true;
	v->st.revoked_by = cause;
	v->st.shredded |= shred;
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_restored(struct registry *reg, struct volume *v)
{
	pthread_mutex_lock(&reg->lock);
	v->st.revoked = v->st.was_open = false;
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_key(struct registry *reg, struct volume *v, int keyslot, const char *key_version)
{
	pthread_mutex_lock(&reg->lock);
	v->st.keyslot = keyslot;
	snprintf(v->st.key_version, sizeof(v->st.key_version), "%s", key_version);
	pthread_mutex_unlock(&reg->lock);
}

void registry_set_pending_locked(struct volume *v)
{
	v->st.attempts = 0;
	v->st.state = VOLUME_PENDING;
}

void registry_audit(struct registry *reg, const char *type, const char *result, json_t *subject,
		    struct volume *v, json_t *extra, const char *error)
{
	json_auto_t *object = NULL;
	int r;

	if (!reg->audit)
		return;
	if (v) {
		pthread_mutex_lock(&reg->lock);
		object = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "volume", v->name, "device",
				   v->st.device[0] ? v->st.device : v->device_spec, "luks_uuid",
				   v->st.uuid, "kms", v->kms->name, "key_id",
				   registry_key_id_locked(v), "key_version", v->st.key_version);
		pthread_mutex_unlock(&reg->lock);
	}
	if (extra) {
		if (!object)
			object = json_object();
		json_object_update(object, extra);
	}
	r = audit_write(reg->audit, type, result, subject, object,
			error && error[0] ? error : NULL);
	if (r < 0)
		log_error_errno(r, "cannot write the audit record %s: %m", type);
}

int registry_close_mapping(struct registry *reg, struct volume *v, struct error *err)
{
	int r;

	(void)reg;
	if (v->st.state != VOLUME_OPEN && v->st.state != VOLUME_SUSPENDED)
		return 0;
	r = luks_deactivate(v->name);
	if (r == -EBUSY)
		return error_set(
			err, r, "/dev/mapper/%s is in use (mounted or held open); unmount it first",
			v->name);
	if (r < 0 && r != -ENODEV)
		return error_set(err, r, "closing /dev/mapper/%s: %s", v->name, strerror(-r));
	return 0;
}

/* The volume's op_lock without waiting: -EBUSY while it is being unlocked, rotated or revoked. */
static int take_op_lock(struct volume *v, struct error *err)
{
	if (v->worker_running || pthread_mutex_trylock(&v->op_lock) != 0)
		return error_set(err, -EBUSY,
				 "%s is busy (being unlocked, rotated or revoked); try again",
				 v->name);
	return 0;
}

int registry_lock_volume(struct registry *reg, struct volume *v, struct error *err)
{
	int r;

	/* Locking would make a released volume unlockable again. */
	if (v->st.state == VOLUME_RELEASED)
		return error_set(err, -ESTALE,
				 "'%s' was released (decommissioned): there is nothing to lock",
				 v->name);
	r = take_op_lock(v, err);
	if (r < 0)
		return r;
	r = registry_close_mapping(reg, v, err);
	pthread_mutex_unlock(&v->op_lock);
	if (r < 0)
		return r;
	log_info("%s: locked", v->name);
	v->st.state = VOLUME_LOCKED;
	v->st.since_us = now_real_us();
	v->st.error[0] = 0;
	return 0;
}

/* libcryptsetup hands the volume key to dm-crypt through the kernel keyring as a "logon" key
 * named "cryptsetup:<UUID>-d<segment>"; any left linked in a keyring keyd can reach goes. */
static int drop_keyring_keys(const char *uuid)
{
	static const long rings[] = {KEY_SPEC_THREAD_KEYRING, KEY_SPEC_PROCESS_KEYRING,
				     KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING};
	int dropped = 0;

	for (int seg = 0; seg < 4; seg++) {
		char desc[LUKS_UUID_MAX + 32];

		snprintf(desc, sizeof(desc), "cryptsetup:%s-d%d", uuid, seg);
		for (size_t i = 0; i < ELEMENTSOF(rings); i++) {
			long id = syscall(SYS_keyctl, KEYCTL_SEARCH, rings[i], "logon", desc, 0);

			if (id >= 0 && syscall(SYS_keyctl, KEYCTL_INVALIDATE, id) == 0)
				dropped++;
		}
	}
	return dropped;
}

int registry_release(struct registry *reg, struct volume *v, struct error *err, json_t **ret_report)
{
	bool was_mapped = v->st.state == VOLUME_OPEN || v->st.state == VOLUME_SUSPENDED;
	_cleanup_close_ int fd = -1;
	bool flushed = false;
	int r, keys;

	r = take_op_lock(v, err);
	if (r < 0)
		return r;
	r = registry_close_mapping(reg, v, err);
	if (r < 0) {
		pthread_mutex_unlock(&v->op_lock);
		return r;
	}
	keys = v->st.uuid[0] ? drop_keyring_keys(v->st.uuid) : 0;
	/* The page cache of the raw device holds ciphertext only, but decommissioning leaves
	 * nothing of the volume cached: write back and drop its buffers. */
	if (v->st.device[0]) {
		fd = open(v->st.device, O_RDONLY | O_CLOEXEC);
		flushed = fd >= 0 && fsync(fd) == 0 && ioctl(fd, BLKFLSBUF, 0) == 0;
	}
	v->st.state = VOLUME_RELEASED;
	v->st.since_us = now_real_us();
	v->st.revoked = false;
	snprintf(v->st.error, sizeof(v->st.error),
		 "released%s: keyd holds no key for it and will not unlock it again",
		 was_mapped ? " (mapping closed)" : "");
	*ret_report = json_pack("{s:b, s:i, s:b}", "mapping_closed", was_mapped,
				"keyring_keys_removed", keys, "buffers_flushed", flushed);
	pthread_mutex_unlock(&v->op_lock);
	log_notice("%s: released (mapping %s, %d keyring key(s) removed, buffers %s)", v->name,
		   was_mapped ? "closed" : "was not open", keys,
		   flushed ? "flushed" : "not flushed");
	return 0;
}

void registry_log_changes(const char *device, const struct token_changes *changes)
{
	char what[128];

	for (int i = 0; i < changes->n; i++)
		log_info("%s: %s", device,
			 token_change_describe(&changes->c[i], what, sizeof(what)));
}

int registry_rewrap(struct registry *reg, struct volume *v, const char *device,
		    const struct kms_wrapped *rewrapped, const char *reason,
		    struct rotate_result *rr, struct error *err)
{
	json_auto_t *versions = NULL;
	int r;

	r = volume_rewrap(device, v->kms, rewrapped, rr, err);
	registry_log_changes(device, &rr->changes);
	if (r < 0) {
		registry_audit(reg, "volume.rewrap", "failure", NULL, v, NULL, err->msg);
		return r;
	}
	pthread_mutex_lock(&reg->lock);
	snprintf(v->st.key_version, sizeof(v->st.key_version), "%s", rr->new_version);
	pthread_mutex_unlock(&reg->lock);
	versions = json_pack("{s:s, s:s, s:s*}", "old_key_version", rr->old_version,
			     "new_key_version", rr->new_version, "reason", reason);
	registry_audit(reg, "volume.rewrap", "success", NULL, v, versions, NULL);
	if (reason)
		log_info("%s: %s: token rewrapped from key version %s to %s", v->name, reason,
			 rr->old_version[0] ? rr->old_version : "-",
			 rr->new_version[0] ? rr->new_version : "-");
	else
		log_info("%s: token rewrapped from key version %s to %s (returned by unwrap)",
			 v->name, rr->old_version[0] ? rr->old_version : "-",
			 rr->new_version[0] ? rr->new_version : "-");
	return 0;
}

void registry_keep_rewrapped(struct registry *reg, struct volume *v, const char *device,
			     struct unlock_result *res)
{
	struct rotate_result rr;
	struct error err;

	if (!res->rewrapped.wdek)
		return;
	if (registry_rewrap(reg, v, device, &res->rewrapped, NULL, &rr, &err) < 0) {
		log_warning("%s: could not store the rewrapped key the KMS returned: %s", v->name,
			    err.msg);
		return;
	}
	snprintf(res->key_version, sizeof(res->key_version), "%s", rr.new_version);
}
