/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's volumes: which there are, their state and every change of it (each wakes the
 * main loop), the per-volume audit record, close/lock/release and rewrap-and-record. The only
 * writer of per-volume state; never holds its lock across a KMS call or a hook. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "error.h"
#include "kms.h"
#include "luks.h"
#include "metrics.h"
#include "rotate.h"
#include "token.h"
#include "unlock.h"

#define VOLUME_DEVICE_MAX 256
#define VOLUME_STEP_MAX	  32
/* Discovered volumes keyd takes beyond the configured ones. */
#define REGISTRY_DISCOVERED_MAX 64

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

/* Why on_revoke was applied; polling restores a volume only when it was the key's doing. */
enum revoke_cause {
	REVOKE_BY_KEY,	    /* the KMS, or an event, said the root key is not usable */
	REVOKE_BY_AGE,	    /* the KMS was silent past max_key_cache_age */
	REVOKE_BY_OPERATOR, /* keydctl suspend: only keydctl resume undoes it */
};

/* What changes over a volume's life. */
struct volume_status {
	enum volume_state state;
	char device[VOLUME_DEVICE_MAX];
	char uuid[LUKS_UUID_MAX];
	int keyslot;
	char key_version[KMS_VERSION_MAX + 1];
	/* Per root key (index as in struct volume's keys): any-of, so the volume is usable while
	 * one of them is. */
	struct volume_key_status {
		char key_id[KMS_KEY_ID_MAX + 1]; /* the key the token names for this KMS */
		char key_version[KMS_VERSION_MAX + 1];
		bool revoked;	/* disabled or deleted at its KMS */
		bool destroyed; /* deleted */
	} keys[KMS_KEYS_MAX];
	char uuid_also_on[VOLUME_DEVICE_MAX]; /* other devices with this UUID: a header clone */
	bool revoked;			      /* on_revoke applied; cleared when the key is back */
	enum revoke_cause revoked_by;	      /* ... and why (meaningful while revoked) */
	bool was_open; /* open when revoked: start hooks run when it comes back */
	bool shredded; /* its root keys were deleted */
	char error[ERROR_MAX];
	int error_errno; /* the failure's -errno (VOLUME_FAILED), else 0: keydctl's exit code */
	char step[VOLUME_STEP_MAX];
	unsigned attempts;
	uint64_t since_us;	 /* wall clock of the last state change */
	uint64_t key_rotated_us; /* wall clock the root key's newest version was made (the KMS
				  * says, when polled); 0: unknown */
};

struct volume {
	/* Who it is: set when added, never changed. */
	char *name;
	char *device_spec;
	/* Its root keys, any of which unlocks it (keys[0] the first listed). A key_id is NULL
	 * for discovered volumes: the token's. */
	struct kms_key keys[KMS_KEYS_MAX];
	size_t n_keys;
	bool required;
	bool discovered;
	const struct volume_config *cfg; /* NULL for discovered volumes: defaults apply */
	/* Held for the whole of any operation on the volume (unlock, rotation, revocation), so
	 * the unlock workers and the lifecycle thread never act on one volume at once. */
	pthread_mutex_t op_lock;

	/* Under the registry's lock, written through registry_* only: */
	struct volume_status st;
	/* Under the registry's lock, written by worker.c only: */
	bool worker_running;
	bool worker_joinable; /* finished or running thread not yet joined */
	pthread_t worker;
};

struct registry {
	struct volume *volumes;
	size_t n, max;
	pthread_mutex_t lock;	   /* guards each volume's st and worker fields */
	struct audit *audit;	   /* NULL: no audit records */
	struct event *wake;	   /* activated after each change of state; NULL: nobody to wake */
	struct metrics *metrics;   /* counts each operation's outcome; NULL: nobody counts */
	const volatile bool *stop; /* keyd stopping: ends a rotation's KMS retries; NULL: never */
};

/* Room for @max volumes. -ENOMEM. */
int registry_init(struct registry *reg, size_t max);
/* Frees the volumes; their workers must have been joined. */
void registry_done(struct registry *reg);
/* Adds the configured volume @vc (which must outlive the registry). -ENOSPC, -ENOMEM. */
int registry_add(struct registry *reg, const struct volume_config *vc);
/* Adds the LUKS2 devices that carry a keyd token whose KMS @cfg configures and that no
 * configured volume names, as volumes that are never required, while there is room; logs what
 * it added and what it skipped, and why. -ENOMEM. */
int registry_discover(struct registry *reg, const struct keyd_config *cfg);
/* The volume named @name, or NULL. Names never change: no lock needed. */
struct volume *registry_find(struct registry *reg, const char *name);
/* Pokes the main loop (readiness, replies that wait for a worker). */
void registry_wake(struct registry *reg);

/* Reading: each takes the lock. */
void registry_status(struct registry *reg, struct volume *v, struct volume_status *ret);
enum volume_state registry_state(struct registry *reg, struct volume *v);
/* The key the volume's token names, else the configured one, else "" (of its first KMS). */
const char *registry_key_id(struct registry *reg, struct volume *v, char *buf, size_t size);
/* The same for its root key @k (index into v->keys). */
const char *registry_key_id_of(struct registry *reg, struct volume *v, size_t k, char *buf,
			       size_t size);
/* The volume's device node, if it has one to act on (known, and not released). */
bool registry_device(struct registry *reg, struct volume *v, char *buf, size_t size);
/* registry_key_id(_of) with the lock held: a pointer into @v. */
const char *registry_key_id_locked(const struct volume *v);
const char *registry_key_id_of_locked(const struct volume *v, size_t k);
/* The index into v->keys of KMS @kms, or -1. */
int registry_key_index(const struct volume *v, const char *kms);

/* Changes of state: each takes the lock; none may be called with it held. */
/* A new state and its message (NULL: none); wakes the main loop. */
void registry_set_state(struct registry *reg, struct volume *v, enum volume_state s,
			const char *msg);
/* VOLUME_FAILED with the failure's -errno @r and its message. */
void registry_set_failed(struct registry *reg, struct volume *v, int r, const char *msg);
void registry_set_attempts(struct registry *reg, struct volume *v, unsigned attempts);
void registry_set_device(struct registry *reg, struct volume *v, const char *device);
/* What an unlock read from the header: its UUID, and the key and version its token names for
 * each KMS. */
void registry_set_token(struct registry *reg, struct volume *v, const struct unlock_result *res);
/* Root key @k was disabled (@revoked), deleted (@destroyed) or is back (both false). Returns
 * how many of the volume's root keys are still usable, and in *@n_destroyed (may be NULL) how
 * many are deleted. */
size_t registry_set_key_revoked(struct registry *reg, struct volume *v, size_t k, bool revoked,
				bool destroyed, size_t *n_destroyed);
/* The other devices that carry the volume's LUKS UUID, ", "-joined ("" for none). */
void registry_set_clones(struct registry *reg, struct volume *v, const char *others);
/* What an unlock found: key version, keyslot, the step it reached; @ok clears a revocation. */
void registry_set_unlocked(struct registry *reg, struct volume *v, const struct unlock_result *res,
			   bool ok);
/* on_revoke was applied: @was_open says it was open then, @cause why, @shred that its root
 * key was deleted. */
void registry_set_revoked(struct registry *reg, struct volume *v, bool was_open,
			  enum revoke_cause cause, bool shred);
/* The root key is back: the revocation is over. */
void registry_set_restored(struct registry *reg, struct volume *v);
/* A re-key gave the volume a new keyslot and key version. */
void registry_set_key(struct registry *reg, struct volume *v, int keyslot, const char *key_version);
/* When the root key's newest version was made, as polling heard from the KMS (0: unknown). */
void registry_set_key_rotated(struct registry *reg, struct volume *v, uint64_t rotated_us);

/* With the lock held: an unlock is about to start (pending, attempts counted afresh). */
void registry_set_pending_locked(struct volume *v);

/* One audit record about @v (may be NULL), @extra's members added to its object (may be NULL;
 * not stolen); @subject NULL means keyd itself. Never key material. Takes the lock. Logs a
 * record that cannot be written. Counts the operation in reg->metrics. */
void registry_audit(struct registry *reg, const char *type, const char *result, json_t *subject,
		    struct volume *v, json_t *extra, const char *error);

/* Closes @v's mapping if it has one (open or suspended); a missing one is no error. Takes no
 * lock. -EBUSY if in use, else luks_deactivate's -errno; err says what. */
int registry_close_mapping(struct registry *reg, struct volume *v, struct error *err);
/* keydctl lock: closes the mapping (or forgets a verified-only volume); the volume is locked.
 * Registry lock held. -ESTALE for a released volume, -EBUSY when in use or busy. */
int registry_lock_volume(struct registry *reg, struct volume *v, struct error *err);
/* The memory half of decommissioning: closes the mapping (-EBUSY if in use), removes kernel
 * keyring entries for the volume, flushes the device's buffers, and marks the volume released
 * so it is never unlocked again by this daemon. Registry lock held; *ret_report says what was
 * done. */
int registry_release(struct registry *reg, struct volume *v, struct error *err,
		     json_t **ret_report);

/* Makes @v's journal fields (VOLUME, KMS, DEVICE, KEY_ID, KEY_VERSION as they are now) the
 * calling thread's log context (log_context_set) until registry_log_context_end; call again
 * to refresh them. Takes the lock. */
void registry_log_context(struct registry *reg, struct volume *v);
void registry_log_context_end(void);

/* Logs what an operation's convergence changed on @device's header (the volume operations
 * leave telling the operator to their caller). */
void registry_log_changes(const char *device, const struct token_changes *changes);

/* An unlock of @v on @device got a ciphertext the KMS rewrapped meanwhile (Key Protect after
 * a rotation): stores it as the wrap of the KMS that unwrapped (res->kms) through
 * registry_rewrap and puts the new key version in @res; nothing when there is none. A failure
 * is logged and leaves the unlock standing (the old ciphertext still unwraps). */
void registry_keep_rewrapped(struct registry *reg, struct volume *v, const char *device,
			     struct unlock_result *res);
/* Rewraps @v's token on @device (@rewrapped: the ciphertext the KMS already returned while
 * unwrapping; NULL: ask the KMS), records the new key version and writes the volume.rewrap
 * record (with @reason when given). Logs the success; a failure is the caller's to log, with
 * err saying why. Holds no lock across the KMS call; the caller holds the op_lock. */
int registry_rewrap(struct registry *reg, struct volume *v, struct kms *kms, const char *device,
		    const struct kms_wrapped *rewrapped, const char *reason,
		    struct rotate_result *rr, struct error *err);
