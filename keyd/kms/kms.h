/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The KMS provider interface and its table: wrap, unwrap and probe behind one set of calls,
 * with the retry policy (backoff, jitter, deadline) in one place. Never logs key material. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonx.h"

#define KMS_NAME_MAX	64
#define KMS_KEY_ID_MAX	256
#define KMS_WDEK_MAX	8192
#define KMS_AAD_MAX	128
#define KMS_VERSION_MAX 128

/* Formats e->msg, says whether a retry may help (the provider's classification of the
 * failure: 429, 5xx, transport), returns r (a negative errno). */
int kms_fail(struct error *e, int r, bool retryable, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A wrapped DEK as stored in the token, and the KMS key version that wrapped it.
 * Both are plain heap strings: ciphertext is not secret. */
struct kms_wrapped {
	char *wdek;
	char *key_version; /* NULL when the provider has no versions */
};
void kms_wrapped_done(struct kms_wrapped *w);

/* A root key's life as the KMS reports it (polling, probe). */
enum kms_key_state {
	KMS_KEY_UNKNOWN,
	KMS_KEY_PRE_ACTIVE,
	KMS_KEY_ACTIVE,
	KMS_KEY_SUSPENDED,   /* disabled: unwrap refused until enabled again */
	KMS_KEY_DEACTIVATED, /* revoked for good (KMIP Revoke): keyd unwraps nothing with it */
	KMS_KEY_DESTROYED,
	KMS_KEY_MISSING, /* the KMS has no such key (deleted, or never there): not usable, but no
			  * proof it was destroyed, so never a shred */
	KMS_KEY_EXPIRED, /* past its expiration (Key Protect's Deactivated, state 3; Tencent's
			  * Archived): unwrap still works, wrap does not; not a revocation */
	_KMS_KEY_STATE_MAX,
};
extern const char *const kms_key_state_names[];

struct kms_key_info {
	enum kms_key_state state;
	char version[KMS_VERSION_MAX + 1]; /* the current (newest) version; "" if none */
	char last_rotated[40];		   /* RFC 3339 as the KMS gave it; "" if unknown */
};

struct kms;

/* What one attempt asked of the KMS, and how it ended: the labels of keyd's request metrics
 * (docs/metrics.md). The outcome is read off the failure the provider classified. */
enum kms_action {
	KMS_ACTION_WRAP,
	KMS_ACTION_UNWRAP,
	KMS_ACTION_REWRAP,
	KMS_ACTION_KEY_INFO,
	KMS_ACTION_PROBE,
	KMS_ACTION_EVENT_ACK,
	_KMS_ACTION_MAX,
};
extern const char *const kms_action_names[];

enum kms_outcome {
	KMS_OUTCOME_OK,
	KMS_OUTCOME_RATE_LIMITED, /* HTTP 429 */
	KMS_OUTCOME_SERVER,	  /* HTTP 5xx */
	KMS_OUTCOME_CLIENT,	  /* another HTTP status: authentication, unknown key, ... */
	KMS_OUTCOME_TRANSPORT,	  /* no reply: connection, timeout (retryable, no status) */
	KMS_OUTCOME_ERROR,	  /* anything else: TLS verification, a malformed reply, ... */
	_KMS_OUTCOME_MAX,
};
extern const char *const kms_outcome_names[];

/* Told after every attempt (each try of a retried call counts once): set by whoever counts
 * them (keyd's metrics), called from the thread that made the attempt. */
typedef void (*kms_report_fn)(void *userdata, const struct kms *kms, enum kms_action action,
			      enum kms_outcome outcome, uint64_t duration_us);

struct kms_provider {
	const char *name;
	const char *summary;
	/* Reads the provider's config object at @path ("kms.NAME"); unknown keys are errors. */
	int (*parse)(struct kms *kms, json_t *obj, const char *path, struct error *e);
	/* Loads credentials and prepares clients; called once before first use. */
	int (*open)(struct kms *kms, struct error *e);
	int (*wrap)(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		    const char *aad, struct kms_wrapped *ret, struct error *e);
	/* *ret_dek is secure memory. If the KMS hands back a ciphertext rewrapped to a newer
	 * key version (Key Protect after a rotation), it goes to *rewrapped (may be NULL). */
	int (*unwrap)(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		      struct error *e);
	/* Rewraps a WDEK to the root key's newest version without exposing the DEK to us. */
	int (*rewrap)(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      struct kms_wrapped *ret, struct error *e);
	/* The root key's state and newest version (polling for lifecycle changes). */
	int (*key_info)(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			struct error *e);
	/* Tells the KMS that this adopter acted on its lifecycle event @event_id for @key_id
	 * (Key Protect's event_ack); @key_state is what the adopter now holds. May be NULL. */
	int (*event_ack)(struct kms *kms, const char *key_id, const char *event_id,
			 enum kms_key_state key_state, struct error *e);
	/* Reaches the KMS and authenticates; checks @key_id exists and is usable if given. */
	int (*probe)(struct kms *kms, const char *key_id, struct error *e);
	void (*done)(struct kms *kms);
};

struct kms_retry {
	uint64_t try_timeout_ms; /* one attempt, connect included */
	uint64_t backoff_min_ms; /* first pause */
	uint64_t backoff_max_ms; /* cap of the exponential backoff */
	uint64_t deadline_ms;	 /* all attempts of one operation */
};

struct kms {
	char *name;
	const struct kms_provider *provider;
	struct kms_retry retry;
	/* Opened on first use, by whichever thread calls first (an unlock worker, the lifecycle
	 * thread, a control request); the others wait on open_lock for it. */
	pthread_mutex_t open_lock;
	bool opened;	      /* atomic */
	uint64_t last_ok_us;  /* monotonic time of the last successful call (atomic) */
	void *data;	      /* provider state */
	kms_report_fn report; /* NULL: nobody counts the attempts */
	void *report_data;
};

/* A root key: the KMS that holds it and its id there. A volume names 1..KMS_KEYS_MAX of them,
 * any of which unwraps its DEK. */
#define KMS_KEYS_MAX 4
struct kms_key {
	struct kms *kms;
	char *key_id;
};

extern const struct kms_provider kms_provider_file;
extern const struct kms_provider kms_provider_keyprotect;
extern const struct kms_provider kms_provider_vault;
extern const struct kms_provider kms_provider_aws;
extern const struct kms_provider kms_provider_tencent;
extern const struct kms_provider kms_provider_pkcs11;
extern const struct kms_provider kms_provider_kmip;

/* The provider table row for @name, or NULL. */
const struct kms_provider *kms_provider_find(const char *name);
/* "file, keyprotect" for help and errors. */
const char *kms_provider_names(void);

/* Called before each pause between attempts: the KMS, the attempt number, the pause, and the
 * last error, so the daemon can tell systemd (STATUS=) and the log what it waits for. With
 * several KMS per volume it is called from one thread per KMS, never two at once. */
typedef void (*kms_wait_fn)(void *userdata, const struct kms *kms, unsigned attempt,
			    uint64_t pause_ms, const struct error *e);

/* Calls with retries: bounded time per try, exponential backoff with jitter (or the KMS's
 * Retry-After), until the deadline or a non-retryable error. @stop ends waiting early. */
int kms_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
	     const char *aad, struct kms_wrapped *ret, struct error *e, kms_wait_fn wait,
	     void *userdata, const volatile bool *stop);
int kms_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
	       uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped, struct error *e,
	       kms_wait_fn wait, void *userdata, const volatile bool *stop);
int kms_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
	       struct kms_wrapped *ret, struct error *e, kms_wait_fn wait, void *userdata,
	       const volatile bool *stop);
/* Tells the KMS that keyd acted on its event @event_id (Key Protect's event_ack), with the
 * retries above: an acknowledgement lost to the network is one the KMS keeps waiting for.
 * -EOPNOTSUPP when the provider has no acknowledgement. */
int kms_event_ack(struct kms *kms, const char *key_id, const char *event_id,
		  enum kms_key_state key_state, struct error *e, const volatile bool *stop);
/* One attempt, no retries (for polling). */
int kms_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret, struct error *e);
int kms_probe(struct kms *kms, const char *key_id, struct error *e);
void kms_free(struct kms *kms);

/* The outcome an attempt that returned @r with @e (filled on failure) counts as. */
enum kms_outcome kms_outcome_of(int r, const struct error *e);

/* Microseconds since the KMS last answered a call successfully; UINT64_MAX if never. */
uint64_t kms_silence_us(struct kms *kms);

/* The AAD that binds a wrapped key to one volume: "keyd:v1:<LUKS UUID>". */
int kms_aad_for_uuid(const char *uuid, char *buf, size_t size);
