// SPDX-License-Identifier: GPL-2.0-or-later
/* The subcommands that work on the device and the config in keydctl's own process: enroll,
 * rotate, unbind, inspect, check, audit verify. Each logs its outcome once and writes the audit
 * record of a change; secrets (existing passphrases) come from files or stdin, never argv. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_anchor.h"
#include "audit_verify.h"
#include "cmd.h"
#include "enroll.h"
#include "inspect.h"
#include "inspect_ui.h"
#include "log.h"
#include "luks.h"
#include "posture.h"
#include "reencrypt_ui.h"
#include "rotate.h"
#include "secmem.h"
#include "sign.h"
#include "token.h"
#include "unbind.h"
#include "util.h"

/* What enroll works on: the command line, completed by the config's volume of that name or
 * device. @dev is malloc'd; @name may point into it; @keys borrow from the config. */
struct enroll_args {
	char *dev;
	const char *name;
	struct kms_key keys[KMS_KEYS_MAX];
	size_t n_keys;
};

/* The root keys to wrap with: --kms (with --key-id, or the volume's key for that KMS) names
 * one; else every one the config's volume lists; --key-id alone replaces a single one's. */
static int enroll_keys(struct ctl *c, const struct volume_config *vc, struct enroll_args *a)
{
	const char *key_id = c->key_id;

	if (!c->kms && vc && vc->n_keys > 1) {
		if (key_id)
			return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
					     "enroll: volume '%s' lists %zu KMS; --key-id needs "
					     "--kms to say whose key it is",
					     vc->name, vc->n_keys);
		memcpy(a->keys, vc->keys, vc->n_keys * sizeof(vc->keys[0]));
		a->n_keys = vc->n_keys;
		return 0;
	}
	a->n_keys = 1;
	a->keys[0].kms = c->kms ? config_find_kms(c->cfg, c->kms) : vc ? vc->kms : NULL;
	if (c->kms && !a->keys[0].kms)
		return ctl_fail(c, -ENOENT, "enroll: no KMS named '%s' in %s", c->kms,
				c->config_path);
	for (size_t k = 0; !key_id && vc && k < vc->n_keys; k++)
		if (vc->keys[k].kms == a->keys[0].kms)
			key_id = vc->keys[k].key_id;
	if (!a->keys[0].kms || !key_id)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "enroll: --kms and --key-id are required for %s (it is not a "
				     "volume of %s)",
				     c->n_args ? c->args[0] : a->name, c->config_path);
	if (strlen(key_id) > KMS_KEY_ID_MAX)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "enroll: --key-id is longer than %d characters",
				     KMS_KEY_ID_MAX);
	a->keys[0].key_id = (char *)key_id;
	return 0;
}

static int enroll_args(struct ctl *c, struct enroll_args *a)
{
	struct volume_config *vc = NULL;
	const char *spec = c->n_args ? c->args[0] : NULL;
	struct error e;
	int r;

	a->name = c->name;
	/* A volume of the config supplies what the command line leaves out. */
	for (size_t i = 0; i < c->cfg->n_volumes; i++) {
		struct volume_config *v = &c->cfg->volumes[i];

		if ((a->name && strcmp(v->name, a->name) == 0) ||
		    (spec && strcmp(v->device, spec) == 0))
			vc = v;
	}
	if (vc) {
		spec = spec ? spec : vc->device;
		a->name = a->name ? a->name : vc->name;
	}
	if (!spec)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "enroll: name a DEVICE (or a --name of the config)");
	r = enroll_keys(c, vc, a);
	if (r < 0)
		return r;
	r = luks_resolve_device(spec, &a->dev, &e);
	if (r < 0)
		return ctl_fail(c, r, "enroll: %s", e.msg);
	if (!a->name)
		a->name = basename(a->dev);
	if (!volume_name_valid(a->name))
		return ctl_fail_code(
			c, CTL_EXIT_USAGE, -EINVAL,
			"enroll: volume name '%s' must be 1-%d characters of A-Z a-z 0-9 . _ -",
			a->name, VOLUME_NAME_MAX);
	return 0;
}

/* "'a' key K1, 'b' key K2" for the messages. */
static const char *keys_describe(const struct kms_key *keys, size_t n, char *buf, size_t size)
{
	buf[0] = 0;
	for (size_t k = 0; k < n; k++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s'%s' key %s", k ? ", " : "",
			 keys[k].kms->name, keys[k].key_id ? keys[k].key_id : "(the token's)");
	return buf;
}

int cmd_enroll(struct ctl *c)
{
	_cleanup_secure_ uint8_t *auth = NULL;
	struct enroll_args a = {0};
	_cleanup_free_ char *dev = NULL;
	struct enroll_result res;
	struct error err;
	char which[KMS_KEYS_MAX * (KMS_NAME_MAX + KMS_KEY_ID_MAX + 16)];
	size_t auth_len = 0;
	int r;

	r = ctl_load_config(c);
	if (r >= 0)
		r = enroll_args(c, &a);
	dev = a.dev;
	if (r < 0)
		return r;
	if (c->key_file) {
		r = ctl_read_key_file(c->key_file, &auth, &auth_len);
		if (r < 0)
			return ctl_fail(c, r, "enroll: cannot read key file %s: %m", c->key_file);
	}

	r = enroll(&(struct enroll_request){.device = dev,
					    .keys = a.keys,
					    .n_keys = a.n_keys,
					    .name = a.name,
					    .format = c->format,
					    .auth = auth,
					    .auth_len = auth_len},
		   &res, &err);
	ctl_log_changes(dev, &res.converged);
	keys_describe(a.keys, a.n_keys, which, sizeof(which));
	{
		json_auto_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:s}",
					   "volume", a.name, "device", dev, "luks_uuid", res.uuid,
					   "kms", a.keys[0].kms->name, "key_id", a.keys[0].key_id,
					   "key_version", res.key_version, "keyslot", res.keyslot,
					   "formatted", c->format, "wrapped_by", which);

		ctl_audit(c, "volume.enroll", r, o, r < 0 ? err.msg : NULL);
	}
	if (r < 0)
		return ctl_fail(c, r, "enroll %s failed at step %s; the device is unchanged", dev,
				err.msg);
	if (c->json) {
		json_auto_t *j = json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:[]}", "device", dev,
			"name", a.name, "uuid", res.uuid, "kms", a.keys[0].kms->name, "key_id",
			a.keys[0].key_id, "key_version", res.key_version, "keyslot", res.keyslot,
			"token", res.token, "formatted", c->format, "wrapped_by");

		for (size_t k = 0; j && k < a.n_keys; k++)
			json_array_append_new(json_object_get(j, "wrapped_by"),
					      json_pack("{s:s, s:s}", "kms", a.keys[k].kms->name,
							"key_id", a.keys[k].key_id));
		ctl_print_json(j);
	} else {
		printf("Enrolled %s as volume '%s': LUKS UUID %s, keyslot %d, token %d, KMS %s%s%s."
		       "\nRound trip verified: %s unwraps the key and it opens the keyslot.\n",
		       dev, a.name, res.uuid, res.keyslot, res.token, which,
		       res.key_version[0] && a.n_keys == 1 ? " version " : "",
		       a.n_keys == 1 ? res.key_version : "", a.n_keys > 1 ? "each KMS" : "the KMS");
	}
	return 0;
}

/* A volume named in the config (its root keys), or a device whose keyd token names configured
 * KMS (each of them, the token's keys). --kms narrows it to that one. */
static int resolve_volume(struct ctl *c, const char *arg, char **ret_dev, struct kms_key *keys,
			  size_t *n_keys)
{
	struct volume_config *vc = config_find_volume(c->cfg, arg);
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok;
	struct error je;
	int r;

	*n_keys = 0;
	r = luks_resolve_device(vc ? vc->device : arg, ret_dev, &je);
	if (r == -ENOTUNIQ)
		return ctl_fail(c, r, "%s: %s", arg, je.msg);
	if (r < 0)
		return ctl_fail(c, r, "no volume or device matches '%s'", arg);
	if (vc) {
		memcpy(keys, vc->keys, vc->n_keys * sizeof(vc->keys[0]));
		*n_keys = vc->n_keys;
	} else {
		r = cryptsetup_load(*ret_dev, &cd);
		if (r < 0)
			return ctl_fail(c, r, "%s: %s", *ret_dev, cryptsetup_load_strerror(r));
		r = token_find(cd, &tok, &je);
		if (r <= 0)
			return ctl_fail(c, r < 0 ? r : -ENOKEY, "%s: %s", *ret_dev,
					r < 0 ? je.msg : "not enrolled (no keyd token)");
		if (tok.id < 0)
			return ctl_fail(c, -ENOKEY, "%s: %s", *ret_dev, TOKEN_UNFINISHED);
		for (unsigned i = 0; i < tok.n_wraps; i++)
			if ((keys[*n_keys].kms = config_find_kms(c->cfg, tok.wrap[i].kms)))
				keys[(*n_keys)++].key_id = NULL;
		if (!*n_keys)
			ctl_fail(c, -ENOENT,
				 "%s: its token names KMS '%s'%s, which %s does not configure",
				 *ret_dev, tok.kms, tok.n_wraps > 1 ? " and others" : "",
				 c->config_path);
		token_done(&tok);
		if (!*n_keys)
			return -ENOENT;
	}
	for (size_t k = 0; c->kms && k < *n_keys; k++)
		if (strcmp(keys[k].kms->name, c->kms) == 0) {
			keys[0] = keys[k];
			*n_keys = 1;
			return 0;
		}
	if (c->kms)
		return ctl_fail(c, -ENOENT, "'%s' is not wrapped by a KMS named '%s'", arg, c->kms);
	return 0;
}

/* What keyd's records say of a volume (daemon.c's keyd_audit), as the token on @dev says it
 * now: the record of a change made here names the volume the same way. Fields that cannot be
 * read (no header, no token) stay empty. */
static json_t *volume_object(struct ctl *c, const char *arg, const char *dev, struct kms *kms)
{
	struct volume_config *vc = config_find_volume(c->cfg, arg);
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok = {.id = -1};
	const struct token_wrap *w = NULL;
	const char *uuid = NULL;
	struct error je;
	json_t *o;
	int i;

	if (cryptsetup_load(dev, &cd) >= 0) {
		uuid = crypt_get_uuid(cd);
		token_find(cd, &tok, &je);
	}
	/* The wrap of @kms (a volume of several KMS has one each), else the first. */
	i = kms && tok.n_wraps ? token_wrap_index(&tok, kms->name) : 0;
	if (tok.n_wraps)
		w = &tok.wrap[i >= 0 ? i : 0];
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "volume",
		      vc	 ? vc->name
		      : tok.name ? tok.name
				 : "",
		      "device", dev, "luks_uuid", uuid ? uuid : "", "kms",
		      kms ? kms->name
		      : w ? w->kms
			  : "",
		      "key_id", w && w->key_id ? w->key_id : "", "key_version",
		      w && w->key_version ? w->key_version : "");
	token_done(&tok);
	return o;
}

/* rotate --reencrypt: --key-file names a passphrase whose keyslot survives with the new
 * volume key. */
static int rotate_reencrypt(struct ctl *c, const char *dev, struct kms *kms)
{
	_cleanup_secure_ uint8_t *keep = NULL;
	struct reencrypt_result rres;
	json_auto_t *o = NULL;
	struct error err;
	size_t keep_len = 0;
	int r;

	if (c->key_file && (r = ctl_read_key_file(c->key_file, &keep, &keep_len)) < 0)
		return ctl_fail(c, r, "rotate: cannot read key file %s: %m", c->key_file);
	r = reencrypt_ui_run(c,
			     &(struct reencrypt_request){
				     .device = dev, .kms = kms, .keep = keep, .keep_len = keep_len},
			     &rres, &err);
	o = volume_object(c, c->args[0], dev, kms);
	if (o)
		json_object_update_new(o, json_pack("{s:s, s:i, s:i, s:b}", "mode", c->rotate_mode,
						    "old_keyslot", rres.old_keyslot, "new_keyslot",
						    rres.new_keyslot, "resumed", rres.resumed));
	ctl_audit(c, "volume.reencrypt", r, o, r < 0 ? err.msg : NULL);
	return r;
}

/* rotate --rewrap: each KMS's wrap in turn (one header write each), so every WDEK follows
 * its root key. Stops at the first failure; what is done stays done. Each one tried gets its
 * own result in @rk; *n_tried says how many were. 1: there was nothing to rewrap for any of
 * them (every wrap at its key's newest version). */
static int rotate_rewrap_all(const char *dev, const struct kms_key *keys, size_t n_keys,
			     struct rotate_result *res, int *rk, size_t *n_tried, struct error *err)
{
	size_t nothing = 0;
	int r = 0;

	for (*n_tried = 0; *n_tried < n_keys && r >= 0; (*n_tried)++) {
		size_t k = *n_tried;

		r = rk[k] = volume_rewrap(dev, keys[k].kms, NULL, NULL, &res[k], err);
		if (r < 0)
			error_prefix(err, r, "KMS '%s'", keys[k].kms->name);
		nothing += r == 1;
	}
	return r < 0 ? r : nothing == n_keys ? 1 : 0;
}

/* rotate --rewrap found every wrap already at its key's newest version. */
static int rotate_nothing(struct ctl *c, const char *dev, const struct rotate_result *res)
{
	char why[KMS_VERSION_MAX + 64];

	snprintf(why, sizeof(why), "%s%s",
		 res->old_version[0] ? "the key is already at its newest version "
				     : "the KMS keeps no key versions",
		 res->old_version);
	if (c->json) {
		json_auto_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:i}", "device", dev,
					   "mode", c->rotate_mode, "uuid", res->uuid, "rewrapped",
					   false, "reason", why, "key_version", res->old_version,
					   "converged", res->converged);

		ctl_print_json(j);
	} else {
		printf("Nothing to rewrap on %s: %s; the header is unchanged.\n", dev, why);
	}
	return CTL_EXIT_NOTHING_TO_DO;
}

static void rotate_audit(struct ctl *c, const char *dev, bool rekey, int r,
			 const struct kms_key *key, const struct rotate_result *res,
			 const struct error *err)
{
	json_auto_t *o = volume_object(c, c->args[0], dev, key->kms);

	if (o)
		json_object_update_new(
			o, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "old_key_version",
				     res->old_version, "new_key_version", res->new_version, "mode",
				     c->rotate_mode, "old_keyslot", res->old_keyslot, "new_keyslot",
				     res->new_keyslot, "rotated_kms", key->kms->name));
	ctl_audit(c, rekey ? "volume.rekey" : "volume.rewrap", r, o, r < 0 ? err->msg : NULL);
}

static void rotate_print(struct ctl *c, const char *dev, bool rekey, const struct kms_key *keys,
			 size_t n, const struct rotate_result *res)
{
	json_auto_t *j = c->json ? json_array() : NULL;

	for (size_t k = 0; k < n; k++) {
		if (j)
			json_array_append_new(
				j,
				json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:i}",
					  "device", dev, "mode", c->rotate_mode, "kms",
					  keys[k].kms->name, "uuid", res[k].uuid, "old_token",
					  res[k].old_token, "new_token", res[k].new_token,
					  "old_keyslot", res[k].old_keyslot, "new_keyslot",
					  res[k].new_keyslot, "old_key_version", res[k].old_version,
					  "new_key_version", res[k].new_version, "converged",
					  res[k].converged));
		else if (rekey)
			printf("Re-keyed %s: new data key in keyslot %d (token %d), keyslot %d and "
			       "token %d removed.\n",
			       dev, res[k].new_keyslot, res[k].new_token, res[k].old_keyslot,
			       res[k].old_token);
		else if (n > 1 && strcmp(res[k].old_version, res[k].new_version) == 0)
			printf("Nothing to rewrap on %s (KMS '%s'): the key is already at its "
			       "newest version %s.\n",
			       dev, keys[k].kms->name,
			       res[k].old_version[0] ? res[k].old_version : "-");
		else
			printf("Rewrapped %s%s%s%s: key version %s -> %s (keyslot %d unchanged).\n",
			       dev, n > 1 ? " (KMS '" : "", n > 1 ? keys[k].kms->name : "",
			       n > 1 ? "')" : "", res[k].old_version[0] ? res[k].old_version : "-",
			       res[k].new_version[0] ? res[k].new_version : "-",
			       res[k].new_keyslot);
		if (!j && res[k].converged)
			printf("Finished an interrupted enrollment or re-key first (%d header "
			       "changes).\n",
			       res[k].converged);
	}
	/* One document: the (first) rotation's object; a rewrap of several KMS adds each one's
	 * in "rotations". */
	if (j) {
		/* A copy: the first object inside the list it then holds would be a loop that
		 * json_dumps refuses. */
		json_auto_t *o = json_copy(json_array_get(j, 0));

		if (o && json_array_size(j) > 1)
			json_object_set(o, "rotations", j);
		ctl_print_json(o);
	}
}

int cmd_rotate(struct ctl *c)
{
	_cleanup_free_ char *dev = NULL;
	struct rotate_result res[KMS_KEYS_MAX] = {0};
	struct kms_key keys[KMS_KEYS_MAX];
	int rk[KMS_KEYS_MAX];
	struct error err;
	size_t n_keys, n_done;
	bool rekey;
	int r;

	if (!c->rotate_mode)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "rotate: say --rewrap, --rekey or --reencrypt");
	rekey = strcmp(c->rotate_mode, "rekey") == 0;
	if (c->key_id && !rekey)
		return ctl_fail_code(
			c, CTL_EXIT_USAGE, -EINVAL,
			"rotate: --key-id moves a volume to another root key, which needs "
			"--rekey");
	r = ctl_load_config(c);
	if (r < 0)
		return r;
	r = resolve_volume(c, c->args[0], &dev, keys, &n_keys);
	if (r < 0)
		return r;
	if (strcmp(c->rotate_mode, "reencrypt") == 0)
		return rotate_reencrypt(c, dev, keys[0].kms);
	if (rekey && c->key_id && n_keys > 1)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "rotate: %s is wrapped by %zu KMS; --key-id needs --kms to "
				     "say whose key it is",
				     c->args[0], n_keys);
	if (rekey && c->key_id)
		keys[0].key_id = (char *)c->key_id;
	if (rekey) {
		r = rk[0] = volume_rekey(dev, keys, n_keys, NULL, &res[0], &err);
		n_done = 1;
	} else {
		r = rotate_rewrap_all(dev, keys, n_keys, res, rk, &n_done, &err);
	}
	/* Each rotation tried is recorded with its own outcome; the message is the failure's. */
	for (size_t k = 0; k < n_done; k++) {
		ctl_log_changes(dev, &res[k].changes);
		rotate_audit(c, dev, rekey, rk[k] < 0 ? rk[k] : 0, &keys[k], &res[k], &err);
	}
	if (r < 0)
		return ctl_fail(c, r, "rotate --%s %s failed: %s", c->rotate_mode, dev, err.msg);
	if (r > 0)
		return rotate_nothing(c, dev, &res[0]);
	rotate_print(c, dev, rekey, keys, n_done, res);
	return 0;
}

int cmd_audit(struct ctl *c)
{
	json_auto_t *report = NULL;
	EVP_PKEY *key = NULL;
	char anchor[PATH_MAX];
	const char *path;
	struct error err = {.msg = ""};
	int r;

	if (strcmp(c->args[0], "verify") != 0)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "audit: the only subcommand is 'verify'");
	r = ctl_load_config(c);
	if (r < 0)
		return r;
	path = c->n_args > 1 ? c->args[1] : c->cfg->audit_path;
	/* Checkpoints must be signed by this node's key when it can be read; else the key
	 * embedded in the log is used and reported, to be compared by the auditor. */
	if (access(c->cfg->node_key_file, R_OK) == 0 &&
	    sign_key_load(c->cfg->node_key_file, &key) < 0)
		key = NULL;
	/* The anchor beside the node key names the last sealed position of the log it is named
	 * after: a log cut back or deleted and begun anew fails. */
	r = audit_anchor_path(path, c->cfg->node_key_file, anchor, sizeof(anchor));
	if (r < 0)
		anchor[0] = 0;
	if (r == -EINVAL)
		log_warning("audit log %s: %s", path, AUDIT_ANCHOR_NO_DIR);
	r = audit_verify(path, anchor[0] ? anchor : NULL, key, &report, &err);
	EVP_PKEY_free(key);
	if (r < 0) {
		/* The report says where the chain broke: it goes into the one error document. */
		if (report)
			c->error_detail = json_pack("{s:O}", "report", report);
		return ctl_fail(c, r, "audit log %s does not verify: %s", path,
				err.msg[0] ? err.msg : strerror(-r));
	}
	if (c->json)
		ctl_print_json(report);
	else
		printf("%s: %lld records, %lld signed checkpoints, chain intact%s\n", path,
		       json_integer_value(json_object_get(report, "records")),
		       json_integer_value(json_object_get(report, "checkpoints")),
		       json_integer_value(json_object_get(report, "unvouched_records"))
			       ? " (records after the last checkpoint are not yet vouched for)"
			       : "");
	return 0;
}

int cmd_inspect(struct ctl *c)
{
	_cleanup_free_ char *dev = NULL;
	json_auto_t *info = NULL;
	struct error err;
	int r;

	r = luks_resolve_device(c->args[0], &dev, &err);
	if (r < 0)
		return ctl_fail(c, r, "inspect: %s", err.msg);
	r = inspect_device(dev, &info, &err);
	if (r < 0)
		return ctl_fail(c, r, "inspect: %s", err.msg);
	if (c->json)
		ctl_print_json(info);
	else
		inspect_ui_print(info);
	return 0;
}

/* unbind's device: the config's volume of that name, or the device itself; its KMS (NULL when
 * the config has none for it: unbinding needs no KMS). */
static int unbind_target(struct ctl *c, char **dev, struct kms **kms)
{
	struct volume_config *vc = config_find_volume(c->cfg, c->args[0]);
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok = {.id = -1};
	struct error je;
	int r;

	r = luks_resolve_device(vc ? vc->device : c->args[0], dev, &je);
	if (r == -ENOTUNIQ)
		return ctl_fail(c, r, "unbind: %s: %s", c->args[0], je.msg);
	if (r < 0)
		return ctl_fail(c, r, "unbind: no volume or device matches '%s'", c->args[0]);
	*kms = vc ? vc->kms : NULL;
	if (!*kms && cryptsetup_load(*dev, &cd) >= 0 && token_find(cd, &tok, &je) > 0 &&
	    tok.id >= 0)
		*kms = config_find_kms(c->cfg, tok.kms);
	token_done(&tok);
	return 0;
}

int cmd_unbind(struct ctl *c)
{
	_cleanup_free_ char *dev = NULL;
	struct unbind_result res;
	struct kms *kms = NULL;
	struct error err;
	json_auto_t *o = NULL;
	int r;

	r = ctl_load_config(c);
	if (r >= 0)
		r = unbind_target(c, &dev, &kms);
	if (r < 0)
		return r;
	if (c->force)
		log_warning(
			"unbind --force: %s loses keyd's keyslot even if no other keyslot opens "
			"it; without another passphrase or a header backup its data is GONE",
			dev);
	o = volume_object(c, c->args[0], dev, kms);
	r = volume_unbind(dev, kms, c->force, &res, &err);
	ctl_log_changes(dev, &res.changes);
	if (o)
		json_object_update_new(o, json_pack("{s:i, s:i, s:i, s:b}", "token", res.token,
						    "keyslot", res.keyslot, "other_keyslots",
						    res.other_keyslots, "forced", c->force));
	ctl_audit(c, "volume.unbind", r, o, r < 0 ? err.msg : NULL);
	if (r == -ENOTRECOVERABLE)
		return ctl_fail_code(c, CTL_EXIT_UNSAFE, r, "unbind %s refused: %s", dev, err.msg);
	if (r < 0)
		return ctl_fail(c, r, "unbind %s failed: %s", dev, err.msg);
	if (c->json) {
		json_auto_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:i}", "device", dev,
					   "uuid", res.uuid, "token", res.token, "keyslot",
					   res.keyslot, "other_keyslots", res.other_keyslots,
					   "forced", c->force, "converged", res.converged);

		ctl_print_json(j);
	} else {
		printf("Unbound %s from its KMS: keyslot %d and keyd token %d removed; %d other "
		       "keyslot(s) still open it.\n",
		       dev, res.keyslot, res.token, res.other_keyslots);
	}
	if (!res.other_keyslots)
		log_warning("%s: no keyslot is left: nothing opens this volume any more", dev);
	return 0;
}

#define CHECK_TODO_KMS                                                                             \
	"no KMS configured: add one under \"kms\" (provider, endpoints, credentials; "             \
	"keyd.json(5))"
#define CHECK_TODO_VOLUMES                                                                         \
	"no volumes configured: enroll each data disk (keydctl enroll DEVICE --kms NAME "          \
	"--key-id ID --name VOLUME [--format]) and add it under \"volumes\" (name, device, "       \
	"kms, key_id), then restart keyd"

/* The token of volume @v against its configuration: a wrap for each configured KMS, of the
 * configured key. A KMS listed but not in the token (added to the list after enrollment)
 * needs a re-key to be wrapped by it. */
static void check_wraps(const struct volume_config *v, const struct keyd_token *tok, char *problem,
			size_t size)
{
	for (size_t k = 0; k < v->n_keys && !problem[0]; k++) {
		int w = token_wrap_index(tok, v->keys[k].kms->name);

		if (w < 0)
			snprintf(problem, size,
				 "not wrapped by KMS '%s' (key %s), which the configuration lists: "
				 "keydctl rotate --rekey %s wraps it with every listed KMS",
				 v->keys[k].kms->name, v->keys[k].key_id, v->name);
		else if (strcmp(tok->wrap[w].key_id, v->keys[k].key_id) != 0)
			snprintf(
				problem, size,
				"enrolled with KMS '%s' key %s, the configuration says '%s' key %s",
				tok->wrap[w].kms, tok->wrap[w].key_id, v->keys[k].kms->name,
				v->keys[k].key_id);
	}
}

/* Reaches @kms with the first key a volume uses, so "reachable" also means "usable". */
static bool check_kms(struct ctl *c, struct kms *kms, json_t *out)
{
	const char *key_id = NULL;
	struct error e;
	int r;

	for (size_t j = 0; j < c->cfg->n_volumes && !key_id; j++)
		for (size_t k = 0; k < c->cfg->volumes[j].n_keys && !key_id; k++)
			if (c->cfg->volumes[j].keys[k].kms == kms)
				key_id = c->cfg->volumes[j].keys[k].key_id;
	r = kms_probe(kms, key_id, &e);
	json_array_append_new(json_object_get(out, "kms"),
			      json_pack("{s:s, s:s, s:b, s:s?}", "name", kms->name, "provider",
					kms->provider->name, "ok", r >= 0, "error",
					r < 0 ? e.msg : NULL));
	if (!c->json)
		printf("KMS %s (%s): %s%s\n", kms->name, kms->provider->name,
		       r >= 0 ? "reachable" : "FAILED: ", r >= 0 ? "" : e.msg);
	return r >= 0;
}

/* The state of root key @key as its KMS reports it now in *state: "active", "suspended"
 * (disabled), "deactivated", "destroyed", ...; "unknown" and the reason in @why when it
 * cannot say. Returns kms_key_info's result (-EOPNOTSUPP: the provider keeps no state). */
static int check_key_state(const struct kms_key *key, const char **state, char *why, size_t size)
{
	struct kms_key_info info;
	struct error e;
	int r;

	why[0] = 0;
	r = kms_key_info(key->kms, key->key_id, &info, &e);
	if (r < 0)
		snprintf(why, size, "%s", e.msg);
	*state = kms_key_state_names[r < 0 ? KMS_KEY_UNKNOWN : info.state];
	return r;
}

/* Finds @v's device, header and token; the problem, if any, in @problem. */
static void check_volume_device(struct volume_config *v, struct keyd_token *tok, char **dev,
				char *problem, size_t size)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct error je;
	int r;

	if ((r = luks_resolve_device(v->device, dev, &je)) == -ENOTUNIQ)
		snprintf(problem, size, "%s", je.msg);
	else if (r < 0 || access(*dev, F_OK) < 0)
		snprintf(problem, size, "device not found");
	else if ((r = cryptsetup_load(*dev, &cd)) < 0)
		snprintf(problem, size, "%s",
			 r == -EMEDIUMTYPE ? "no LUKS2 header (not enrolled yet?)"
					   : cryptsetup_load_strerror(r));
	else if ((r = token_find(cd, tok, &je)) <= 0)
		snprintf(problem, size, "%s",
			 r == 0 ? "LUKS2 but not enrolled (no keyd token)" : je.msg);
	else if (tok->id < 0)
		snprintf(problem, size, "%s", TOKEN_UNFINISHED);
	else
		check_wraps(v, tok, problem, size);
}

/* A volume is usable while any of its root keys is (any-of): its key_state is the first
 * usable key's, else the first key's. */
static bool check_volume(struct ctl *c, struct volume_config *v, json_t *out)
{
	_cleanup_free_ char *dev = NULL;
	struct keyd_token tok = {.id = -1};
	char problem[ERROR_MAX + 64] = "", why[ERROR_MAX] = "", kwhy[ERROR_MAX];
	const char *state = NULL, *kstate;
	bool usable = false;
	int r;

	check_volume_device(v, &tok, &dev, problem, sizeof(problem));
	if (!c->json) {
		if (problem[0])
			printf("Volume %s (%s): %s", v->name, v->device, problem);
		else
			printf("Volume %s (%s): enrolled (token %d, keyslot %d)", v->name,
			       v->device, tok.id, tok.keyslot);
	}
	for (size_t k = 0; k < v->n_keys; k++) {
		bool ok;

		r = check_key_state(&v->keys[k], &kstate, kwhy, sizeof(kwhy));
		/* A key the KMS would refuse to unwrap with is a problem even if the disk is
		 * fine. */
		ok = r == -EOPNOTSUPP || strcmp(kstate, kms_key_state_names[KMS_KEY_ACTIVE]) == 0;
		if (!state || (ok && !usable)) {
			state = kstate;
			snprintf(why, sizeof(why), "%s", kwhy);
		}
		usable |= ok;
		if (!c->json)
			printf("; root key %s%s%s%s: %s%s%s", v->keys[k].key_id,
			       v->n_keys > 1 ? " (KMS '" : "",
			       v->n_keys > 1 ? v->keys[k].kms->name : "", v->n_keys > 1 ? "')" : "",
			       kstate, kwhy[0] ? " - " : "", kwhy);
	}
	if (!c->json)
		printf("\n");
	json_array_append_new(json_object_get(out, "volumes"),
			      json_pack("{s:s, s:s, s:s?, s:b, s:s, s:s?, s:s?}", "name", v->name,
					"device_spec", v->device, "device", dev, "ok",
					!problem[0] && usable, "key_state", state,
					"key_state_error", why[0] ? why : NULL, "error",
					problem[0] ? problem : NULL));
	token_done(&tok);
	return !problem[0] && usable;
}

/* Where a released volume's plaintext outlives keyd's own memory (posture.h): reported, and
 * failing check only with --strict, since most of it is the host's, not keyd's, to set. */
static bool check_host(struct ctl *c, json_t *out)
{
	struct posture p;
	json_t *findings = json_array();
	bool ok;

	posture_probe(&p, "");
	ok = posture_ok(&p);
	for (size_t i = 0; i < p.n; i++) {
		const struct posture_finding *f = &p.findings[i];

		json_array_append_new(findings, json_pack("{s:s, s:s, s:s?, s:s}", "id", f->id,
							  "state", posture_state_names[f->state],
							  "path", f->path[0] ? f->path : NULL,
							  "message", f->message));
		if (!c->json)
			printf("Host %s: %s: %s\n", f->id,
			       f->state == POSTURE_OK	  ? "ok"
			       : f->state == POSTURE_WARN ? "WARNING"
							  : "cannot tell",
			       f->message);
	}
	json_object_set_new(out, "host", json_pack("{s:o, s:b}", "findings", findings, "ok", ok));
	return ok || !c->strict;
}

int cmd_check(struct ctl *c)
{
	json_auto_t *out = json_pack("{s:s, s:[], s:[], s:{}}", "config", c->config_path, "kms",
				     "volumes", "device_mapper");
	char why[256];
	bool dm, ok = true;
	int r;

	r = ctl_load_config(c);
	if (r < 0)
		return r;
	if (!c->json)
		printf("Config %s: valid (%zu KMS, %zu volumes)\n", c->config_path, c->cfg->n_kms,
		       c->cfg->n_volumes);
	/* The packaged example has neither: say what to fill in. No KMS means nothing can ever
	 * unlock (not ok); no volumes is a discover-only host (ok, but said). */
	if (c->cfg->n_kms == 0 || c->cfg->n_volumes == 0) {
		json_t *todo = json_array();

		if (c->cfg->n_kms == 0)
			json_array_append_new(todo, json_string(CHECK_TODO_KMS));
		if (c->cfg->n_volumes == 0)
			json_array_append_new(todo, json_string(CHECK_TODO_VOLUMES));
		for (size_t i = 0; !c->json && i < json_array_size(todo); i++)
			printf("To do: %s\n", json_string_value(json_array_get(todo, i)));
		json_object_set_new(out, "todo", todo);
		ok &= c->cfg->n_kms > 0;
	}
	for (size_t i = 0; i < c->cfg->n_kms; i++)
		ok &= check_kms(c, c->cfg->kms[i], out);
	for (size_t i = 0; i < c->cfg->n_volumes; i++)
		ok &= check_volume(c, &c->cfg->volumes[i], out);
	dm = luks_dm_available(why, sizeof(why));
	json_object_set_new(json_object_get(out, "device_mapper"), "available", json_boolean(dm));
	if (!dm)
		json_object_set_new(json_object_get(out, "device_mapper"), "reason",
				    json_string(why));
	if (!c->json)
		printf("device-mapper: %s\n", dm ? "available" : why);
	ok &= check_host(c, out);
	json_object_set_new(out, "ok", json_boolean(ok));
	if (c->json)
		ctl_print_json(out);
	if (!ok && !c->json)
		return ctl_fail(c, -EIO, "check: not everything is in order (see above)");
	return ok ? 0 : CTL_EXIT_FAILURE;
}
