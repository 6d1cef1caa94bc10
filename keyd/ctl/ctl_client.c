// SPDX-License-Identifier: GPL-2.0-or-later
/* The control-socket client: keydctl's one way of asking the running daemon. Transport and
 * status mapping only; what a reply means is the commands' (cmd_daemon.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl_client.h"
#include "http.h"
#include "log.h"

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
			ctl_print_json(j);
		log_error("%s", json_string_value(json_object_get(j, "error")) ?: "request failed");
		json_decref(j);
		return resp.status == 403 ? -EACCES : resp.status == 404 ? -ENOENT : -EIO;
	}
	*ret = j;
	return 0;
}
