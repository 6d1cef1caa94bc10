/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /etc/keyd/keyd.json: parsed once into struct keyd_config, every error naming its JSON path.
 * Holds no credentials itself: providers read their credential files when opened. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jsonx.h"
#include "kms.h"

#define CONFIG_PATH_DEFAULT "/etc/keyd/keyd.json"
/* Enough to spread a fleet that booted together over 40% of the poll interval at once. */
#define POLL_JITTER_PCT_DEFAULT 20
#define CONFIG_SIZE_MAX		(1024 * 1024)
#define VOLUME_NAME_MAX		64
#define VOLUMES_MAX		1024
#define DEVICE_SPEC_MAX		1024

enum on_revoke {
	ON_REVOKE_CLOSE,
	ON_REVOKE_SUSPEND,
	ON_REVOKE_AUDIT_ONLY,
};
extern const char *const on_revoke_names[]; /* NULL-terminated, indexed by enum on_revoke */

#define HOOKS_MAX     8
#define HOOK_ARGS_MAX 32

/* A command run without a shell: argv[0] is an absolute path. */
struct hook {
	char **argv; /* NULL-terminated */
};

struct volume_config {
	char *name;   /* also the device-mapper name */
	char *device; /* path, UUID=, PARTUUID= or LABEL=; NULL for discovered volumes */
	/* The root keys that wrap its DEK, any of which opens it (config "kms" and "key_id",
	 * each a string or a list). kms and key_id name keys[0], the first listed. */
	union {
		struct kms_key keys[KMS_KEYS_MAX];
		struct {
			struct kms *kms;
			char *key_id;
		};
	};
	size_t n_keys;
	bool required;
	enum on_revoke on_revoke;
	struct hook *stop_hooks; /* before a revocation closes the mapping (stop PostgreSQL) */
	size_t n_stop_hooks;
	struct hook *start_hooks; /* after the volume is back (start PostgreSQL) */
	size_t n_start_hooks;
	bool erase_on_delete;	   /* a deleted root key also destroys the keyd keyslot here */
	uint64_t rekey_every_days; /* scheduled re-key; 0 = never */
};

struct callback_config;

/* Control-API operations a policy rule can grant (bit = 1 << op). */
enum control_op {
	CONTROL_STATUS,
	CONTROL_UNLOCK,
	CONTROL_LOCK,
	CONTROL_SUSPEND,
	CONTROL_RESUME,
	CONTROL_RELEASE,
	_CONTROL_OP_MAX,
};
extern const char *const control_op_names[];

#define POLICY_RULES_MAX 64
#define POLICY_NAMES_MAX 64

/* Grants @ops on @volumes (NULL: every volume) to @uids and members of @gids. */
struct policy_rule {
	uid_t *uids;
	size_t n_uids;
	gid_t *gids;
	size_t n_gids;
	unsigned ops;
	char **volumes;
	size_t n_volumes;
};

struct keyd_config {
	struct kms **kms;
	size_t n_kms;
	struct volume_config *volumes;
	size_t n_volumes;
	char *socket_path;
	char *control_group;	    /* read-only access to the control socket */
	struct policy_rule *policy; /* beyond root (all) and control_group (status) */
	size_t n_policy;
	bool discover;			  /* also unlock LUKS2 devices carrying a keyd token */
	uint64_t poll_interval_s;	  /* key state polling; 0 = off */
	uint64_t poll_jitter_pct;	  /* each poll delay spread by ± this % (docs/fleet.md) */
	uint64_t max_key_cache_age_s;	  /* on_revoke when the KMS was unreachable this long */
	struct callback_config *callback; /* NULL: no event endpoint */
	char *audit_path;		  /* the tamper-evident audit log */
	char *node_key_file;		  /* Ed25519 key that signs its checkpoints */
	char *metrics_textfile_dir;	  /* NULL: no textfile for node_exporter */
	uint64_t metrics_interval_s;	  /* ... written this often */
};

/* Loads and validates. On any failure e->msg says why; for a bad value it names the JSON
 * path. -EINVAL, -ENOENT and other open errors, -ENOMEM. */
int config_load(const char *path, struct keyd_config **ret, struct error *e);
void config_free(struct keyd_config *cfg);

struct kms *config_find_kms(const struct keyd_config *cfg, const char *name);
struct volume_config *config_find_volume(const struct keyd_config *cfg, const char *name);

/* Volume names become device-mapper names: [A-Za-z0-9._-], 1..VOLUME_NAME_MAX. */
bool volume_name_valid(const char *name);
