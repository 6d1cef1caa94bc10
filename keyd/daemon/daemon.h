/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's wiring: the event loop and its signals, readiness towards systemd, and the
 * parts it connects (the registry of volumes, unlock workers, control API, lifecycle thread,
 * event endpoint, audit log). Only main.c sees this; the parts see only what they are given. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "audit.h"
#include "callback.h"
#include "config.h"
#include "error.h"
#include "lifecycle.h"
#include "metrics.h"
#include "metrics_report.h"
#include "registry.h"
#include "worker.h"

struct keyd {
	struct keyd_config *cfg;
	struct registry reg;
	struct worker_env workers;
	struct event_base *base;
	struct event *wake; /* workers and state changes poke the main loop through this */
	struct event *sigterm, *sigint;
	struct api *api;
	struct lifecycle *lifecycle;
	struct callback *callback;
	struct audit *audit;
	struct metrics *metrics;
	struct metrics_env metrics_env;
	struct event *textfile; /* writes metrics.textfile_dir's file; NULL: not configured */
	bool dm;
	char dm_why[256];
	bool ready;
	uint64_t started_us; /* monotonic, when the first unlock pass began */
	bool pass_done;	     /* the first unlock pass has been reported */
	volatile bool stop;
};

/* Builds every part from @cfg (which must outlive @k). On failure err says what could not be
 * set up, for the caller to log; keyd_done cleans up either way. */
int keyd_setup(struct keyd *k, struct keyd_config *cfg, struct error *err);
/* Starts the unlock workers and runs the event loop until SIGTERM/SIGINT. */
int keyd_run(struct keyd *k);
void keyd_done(struct keyd *k);
