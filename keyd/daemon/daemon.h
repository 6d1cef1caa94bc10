/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's run state: its volumes, their unlock workers, readiness towards systemd.
 * Owns the only copies of per-volume state; the API reads it under the lock. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "lifecycle.h"
#include "luks.h"

enum volume_state {
	VOLUME_PENDING,	 /* not tried yet */
	VOLUME_WAITING,	 /* waiting for its device or its KMS */
	VOLUME_OPEN,	 /* mapping active */
	VOLUME_VERIFIED, /* key unwrapped and keyslot checked, but no device-mapper to map it */
	VOLUME_FAILED,
	VOLUME_LOCKED,
	VOLUME_SUSPENDED, /* I/O frozen and the key dropped from the kernel (revocation) */
	VOLUME_REVOKED,	  /* closed, or never opened, because its root key was revoked */
	VOLUME_RELEASED,  /* decommissioned: closed, key material dropped, never unlocked again */
	_VOLUME_STATE_MAX,
};
extern const char *const volume_state_names[];

struct volume {
	char *name;
	char *device_spec;
	struct kms *kms;
	char *key_id; /* NULL for discovered volumes: the token's */
	bool required;
	bool discovered;
	const struct volume_config *cfg; /* NULL for discovered volumes: defaults apply */
	/* Held for the whole of any operation on the volume (unlock, rotation, revocation), so
	 * the unlock workers and the lifecycle thread never act on one volume at once. */
	pthread_mutex_t op_lock;

	/* Under keyd.lock: */
	enum volume_state state;
	char device[256];
	char uuid[LUKS_UUID_MAX];
	int keyslot;
	char key_version[KMS_VERSION_MAX + 1];
	char token_key_id[KMS_KEY_ID_MAX + 1]; /* the key the token names (set by unlock) */
	bool revoked;			       /* on_revoke applied; cleared when the key is back */
	bool revoked_by_age; /* ... because the KMS was silent past max_key_cache_age */
	bool was_open;	     /* open when revoked: start hooks run when it comes back */
	bool shredded;	     /* its root key was deleted */
	char error[ERROR_MAX];
	char step[32];
	unsigned attempts;
	uint64_t since_us; /* wall clock of the last state change */
	bool worker_running;
	bool worker_joinable; /* finished or running thread not yet joined */
	pthread_t worker;
	struct pending_reply *replies; /* API requests waiting for the worker */
};

struct keyd {
	struct keyd_config *cfg;
	struct volume *volumes;
	size_t n_volumes;
	pthread_mutex_t lock;
	struct event_base *base;
	struct event *wake; /* workers poke the main loop through this */
	struct event *sigterm, *sigint;
	void *api; /* struct api */
	struct lifecycle *lifecycle;
	struct callback *callback;
	struct audit *audit;
	bool dm;
	char dm_why[256];
	bool ready;
	uint64_t started_us; /* monotonic, when the first unlock pass began */
	bool pass_done;	     /* the first unlock pass has been reported */
	volatile bool stop;
};

int keyd_setup(struct keyd *k, struct keyd_config *cfg);
/* Starts an unlock worker for @v unless one runs or it is open; call with k->lock held. */
int keyd_unlock_start(struct keyd *k, struct volume *v);
/* Closes the mapping (or forgets a verified-only volume). -EBUSY if in use. */
int keyd_lock_volume(struct keyd *k, struct volume *v, struct error *err);
/* The memory half of decommissioning: closes the mapping (-EBUSY if in use), removes kernel
 * keyring entries for the volume, flushes the device's buffers, and marks the volume released
 * so it is never unlocked again by this daemon. Call with k->lock held; err says what. */
int keyd_release_volume(struct keyd *k, struct volume *v, struct error *err, json_t **ret_report);
/* Closes @v's mapping if it has one (open or suspended). -EBUSY if in use. */
int keyd_close_mapping(struct keyd *k, struct volume *v, struct error *err);
struct volume *keyd_find_volume(struct keyd *k, const char *name);
/* One audit record about @v (may be NULL), @extra's members added to its object (may be
 * NULL; not stolen); @subject NULL means keyd itself. Never key material. Takes k->lock; not to be called with it held. */
void keyd_audit(struct keyd *k, const char *type, const char *result, json_t *subject,
		struct volume *v, json_t *extra, const char *error);
/* Sets a volume's state and message and wakes the main loop; takes k->lock. */
void keyd_set_state(struct keyd *k, struct volume *v, enum volume_state s, const char *err);
/* Runs the event loop until SIGTERM/SIGINT. */
int keyd_run(struct keyd *k);
void keyd_done(struct keyd *k);
