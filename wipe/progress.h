/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Progress of running jobs on stderr: a bar per device with rate and ETA on a terminal, one
 * JSON line per device and second otherwise. Reads the jobs' counters; changes nothing. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "job.h"

#define PROGRESS_DEVICES_MAX 64

struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, started;
	bool tty;
	uint64_t interval_us;
	FILE *out;
	struct wipe_job **jobs;
	size_t n;
	size_t drawn; /* lines drawn last time (terminal) */
	struct {
		int phase;
		uint64_t done, at_us;
		double rate; /* bytes/s, smoothed */
	} seen[PROGRESS_DEVICES_MAX];
};

/* Starts reporting on @out for @jobs (at most PROGRESS_DEVICES_MAX) every @interval_us (0: half
 * a second on a terminal, a second otherwise). -errno from pthread. */
int progress_start(struct progress *p, struct wipe_job **jobs, size_t n, bool tty,
		   uint64_t interval_us, FILE *out);
/* Draws the final state and stops. */
void progress_stop(struct progress *p);
