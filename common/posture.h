/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host's posture for memory beyond keyd's own: where a released volume's plaintext (and a
 * data key) can outlive it: swap, freed page-cache pages, a hibernation image, core dumps. Reads
 * /proc, /sys, /boot and /etc; never changes anything, never logs. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum posture_state {
	POSTURE_OK,
	POSTURE_WARN,
	POSTURE_UNKNOWN, /* cannot tell: what it would read is absent or unreadable */
};

/* "ok", "warn", "unknown": the JSON names of enum posture_state. */
extern const char *const posture_state_names[];

#define POSTURE_MESSAGE_MAX 640
/* The kernel's COMMAND_LINE_SIZE on x86 and arm64. */
#define POSTURE_CMDLINE_MAX 4096
/* The kernel's MAX_SWAPFILES is below 32; the four other probes make one finding each. */
#define POSTURE_FINDINGS_MAX 40

struct posture_finding {
	const char *id; /* "swap", "init_on_free", "hibernation", "core_dumps" */
	enum posture_state state;
	char path[256];			   /* swap: the swap area; "" otherwise */
	char message[POSTURE_MESSAGE_MAX]; /* what was read, and what to set */
};

struct posture {
	const char *root; /* "" for this host; a directory standing in for / (tests) */
	struct posture_finding findings[POSTURE_FINDINGS_MAX];
	size_t n;
	/* /proc/cmdline, read once for every probe that asks it; on failure "" and why. */
	char cmdline[POSTURE_CMDLINE_MAX + 1];
	char cmdline_why[PATH_MAX + 64];
	bool cmdline_read;
};

/* Runs every probe against @root ("" for this host) into @p. Never fails: what it cannot read
 * is a finding of its own (POSTURE_UNKNOWN). */
void posture_probe(struct posture *p, const char *root);
/* Whether every finding is POSTURE_OK. */
bool posture_ok(const struct posture *p);
