// SPDX-License-Identifier: GPL-2.0-or-later
/* The subcommands the daemon carries out: status, unlock, lock, suspend, resume, release,
 * metrics. Each is one control-API request (ctl_client.c) and the rendering of its reply; none
 * holds a key. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "ctl_client.h"
#include "log.h"
#include "text.h"

/* A volume of several KMS: each root key's state, what it depends on now, and what
 * crypto-shredding it takes, under its line. */
/* A string member of keyd's reply, "?" when it is missing (printf must not see NULL). */
static const char *member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "?";
}

static void print_volume_keys(json_t *v)
{
	json_t *keys = json_object_get(v, "keys"), *k;
	size_t i;

	if (json_array_size(keys) < 2)
		return;
	printf("%-16s   root keys (any of them opens it):", "");
	json_array_foreach (keys, i, k)
		printf("%s %s %s", i ? "," : "", member(k, "kms"), member(k, "state"));
	printf("\n%-16s   %s\n", "", member(v, "shredding"));
}

static void print_volume_line(json_t *v)
{
	const char *err = json_string_value(json_object_get(v, "error"));
	/* The detail quotes disks (token fields, device names): escaped like the log. */
	char detail[4 * ERROR_MAX];
	json_t *clone;
	size_t i;

	printf("%-16s %-9s %-20s %-10s %s\n", json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "state")),
	       json_string_value(json_object_get(v, "device"))[0]
		       ? json_string_value(json_object_get(v, "device"))
		       : json_string_value(json_object_get(v, "device_spec")),
	       json_string_value(json_object_get(v, "kms")),
	       text_escape(err ? err : "", detail, sizeof(detail)));
	json_array_foreach (json_object_get(v, "uuid_also_on"), i, clone)
		printf("%-16s WARNING: its LUKS UUID is also on %s (a cloned or restored header)\n",
		       "",
		       text_escape(json_string_value(clone) ? json_string_value(clone) : "?",
				   detail, sizeof(detail)));
	print_volume_keys(v);
}

/* Whether a required volume is not as usable as this host allows: open, or (without
 * device-mapper, where nothing can be mapped) verified. */
static bool status_required_down(json_t *j)
{
	bool dm = json_is_true(json_object_get(json_object_get(j, "device_mapper"), "available"));
	json_t *v;
	size_t i;

	json_array_foreach (json_object_get(j, "volumes"), i, v) {
		const char *state = json_string_value(json_object_get(v, "state"));

		if (!json_is_true(json_object_get(v, "required")) || !state)
			continue;
		if (strcmp(state, "open") != 0 && (dm || strcmp(state, "verified") != 0))
			return true;
	}
	return false;
}

int cmd_status(struct ctl *c)
{
	json_auto_t *j = NULL;
	json_t *v, *dm;
	size_t i;
	int r, code;

	r = ctl_client_call(c, "GET", "/v1/status", &j);
	if (r < 0)
		return r;
	code = status_required_down(j) ? CTL_EXIT_NOT_OPEN : CTL_EXIT_OK;
	if (c->quiet)
		return code;
	if (c->json) {
		ctl_print_json(j);
		return code;
	}
	dm = json_object_get(j, "device_mapper");
	printf("keyd %s: %s; device-mapper %s\n", json_string_value(json_object_get(j, "version")),
	       json_is_true(json_object_get(j, "ready")) ? "ready" : "not ready",
	       json_is_true(json_object_get(dm, "available")) ? "available" : "NOT available");
	printf("%-16s %-9s %-20s %-10s %s\n", "VOLUME", "STATE", "DEVICE", "KMS", "DETAIL");
	json_array_foreach (json_object_get(j, "volumes"), i, v)
		print_volume_line(v);
	if (code)
		printf("A required volume is not open.\n");
	return code;
}

/* POST /v1/volumes/VOLUME/ACTION for the command's one argument ("?wait=0" with
 * --no-wait). */
static int volume_post(struct ctl *c, const char *action, json_t **ret)
{
	char path[128];

	if (!volume_name_valid(c->args[0]))
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "%s: '%s' is not a valid volume name", action, c->args[0]);
	snprintf(path, sizeof(path), "/v1/volumes/%s/%s%s", c->args[0], action,
		 c->no_wait ? "?wait=0" : "");
	return ctl_client_call(c, "POST", path, ret);
}

static int volume_action(struct ctl *c, const char *action)
{
	json_auto_t *j = NULL;
	int r;

	r = volume_post(c, action, &j);
	if (r < 0)
		return r;
	if (c->json)
		ctl_print_json(j);
	else if (json_object_get(j, "result")) /* accepted, carried out by the daemon next */
		printf("%s: %s\n", c->args[0], json_string_value(json_object_get(j, "result")));
	else
		print_volume_line(j);
	return 0;
}

int cmd_unlock(struct ctl *c)
{
	return volume_action(c, "unlock");
}

int cmd_lock(struct ctl *c)
{
	return volume_action(c, "lock");
}

int cmd_suspend(struct ctl *c)
{
	return volume_action(c, "suspend");
}

int cmd_resume(struct ctl *c)
{
	return volume_action(c, "resume");
}

int cmd_release(struct ctl *c)
{
	json_auto_t *j = NULL;
	json_t *rep;
	int r;

	r = volume_post(c, "release", &j);
	if (r < 0)
		return r;
	if (c->json) {
		ctl_print_json(j);
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

/* The page the daemon serves at /v1/metrics, as it is: Prometheus text, or with --json the
 * one document {"metrics": TEXT}. */
int cmd_metrics(struct ctl *c)
{
	json_auto_t *j = NULL;
	const char *text;
	int r;

	r = ctl_client_call(c, "GET", "/v1/metrics?format=json", &j);
	if (r < 0)
		return r;
	if (c->json) {
		ctl_print_json(j);
		return 0;
	}
	text = json_string_value(json_object_get(j, "metrics"));
	if (!text)
		return ctl_fail(c, -EBADMSG, "keyd sent metrics without a \"metrics\" member");
	fputs(text, stdout);
	return 0;
}
