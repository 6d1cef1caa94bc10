/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether a device may be wiped: not mounted (itself, a partition, or anything stacked on it),
 * not holding the root file system or on the root disk, no holders (device-mapper, md), no
 * active swap, not open exclusively elsewhere, not read-only. Reads /proc and /sys; never
 * changes anything and never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
};

/* Fills @rep with every reason not to wipe @d (none: rep->n == 0). -errno only when the facts
 * cannot be read (then nothing may be concluded). */
int safety_check(const struct device_info *d, const struct safety_sources *src,
		 struct safety_report *rep);

/* "mounted", "root-disk", "holders", "swap", "busy", "read-only". */
const char *safety_reason_name(enum safety_reason r);
