// SPDX-License-Identifier: GPL-2.0-or-later
/* The registry of the daemon's volumes (configured and discovered), their state, the audit
 * record that names one, and close/lock/release/rewrap. The lock guards state only: KMS calls
 * run outside it, under the volume's op_lock. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "log.h"
#include "messages.h"
#include "registry.h"
#include "token.h"
#include "util.h"

/* An empty value is no journal field: journalctl DEVICE= would match nothing useful. */
static const char *nonempty(const char *s)
{
	return s[0] ? s : NULL;
}

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
		for (size_t k = 0; k < v->n_keys; k++)
			free(v->keys[k].key_id);
		pthread_mutex_destroy(&v->op_lock);
	}
	free(reg->volumes);
	reg->volumes = NULL;
	reg->n = 0;
	pthread_mutex_destroy(&reg->lock);
}

static void volume_free_keys(struct volume *v)
{
	for (size_t k = 0; k < v->n_keys; k++)
		free(v->keys[k].key_id);
}

static int add_volume(struct registry *reg, const char *name, const char *device,
		      const struct kms_key *keys, size_t n_keys, bool required,
		      const struct volume_config *cfg)
{
	struct volume *v;
	bool ok = true;

	if (reg->n >= reg->max)
		return -ENOSPC;
	v = &reg->volumes[reg->n];
	*v = (struct volume){.name = strdup(name),
			     .device_spec = strdup(device),
			     .n_keys = n_keys,
			     .required = required,
			     .discovered = !cfg,
			     .cfg = cfg,
			     .st = {.keyslot = -1, .since_us = now_real_us()}};
	for (size_t k = 0; k < n_keys; k++) {
		v->keys[k].kms = keys[k].kms;
		v->keys[k].key_id = keys[k].key_id ? strdup(keys[k].key_id) : NULL;
		ok &= !keys[k].key_id || v->keys[k].key_id;
	}
	pthread_mutex_init(&v->op_lock, NULL);
	if (!v->name || !v->device_spec || !ok) {
		free(v->name);
		free(v->device_spec);
		volume_free_keys(v);
		pthread_mutex_destroy(&v->op_lock);
		return -ENOMEM;
	}
	reg->n++;
	return 0;
}

int registry_add(struct registry *reg, const struct volume_config *vc)
{
	return add_volume(reg, vc->name, vc->device, vc->keys, vc->n_keys, vc->required, vc);
}

/* A discovered volume's root keys: each wrap of its token whose KMS is configured. */
static size_t discovered_keys(const struct keyd_config *cfg, const struct keyd_token *tok,
			      struct kms_key *keys)
{
	size_t n = 0;

	for (unsigned i = 0; i < tok->n_wraps; i++) {
		struct kms *kms = config_find_kms(cfg, tok->wrap[i].kms);

		if (kms)
			keys[n++] = (struct kms_key){.kms = kms};
	}
	return n;
}

/* A configured volume's own device is not discovered a second time, whichever name the
 * configuration gives it. */
static bool device_is_configured(const struct keyd_config *cfg, const struct luks_device *d)
{
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		const char *spec = cfg->volumes[i].device;
		_cleanup_free_ char *node = NULL;

		if (strncmp(spec, "UUID=", 5) == 0) {
			if (strcasecmp(spec + 5, d->uuid) == 0)
				return true;
		} else if (luks_resolve_device(spec, &node, NULL) == 0 &&
			   luks_same_device(node, d->node)) {
			return true;
		}
	}
	return false;
}

/* One LUKS device that no configured volume names: a volume if its token is whole and names
 * a configured KMS. Every field of the token is input from the disk: whatever is wrong with
 * it is logged naming the device and the field, and only this device is skipped. */
static void discover_device(struct registry *reg, const struct keyd_config *cfg, const char *node)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok = {.id = -1, .keyslot = -1};
	struct kms_key keys[KMS_KEYS_MAX];
	struct error je = {.msg = ""};
	size_t n_keys;
	int r;

	if (cryptsetup_load(node, &cd) < 0)
		return; /* LUKS1, or a header libcryptsetup cannot read: carries no keyd token */
	r = token_find(cd, &tok, &je);
	if (r < 0) {
		log_warning("%s: bad keyd token, device not discovered: %s", node,
			    r == -EINVAL ? je.msg : strerror(-r));
		return;
	}
	if (r == 0)
		return;
	if (tok.id < 0) {
		log_notice("%s: %s; not discovered", node, TOKEN_UNFINISHED);
		return;
	}
	n_keys = discovered_keys(cfg, &tok, keys);
	if (!n_keys)
		log_warning("%s: keyd token %d names KMS '%s'%s, which is not configured; skipped",
			    node, tok.id, tok.kms, tok.n_wraps > 1 ? " and others" : "");
	else if (registry_find(reg, tok.name) || !volume_name_valid(tok.name))
		log_warning("%s: volume name '%s' is taken or invalid; skipped", node, tok.name);
	else if (add_volume(reg, tok.name, node, keys, n_keys, false, NULL) == 0) {
		struct volume *v = &reg->volumes[reg->n - 1];

		for (size_t k = 0; k < n_keys; k++)
			snprintf(v->st.keys[k].key_id, sizeof(v->st.keys[k].key_id), "%s",
				 tok.wrap[token_wrap_index(&tok, keys[k].kms->name)].key_id);
		log_info("%s: discovered keyd volume '%s'", node, tok.name);
	}
	token_done(&tok);
}

/* Discovered volumes are never required: only the config can make a volume a boot
 * dependency. A UUID on two devices is a cloned or restored header: neither is discovered,
 * since nothing on the disks says which one is the volume. */
int registry_discover(struct registry *reg, const struct keyd_config *cfg)
{
	struct luks_device *l;
	char clones[VOLUME_DEVICE_MAX];
	int n, i;

	n = luks_devices(&l);
	if (n < 0)
		return n;
	for (i = 0; i < n && reg->n < reg->max; i++) {
		if (device_is_configured(cfg, &l[i]))
			continue;
		if (luks_uuid_find(l, n, l[i].uuid, l[i].node, clones, sizeof(clones)) > 0)
			log_warning("%s: LUKS UUID %s is also on %s (a cloned or restored header); "
				    "not discovered: configure the volume by a stable path",
				    l[i].node, l[i].uuid, clones);
		else
			discover_device(reg, cfg, l[i].node);
	}
	for (; i < n; i++)
		if (!device_is_configured(cfg, &l[i])) {
			log_warning("discover: %s and any LUKS device after it not considered: at "
				    "most %zu volumes",
				    l[i].node, reg->max);
			break;
		}
	luks_devices_free(l, n);
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

const char *registry_key_id_of_locked(const struct volume *v, size_t k)
{
	if (k >= v->n_keys)
		return "";
	return v->st.keys[k].key_id[0] ? v->st.keys[k].key_id
	       : v->keys[k].key_id     ? v->keys[k].key_id
				       : "";
}

const char *registry_key_id_locked(const struct volume *v)
{
	return registry_key_id_of_locked(v, 0);
}

const char *registry_key_id_of(struct registry *reg, struct volume *v, size_t k, char *buf,
			       size_t size)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(buf, size, "%s", registry_key_id_of_locked(v, k));
	pthread_mutex_unlock(&reg->lock);
	return buf;
}

int registry_key_index(const struct volume *v, const char *kms)
{
	for (size_t k = 0; k < v->n_keys; k++)
		if (strcmp(v->keys[k].kms->name, kms) == 0)
			return (int)k;
	return -1;
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

static void set_state(struct registry *reg, struct volume *v, enum volume_state s, int r,
		      const char *msg)
{
	pthread_mutex_lock(&reg->lock);
	v->st.state = s;
	v->st.since_us = now_real_us();
	v->st.error_errno = r;
	snprintf(v->st.error, sizeof(v->st.error), "%s", msg ? msg : "");
	pthread_mutex_unlock(&reg->lock);
	registry_wake(reg);
}

void registry_set_state(struct registry *reg, struct volume *v, enum volume_state s,
			const char *msg)
{
	set_state(reg, v, s, 0, msg);
}

void registry_set_failed(struct registry *reg, struct volume *v, int r, const char *msg)
{
	set_state(reg, v, VOLUME_FAILED, r < 0 ? r : -EIO, msg);
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

void registry_set_token(struct registry *reg, struct volume *v, const struct unlock_result *res)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(v->st.uuid, sizeof(v->st.uuid), "%s", res->uuid);
	for (unsigned i = 0; i < res->n_wraps; i++) {
		int k = registry_key_index(v, res->wraps[i].kms);

		if (k < 0)
			continue;
		snprintf(v->st.keys[k].key_id, sizeof(v->st.keys[k].key_id), "%s",
			 res->wraps[i].key_id);
		snprintf(v->st.keys[k].key_version, sizeof(v->st.keys[k].key_version), "%s",
			 res->wraps[i].key_version);
	}
	pthread_mutex_unlock(&reg->lock);
}

size_t registry_set_key_revoked(struct registry *reg, struct volume *v, size_t k, bool revoked,
				bool destroyed, size_t *n_destroyed)
{
	size_t usable = 0, gone = 0;

	pthread_mutex_lock(&reg->lock);
	if (k < v->n_keys) {
		v->st.keys[k].revoked = revoked || destroyed;
		v->st.keys[k].destroyed = destroyed;
	}
	for (size_t i = 0; i < v->n_keys; i++) {
		usable += !v->st.keys[i].revoked;
		gone += v->st.keys[i].destroyed;
	}
	pthread_mutex_unlock(&reg->lock);
	if (n_destroyed)
		*n_destroyed = gone;
	return usable;
}

void registry_set_clones(struct registry *reg, struct volume *v, const char *others)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(v->st.uuid_also_on, sizeof(v->st.uuid_also_on), "%s", others);
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

void registry_set_key_rotated(struct registry *reg, struct volume *v, uint64_t rotated_us)
{
	pthread_mutex_lock(&reg->lock);
	v->st.key_rotated_us = rotated_us;
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

	/* Each operation writes its record once: that is where it is counted too. */
	metrics_count_operation(reg->metrics, type, result);
	if (!reg->audit)
		return;
	if (v) {
		pthread_mutex_lock(&reg->lock);
		object = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "volume", v->name, "device",
				   v->st.device[0] ? v->st.device : v->device_spec, "luks_uuid",
				   v->st.uuid, "kms", v->keys[0].kms->name, "key_id",
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
	log_struct(LOG_NOTICE, 0, MESSAGE_RELEASED,
		   (const char *const[]){"VOLUME", v->name, "DEVICE", nonempty(v->st.device), "KMS",
					 v->keys[0].kms->name, NULL},
		   "%s: released (mapping %s, %d keyring key(s) removed, buffers %s)", v->name,
		   was_mapped ? "closed" : "was not open", keys,
		   flushed ? "flushed" : "not flushed");
	return 0;
}

void registry_log_context(struct registry *reg, struct volume *v)
{
	/* Copied by log_context_set, under the lock. */
	pthread_mutex_lock(&reg->lock);
	log_context_set((const char *const[]){"VOLUME", v->name, "KMS", v->keys[0].kms->name,
					      "DEVICE", nonempty(v->st.device), "KEY_ID",
					      nonempty(registry_key_id_locked(v)), "KEY_VERSION",
					      nonempty(v->st.key_version), NULL});
	pthread_mutex_unlock(&reg->lock);
}

void registry_log_context_end(void)
{
	log_context_set(NULL);
}

void registry_log_changes(const char *device, const struct token_changes *changes)
{
	char what[128];

	for (int i = 0; i < changes->n; i++)
		log_info("%s: %s", device,
			 token_change_describe(&changes->c[i], what, sizeof(what)));
}

int registry_rewrap(struct registry *reg, struct volume *v, struct kms *kms, const char *device,
		    const struct kms_wrapped *rewrapped, const char *reason,
		    struct rotate_result *rr, struct error *err)
{
	json_auto_t *versions = NULL;
	int k = registry_key_index(v, kms->name), r;

	r = volume_rewrap(device, kms, rewrapped, reg->stop, rr, err);
	registry_log_changes(device, &rr->changes);
	if (r < 0) {
		json_auto_t *which = json_pack("{s:s}", "rewrap_kms", kms->name);

		registry_audit(reg, "volume.rewrap", "failure", NULL, v, which, err->msg);
		return r;
	}
	/* Stored either way: with nothing to rewrap (the token was rewrapped outside keyd, by
	 * keydctl rotate), the next poll must not ask the KMS for the same rewrap again. */
	pthread_mutex_lock(&reg->lock);
	if (k == 0)
		snprintf(v->st.key_version, sizeof(v->st.key_version), "%s", rr->new_version);
	if (k >= 0)
		snprintf(v->st.keys[k].key_version, sizeof(v->st.keys[k].key_version), "%s",
			 rr->new_version);
	pthread_mutex_unlock(&reg->lock);
	if (r > 0) {
		log_info("%s: nothing to rewrap: key version %s is the newest", v->name,
			 rr->old_version[0] ? rr->old_version : "-");
		return 0;
	}
	versions = json_pack("{s:s, s:s, s:s, s:s*}", "rewrap_kms", kms->name, "old_key_version",
			     rr->old_version, "new_key_version", rr->new_version, "reason", reason);
	registry_audit(reg, "volume.rewrap", "success", NULL, v, versions, NULL);
	log_struct(LOG_INFO, 0, MESSAGE_REWRAPPED,
		   (const char *const[]){"VOLUME", v->name, "DEVICE", device, "KMS", kms->name,
					 "KEY_VERSION", nonempty(rr->new_version), NULL},
		   "%s: %s%stoken rewrapped from key version %s to %s (%sKMS '%s')", v->name,
		   reason ? reason : "", reason ? ": " : "",
		   rr->old_version[0] ? rr->old_version : "-",
		   rr->new_version[0] ? rr->new_version : "-", reason ? "" : "returned by unwrap, ",
		   kms->name);
	return 0;
}

void registry_keep_rewrapped(struct registry *reg, struct volume *v, const char *device,
			     struct unlock_result *res)
{
	struct rotate_result rr;
	struct error err;

	if (!res->rewrapped.wdek)
		return;
	int k = registry_key_index(v, res->kms);

	if (k < 0)
		error_set(&err, -EXDEV, "KMS '%s' is not the volume's", res->kms);
	if (k < 0 ||
	    registry_rewrap(reg, v, v->keys[k].kms, device, &res->rewrapped, NULL, &rr, &err) < 0) {
		/* The unlock stands: the old ciphertext still unwraps. */
		log_warning("%s: could not store the rewrapped key the KMS returned: %s", v->name,
			    err.msg);
		return;
	}
	snprintf(res->key_version, sizeof(res->key_version), "%s", rr.new_version);
}
