// SPDX-License-Identifier: GPL-2.0-or-later
/* The control-socket client: keydctl's one way of asking the running daemon. Transport and
 * status mapping only; what a reply means is the commands' (cmd_daemon.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl_client.h"
#include "http_unix.h"
#include "log.h"

/* The -errno named @name ("EKEYREVOKED", as glibc's strerrorname_np spells it), or 0. */
static int errno_by_name(const char *name)
{
	for (int e = 1; name && e < 4096; e++) {
		const char *n = strerrorname_np(e);

		if (n && strcmp(n, name) == 0)
			return -e;
	}
	return 0;
}

/* A refused or failed request's -errno: a failed unlock names it ("errno"), 403 and 404 say it,
 * 409 is a volume busy or in the wrong state, and a failed suspend or resume says through its
 * volume whether the key was revoked. */
static int client_status_errno(long status, json_t *reply)
{
	static const struct {
		long status;
		int r;
	} map[] = {{403, -EACCES}, {404, -ENOENT}, {409, -EBUSY}};
	json_t *volume = json_object_get(reply, "volume");
	int r = errno_by_name(json_string_value(json_object_get(reply, "errno")));

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (map[i].status == status)
			return map[i].r;
	if (json_is_true(json_object_get(volume, "revoked")))
		return -EKEYREVOKED;
	return -EIO;
}

int ctl_client_call(struct ctl *c, const char *method, const char *path, json_t **ret)
{
	struct http_response resp;
	char url[256];
	struct error err;
	json_t *j;
	int r;

	if (!c->socket) {
		c->socket = CTL_SOCKET_DEFAULT;
		if (access(c->config_path, R_OK) == 0 && ctl_load_config(c) == 0)
			c->socket = c->cfg->socket_path;
	}
	snprintf(url, sizeof(url), "http://keyd%s", path);
	r = http_unix_perform(
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
		return ctl_fail(c, -EACCES,
				"permission denied on %s: root or keyd's control group needed",
				c->socket);
	/* No socket, or nobody listening on it: say that, not libcurl's words for it. */
	if (r == -ECONNREFUSED || (r < 0 && access(c->socket, F_OK) < 0))
		return ctl_fail(c, -EHOSTDOWN,
				"keyd is not running: nothing listens on %s (systemctl status "
				"keyd; or name another socket with --socket)",
				c->socket);
	if (r == -ETIMEDOUT)
		return ctl_fail_code(c, CTL_EXIT_FAILURE, r,
				     "keyd at %s did not answer in time (it may be stuck: see "
				     "journalctl -u keyd)",
				     c->socket);
	/* keyd answered, but not so that it could be read: not "keyd is down". */
	if (r < 0)
		return ctl_fail_code(c, CTL_EXIT_FAILURE, r, "cannot talk to keyd at %s: %s",
				     c->socket, err.msg);
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	http_response_done(&resp);
	if (!j)
		return ctl_fail(c, -EBADMSG, "keyd sent an unreadable reply (HTTP %ld)",
				resp.status);
	if (resp.status < 200 || resp.status > 299) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		json_t *v = json_object_get(j, "volume");

		r = ctl_fail(c, client_status_errno(resp.status, j), "%s",
			     msg ? msg : "request failed");
		if (json_is_object(v)) {
			json_decref(c->error_detail);
			c->error_detail = json_pack("{s:O}", "volume", v);
		}
		json_decref(j);
		return r;
	}
	*ret = j;
	return 0;
}
