// SPDX-License-Identifier: GPL-2.0-or-later
/* Daemon core: one worker thread per volume unlocks in parallel (device lookup, KMS unwrap with
 * backoff, activation); the main loop owns systemd notification and the control API. */
#include <blkid/blkid.h>
#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/keyctl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "api.h"
#include "audit.h"
#include "callback.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "rotate.h"
#include "sign.h"
#include "token.h"
#include "unlock.h"
#include "util.h"

const char *const volume_state_names[] = {
	[VOLUME_PENDING] = "pending",	  [VOLUME_WAITING] = "waiting",
	[VOLUME_OPEN] = "open",		  [VOLUME_VERIFIED] = "verified",
	[VOLUME_FAILED] = "failed",	  [VOLUME_LOCKED] = "locked",
	[VOLUME_SUSPENDED] = "suspended", [VOLUME_REVOKED] = "revoked",
	[VOLUME_RELEASED] = "released",
};

struct worker_arg {
	struct keyd *k;
	struct volume *v;
};

void keyd_audit(struct keyd *k, const char *type, const char *result, json_t *subject,
		struct volume *v, json_t *extra, const char *error)
{
	json_auto_t *object = NULL;
	int r;

	if (!k->audit)
		return;
	if (v) {
		pthread_mutex_lock(&k->lock);
		object = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "volume", v->name, "device",
				   v->device[0] ? v->device : v->device_spec, "luks_uuid", v->uuid,
				   "kms", v->kms->name, "key_id",
				   v->token_key_id[0] ? v->token_key_id
				   : v->key_id	      ? v->key_id
						      : "",
				   "key_version", v->key_version);
		pthread_mutex_unlock(&k->lock);
	}
	if (extra) {
		if (!object)
			object = json_object();
		json_object_update(object, extra);
	}
	r = audit_write(k->audit, type, result, subject, object, error && error[0] ? error : NULL);
	if (r < 0)
		log_error_errno(r, "cannot write the audit record %s: %m", type);
}

void keyd_set_state(struct keyd *k, struct volume *v, enum volume_state s, const char *err)
{
	pthread_mutex_lock(&k->lock);
	v->state = s;
	v->since_us = now_real_us();
	snprintf(v->error, sizeof(v->error), "%s", err ? err : "");
	pthread_mutex_unlock(&k->lock);
	event_active(k->wake, EV_READ, 0);
}

/* Called by the KMS retry loop before each pause: tell the log, status and systemd. */
static void on_kms_wait(void *u, unsigned attempt, uint64_t pause_ms, const struct error *e)
{
	struct worker_arg *a = u;
	char msg[ERROR_MAX + 128];

	snprintf(msg, sizeof(msg), "KMS '%s' not answering (attempt %u): %s; retrying in %.1f s",
		 a->v->kms->name, attempt, e->msg, (double)pause_ms / 1000);
	log_warning("%s: %s", a->v->name, msg);
	pthread_mutex_lock(&a->k->lock);
	a->v->attempts = attempt;
	pthread_mutex_unlock(&a->k->lock);
	keyd_set_state(a->k, a->v, VOLUME_WAITING, msg);
}

/* Waits for the device to appear (udev may not have it yet at boot), within the deadline. */
static int wait_for_device(struct keyd *k, struct volume *v, char **ret)
{
	uint64_t deadline = now_mono_us() + v->kms->retry.deadline_ms * 1000;
	uint64_t pause = v->kms->retry.backoff_min_ms;

	for (;;) {
		char msg[ERROR_MAX];
		int r = luks_resolve_device(v->device_spec, ret);

		if (r == 0 && access(*ret, F_OK) == 0)
			return 0;
		if (r == 0)
			free(*ret);
		if (k->stop || now_mono_us() + pause * 1000 > deadline)
			return -ENODEV;
		snprintf(msg, sizeof(msg), "waiting for device %s to appear", v->device_spec);
		keyd_set_state(k, v, VOLUME_WAITING, msg);
		sleep_us(pause * 1000, &k->stop);
		if (pause < v->kms->retry.backoff_max_ms)
			pause *= 2;
	}
}

/* The KMS rewrapped the WDEK to a newer root key version while unwrapping (Key Protect after
 * a rotation): keep that ciphertext, so the token follows the key without a separate call. */
static void store_rewrapped(struct keyd *k, struct volume *v, const char *dev,
			    struct unlock_result *res)
{
	struct rotate_result rr;
	struct error err;
	char what[128];
	int r;

	r = volume_rewrap(dev, v->kms, &res->rewrapped, &rr, &err);
	for (int i = 0; i < rr.changes.n; i++)
		log_info("%s: %s", dev,
			 token_change_describe(&rr.changes.c[i], what, sizeof(what)));
	if (r < 0) {
		keyd_audit(k, "volume.rewrap", "failure", NULL, v, NULL, err.msg);
		log_warning("%s: could not store the rewrapped key the KMS returned: %s", v->name,
			    err.msg);
		return;
	}
	snprintf(res->key_version, sizeof(res->key_version), "%s", rr.new_version);
	pthread_mutex_lock(&k->lock);
	snprintf(v->key_version, sizeof(v->key_version), "%s", rr.new_version);
	pthread_mutex_unlock(&k->lock);
	{
		json_auto_t *versions = json_pack("{s:s, s:s}", "old_key_version", rr.old_version,
						  "new_key_version", rr.new_version);

		keyd_audit(k, "volume.rewrap", "success", NULL, v, versions, NULL);
	}
	log_info("%s: token rewrapped from key version %s to %s (returned by unwrap)", v->name,
		 rr.old_version[0] ? rr.old_version : "-", rr.new_version);
}

static void *unlock_worker(void *u)
{
	struct worker_arg *a = u;
	struct keyd *k = a->k;
	struct volume *v = a->v;
	_cleanup_free_ char *dev = NULL;
	struct unlock_result res;
	struct error err;
	uint64_t t0 = now_mono_us();
	char what[128];
	int r;

	pthread_mutex_lock(&v->op_lock);
	r = wait_for_device(k, v, &dev);
	if (r < 0) {
		error_set(&err, -EIO, "device %s not found", v->device_spec);
		log_error("%s: %s", v->name, err.msg);
		keyd_set_state(k, v, VOLUME_FAILED, err.msg);
		goto out;
	}
	pthread_mutex_lock(&k->lock);
	snprintf(v->device, sizeof(v->device), "%s", dev);
	pthread_mutex_unlock(&k->lock);

	r = volume_unlock(&(struct unlock_request){.device = dev,
						   .kms = v->kms,
						   .expect_key_id = v->key_id,
						   .name = k->dm ? v->name : NULL,
						   .converge = true,
						   .wait = on_kms_wait,
						   .userdata = a,
						   .stop = &k->stop},
			  &res, &err);
	for (int i = 0; i < res.converged.n; i++)
		log_info("%s: %s", dev,
			 token_change_describe(&res.converged.c[i], what, sizeof(what)));
	/* The volume's UUID and key first: the rewrap record names them. Its key version waits
	 * for the rewrap, so that polling never sees the old one as stale meanwhile. */
	pthread_mutex_lock(&k->lock);
	snprintf(v->uuid, sizeof(v->uuid), "%s", res.uuid);
	snprintf(v->token_key_id, sizeof(v->token_key_id), "%s", res.key_id);
	pthread_mutex_unlock(&k->lock);
	if (r >= 0 && res.rewrapped.wdek)
		store_rewrapped(k, v, dev, &res);
	kms_wrapped_done(&res.rewrapped);
	pthread_mutex_lock(&k->lock);
	if (r >= 0)
		v->revoked = v->revoked_by_age = false;
	snprintf(v->key_version, sizeof(v->key_version), "%s", res.key_version);
	snprintf(v->step, sizeof(v->step), "%s", res.step);
	v->keyslot = res.keyslot;
	pthread_mutex_unlock(&k->lock);
	keyd_audit(k, "volume.unlock", r < 0 ? "failure" : "success", NULL, v, NULL,
		   r < 0 ? err.msg : NULL);
	if (r < 0) {
		log_error("%s: %s failed: %s", v->name, res.step, err.msg);
		keyd_set_state(k, v, VOLUME_FAILED, err.msg);
	} else if (strcmp(res.step, "adopted") == 0) {
		log_info("%s: /dev/mapper/%s was already open (keyd restarted): adopted", v->name,
			 v->name);
		keyd_set_state(k, v, VOLUME_OPEN, NULL);
	} else if (k->dm) {
		log_info("%s: unlocked %s as /dev/mapper/%s in %.3f s", v->name, dev, v->name,
			 (double)(now_mono_us() - t0) / 1e6);
		keyd_set_state(k, v, VOLUME_OPEN, NULL);
	} else {
		error_set(&err, -EIO,
			  "key unwrapped and keyslot %d verified, but not activated: %s",
			  res.keyslot, k->dm_why);
		log_warning("%s: %s", v->name, err.msg);
		keyd_set_state(k, v, VOLUME_VERIFIED, err.msg);
	}
out:
	pthread_mutex_unlock(&v->op_lock);
	pthread_mutex_lock(&k->lock);
	v->worker_running = false;
	pthread_mutex_unlock(&k->lock);
	event_active(k->wake, EV_READ, 0);
	free(a);
	return NULL;
}

int keyd_unlock_start(struct keyd *k, struct volume *v)
{
	struct worker_arg *a;
	int r;

	if (v->worker_running || v->state == VOLUME_OPEN)
		return 0;
	if (v->state == VOLUME_RELEASED)
		return -ESTALE;
	if (v->worker_joinable) {
		pthread_join(v->worker, NULL);
		v->worker_joinable = false;
	}
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct worker_arg){.k = k, .v = v};
	v->attempts = 0;
	v->state = VOLUME_PENDING;
	v->worker_running = true;
	r = -pthread_create(&v->worker, NULL, unlock_worker, a);
	if (r < 0) {
		v->worker_running = false;
		free(a);
		return r;
	}
	v->worker_joinable = true;
	return 0;
}

int keyd_lock_volume(struct keyd *k, struct volume *v, struct error *err)
{
	int r = 0;

	/* Locking would make a released volume unlockable again. */
	if (v->state == VOLUME_RELEASED) {
		return error_set(err, -ESTALE,
				 "'%s' was released (decommissioned): there is nothing to lock",
				 v->name);
	}
	if (v->worker_running || pthread_mutex_trylock(&v->op_lock) != 0) {
		return error_set(err, -EBUSY,
				 "%s is busy (being unlocked, rotated or revoked); try again",
				 v->name);
	}
	r = keyd_close_mapping(k, v, err);
	pthread_mutex_unlock(&v->op_lock);
	if (r < 0)
		return r;
	log_info("%s: locked", v->name);
	v->state = VOLUME_LOCKED;
	v->since_us = now_real_us();
	v->error[0] = 0;
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

int keyd_release_volume(struct keyd *k, struct volume *v, struct error *err, json_t **ret_report)
{
	bool was_mapped = v->state == VOLUME_OPEN || v->state == VOLUME_SUSPENDED;
	_cleanup_close_ int fd = -1;
	bool flushed = false;
	int r, keys;

	if (v->worker_running || pthread_mutex_trylock(&v->op_lock) != 0) {
		return error_set(err, -EBUSY,
				 "%s is busy (being unlocked, rotated or revoked); try again",
				 v->name);
	}
	r = keyd_close_mapping(k, v, err);
	if (r < 0) {
		pthread_mutex_unlock(&v->op_lock);
		return r;
	}
	keys = v->uuid[0] ? drop_keyring_keys(v->uuid) : 0;
	/* The page cache of the raw device holds ciphertext only, but decommissioning leaves
	 * nothing of the volume cached: write back and drop its buffers. */
	if (v->device[0]) {
		fd = open(v->device, O_RDONLY | O_CLOEXEC);
		flushed = fd >= 0 && fsync(fd) == 0 && ioctl(fd, BLKFLSBUF, 0) == 0;
	}
	v->state = VOLUME_RELEASED;
	v->since_us = now_real_us();
	v->revoked = false;
	snprintf(v->error, sizeof(v->error),
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

int keyd_close_mapping(struct keyd *k, struct volume *v, struct error *err)
{
	int r = 0;

	(void)k;
	if (v->state == VOLUME_OPEN || v->state == VOLUME_SUSPENDED) {
		r = luks_deactivate(v->name);
		if (r == -EBUSY) {
			return error_set(
				err, r,
				"/dev/mapper/%s is in use (mounted or held open); unmount it first",
				v->name);
		}
		if (r < 0 && r != -ENODEV) {
			return error_set(err, r, "closing /dev/mapper/%s: %s", v->name,
					 strerror(-r));
		}
	}
	return 0;
}

struct volume *keyd_find_volume(struct keyd *k, const char *name)
{
	for (size_t i = 0; i < k->n_volumes; i++)
		if (strcmp(k->volumes[i].name, name) == 0)
			return &k->volumes[i];
	return NULL;
}

/* The main loop's view after any worker change: systemd STATUS=, READY=1 once every required
 * volume is open, and replies to API requests that waited for a worker. */
static void on_wake(evutil_socket_t fd, short what, void *u)
{
	struct keyd *k = u;
	size_t open = 0, required = 0, required_open = 0, waiting = 0, failed = 0, verified = 0;
	/* The event loop's thread only: what systemd was last told, so the journal gets each
	 * change once (systemd itself does not log STATUS=). */
	static char last[512];
	char status[512], why[ERROR_MAX + 72] = "";

	(void)fd;
	(void)what;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_volumes; i++) {
		struct volume *v = &k->volumes[i];

		open += v->state == VOLUME_OPEN;
		/* A worker sets the final state before it ends: count states, not threads. */
		waiting += v->state == VOLUME_WAITING || v->state == VOLUME_PENDING;
		failed += v->state == VOLUME_FAILED;
		verified += v->state == VOLUME_VERIFIED;
		/* What the first waiting volume waits for, so that STATUS= says it. */
		if (v->state == VOLUME_WAITING && !why[0] && v->error[0])
			snprintf(why, sizeof(why), " (%s: %s)", v->name, v->error);
		if (v->required) {
			required++;
			required_open += v->state == VOLUME_OPEN;
		}
		if (!v->worker_running && v->worker_joinable) {
			pthread_join(v->worker, NULL);
			v->worker_joinable = false;
		}
		if (!v->worker_running && v->replies)
			api_finish_replies(k, v);
	}
	pthread_mutex_unlock(&k->lock);

	snprintf(status, sizeof(status),
		 "STATUS=%zu/%zu volumes open, %zu waiting%s, %zu failed%s%s", open, k->n_volumes,
		 waiting, why, failed, k->dm ? "" : "; ",
		 k->dm ? "" : "no device-mapper: keys verified only");
	if (strcmp(status, last)) {
		log_info("status: %s", status + strlen("STATUS="));
		snprintf(last, sizeof(last), "%s", status);
	}
	if (!k->pass_done && waiting == 0) {
		k->pass_done = true;
		log_info("first unlock pass done in %.3f s: %zu open, %zu verified, %zu failed",
			 (double)(now_mono_us() - k->started_us) / 1e6, open, verified, failed);
	}
	if (!k->ready && required_open == required) {
		k->ready = true;
		strncat(status, "\nREADY=1", sizeof(status) - strlen(status) - 1);
		log_info("ready: all %zu required volumes are open", required);
	}
	notify_send(status);
}

static void on_signal(evutil_socket_t sig, short what, void *u)
{
	struct keyd *k = u;

	(void)what;
	log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	k->stop = true;
	notify_send("STOPPING=1");
	event_base_loopexit(k->base, NULL);
}

static int add_volume(struct keyd *k, const char *name, const char *device, struct kms *kms,
		      const char *key_id, bool required, bool discovered)
{
	struct volume *v = &k->volumes[k->n_volumes];

	*v = (struct volume){.name = strdup(name),
			     .device_spec = strdup(device),
			     .kms = kms,
			     .key_id = key_id ? strdup(key_id) : NULL,
			     .required = required,
			     .discovered = discovered,
			     .keyslot = -1,
			     .since_us = now_real_us()};
	pthread_mutex_init(&v->op_lock, NULL);
	if (!v->name || !v->device_spec || (key_id && !v->key_id))
		return -ENOMEM;
	k->n_volumes++;
	return 0;
}

static bool device_is_configured(struct keyd *k, const char *devname, const char *uuid)
{
	for (size_t i = 0; i < k->cfg->n_volumes; i++) {
		const char *spec = k->cfg->volumes[i].device;

		if (strcmp(spec, devname) == 0)
			return true;
		if (uuid && strncmp(spec, "UUID=", 5) == 0 && strcmp(spec + 5, uuid) == 0)
			return true;
	}
	return false;
}

/* LUKS2 devices carrying a keyd token whose KMS is configured are unlocked too (not required:
 * only the config can make a volume a boot dependency). */
static int discover_volumes(struct keyd *k, size_t max)
{
	blkid_dev_iterate it;
	blkid_cache cache;
	blkid_dev dev;

	if (blkid_get_cache(&cache, "/dev/null") < 0)
		return -ENOMEM;
	blkid_probe_all(cache);
	it = blkid_dev_iterate_begin(cache);
	blkid_dev_set_search(it, "TYPE", "crypto_LUKS");
	while (k->n_volumes < max && blkid_dev_next(it, &dev) == 0) {
		const char *devname = blkid_dev_devname(dev);
		_cleanup_crypt_ struct crypt_device *cd = NULL;
		struct keyd_token tok;
		struct error je;
		struct kms *kms;

		if (cryptsetup_load(devname, &cd) < 0 ||
		    device_is_configured(k, devname, crypt_get_uuid(cd)))
			continue;
		if (token_find(cd, &tok, &je) <= 0)
			continue;
		kms = config_find_kms(k->cfg, tok.kms);
		if (!kms)
			log_warning(
				"%s: keyd token names KMS '%s', which is not configured; skipped",
				devname, tok.kms);
		else if (keyd_find_volume(k, tok.name) || !volume_name_valid(tok.name))
			log_warning("%s: volume name '%s' is taken or invalid; skipped", devname,
				    tok.name);
		else if (add_volume(k, tok.name, devname, kms, NULL, false, true) == 0)
			log_info("%s: discovered keyd volume '%s'", devname, tok.name);
		token_done(&tok);
	}
	blkid_dev_iterate_end(it);
	blkid_put_cache(cache);
	return 0;
}

/* An authenticated event from the callback endpoint (main thread). */
static int on_callback_event(void *u, const struct event *ev, char *msg, size_t msgsize)
{
	struct keyd *k = u;
	int r = lifecycle_submit(k, LIFECYCLE_EVENT, ev, NULL, msg, msgsize);

	/* A key no volume here uses is not the sender's error: acknowledge, do nothing. */
	return r == -ENOENT ? 0 : r;
}

int keyd_setup(struct keyd *k, struct keyd_config *cfg)
{
	size_t max = cfg->n_volumes + (cfg->discover ? 64 : 0);
	EVP_PKEY *node_key = NULL;
	int r;

	*k = (struct keyd){.cfg = cfg};
	pthread_mutex_init(&k->lock, NULL);
	k->dm = luks_dm_available(k->dm_why, sizeof(k->dm_why));
	if (!k->dm)
		log_warning("%s: volumes will be verified but not activated", k->dm_why);

	k->volumes = calloc(max + 1, sizeof(*k->volumes));
	if (!k->volumes)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		struct volume_config *vc = &cfg->volumes[i];

		r = add_volume(k, vc->name, vc->device, vc->kms, vc->key_id, vc->required, false);
		if (r < 0)
			return r;
		k->volumes[k->n_volumes - 1].cfg = vc;
	}
	if (cfg->discover)
		discover_volumes(k, max);

	if (evthread_use_pthreads() < 0)
		return -ENOMEM;
	k->base = event_base_new();
	if (!k->base)
		return -ENOMEM;
	k->wake = event_new(k->base, -1, EV_PERSIST, on_wake, k);
	k->sigterm = evsignal_new(k->base, SIGTERM, on_signal, k);
	k->sigint = evsignal_new(k->base, SIGINT, on_signal, k);
	if (!k->wake || !k->sigterm || !k->sigint)
		return -ENOMEM;
	event_add(k->sigterm, NULL);
	event_add(k->sigint, NULL);
	r = sign_key_load(cfg->node_key_file, &node_key);
	if (r < 0)
		return log_error_errno(r, "cannot load the node signing key %s: %m",
				       cfg->node_key_file);
	r = audit_open(cfg->audit_path, node_key, &k->audit);
	EVP_PKEY_free(node_key);
	if (r < 0)
		return log_error_errno(r, "cannot open the audit log %s: %m", cfg->audit_path);
	r = api_setup(k);
	if (r < 0)
		return r;
	r = lifecycle_start(k);
	if (r < 0)
		return log_error_errno(r, "cannot start the lifecycle thread: %m");
	if (!cfg->callback)
		return 0;
	return callback_start(k->base, cfg->callback, k->audit, on_callback_event, k, &k->callback);
}

int keyd_run(struct keyd *k)
{
	k->started_us = now_mono_us();
	keyd_audit(k, "keyd.start", "success", NULL, NULL, NULL, NULL);
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_volumes; i++) {
		int r = keyd_unlock_start(k, &k->volumes[i]);

		if (r < 0)
			log_error_errno(r, "%s: cannot start unlock worker: %m",
					k->volumes[i].name);
	}
	pthread_mutex_unlock(&k->lock);
	/* With nothing to wait for, readiness is immediate. */
	event_active(k->wake, EV_READ, 0);
	return event_base_dispatch(k->base) < 0 ? -EIO : 0;
}

void keyd_done(struct keyd *k)
{
	k->stop = true;
	callback_stop(k->callback);
	lifecycle_stop(k);
	for (size_t i = 0; i < k->n_volumes; i++) {
		struct volume *v = &k->volumes[i];

		if (v->worker_joinable)
			pthread_join(v->worker, NULL);
		free(v->name);
		free(v->device_spec);
		free(v->key_id);
	}
	free(k->volumes);
	api_done(k);
	if (k->audit) {
		audit_write(k->audit, "keyd.stop", "success", NULL, NULL, NULL);
		audit_close(k->audit);
	}
	if (k->wake)
		event_free(k->wake);
	if (k->sigterm)
		event_free(k->sigterm);
	if (k->sigint)
		event_free(k->sigint);
	if (k->base)
		event_base_free(k->base);
	pthread_mutex_destroy(&k->lock);
}
