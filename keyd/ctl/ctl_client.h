/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl's client of the daemon's control API: one JSON request over HTTP on the Unix socket
 * (libcurl), the reply's JSON back. Holds no secrets; never talks to anything but the socket. */
#pragma once

#include <jansson.h>

#include "ctl.h"

#define CTL_SOCKET_DEFAULT "/run/keyd/keyd.sock"

/* One request to the daemon (the socket: --socket, else the config's, else the default); the
 * reply's JSON in *ret. -EACCES: refused (socket permissions or 403); -EHOSTDOWN: keyd is not
 * running; -ENOENT: 404; -EBUSY: 409; -EKEYREVOKED: an unlock failed on a revoked key;
 * -EBADMSG: an unreadable reply; -EIO: another error status. Reports the failure with
 * ctl_fail (the daemon's volume, if it sent one, goes to the error document). */
int ctl_client_call(struct ctl *c, const char *method, const char *path, json_t **ret);
