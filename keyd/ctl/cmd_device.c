// SPDX-License-Identifier: GPL-2.0-or-later
/* The subcommands that work on the device and the config in keydctl's own process: enroll,
 * rotate, inspect, check, audit verify. Each logs its outcome once and writes the audit record
 * of a change; secrets (existing passphrases) come from files or stdin, never argv. */
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
#include "reencrypt_ui.h"
#include "rotate.h"
#include "secmem.h"
#include "sign.h"
#include "token.h"
#include "util.h"

/* What enroll works on: the command line, completed by the config's volume of that name or
 * device. @dev is malloc'd; @name may point into it. */
struct enroll_args {
	char *dev;
	const char *name, *key_id;
	struct kms *kms;
};

static int enroll_args(struct ctl *c, struct enroll_args *a)
{
	struct volume_config *vc = NULL;
	const char *spec = c->n_args ? c->args[0] : NULL, *kms_name = c->kms;
	int r;

	a->name = c->name;
	a->key_id = c->key_id;
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
		kms_name = kms_name ? kms_name : vc->kms->name;
		a->key_id = a->key_id ? a->key_id : vc->key_id;
	}
	if (!spec)
		return log_error("enroll: name a DEVICE (or a --name of the config)"), -EINVAL;
	if (!kms_name || !a->key_id)
		return log_error("enroll: --kms and --key-id are required for %s (it is not a "
				 "volume of %s)",
				 spec, c->config_path),
		       -EINVAL;
	a->kms = config_find_kms(c->cfg, kms_name);
	if (!a->kms)
		return log_error("enroll: no KMS named '%s' in %s", kms_name, c->config_path),
		       -ENOENT;
	if (strlen(a->key_id) > KMS_KEY_ID_MAX)
		return log_error("enroll: --key-id is longer than %d characters", KMS_KEY_ID_MAX),
		       -EINVAL;
	r = luks_resolve_device(spec, &a->dev);
	if (r < 0)
		return log_error("enroll: no device matches %s", spec), r;
	if (!a->name)
		a->name = basename(a->dev);
	if (!volume_name_valid(a->name))
		return log_error(
			       "enroll: volume name '%s' must be 1-%d characters of A-Z a-z 0-9 . _ -",
			       a->name, VOLUME_NAME_MAX),
		       -EINVAL;
	return 0;
}

int cmd_enroll(struct ctl *c)
{
	_cleanup_secure_ uint8_t *auth = NULL;
	struct enroll_args a = {0};
	_cleanup_free_ char *dev = NULL;
	struct enroll_result res;
	struct error err;
	const char *name, *key_id;
	size_t auth_len = 0;
	struct kms *kms;
	int r;

	r = ctl_load_config(c);
	if (r >= 0)
		r = enroll_args(c, &a);
	dev = a.dev;
	if (r < 0)
		return r;
	name = a.name;
	key_id = a.key_id;
	kms = a.kms;
	if (c->key_file) {
		r = ctl_read_key_file(c->key_file, &auth, &auth_len);
		if (r < 0)
			return log_error_errno(r, "enroll: cannot read key file %s: %m",
					       c->key_file);
	}

	r = enroll(&(struct enroll_request){.device = dev,
					    .kms = kms,
					    .key_id = key_id,
					    .name = name,
					    .format = c->format,
					    .auth = auth,
					    .auth_len = auth_len},
		   &res, &err);
	ctl_log_changes(dev, &res.converged);
	{
		json_auto_t *o = json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b}", "volume", name, "device", dev,
			"luks_uuid", res.uuid, "kms", kms->name, "key_id", key_id, "key_version",
			res.key_version, "keyslot", res.keyslot, "formatted", c->format);

		ctl_audit(c, "volume.enroll", r, o, r < 0 ? err.msg : NULL);
	}
	if (r < 0)
		return log_error("enroll %s failed at step %s; the device is unchanged", dev,
				 err.msg),
		       r;
	if (c->json) {
		json_auto_t *j =
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "device", dev,
				  "name", name, "uuid", res.uuid, "kms", kms->name, "key_id",
				  key_id, "key_version", res.key_version, "keyslot", res.keyslot,
				  "token", res.token, "formatted", c->format);
		ctl_print_json(j);
	} else {
		printf("Enrolled %s as volume '%s': LUKS UUID %s, keyslot %d, token %d, KMS '%s' "
		       "key %s%s%s.\nRound trip verified: the KMS unwraps the key and it opens the "
		       "keyslot.\n",
		       dev, name, res.uuid, res.keyslot, res.token, kms->name, key_id,
		       res.key_version[0] ? " version " : "", res.key_version);
	}
	return 0;
}

/* A volume named in the config, or a device whose keyd token names a configured KMS. */
static int resolve_volume(struct ctl *c, const char *arg, char **ret_dev, struct kms **ret_kms)
{
	struct volume_config *vc = config_find_volume(c->cfg, arg);
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok;
	struct error je;
	int r;

	r = luks_resolve_device(vc ? vc->device : arg, ret_dev);
	if (r < 0)
		return log_error("no volume or device matches '%s'", arg), r;
	if (vc) {
		*ret_kms = vc->kms;
		return 0;
	}
	r = cryptsetup_load(*ret_dev, &cd);
	if (r < 0)
		return log_error("%s: %s", *ret_dev,
				 r == -EMEDIUMTYPE ? "no LUKS2 header" : strerror(-r)),
		       r;
	r = token_find(cd, &tok, &je);
	if (r <= 0)
		return log_error("%s: %s", *ret_dev,
				 r < 0 ? je.msg : "not enrolled (no keyd token)"),
		       r < 0 ? r : -ENOKEY;
	*ret_kms = config_find_kms(c->cfg, tok.kms);
	if (!*ret_kms)
		log_error("%s: its token names KMS '%s', which %s does not configure", *ret_dev,
			  tok.kms, c->config_path);
	token_done(&tok);
	return *ret_kms ? 0 : -ENOENT;
}

/* What keyd's records say of a volume (daemon.c's keyd_audit), as the token on @dev says it
 * now: the record of a change made here names the volume the same way. Fields that cannot be
 * read (no header, no token) stay empty. */
static json_t *volume_object(struct ctl *c, const char *arg, const char *dev, struct kms *kms)
{
	struct volume_config *vc = config_find_volume(c->cfg, arg);
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	struct keyd_token tok = {.id = -1};
	const char *uuid = NULL;
	struct error je;
	json_t *o;

	if (cryptsetup_load(dev, &cd) >= 0) {
		uuid = crypt_get_uuid(cd);
		token_find(cd, &tok, &je);
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "volume",
		      vc	 ? vc->name
		      : tok.name ? tok.name
				 : "",
		      "device", dev, "luks_uuid", uuid ? uuid : "", "kms", kms->name, "key_id",
		      tok.key_id ? tok.key_id : "", "key_version",
		      tok.key_version ? tok.key_version : "");
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
		return log_error_errno(r, "rotate: cannot read key file %s: %m", c->key_file);
	r = reencrypt_ui_run(
		&(struct reencrypt_request){
			.device = dev, .kms = kms, .keep = keep, .keep_len = keep_len},
		c->json, &rres, &err);
	o = volume_object(c, c->args[0], dev, kms);
	if (o)
		json_object_update_new(o, json_pack("{s:s, s:i, s:i, s:b}", "mode", c->rotate_mode,
						    "old_keyslot", rres.old_keyslot, "new_keyslot",
						    rres.new_keyslot, "resumed", rres.resumed));
	ctl_audit(c, "volume.reencrypt", r, o, r < 0 ? err.msg : NULL);
	return r;
}

int cmd_rotate(struct ctl *c)
{
	_cleanup_free_ char *dev = NULL;
	struct rotate_result res;
	struct error err;
	struct kms *kms;
	bool rekey;
	int r;

	if (!c->rotate_mode)
		return log_error("rotate: say --rewrap, --rekey or --reencrypt"), -EINVAL;
	rekey = strcmp(c->rotate_mode, "rekey") == 0;
	if (c->key_id && !rekey)
		return log_error("rotate: --key-id moves a volume to another root key, which needs "
				 "--rekey"),
		       -EINVAL;
	r = ctl_load_config(c);
	if (r < 0)
		return r;
	r = resolve_volume(c, c->args[0], &dev, &kms);
	if (r < 0)
		return r;
	if (strcmp(c->rotate_mode, "reencrypt") == 0)
		return rotate_reencrypt(c, dev, kms);
	r = rekey ? volume_rekey(dev, kms, c->key_id, &res, &err)
		  : volume_rewrap(dev, kms, NULL, &res, &err);
	ctl_log_changes(dev, &res.changes);
	{
		json_auto_t *o = volume_object(c, c->args[0], dev, kms);

		if (o)
			json_object_update_new(
				o, json_pack("{s:s, s:s, s:s, s:i, s:i}", "old_key_version",
					     res.old_version, "new_key_version", res.new_version,
					     "mode", c->rotate_mode, "old_keyslot", res.old_keyslot,
					     "new_keyslot", res.new_keyslot));
		ctl_audit(c, rekey ? "volume.rekey" : "volume.rewrap", r, o,
			  r < 0 ? err.msg : NULL);
	}
	if (r < 0)
		return log_error("rotate --%s %s failed: %s", c->rotate_mode, dev, err.msg), r;
	if (c->json) {
		json_auto_t *j = json_pack(
			"{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:i}", "device", dev, "mode",
			c->rotate_mode, "uuid", res.uuid, "old_token", res.old_token, "new_token",
			res.new_token, "old_keyslot", res.old_keyslot, "new_keyslot",
			res.new_keyslot, "old_key_version", res.old_version, "new_key_version",
			res.new_version, "converged", res.converged);
		ctl_print_json(j);
	} else if (rekey) {
		printf("Re-keyed %s: new data key in keyslot %d (token %d), keyslot %d and token %d "
		       "removed.\n",
		       dev, res.new_keyslot, res.new_token, res.old_keyslot, res.old_token);
	} else {
		printf("Rewrapped %s: key version %s -> %s (keyslot %d unchanged).\n", dev,
		       res.old_version[0] ? res.old_version : "-",
		       res.new_version[0] ? res.new_version : "-", res.new_keyslot);
	}
	if (res.converged)
		printf("Finished an interrupted enrollment or re-key first (%d header changes).\n",
		       res.converged);
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
		return log_error("audit: the only subcommand is 'verify'"), -EINVAL;
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
	if (audit_anchor_path(path, c->cfg->node_key_file, anchor, sizeof(anchor)) < 0)
		anchor[0] = 0;
	r = audit_verify(path, anchor[0] ? anchor : NULL, key, &report, &err);
	EVP_PKEY_free(key);
	if (c->json && report)
		ctl_print_json(report);
	if (r < 0)
		return log_error("audit log %s does not verify: %s", path,
				 err.msg[0] ? err.msg : strerror(-r)),
		       r;
	if (!c->json)
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

	r = luks_resolve_device(c->args[0], &dev);
	if (r < 0)
		return log_error("inspect: no device matches %s", c->args[0]), r;
	r = inspect_device(dev, &info, &err);
	if (r < 0)
		return log_error("inspect: %s", err.msg), r;
	if (c->json)
		ctl_print_json(info);
	else
		inspect_ui_print(info);
	return 0;
}

#define CHECK_TODO_KMS                                                                             \
	"no KMS configured: add one under \"kms\" (provider, endpoints, credentials; "             \
	"keyd.json(5))"
#define CHECK_TODO_VOLUMES                                                                         \
	"no volumes configured: enroll each data disk (keydctl enroll DEVICE --kms NAME "          \
	"--key-id ID --name VOLUME [--format]) and add it under \"volumes\" (name, device, "       \
	"kms, key_id), then restart keyd"

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
	for (size_t i = 0; i < c->cfg->n_kms; i++) {
		struct kms *kms = c->cfg->kms[i];
		const char *key_id = NULL;
		struct error e;

		/* Probe with the first key a volume uses, so "reachable" also means "usable". */
		for (size_t j = 0; j < c->cfg->n_volumes && !key_id; j++)
			if (c->cfg->volumes[j].kms == kms)
				key_id = c->cfg->volumes[j].key_id;
		r = kms_probe(kms, key_id, &e);
		ok &= r >= 0;
		json_array_append_new(json_object_get(out, "kms"),
				      json_pack("{s:s, s:s, s:b, s:s?}", "name", kms->name,
						"provider", kms->provider->name, "ok", r >= 0,
						"error", r < 0 ? e.msg : NULL));
		if (!c->json)
			printf("KMS %s (%s): %s%s\n", kms->name, kms->provider->name,
			       r >= 0 ? "reachable" : "FAILED: ", r >= 0 ? "" : e.msg);
	}
	for (size_t i = 0; i < c->cfg->n_volumes; i++) {
		struct volume_config *v = &c->cfg->volumes[i];
		_cleanup_free_ char *dev = NULL;
		_cleanup_crypt_ struct crypt_device *cd = NULL;
		struct keyd_token tok = {.id = -1};
		struct error je;
		char problem[ERROR_MAX + 64] = "";

		if (luks_resolve_device(v->device, &dev) < 0 || access(dev, F_OK) < 0)
			snprintf(problem, sizeof(problem), "device not found");
		else if (cryptsetup_load(dev, &cd) < 0)
			snprintf(problem, sizeof(problem), "no LUKS2 header (not enrolled yet?)");
		else if ((r = token_find(cd, &tok, &je)) <= 0)
			snprintf(problem, sizeof(problem), "%s",
				 r == 0 ? "LUKS2 but not enrolled (no keyd token)" : je.msg);
		else if (strcmp(tok.kms, v->kms->name) || strcmp(tok.key_id, v->key_id))
			snprintf(
				problem, sizeof(problem),
				"enrolled with KMS '%s' key %s, the configuration says '%s' key %s",
				tok.kms, tok.key_id, v->kms->name, v->key_id);
		ok &= !problem[0];
		json_array_append_new(json_object_get(out, "volumes"),
				      json_pack("{s:s, s:s, s:s?, s:b, s:s?}", "name", v->name,
						"device_spec", v->device, "device", dev, "ok",
						!problem[0], "error", problem[0] ? problem : NULL));
		if (!c->json && problem[0])
			printf("Volume %s (%s): %s\n", v->name, v->device, problem);
		else if (!c->json)
			printf("Volume %s (%s): enrolled (token %d, keyslot %d)\n", v->name,
			       v->device, tok.id, tok.keyslot);
		token_done(&tok);
	}
	dm = luks_dm_available(why, sizeof(why));
	json_object_set_new(json_object_get(out, "device_mapper"), "available", json_boolean(dm));
	if (!dm)
		json_object_set_new(json_object_get(out, "device_mapper"), "reason",
				    json_string(why));
	json_object_set_new(out, "ok", json_boolean(ok));
	if (c->json)
		ctl_print_json(out);
	else
		printf("device-mapper: %s\n", dm ? "available" : why);
	return ok ? 0 : -EIO;
}
