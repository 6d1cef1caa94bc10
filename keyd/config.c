// SPDX-License-Identifier: GPL-2.0-or-later
/* Config parsing: the schema of keyd.json, checked at the edge. Unknown keys and bad values
 * are errors naming the JSON path; provider-specific keys belong to each provider's parse. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "callback_config.h"
#include "config.h"
#include "jitter.h"
#include "sign.h"

const char *const on_revoke_names[] = {"close", "suspend", "audit-only", NULL};
const char *const control_op_names[] = {
	[CONTROL_STATUS] = "status",
	[CONTROL_UNLOCK] = "unlock",
	[CONTROL_LOCK] = "lock",
	[CONTROL_SUSPEND] = "suspend",
	[CONTROL_RESUME] = "resume",
	[CONTROL_RELEASE] = "release",
	NULL,
};

bool volume_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VOLUME_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       n;
}

struct kms *config_find_kms(const struct keyd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_kms; i++)
		if (strcmp(cfg->kms[i]->name, name) == 0)
			return cfg->kms[i];
	return NULL;
}

struct volume_config *config_find_volume(const struct keyd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_volumes; i++)
		if (strcmp(cfg->volumes[i].name, name) == 0)
			return &cfg->volumes[i];
	return NULL;
}

static int parse_unlock(json_t *obj, struct keyd_config *cfg, struct kms_retry *rp, struct error *e)
{
	static const char *const keys[] = {"try_timeout_s", "backoff_min_ms", "backoff_max_s",
					   "deadline_s", NULL};
	uint64_t try_s = rp->try_timeout_ms / 1000, min_ms = rp->backoff_min_ms,
		 max_s = rp->backoff_max_ms / 1000, dl_s = rp->deadline_ms / 1000;
	int r;

	(void)cfg;
	if (!obj)
		return 0;
	if ((r = jx_only_keys(obj, "unlock", keys, e)) < 0 ||
	    (r = jx_uint(obj, "unlock", "try_timeout_s", 1, 300, &try_s, e)) < 0 ||
	    (r = jx_uint(obj, "unlock", "backoff_min_ms", 10, 60000, &min_ms, e)) < 0 ||
	    (r = jx_uint(obj, "unlock", "backoff_max_s", 1, 3600, &max_s, e)) < 0 ||
	    (r = jx_uint(obj, "unlock", "deadline_s", 1, 86400, &dl_s, e)) < 0)
		return r;
	if (min_ms > max_s * 1000)
		return jx_fail(e, "unlock.backoff_min_ms: larger than unlock.backoff_max_s");
	*rp = (struct kms_retry){.try_timeout_ms = try_s * 1000,
				 .backoff_min_ms = min_ms,
				 .backoff_max_ms = max_s * 1000,
				 .deadline_ms = dl_s * 1000};
	return 0;
}

static int parse_kms(json_t *obj, struct keyd_config *cfg, const struct kms_retry *rp,
		     struct error *e)
{
	const char *name;
	json_t *v;

	if (!json_is_object(obj))
		return jx_fail(e, "kms: must be an object of named KMS connections");
	cfg->kms = calloc(json_object_size(obj) + 1, sizeof(*cfg->kms));
	if (!cfg->kms)
		return -ENOMEM;
	json_object_foreach (obj, name, v) {
		char path[KMS_NAME_MAX + 8];
		const char *prov = NULL;
		struct kms *k;
		int r;

		snprintf(path, sizeof(path), "kms.%s", name);
		if (!volume_name_valid(name) || strlen(name) > KMS_NAME_MAX)
			return jx_fail(
				e, "kms.%.64s: name must be 1-%d characters of A-Z a-z 0-9 . _ -",
				name, KMS_NAME_MAX);
		r = jx_string(v, path, "provider", true, 32, &prov, e);
		if (r < 0)
			return json_is_object(v) ? r : jx_fail(e, "%s: must be an object", path);
		k = calloc(1, sizeof(*k));
		if (!k)
			return -ENOMEM;
		pthread_mutex_init(&k->open_lock, NULL);
		cfg->kms[cfg->n_kms++] = k;
		k->name = strdup(name);
		if (!k->name)
			return -ENOMEM;
		k->retry = *rp;
		k->provider = kms_provider_find(prov);
		if (!k->provider)
			return jx_fail(e, "%s.provider: unknown provider \"%s\" (known: %s)", path,
				       prov, kms_provider_names());
		r = k->provider->parse(k, v, path, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_hooks(json_t *obj, const char *path, const char *key, struct hook **ret,
		       size_t *ret_n, struct error *e)
{
	json_t *list = json_object_get(obj, key), *cmd;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > HOOKS_MAX)
		return jx_fail(e, "%s.%s: must be an array of at most %d commands", path, key,
			       HOOKS_MAX);
	*ret = calloc(json_array_size(list) + 1, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	json_array_foreach (list, i, cmd) {
		size_t j;
		json_t *arg;

		if (!json_is_array(cmd) || json_array_size(cmd) == 0 ||
		    json_array_size(cmd) > HOOK_ARGS_MAX)
			return jx_fail(e,
				       "%s.%s[%zu]: must be a command as an array of strings "
				       "(argv, no shell), e.g. [\"/usr/bin/systemctl\", \"stop\", "
				       "\"postgresql\"]",
				       path, key, i);
		(*ret)[i].argv = calloc(json_array_size(cmd) + 1, sizeof(char *));
		*ret_n = i + 1;
		if (!(*ret)[i].argv)
			return -ENOMEM;
		json_array_foreach (cmd, j, arg) {
			if (!json_is_string(arg) || json_string_length(arg) == 0 ||
			    json_string_length(arg) > 4096 ||
			    strlen(json_string_value(arg)) != json_string_length(arg))
				return jx_fail(e, "%s.%s[%zu][%zu]: must be a non-empty string",
					       path, key, i, j);
			if (j == 0 && json_string_value(arg)[0] != '/')
				return jx_fail(e, "%s.%s[%zu][0]: \"%s\" must be an absolute path",
					       path, key, i, json_string_value(arg));
			(*ret)[i].argv[j] = strdup(json_string_value(arg));
			if (!(*ret)[i].argv[j])
				return -ENOMEM;
		}
	}
	return 0;
}

static void free_hooks(struct hook *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (char **a = h[i].argv; a && *a; a++)
			free(*a);
		free(h[i].argv);
	}
	free(h);
}

/* @path.@key: a string, or a list of 1..KMS_KEYS_MAX distinct strings of at most @max chars,
 * into @ret (borrowed from @obj); the count in *n. */
static int parse_name_list(json_t *obj, const char *path, const char *key, size_t max,
			   const char **ret, size_t *n, struct error *e)
{
	json_t *v = json_object_get(obj, key), *x;
	size_t i;

	if (!v || json_is_string(v))
		return *n = 1, jx_string(obj, path, key, true, max, &ret[0], e);
	if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > KMS_KEYS_MAX)
		return jx_fail(e, "%s.%s: must be a string or a list of 1 to %d strings", path, key,
			       KMS_KEYS_MAX);
	json_array_foreach (v, i, x) {
		ret[i] = json_string_value(x);
		if (!ret[i] || !ret[i][0] || strlen(ret[i]) > max)
			return jx_fail(e, "%s.%s[%zu]: must be a string of 1 to %zu characters",
				       path, key, i, max);
	}
	*n = json_array_size(v);
	return 0;
}

/* "kms" and "key_id": one KMS, or a list of them (any-of); one key id for all, or one per KMS
 * in the same order. */
static int parse_volume_keys(json_t *obj, const char *path, struct keyd_config *cfg,
			     struct volume_config *vol, struct error *e)
{
	const char *kms[KMS_KEYS_MAX], *ids[KMS_KEYS_MAX];
	size_t n_kms = 0, n_ids = 0;
	int r;

	if ((r = parse_name_list(obj, path, "kms", KMS_NAME_MAX, kms, &n_kms, e)) < 0 ||
	    (r = parse_name_list(obj, path, "key_id", KMS_KEY_ID_MAX, ids, &n_ids, e)) < 0)
		return r;
	if (n_ids != 1 && n_ids != n_kms)
		return jx_fail(
			e, "%s.key_id: %zu key ids for %zu KMS (give one for all, or one per KMS)",
			path, n_ids, n_kms);
	for (size_t k = 0; k < n_kms; k++) {
		vol->keys[k].kms = config_find_kms(cfg, kms[k]);
		char at[16] = "";

		if (n_kms > 1)
			snprintf(at, sizeof(at), "[%zu]", k);
		if (!vol->keys[k].kms)
			return jx_fail(e, "%s.kms%s: no KMS named \"%s\" under \"kms\"", path, at,
				       kms[k]);
		for (size_t j = 0; j < k; j++)
			if (vol->keys[j].kms == vol->keys[k].kms)
				return jx_fail(e, "%s.kms: \"%s\" is listed twice", path, kms[k]);
		vol->keys[k].key_id = strdup(ids[n_ids == 1 ? 0 : k]);
		vol->n_keys = k + 1;
		if (!vol->keys[k].key_id)
			return -ENOMEM;
	}
	return 0;
}

static int parse_volume(json_t *obj, size_t i, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {
		"name",	     "device",	   "kms",	  "key_id",	     "required",
		"on_revoke", "stop_hooks", "start_hooks", "erase_on_delete", "rekey_every_days",
		NULL};
	struct volume_config *vol = &cfg->volumes[i];
	const char *name = NULL, *device = NULL;
	char path[32];
	int revoke = ON_REVOKE_CLOSE, r;

	snprintf(path, sizeof(path), "volumes[%zu]", i);
	vol->required = true;
	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "name", true, VOLUME_NAME_MAX, &name, e)) < 0 ||
	    (r = jx_string(obj, path, "device", true, DEVICE_SPEC_MAX, &device, e)) < 0 ||
	    (r = parse_volume_keys(obj, path, cfg, vol, e)) < 0 ||
	    (r = jx_bool(obj, path, "required", &vol->required, e)) < 0 ||
	    (r = jx_enum(obj, path, "on_revoke", on_revoke_names, &revoke, e)) < 0 ||
	    (r = jx_bool(obj, path, "erase_on_delete", &vol->erase_on_delete, e)) < 0 ||
	    (r = jx_uint(obj, path, "rekey_every_days", 0, 3650, &vol->rekey_every_days, e)) < 0 ||
	    (r = parse_hooks(obj, path, "stop_hooks", &vol->stop_hooks, &vol->n_stop_hooks, e)) <
		    0 ||
	    (r = parse_hooks(obj, path, "start_hooks", &vol->start_hooks, &vol->n_start_hooks, e)) <
		    0)
		return r;
	if (!volume_name_valid(name))
		return jx_fail(e, "%s.name: \"%s\" must be 1-%d characters of A-Z a-z 0-9 . _ -",
			       path, name, VOLUME_NAME_MAX);
	if (device[0] != '/' && strncmp(device, "UUID=", 5) && strncmp(device, "PARTUUID=", 9) &&
	    strncmp(device, "LABEL=", 6))
		return jx_fail(e,
			       "%s.device: \"%s\" must be a path, UUID=, PARTUUID= or LABEL=", path,
			       device);
	for (size_t j = 0; j < i; j++) {
		if (strcmp(cfg->volumes[j].name, name) == 0)
			return jx_fail(e, "%s.name: \"%s\" is also volumes[%zu].name", path, name,
				       j);
		if (strcmp(cfg->volumes[j].device, device) == 0)
			return jx_fail(e, "%s.device: \"%s\" is also volumes[%zu].device", path,
				       device, j);
	}
	vol->on_revoke = (enum on_revoke)revoke;
	vol->name = strdup(name);
	vol->device = strdup(device);
	return vol->name && vol->device ? 0 : -ENOMEM;
}

/* A JSON array of names at @path.@key, each resolved by @lookup (user or group name -> id). */
static int parse_ids(json_t *rule, const char *path, const char *key, bool users, void **ret,
		     size_t *ret_n, struct error *e)
{
	json_t *list = json_object_get(rule, key), *v;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > POLICY_NAMES_MAX)
		return jx_fail(e, "%s.%s: must be an array of at most %d names", path, key,
			       POLICY_NAMES_MAX);
	*ret = calloc(json_array_size(list) + 1, users ? sizeof(uid_t) : sizeof(gid_t));
	if (!*ret)
		return -ENOMEM;
	json_array_foreach (list, i, v) {
		const char *name = json_string_value(v);
		struct passwd *pw = users && name ? getpwnam(name) : NULL;
		struct group *gr = !users && name ? getgrnam(name) : NULL;

		if (!name)
			return jx_fail(e, "%s.%s[%zu]: must be a string", path, key, i);
		if (users && !pw)
			return jx_fail(e, "%s.%s[%zu]: no user named \"%s\"", path, key, i, name);
		if (!users && !gr)
			return jx_fail(e, "%s.%s[%zu]: no group named \"%s\"", path, key, i, name);
		if (users)
			((uid_t *)*ret)[i] = pw->pw_uid;
		else
			((gid_t *)*ret)[i] = gr->gr_gid;
		*ret_n = i + 1;
	}
	return 0;
}

static int parse_policy(json_t *list, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"users", "groups", "operations", "volumes", NULL};
	json_t *rule;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > POLICY_RULES_MAX)
		return jx_fail(e, "control.policy: must be an array of at most %d rules",
			       POLICY_RULES_MAX);
	cfg->policy = calloc(json_array_size(list) + 1, sizeof(*cfg->policy));
	if (!cfg->policy)
		return -ENOMEM;
	json_array_foreach (list, i, rule) {
		struct policy_rule *p = &cfg->policy[i];
		json_t *ops = json_object_get(rule, "operations"), *vols, *v;
		char path[48];
		size_t j;
		int r;

		cfg->n_policy = i + 1;
		snprintf(path, sizeof(path), "control.policy[%zu]", i);
		if ((r = jx_only_keys(rule, path, keys, e)) < 0 ||
		    (r = parse_ids(rule, path, "users", true, (void **)&p->uids, &p->n_uids, e)) <
			    0 ||
		    (r = parse_ids(rule, path, "groups", false, (void **)&p->gids, &p->n_gids, e)) <
			    0)
			return r;
		if (!p->n_uids && !p->n_gids)
			return jx_fail(e, "%s: names no users and no groups", path);
		if (!json_is_array(ops) || json_array_size(ops) == 0)
			return jx_fail(e, "%s.operations: must be a non-empty array", path);
		json_array_foreach (ops, j, v) {
			int op = -1;

			for (int o = 0; o < _CONTROL_OP_MAX; o++)
				if (json_is_string(v) &&
				    !strcmp(json_string_value(v), control_op_names[o]))
					op = o;
			if (op < 0)
				return jx_fail(
					e,
					"%s.operations[%zu]: not one of status, unlock, lock, "
					"suspend, resume, release",
					path, j);
			p->ops |= 1u << op;
		}
		vols = json_object_get(rule, "volumes");
		if (!vols)
			continue; /* every volume */
		if (!json_is_array(vols) || json_array_size(vols) > VOLUMES_MAX)
			return jx_fail(e, "%s.volumes: must be an array of volume names", path);
		p->volumes = calloc(json_array_size(vols) + 1, sizeof(char *));
		if (!p->volumes)
			return -ENOMEM;
		json_array_foreach (vols, j, v) {
			if (!json_is_string(v) || !volume_name_valid(json_string_value(v)))
				return jx_fail(e, "%s.volumes[%zu]: must be a volume name", path,
					       j);
			p->volumes[j] = strdup(json_string_value(v));
			p->n_volumes = j + 1;
			if (!p->volumes[j])
				return -ENOMEM;
		}
	}
	return 0;
}

static int parse_control(json_t *obj, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"socket", "group", "policy", NULL};
	const char *sock = "/run/keyd/keyd.sock", *group = "keyd";
	int r;

	if (obj && ((r = jx_only_keys(obj, "control", keys, e)) < 0 ||
		    (r = jx_string(obj, "control", "socket", false, 100, &sock, e)) < 0 ||
		    (r = jx_string(obj, "control", "group", false, 64, &group, e)) < 0))
		return r;
	if (sock[0] != '/')
		return jx_fail(e, "control.socket: must be an absolute path");
	if (obj && (r = parse_policy(json_object_get(obj, "policy"), cfg, e)) < 0)
		return r;
	cfg->socket_path = strdup(sock);
	cfg->control_group = strdup(group);
	return cfg->socket_path && cfg->control_group ? 0 : -ENOMEM;
}

static int parse_lifecycle(json_t *obj, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"poll_interval_s", "poll_jitter_pct",
					   "max_key_cache_age_s", NULL};
	int r;

	cfg->poll_interval_s = 300;
	cfg->poll_jitter_pct = POLL_JITTER_PCT_DEFAULT;
	cfg->max_key_cache_age_s = 4 * 3600; /* Key Protect's rule for adopting services */
	if (!obj)
		return 0;
	if ((r = jx_only_keys(obj, "lifecycle", keys, e)) < 0 ||
	    (r = jx_uint(obj, "lifecycle", "poll_interval_s", 0, 86400, &cfg->poll_interval_s, e)) <
		    0 ||
	    (r = jx_uint(obj, "lifecycle", "poll_jitter_pct", 0, JITTER_PCT_MAX,
			 &cfg->poll_jitter_pct, e)) < 0 ||
	    (r = jx_uint(obj, "lifecycle", "max_key_cache_age_s", 1, 7 * 86400,
			 &cfg->max_key_cache_age_s, e)) < 0)
		return r;
	return 0;
}

static int parse_audit(json_t *obj, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"path", "node_key_file", NULL};
	const char *path = AUDIT_PATH_DEFAULT, *key = SIGN_KEY_PATH_DEFAULT;
	int r;

	if (obj && ((r = jx_only_keys(obj, "audit", keys, e)) < 0 ||
		    (r = jx_string(obj, "audit", "path", false, 4096, &path, e)) < 0 ||
		    (r = jx_string(obj, "audit", "node_key_file", false, 4096, &key, e)) < 0))
		return r;
	if (path[0] != '/')
		return jx_fail(e, "audit.path: must be an absolute path");
	cfg->audit_path = strdup(path);
	cfg->node_key_file = strdup(key);
	return cfg->audit_path && cfg->node_key_file ? 0 : -ENOMEM;
}

/* node_exporter's textfile collector: keyd writes DIR/keyd.prom every interval_s. */
static int parse_metrics(json_t *obj, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"textfile_dir", "interval_s", NULL};
	const char *dir = NULL;
	int r;

	cfg->metrics_interval_s = 15;
	if (!obj)
		return 0;
	if ((r = jx_only_keys(obj, "metrics", keys, e)) < 0 ||
	    (r = jx_string(obj, "metrics", "textfile_dir", false, 4000, &dir, e)) < 0 ||
	    (r = jx_uint(obj, "metrics", "interval_s", 1, 3600, &cfg->metrics_interval_s, e)) < 0)
		return r;
	if (!dir)
		return 0;
	if (dir[0] != '/')
		return jx_fail(e, "metrics.textfile_dir: must be an absolute path");
	cfg->metrics_textfile_dir = strdup(dir);
	return cfg->metrics_textfile_dir ? 0 : -ENOMEM;
}

static int config_parse(json_t *root, struct keyd_config *cfg, struct error *e)
{
	static const char *const keys[] = {"kms",      "volumes",   "control",	"unlock",
					   "discover", "lifecycle", "callback", "audit",
					   "metrics",  NULL};
	struct kms_retry retry = {.try_timeout_ms = 10000,
				  .backoff_min_ms = 500,
				  .backoff_max_ms = 30000,
				  .deadline_ms = 600000};
	json_t *vols;
	int r;

	if ((r = jx_only_keys(root, "(top level)", keys, e)) < 0)
		return r;
	cfg->discover = true;
	if ((r = jx_bool(root, "", "discover", &cfg->discover, e)) < 0 ||
	    (r = parse_control(json_object_get(root, "control"), cfg, e)) < 0 ||
	    (r = parse_unlock(json_object_get(root, "unlock"), cfg, &retry, e)) < 0 ||
	    (r = parse_lifecycle(json_object_get(root, "lifecycle"), cfg, e)) < 0 ||
	    (r = parse_audit(json_object_get(root, "audit"), cfg, e)) < 0 ||
	    (r = parse_metrics(json_object_get(root, "metrics"), cfg, e)) < 0)
		return r;
	if (json_object_get(root, "callback") &&
	    (r = callback_config_parse(json_object_get(root, "callback"), "callback",
				       &cfg->callback, e)) < 0)
		return r;
	if (!json_object_get(root, "kms"))
		return jx_fail(e, "kms: missing");
	if ((r = parse_kms(json_object_get(root, "kms"), cfg, &retry, e)) < 0)
		return r;
	vols = json_object_get(root, "volumes");
	if (!vols)
		return 0;
	if (!json_is_array(vols))
		return jx_fail(e, "volumes: must be an array");
	if (json_array_size(vols) > VOLUMES_MAX)
		return jx_fail(e, "volumes: more than %d volumes", VOLUMES_MAX);
	cfg->volumes = calloc(json_array_size(vols) + 1, sizeof(*cfg->volumes));
	if (!cfg->volumes)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(vols); i++) {
		cfg->n_volumes = i + 1;
		r = parse_volume(json_array_get(vols, i), i, cfg, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int config_load(const char *path, struct keyd_config **ret, struct error *e)
{
	json_auto_t *root = NULL;
	struct keyd_config *cfg;
	json_error_t je;
	struct stat st;
	FILE *f;
	int r;

	f = fopen(path, "re");
	if (!f) {
		r = negative_errno();
		jx_fail(e, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > CONFIG_SIZE_MAX) {
		fclose(f);
		return jx_fail(e, "%s: larger than %d bytes", path, CONFIG_SIZE_MAX);
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (!root)
		return jx_fail(e, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	if (!json_is_object(root))
		return jx_fail(e, "%s: top level must be an object", path);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	r = config_parse(root, cfg, e);
	if (r < 0) {
		if (r == -ENOMEM)
			jx_fail(e, "out of memory");
		config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

void config_free(struct keyd_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		free(cfg->volumes[i].name);
		free(cfg->volumes[i].device);
		for (size_t k = 0; k < cfg->volumes[i].n_keys; k++)
			free(cfg->volumes[i].keys[k].key_id);
		free_hooks(cfg->volumes[i].stop_hooks, cfg->volumes[i].n_stop_hooks);
		free_hooks(cfg->volumes[i].start_hooks, cfg->volumes[i].n_start_hooks);
	}
	free(cfg->volumes);
	for (size_t i = 0; i < cfg->n_kms; i++)
		kms_free(cfg->kms[i]);
	free(cfg->kms);
	free(cfg->socket_path);
	free(cfg->control_group);
	for (size_t i = 0; i < cfg->n_policy; i++) {
		free(cfg->policy[i].uids);
		free(cfg->policy[i].gids);
		for (size_t j = 0; j < cfg->policy[i].n_volumes; j++)
			free(cfg->policy[i].volumes[j]);
		free(cfg->policy[i].volumes);
	}
	free(cfg->policy);
	callback_config_free(cfg->callback);
	free(cfg->audit_path);
	free(cfg->metrics_textfile_dir);
	free(cfg->node_key_file);
	free(cfg);
}
