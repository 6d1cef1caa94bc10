/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control API: JSON over HTTP on a Unix socket, routes in one table, access decided by
 * the peer's credentials (SO_PEERCRED): read-only for the control group, changes for root.
 * Owns the requests that wait for an unlock worker. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "lifecycle.h"
#include "metrics_report.h"
#include "registry.h"
#include "worker.h"

struct api;

/* What the API acts on; every pointer must outlive the API. */
struct api_env {
	struct event_base *base;
	const struct keyd_config *cfg; /* socket, control group, policy */
	struct registry *reg;
	const struct worker_env *workers;  /* unlock starts a worker */
	struct lifecycle *lifecycle;	   /* suspend and resume are its jobs */
	const bool *ready;		   /* READY=1 was sent (main thread) */
	const struct metrics_env *metrics; /* GET /v1/metrics */
	bool dm;			   /* device-mapper is there, */
	const char *dm_why;		   /* ... and if not, why */
};

/* Creates the socket (mode 0660, root:control group) and registers the routes. err says what
 * failed: -ENAMETOOLONG, -ENOMEM, -EIO, or the socket calls' -errno. */
int api_setup(const struct api_env *env, struct api **ret, struct error *err);
/* Closes the socket; requests still waiting are dropped with their connections. */
void api_done(struct api *a);
/* Answers the requests that waited for an unlock worker that has ended since. Main thread,
 * registry lock held. */
void api_answer_waiting(struct api *a);
