/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unlock workers: one thread per volume waits for its device, unlocks it through
 * volume_unlock (KMS unwrap with retries, keyslot, activation) and records the outcome in the
 * registry. A worker holds its volume's op_lock throughout. */
#pragma once

#include <stdbool.h>

#include "registry.h"

/* What a worker needs of the daemon; must outlive every worker. */
struct worker_env {
	struct registry *reg;
	bool dm;		   /* device-mapper is there: activate; else verify only */
	const char *dm_why;	   /* ... and if not, why */
	const volatile bool *stop; /* the daemon stops: stop waiting */
};

/* Starts @v's worker unless one runs or @v is open (0 either way). -ESTALE for a released
 * volume, -ENOMEM, -EAGAIN. Registry lock held. */
int worker_start(const struct worker_env *env, struct volume *v);
/* Joins @v's worker if it has finished. Registry lock held. */
void worker_reap(struct volume *v);
/* Waits for @v's worker to end (at shutdown, with *stop set). */
void worker_join(struct volume *v);
