// SPDX-License-Identifier: GPL-2.0-or-later
/* The unlock worker of one volume: waits for the device (udev may be late at boot), unlocks it
 * through volume_unlock, keeps a ciphertext the KMS rewrapped meanwhile, and sets the volume's
 * state. Talks to the daemon only through the registry; never touches another volume. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "messages.h"
#include "util.h"
#include "worker.h"

struct worker_arg {
	const struct worker_env *env;
	struct volume *v;
};

/* Called by the KMS retry loop before each pause: tell the log, status and systemd. */
static void on_kms_wait(void *u, const struct kms *kms, unsigned attempt, uint64_t pause_ms,
			const struct error *e)
{
	struct worker_arg *a = u;
	char msg[ERROR_MAX + 128];

	snprintf(msg, sizeof(msg), "KMS '%s' not answering (attempt %u): %s; retrying in %.1f s%s",
		 kms->name, attempt, e->msg, (double)pause_ms / 1000,
		 a->v->n_keys > 1 ? " (and waiting for the volume's other KMS)" : "");
	log_struct(LOG_WARNING, 0, MESSAGE_KMS_WAITING, NULL, "%s: %s", a->v->name, msg);
	registry_set_attempts(a->env->reg, a->v, attempt);
	registry_set_state(a->env->reg, a->v, VOLUME_WAITING, msg);
}

/* Waits for the device to appear (udev may not have it yet at boot), within the deadline. A
 * UUID on several devices fails at once (@err names them): waiting cannot make it one. */
static int wait_for_device(const struct worker_env *env, struct volume *v, char **ret,
			   struct error *err)
{
	uint64_t deadline = now_mono_us() + v->keys[0].kms->retry.deadline_ms * 1000;
	uint64_t pause = v->keys[0].kms->retry.backoff_min_ms;

	for (;;) {
		char msg[ERROR_MAX];
		int r = luks_resolve_device(v->device_spec, ret, err);

		if (r == -ENOTUNIQ)
			return r;
		if (r == 0 && access(*ret, F_OK) == 0)
			return 0;
		if (r == 0)
			free(*ret);
		if (*env->stop || now_mono_us() + pause * 1000 > deadline)
			return error_set(err, -ENODEV, "device %s not found", v->device_spec);
		snprintf(msg, sizeof(msg), "waiting for device %s to appear", v->device_spec);
		registry_set_state(env->reg, v, VOLUME_WAITING, msg);
		sleep_us(pause * 1000, env->stop);
		if (pause < v->keys[0].kms->retry.backoff_max_ms)
			pause *= 2;
	}
}

/* The state an unlock ends in, and what the log says about it. */
static void record_outcome(const struct worker_env *env, struct volume *v, int r, const char *dev,
			   const struct unlock_result *res, struct error *err, uint64_t t0)
{
	/* The thread's log context names the volume, its device and key. */
	if (r < 0) {
		log_struct(LOG_ERR, r, MESSAGE_UNLOCK_FAILED, NULL, "%s: %s failed: %s", v->name,
			   res->step, err->msg);
		registry_set_failed(env->reg, v, r, err->msg);
	} else if (strcmp(res->step, "adopted") == 0) {
		log_struct(LOG_INFO, 0, MESSAGE_VOLUME_OPENED, NULL,
			   "%s: /dev/mapper/%s was already open (keyd restarted): adopted", v->name,
			   v->name);
		registry_set_state(env->reg, v, VOLUME_OPEN, NULL);
	} else if (env->dm) {
		log_struct(LOG_INFO, 0, MESSAGE_VOLUME_OPENED, NULL,
			   "%s: unlocked %s as /dev/mapper/%s through KMS '%s' in %.3f s", v->name,
			   dev, v->name, res->kms, (double)(now_mono_us() - t0) / 1e6);
		registry_set_state(env->reg, v, VOLUME_OPEN, NULL);
	} else {
		error_set(err, -EIO,
			  "key unwrapped through KMS '%s' and keyslot %d verified, but not "
			  "activated: %s",
			  res->kms, res->keyslot, env->dm_why);
		log_struct(LOG_WARNING, 0, MESSAGE_VOLUME_VERIFIED, NULL, "%s: %s", v->name,
			   err->msg);
		registry_set_state(env->reg, v, VOLUME_VERIFIED, err->msg);
	}
}

/* A volume configured by path opens even when a clone of its header is on another device
 * (the path says which one is the volume), but status shows the clone and the log says so. */
static void note_clones(const struct worker_env *env, struct volume *v, const char *dev,
			const char *uuid)
{
	char others[VOLUME_DEVICE_MAX] = "";

	/* UUID=: resolving it has just scanned every device and refused a second carrier. */
	if (strncmp(v->device_spec, "UUID=", 5) == 0)
		return;
	if (uuid[0] && luks_uuid_others(uuid, dev, others, sizeof(others)) > 0)
		log_warning("%s: LUKS UUID %s of %s is also on %s (a cloned or restored header)",
			    v->name, uuid, dev, others);
	registry_set_clones(env->reg, v, others);
}

static void unlock_volume(struct worker_arg *a)
{
	const struct worker_env *env = a->env;
	struct volume *v = a->v;
	_cleanup_free_ char *dev = NULL;
	struct unlock_result res;
	struct error err;
	uint64_t t0 = now_mono_us();
	int r;

	r = wait_for_device(env, v, &dev, &err);
	if (r < 0) {
		log_struct(LOG_ERR, r, MESSAGE_UNLOCK_FAILED, NULL, "%s: %s", v->name, err.msg);
		registry_set_failed(env->reg, v, r, err.msg);
		return;
	}
	registry_set_device(env->reg, v, dev);
	registry_log_context(env->reg, v);
	r = volume_unlock(&(struct unlock_request){.device = dev,
						   .keys = v->keys,
						   .n_keys = v->n_keys,
						   .name = env->dm ? v->name : NULL,
						   .converge = true,
						   .wait = on_kms_wait,
						   .userdata = a,
						   .stop = env->stop},
			  &res, &err);
	registry_log_changes(dev, &res.converged);
	/* The volume's UUID and key first: the rewrap record names them. Its key version waits
	 * for the rewrap, so that polling never sees the old one as stale meanwhile. */
	registry_set_token(env->reg, v, &res);
	note_clones(env, v, dev, res.uuid);
	if (r >= 0)
		registry_keep_rewrapped(env->reg, v, dev, &res);
	kms_wrapped_done(&res.rewrapped);
	registry_set_unlocked(env->reg, v, &res, r >= 0);
	registry_log_context(env->reg, v); /* with the key version the unlock found */
	registry_audit(env->reg, "volume.unlock", r < 0 ? "failure" : "success", NULL, v, NULL,
		       r < 0 ? err.msg : NULL);
	record_outcome(env, v, r, dev, &res, &err, t0);
}

static void *worker_main(void *u)
{
	struct worker_arg *a = u;
	struct registry *reg = a->env->reg;
	struct volume *v = a->v;

	registry_log_context(reg, v);
	pthread_mutex_lock(&v->op_lock);
	unlock_volume(a);
	pthread_mutex_unlock(&v->op_lock);
	registry_log_context_end();
	pthread_mutex_lock(&reg->lock);
	v->worker_running = false;
	pthread_mutex_unlock(&reg->lock);
	registry_wake(reg);
	free(a);
	return NULL;
}

int worker_start(const struct worker_env *env, struct volume *v)
{
	struct worker_arg *a;
	int r;

	if (v->worker_running || v->st.state == VOLUME_OPEN)
		return 0;
	if (v->st.state == VOLUME_RELEASED)
		return -ESTALE;
	worker_reap(v);
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct worker_arg){.env = env, .v = v};
	registry_set_pending_locked(v);
	v->worker_running = true;
	r = -pthread_create(&v->worker, NULL, worker_main, a);
	if (r < 0) {
		v->worker_running = false;
		free(a);
		return r;
	}
	v->worker_joinable = true;
	return 0;
}

void worker_reap(struct volume *v)
{
	if (!v->worker_running && v->worker_joinable) {
		pthread_join(v->worker, NULL);
		v->worker_joinable = false;
	}
}

void worker_join(struct volume *v)
{
	if (v->worker_joinable)
		pthread_join(v->worker, NULL);
	v->worker_joinable = false;
}
