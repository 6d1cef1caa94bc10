/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Following the root key through its life: one thread applies lifecycle events (from the
 * callback endpoint, keydctl or its own polling of key state) to the volumes they concern,
 * enforces max_key_cache_age, and acknowledges events to the KMS after acting. */
#pragma once

#include <stddef.h>

#include "event.h"

struct keyd;
struct lifecycle;

enum lifecycle_job_kind {
	LIFECYCLE_EVENT,   /* an event for every volume wrapped by its key */
	LIFECYCLE_SUSPEND, /* one volume: freeze I/O and drop the key from the kernel */
	LIFECYCLE_RESUME,  /* one volume: unwrap again and resume */
};

int lifecycle_start(struct keyd *k);
void lifecycle_stop(struct keyd *k);

/* Queues work for the lifecycle thread; returns at once. For LIFECYCLE_EVENT, @ev says what
 * happened; otherwise @volume names the volume. msg says what will happen (no secrets).
 * -ENOENT if no volume is concerned, -EBUSY if the queue is full. Main thread. */
int lifecycle_submit(struct keyd *k, enum lifecycle_job_kind kind, const struct key_event *ev,
		     const char *volume, char *msg, size_t msgsize);
