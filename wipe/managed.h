/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether keyd still manages a LUKS2 volume: what keyd itself says over its control socket
 * (GET /v1/status, JSON over HTTP on a Unix socket), and whether the header carries a keyd
 * token (a LUKS2 token of type "keyd", read with libcryptsetup's token API). wipe includes no
 * keyd header: the few fields it needs are read here. Never writes; never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MANAGED_SOCKET_DEFAULT "/run/keyd/keyd.sock"
#define MANAGED_TIMEOUT_MS     5000
#define MANAGED_NAME_MAX       65 /* keyd's volume names: 64 characters */
#define MANAGED_STATE_MAX      32
#define MANAGED_WHY_MAX	       256
#define MANAGED_VOLUMES_MAX    4096 /* volumes in one status reply */

struct managed {
	bool token;			   /* the header carries a token of type "keyd" */
	char token_name[MANAGED_NAME_MAX]; /* its "name", or "" (only A-Z a-z 0-9 . _ - kept) */
	bool asked;			   /* keyd answered */
	char why_not[MANAGED_WHY_MAX];	   /* why it could not be asked */
	bool listed;			   /* keyd's status lists this volume */
	char name[MANAGED_NAME_MAX];	   /* as keyd calls it */
	char state[MANAGED_STATE_MAX];	   /* "open", "verified", "released", ... */
};

/* Looks for a keyd token in the LUKS2 header at @path (for a held device: /proc/self/fd/N).
 * Sets m->token and m->token_name. 0 also when there is no LUKS2 header; -errno from
 * libcryptsetup otherwise. */
int managed_read_token(const char *path, struct managed *m);

/* Reads one token's JSON (from the disk: outside input). 0 with m->token set when its type is
 * "keyd"; -EINVAL when it is not JSON or not an object. */
int managed_parse_token(const char *json, struct managed *m);

/* Asks keyd at @socket for its status and finds the volume whose LUKS UUID is @uuid or whose
 * device is @devnum. Sets m->asked (and m->listed, name, state), or m->why_not. Returns 0
 * either way: keyd not answering is a fact, not an error. */
int managed_ask_keyd(const char *socket, const char *uuid, dev_t devnum, struct managed *m);

/* Reads keyd's status reply (outside input). -EBADMSG when it does not have keyd's shape. */
int managed_parse_status(const char *body, size_t n, const char *uuid, dev_t devnum,
			 struct managed *m);

/* keyd answered and lists the volume in a state other than "released". */
bool managed_by_keyd(const struct managed *m);
