/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Following the root key through its life: one thread applies lifecycle events (from the
 * callback endpoint, keydctl or its own polling of key state) to the volumes they concern,
 * enforces max_key_cache_age, and acknowledges events to the KMS after acting. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "registry.h"

struct lifecycle;

enum lifecycle_job_kind {
	LIFECYCLE_EVENT,   /* an event for every volume wrapped by its key */
	LIFECYCLE_SUSPEND, /* one volume: freeze I/O and drop the key from the kernel */
	LIFECYCLE_RESUME,  /* one volume: unwrap again and resume */
};

/* What the lifecycle thread needs of the daemon; must outlive it. */
struct lifecycle_env {
	struct registry *reg;
	const struct keyd_config *cfg; /* poll_interval_s, max_key_cache_age_s */
	bool dm;		       /* device-mapper is there: restore reopens mappings */
	const volatile bool *stop;     /* the daemon stops: cut polls and checks short */
};

/* Starts the thread. -ENOMEM, -EAGAIN. */
int lifecycle_start(const struct lifecycle_env *env, struct lifecycle **ret);
/* Stops and joins the thread (the job it runs ends first); NULL is a no-op. */
void lifecycle_stop(struct lifecycle *l);

/* Queues work for the lifecycle thread; returns at once. For LIFECYCLE_EVENT, @ev says what
 * happened; otherwise @volume names the volume. msg says what will happen (no secrets); the
 * job's ticket goes to *ret_ticket (may be NULL). -ENOENT if no volume is concerned, -EBUSY
 * if the queue is full. Main thread. */
int lifecycle_submit(struct lifecycle *l, enum lifecycle_job_kind kind, const struct key_event *ev,
		     const char *volume, char *msg, size_t msgsize, uint64_t *ret_ticket);
/* Whether the job of @ticket has run (the registry is woken after each job). */
bool lifecycle_finished(struct lifecycle *l, uint64_t ticket);
