/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether a device may be wiped: not mounted (itself, a partition, anything stacked on it, or
 * anything it writes onto: a loop device's backing, a partition's disk), not holding the root
 * file system or on the root disk, no holders (device-mapper, md, loop devices backed by it), no
 * active swap, not open exclusively elsewhere, not read-only. Reads /proc and /sys (and asks
 * loop devices what backs them); never changes anything and never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "device.h"

#define SAFETY_REASONS_MAX 8
#define SAFETY_MSG_MAX	   512

enum safety_reason {
	SAFETY_MOUNTED,
	SAFETY_ROOT,
	SAFETY_HOLDERS,
	SAFETY_SWAP,
	SAFETY_BUSY,
	SAFETY_READONLY,
};

struct safety_report {
	size_t n;
	struct {
		enum safety_reason reason;
		char msg[SAFETY_MSG_MAX];
	} items[SAFETY_REASONS_MAX];
};

/* Where the facts come from; tests point these at a fake tree. NULL: the real ones. */
struct safety_sources {
	const char *sys;       /* "/sys" */
	const char *mountinfo; /* "/proc/self/mountinfo" */
	const char *swaps;     /* "/proc/swaps" */
	const char *dev;       /* "/dev": loop device nodes, asked what backs them */
};

/* Fills @rep with every reason not to wipe @d (none: rep->n == 0). When @held_exclusively the
 * caller holds @d open with O_EXCL, so nobody else does; otherwise an O_EXCL open of d->path
 * tells. -errno only when the facts cannot be read (then nothing may be concluded). */
int safety_check(const struct device_info *d, bool held_exclusively,
		 const struct safety_sources *src, struct safety_report *rep);

/* @d and the block devices it is built on (its disk, slaves, loop backing device; down to the
 * disks), into @devs (at most @max). -errno when sysfs cannot be read. */
int safety_below(const struct device_info *d, dev_t *devs, size_t max, size_t *ret_n);

/* "mounted", "root-disk", "holders", "swap", "busy", "read-only". */
const char *safety_reason_name(enum safety_reason r);
