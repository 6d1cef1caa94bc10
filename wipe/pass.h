/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One pass over a byte range of a device: write a pattern, issue a ranged ioctl (zeroout,
 * discard), or read back and compare (full or a random sample). Counts every failed block and
 * keeps going up to a limit; syncs before each report of durable progress and at the end.
 * Never logs. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "io.h"
#include "pattern.h"

#define PASS_CHUNK	 (4u << 20)
#define PASS_IOCTL_CHUNK (256u << 20)
#define PASS_ERROR_LIMIT 1024
#define PASS_SAMPLE_UNIT (64u << 10)
#define PASS_SAMPLE_MIN	 256
#define PASS_SAMPLE_MAX	 65536

enum pass_verify {
	PASS_VERIFY_NONE,
	PASS_VERIFY_SAMPLE,
	PASS_VERIFY_FULL,
};

struct pass_stats {
	uint64_t bytes;	     /* written, covered by the ioctl, or read back */
	uint64_t io_errors;  /* logical blocks that failed to write or read */
	uint64_t mismatches; /* logical blocks that read back different from the pattern */
	uint64_t first_bad;  /* offset of the first failure (UINT64_MAX: none) */
	int first_error;     /* -errno of the first I/O failure (0: none) */
};

struct pass {
	struct io_dev *dev;
	const struct pattern *pattern;
	uint64_t start, end;	      /* [start, end), aligned to the logical block size */
	size_t chunk;		      /* bytes per transfer (0: PASS_CHUNK) */
	uint64_t error_limit;	      /* failed blocks before giving up (0: PASS_ERROR_LIMIT) */
	struct io_throttle *throttle; /* may be NULL */
	const volatile bool *stop;    /* may be NULL */
	_Atomic uint64_t *progress;   /* bytes done are added here; may be NULL */
	/* Called every @sync_every bytes (and when stopping), after a sync, with everything
	 * below @off durable on the device (the caller's checkpoint); a failure ends the pass.
	 * May be NULL. */
	uint64_t sync_every;
	int (*on_synced)(void *userdata, uint64_t off, const struct pass_stats *st);
	void *userdata;
};

void pass_stats_init(struct pass_stats *st);

/* The pattern over [start, end), then fdatasync. 0 complete and clean; -EINTR stopped (synced,
 * checkpointed); -EIO complete or abandoned with failed blocks (see @st); other -errno: the
 * pass could not go on (generator, sync or checkpoint failure). Adds to @st. */
int pass_write(struct pass *p, struct pass_stats *st);

/* BLKZEROOUT, BLKDISCARD or BLKSECDISCARD over [start, end) in PASS_IOCTL_CHUNK pieces, then
 * fdatasync. -EOPNOTSUPP if the device refuses the first piece (nothing was done); otherwise as
 * pass_write. */
int pass_ioctl(struct pass *p, unsigned long request, struct pass_stats *st);

/* Reads [start, end) back with O_DIRECT (all of it, or PASS_SAMPLE_UNIT blocks at random places
 * plus the first and last) and compares with the pattern. 0 all match; -EBADMSG mismatches or
 * unreadable blocks (see @st); -EINTR stopped; other -errno. */
int pass_verify(struct pass *p, enum pass_verify mode, struct pass_stats *st);

/* How many bytes pass_verify reads for @mode over [start, end). */
uint64_t pass_verify_bytes(const struct pass *p, enum pass_verify mode);

/* "none", "sample", "full", NULL: indexed by enum pass_verify. */
extern const char *const pass_verify_names[];
const char *pass_verify_name(enum pass_verify v);
int pass_verify_parse(const char *s, enum pass_verify *ret);
