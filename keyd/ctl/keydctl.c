// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl: the operator's command line. Subcommands live in one table; enroll, inspect and check
 * work on the device and the config directly, the rest ask the daemon over its Unix socket.
 * Secrets (existing passphrases) come from files or stdin, never argv. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "enroll.h"
#include "http.h"
#include "inspect.h"
#include "log.h"
#include "luks.h"
#include "reencrypt.h"
#include "rotate.h"
#include "secmem.h"
#include "sign.h"
#include "token.h"
#include "util.h"

#define CTL_SECURE_HEAP (1024 * 1024)
#define CTL_KEYFILE_MAX (64 * 1024)
#define SOCKET_DEFAULT	"/run/keyd/keyd.sock"

struct ctl {
	const char *config_path;
	const char *socket;
	const char *kms;
	const char *key_id;
	const char *name;
	const char *key_file;
	const char *rotate_mode;
	bool format;
	bool json;
	char **args;
	int n_args;
	struct keyd_config *cfg;
};

struct command {
	const char *name;
	const char *usage;
	const char *summary;
	int min_args, max_args;
	int (*run)(struct ctl *c);
};

static int load_config(struct ctl *c)
{
	struct error je;
	int r;

	if (c->cfg)
		return 0;
	r = config_load(c->config_path, &c->cfg, &je);
	if (r < 0)
		return log_error("%s: %s", c->config_path, je.msg), r;
	return 0;
}

/* keydctl's own changes (enroll, rotate) go to the same audit log as keyd's. A short-lived
 * writer signs no checkpoint: keyd's next one vouches for the chain up to there. */
static void ctl_audit(struct ctl *c, const char *type, int r, json_t *object, const char *error)
{
	struct audit *a = NULL;
	int q;

	q = audit_open(c->cfg->audit_path, NULL, &a);
	if (q >= 0)
		q = audit_write(a, type, r < 0 ? "failure" : "success", NULL, object, error);
	if (q < 0)
		log_error_errno(q, "cannot write the audit record %s to %s: %m", type,
				c->cfg->audit_path);
	audit_close(a);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	secmem_free(s);
}

/* Reads all of FILE (or stdin for "-") into secure memory, as cryptsetup's --key-file does:
 * every byte counts, a trailing newline included. */
static int read_key_file(const char *path, uint8_t **ret, size_t *ret_n)
{
	struct secbuf b = {.max = CTL_KEYFILE_MAX};
	_cleanup_close_ int fd = -1;
	uint8_t chunk[4096];
	int r = 0;

	fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negative_errno();
			break;
		}
		if (n == 0)
			break;
		r = secbuf_append(&b, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (r == 0 && b.len == 0)
		r = -ENODATA;
	if (r < 0) {
		secbuf_done(&b);
		return r;
	}
	*ret = b.data;
	*ret_n = b.len;
	return 0;
}

static int cmd_enroll(struct ctl *c)
{
	_cleanup_secure_ uint8_t *auth = NULL;
	_cleanup_free_ char *dev = NULL;
	struct volume_config *vc = NULL;
	struct enroll_result res;
	struct error err;
	const char *spec = c->n_args ? c->args[0] : NULL, *name = c->name;
	const char *kms_name = c->kms, *key_id = c->key_id;
	size_t auth_len = 0;
	struct kms *kms;
	int r;

	r = load_config(c);
	if (r < 0)
		return r;
	/* A volume of the config supplies what the command line leaves out. */
	for (size_t i = 0; i < c->cfg->n_volumes; i++) {
		struct volume_config *v = &c->cfg->volumes[i];

		if ((name && strcmp(v->name, name) == 0) || (spec && strcmp(v->device, spec) == 0))
			vc = v;
	}
	if (vc) {
		spec = spec ? spec : vc->device;
		name = name ? name : vc->name;
		kms_name = kms_name ? kms_name : vc->kms->name;
		key_id = key_id ? key_id : vc->key_id;
	}
	if (!spec)
		return log_error("enroll: name a DEVICE (or a --name of the config)"), -EINVAL;
	if (!kms_name || !key_id)
		return log_error("enroll: --kms and --key-id are required for %s (it is not a "
				 "volume of %s)",
				 spec, c->config_path),
		       -EINVAL;
	kms = config_find_kms(c->cfg, kms_name);
	if (!kms)
		return log_error("enroll: no KMS named '%s' in %s", kms_name, c->config_path),
		       -ENOENT;
	if (strlen(key_id) > KMS_KEY_ID_MAX)
		return log_error("enroll: --key-id is longer than %d characters", KMS_KEY_ID_MAX),
		       -EINVAL;
	r = luks_resolve_device(spec, &dev);
	if (r < 0)
		return log_error("enroll: no device matches %s", spec), r;
	if (!name)
		name = basename(dev);
	if (!volume_name_valid(name))
		return log_error(
			       "enroll: volume name '%s' must be 1-%d characters of A-Z a-z 0-9 . _ -",
			       name, VOLUME_NAME_MAX),
		       -EINVAL;
	if (c->key_file) {
		r = read_key_file(c->key_file, &auth, &auth_len);
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
		print_json(j);
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

static int cmd_rotate(struct ctl *c)
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
	r = load_config(c);
	if (r < 0)
		return r;
	r = resolve_volume(c, c->args[0], &dev, &kms);
	if (r < 0)
		return r;
	if (strcmp(c->rotate_mode, "reencrypt") == 0) {
		_cleanup_secure_ uint8_t *keep = NULL;
		struct reencrypt_result rres;
		json_auto_t *o = NULL;
		size_t keep_len = 0;

		/* --key-file: a passphrase whose keyslot survives with the new volume key. */
		if (c->key_file && (r = read_key_file(c->key_file, &keep, &keep_len)) < 0)
			return log_error_errno(r, "rotate: cannot read key file %s: %m",
					       c->key_file);
		r = reencrypt_command(
			&(struct reencrypt_request){
				.device = dev, .kms = kms, .keep = keep, .keep_len = keep_len},
			c->json, &rres, &err);
		o = volume_object(c, c->args[0], dev, kms);
		if (o)
			json_object_update_new(
				o, json_pack("{s:s, s:i, s:i, s:b}", "mode", c->rotate_mode,
					     "old_keyslot", rres.old_keyslot, "new_keyslot",
					     rres.new_keyslot, "resumed", rres.resumed));
		ctl_audit(c, "volume.reencrypt", r, o, r < 0 ? err.msg : NULL);
		return r;
	}
	r = rekey ? volume_rekey(dev, kms, c->key_id, &res, &err)
		  : volume_rewrap(dev, kms, NULL, &res, &err);
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
		print_json(j);
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

static int cmd_audit(struct ctl *c)
{
	json_auto_t *report = NULL;
	EVP_PKEY *key = NULL;
	const char *path;
	struct error err = {.msg = ""};
	int r;

	if (strcmp(c->args[0], "verify") != 0)
		return log_error("audit: the only subcommand is 'verify'"), -EINVAL;
	r = load_config(c);
	if (r < 0)
		return r;
	path = c->n_args > 1 ? c->args[1] : c->cfg->audit_path;
	/* Checkpoints must be signed by this node's key when it can be read; else the key
	 * embedded in the log is used and reported, to be compared by the auditor. */
	if (access(c->cfg->node_key_file, R_OK) == 0 &&
	    sign_key_load(c->cfg->node_key_file, &key) < 0)
		key = NULL;
	r = audit_verify(path, key, &report, &err);
	EVP_PKEY_free(key);
	if (c->json && report)
		print_json(report);
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

static int cmd_inspect(struct ctl *c)
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
		print_json(info);
	else
		inspect_print(info);
	return 0;
}

static int cmd_check(struct ctl *c)
{
	json_auto_t *out = json_pack("{s:s, s:[], s:[], s:{}}", "config", c->config_path, "kms",
				     "volumes", "device_mapper");
	char why[256];
	bool dm, ok = true;
	int r;

	r = load_config(c);
	if (r < 0)
		return r;
	if (!c->json)
		printf("Config %s: valid (%zu KMS, %zu volumes)\n", c->config_path, c->cfg->n_kms,
		       c->cfg->n_volumes);
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
		print_json(out);
	else
		printf("device-mapper: %s\n", dm ? "available" : why);
	return ok ? 0 : -EIO;
}

/* One request to the daemon; the reply's JSON in *ret. -errno on transport failure or an
 * error status (the daemon's message already printed). */
static int daemon_call(struct ctl *c, const char *method, const char *path, json_t **ret)
{
	struct http_response resp;
	char url[256];
	struct error err;
	json_t *j;
	int r;

	if (!c->socket) {
		c->socket = SOCKET_DEFAULT;
		if (access(c->config_path, R_OK) == 0 && load_config(c) == 0)
			c->socket = c->cfg->socket_path;
	}
	snprintf(url, sizeof(url), "http://keyd%s", path);
	r = http_perform(
		NULL,
		&(struct http_request){
			.method = method,
			.url = url,
			.unix_socket = c->socket,
			.timeout_ms = 900000,
			.body = strcmp(method, "POST") ? NULL : "{}",
			.body_len = 2,
			.headers = (const char *const[]){"Content-Type: application/json", NULL}},
		&resp, &err);
	if (r < 0 && access(c->socket, W_OK) < 0 && errno == EACCES)
		return log_error("permission denied on %s: root or keyd's control group needed",
				 c->socket),
		       -EACCES;
	if (r < 0)
		return log_error("cannot reach keyd at %s: %s (is keyd running?)", c->socket,
				 err.msg),
		       r;
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	http_response_done(&resp);
	if (!j)
		return log_error("keyd sent an unreadable reply (HTTP %ld)", resp.status), -EBADMSG;
	if (resp.status < 200 || resp.status > 299) {
		if (c->json)
			print_json(j);
		log_error("%s", json_string_value(json_object_get(j, "error")) ?: "request failed");
		json_decref(j);
		return resp.status == 403 ? -EACCES : resp.status == 404 ? -ENOENT : -EIO;
	}
	*ret = j;
	return 0;
}

static void print_volume_line(json_t *v)
{
	const char *err = json_string_value(json_object_get(v, "error"));

	printf("%-16s %-9s %-20s %-10s %s\n", json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "state")),
	       json_string_value(json_object_get(v, "device"))[0]
		       ? json_string_value(json_object_get(v, "device"))
		       : json_string_value(json_object_get(v, "device_spec")),
	       json_string_value(json_object_get(v, "kms")), err ? err : "");
}

static int cmd_status(struct ctl *c)
{
	json_auto_t *j = NULL;
	json_t *v, *dm;
	size_t i;
	int r;

	r = daemon_call(c, "GET", "/v1/status", &j);
	if (r < 0)
		return r;
	if (c->json) {
		print_json(j);
		return 0;
	}
	dm = json_object_get(j, "device_mapper");
	printf("keyd %s: %s; device-mapper %s\n", json_string_value(json_object_get(j, "version")),
	       json_is_true(json_object_get(j, "ready")) ? "ready" : "not ready",
	       json_is_true(json_object_get(dm, "available")) ? "available" : "NOT available");
	printf("%-16s %-9s %-20s %-10s %s\n", "VOLUME", "STATE", "DEVICE", "KMS", "DETAIL");
	json_array_foreach (json_object_get(j, "volumes"), i, v)
		print_volume_line(v);
	return 0;
}

static int volume_action(struct ctl *c, const char *action)
{
	json_auto_t *j = NULL;
	char path[128];
	int r;

	if (!volume_name_valid(c->args[0]))
		return log_error("%s: '%s' is not a valid volume name", action, c->args[0]),
		       -EINVAL;
	snprintf(path, sizeof(path), "/v1/volumes/%s/%s", c->args[0], action);
	r = daemon_call(c, "POST", path, &j);
	if (r < 0)
		return r;
	if (c->json)
		print_json(j);
	else if (json_object_get(j, "result")) /* accepted, carried out by the daemon next */
		printf("%s: %s\n", c->args[0], json_string_value(json_object_get(j, "result")));
	else
		print_volume_line(j);
	return 0;
}

static int cmd_unlock(struct ctl *c)
{
	return volume_action(c, "unlock");
}

static int cmd_lock(struct ctl *c)
{
	return volume_action(c, "lock");
}

static int cmd_release(struct ctl *c)
{
	json_auto_t *j = NULL;
	char path[128];
	json_t *rep;
	int r;

	if (!volume_name_valid(c->args[0]))
		return log_error("release: '%s' is not a valid volume name", c->args[0]), -EINVAL;
	snprintf(path, sizeof(path), "/v1/volumes/%s/release", c->args[0]);
	r = daemon_call(c, "POST", path, &j);
	if (r < 0)
		return r;
	if (c->json) {
		print_json(j);
		return 0;
	}
	rep = json_object_get(j, "released");
	printf("Released %s: mapping %s, %lld kernel keyring key(s) removed, device buffers %s; "
	       "keyd holds no key for it and will not unlock it again.\n",
	       c->args[0],
	       json_is_true(json_object_get(rep, "mapping_closed")) ? "closed" : "was not open",
	       json_integer_value(json_object_get(rep, "keyring_keys_removed")),
	       json_is_true(json_object_get(rep, "buffers_flushed")) ? "flushed" : "NOT flushed");
	return 0;
}

static int cmd_suspend(struct ctl *c)
{
	return volume_action(c, "suspend");
}

static int cmd_resume(struct ctl *c)
{
	return volume_action(c, "resume");
}

static const struct command commands[] = {
	{"status", "status", "show every volume and its state", 0, 0, cmd_status},
	{"unlock", "unlock VOLUME", "unlock a volume through its KMS now", 1, 1, cmd_unlock},
	{"lock", "lock VOLUME", "close a volume's mapping", 1, 1, cmd_lock},
	{"release", "release VOLUME",
	 "decommissioning: close the mapping (refused if in use), "
	 "drop keyring keys and buffers; keyd forgets the volume's keys",
	 1, 1, cmd_release},
	{"suspend", "suspend VOLUME",
	 "freeze a volume's I/O and drop its key from the kernel "
	 "(as on_revoke=suspend)",
	 1, 1, cmd_suspend},
	{"resume", "resume VOLUME", "unwrap the key again and resume (or reopen) the volume", 1, 1,
	 cmd_resume},
	{"enroll",
	 "enroll [DEVICE] --kms NAME --key-id ID [--name VOLUME] [--format] [--key-file F|-]",
	 "bind a LUKS2 device to a KMS key (--format: make a blank device LUKS2 first)", 0, 1,
	 cmd_enroll},
	{"rotate", "rotate --rewrap|--rekey [--key-id ID]|--reencrypt [--key-file F] VOLUME|DEVICE",
	 "rewrap the data key to the root key's newest version, replace it (re-key), or "
	 "re-encrypt the data with a new volume key (resumable)",
	 1, 1, cmd_rotate},
	{"audit", "audit verify [FILE]", "check the audit log's hash chain and signed checkpoints",
	 1, 2, cmd_audit},
	{"inspect", "inspect DEVICE",
	 "show the keyslots and tokens of a device, flagging keyslots "
	 "not bound to the KMS",
	 1, 1, cmd_inspect},
	{"check", "check", "validate the config, reach every KMS, check device-mapper", 0, 0,
	 cmd_check},
};

static void help(void)
{
	printf("Usage: keydctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		printf("  %-10s %s\n             %s\n", commands[i].name, commands[i].summary,
		       commands[i].usage);
	printf("\nOptions:\n"
	       "  -c, --config FILE  configuration (default %s)\n"
	       "      --socket PATH  control socket (default: the config's, or %s)\n"
	       "      --json         machine-readable output\n"
	       "      --kms NAME, --key-id ID, --name VOLUME, --format, --key-file FILE|-\n"
	       "                     enroll options; --key-file holds an existing passphrase\n"
	       "                     (every byte counts, as with cryptsetup --key-file)\n",
	       CONFIG_PATH_DEFAULT, SOCKET_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"kms", required_argument, NULL, 'k'},
		{"key-id", required_argument, NULL, 'i'},
		{"name", required_argument, NULL, 'n'},
		{"format", no_argument, NULL, 'f'},
		{"key-file", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"rewrap", no_argument, NULL, 'R'},
		{"rekey", no_argument, NULL, 'E'},
		{"reencrypt", no_argument, NULL, 'X'},
		{},
	};
	struct ctl c = {.config_path = CONFIG_PATH_DEFAULT};
	const struct command *cmd = NULL;
	int o, r;

	log_setup("keydctl", LOG_INFO);
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
		switch (o) {
		case 'c':
			c.config_path = optarg;
			break;
		case 's':
			c.socket = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'k':
			c.kms = optarg;
			break;
		case 'i':
			c.key_id = optarg;
			break;
		case 'n':
			c.name = optarg;
			break;
		case 'f':
			c.format = true;
			break;
		case 'K':
			c.key_file = optarg;
			break;
		case 'R':
			c.rotate_mode = "rewrap";
			break;
		case 'E':
			c.rotate_mode = "rekey";
			break;
		case 'X':
			c.rotate_mode = "reencrypt";
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("keydctl %s\n", KEYD_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		help();
		return 2;
	}
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, argv[optind]) == 0)
			cmd = &commands[i];
	if (!cmd) {
		log_error("unknown command '%s' (see keydctl --help)", argv[optind]);
		return 2;
	}
	c.args = argv + optind + 1;
	c.n_args = argc - optind - 1;
	if (c.n_args < cmd->min_args || c.n_args > cmd->max_args) {
		log_error("usage: keydctl %s", cmd->usage);
		return 2;
	}
	r = secmem_init(CTL_SECURE_HEAP);
	if (r < 0) {
		log_error_errno(r, "cannot set up locked secure memory: %m");
		return 1;
	}
	cryptsetup_setup();
	if (http_global_init() < 0) {
		log_error("cannot initialise libcurl");
		return 1;
	}
	r = cmd->run(&c);
	config_free(c.cfg);
	return r < 0 ? 1 : 0;
}
