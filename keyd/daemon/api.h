/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control API: JSON over HTTP on a Unix socket, routes in one table, access decided by
 * the peer's credentials (SO_PEERCRED): read-only for the control group, changes for root. */
#pragma once

#include <jansson.h>

struct keyd;
struct volume;

/* Creates the socket (mode 0660, root:control group) and registers the routes. */
int api_setup(struct keyd *k);
void api_done(struct keyd *k);
/* Answers requests that waited for @v's worker; main thread, k->lock held. */
void api_finish_replies(struct keyd *k, struct volume *v);
/* The public description of a volume (never key material); k->lock held. */
json_t *api_volume_json(struct keyd *k, struct volume *v);
