// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's view of a volume, asked the way keydctl asks (common/http over the control socket),
 * and the keyd token, found by its type. Everything read is outside input: sizes are capped,
 * types checked, names kept to keyd's own alphabet before anyone prints them. Never logs. */
#include <errno.h>
#include <jansson.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "http_unix.h"
#include "managed.h"

#define MANAGED_TOKEN_TYPE "keyd"

/* A name from outside: keyd's alphabet only, at most @size - 1 characters. */
static void copy_name(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; src && *src && o + 1 < size; src++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
			   *src))
			dst[o++] = *src;
	dst[o] = 0;
}

int managed_parse_token(const char *json, struct managed *m)
{
	json_auto_t *t = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	const char *type, *name;

	if (!json_is_object(t))
		return -EINVAL;
	type = json_string_value(json_object_get(t, "type"));
	if (!type || strcmp(type, MANAGED_TOKEN_TYPE) != 0)
		return 0;
	name = json_string_value(json_object_get(t, "name"));
	m->token = true;
	if (!m->token_name[0])
		copy_name(m->token_name, sizeof(m->token_name), name);
	return 0;
}

int managed_read_token(const char *path, struct managed *m)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r, max = crypt_token_max(CRYPT_LUKS2);

	r = cryptsetup_load(path, &cd);
	if (r == -EMEDIUMTYPE)
		return 0;
	if (r < 0)
		return r;
	for (int i = 0; i < max; i++) {
		const char *type = NULL, *json = NULL;
		crypt_token_info st = crypt_token_status(cd, i, &type);

		if (st == CRYPT_TOKEN_INACTIVE || st == CRYPT_TOKEN_INVALID || !type ||
		    strcmp(type, MANAGED_TOKEN_TYPE) != 0)
			continue;
		if (crypt_token_json_get(cd, i, &json) < 0 || !json)
			continue;
		/* A token we cannot read is still a keyd token: its type said so. */
		if (managed_parse_token(json, m) < 0)
			m->token = true;
	}
	return 0;
}

static bool volume_is(json_t *v, const char *uuid, dev_t devnum)
{
	const char *u = json_string_value(json_object_get(v, "uuid"));
	const char *dev = json_string_value(json_object_get(v, "device"));
	struct stat st;

	if (uuid && uuid[0] && u && strcasecmp(u, uuid) == 0)
		return true;
	return dev && dev[0] == '/' && stat(dev, &st) == 0 && S_ISBLK(st.st_mode) &&
	       st.st_rdev == devnum;
}

int managed_parse_status(const char *body, size_t n, const char *uuid, dev_t devnum,
			 struct managed *m)
{
	json_auto_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *vols = json_object_get(j, "volumes"), *v;
	size_t i;

	if (!json_is_object(j) || !json_is_array(vols) ||
	    json_array_size(vols) > MANAGED_VOLUMES_MAX)
		return -EBADMSG;
	json_array_foreach (vols, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *state = json_string_value(json_object_get(v, "state"));

		if (!json_is_object(v) || !name || !state)
			return -EBADMSG;
		/* One not released among several (a duplicated UUID) is what counts. */
		if (!volume_is(v, uuid, devnum) || (m->listed && strcmp(m->state, "released") != 0))
			continue;
		m->listed = true;
		copy_name(m->name, sizeof(m->name), name);
		copy_name(m->state, sizeof(m->state), state);
	}
	return 0;
}

int managed_ask_keyd(const char *socket, const char *uuid, dev_t devnum, struct managed *m)
{
	struct http_response resp;
	struct error err = {.msg = ""};
	int r;

	if (access(socket, F_OK) < 0) {
		snprintf(m->why_not, sizeof(m->why_not),
			 "no control socket %s: keyd is not running", socket);
		return 0;
	}
	r = http_unix_perform(&(struct http_request){.method = "GET",
						     .url = "http://keyd/v1/status",
						     .unix_socket = socket,
						     .timeout_ms = MANAGED_TIMEOUT_MS},
			      &resp, &err);
	if (r < 0) {
		snprintf(m->why_not, sizeof(m->why_not), "%s: %.160s", socket, err.msg);
		return 0;
	}
	if (resp.status != 200)
		snprintf(m->why_not, sizeof(m->why_not), "%s: keyd answered HTTP %ld", socket,
			 resp.status);
	else if (managed_parse_status((const char *)resp.body.data, resp.body.len, uuid, devnum,
				      m) < 0)
		snprintf(m->why_not, sizeof(m->why_not), "%s: not keyd's status reply", socket);
	else
		m->asked = true;
	http_response_done(&resp);
	return 0;
}

bool managed_by_keyd(const struct managed *m)
{
	return m->asked && m->listed && strcmp(m->state, "released") != 0;
}
