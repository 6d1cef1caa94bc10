/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe's exit statuses: one table that --help, wipe(8), the JSON error codes and the outcome of
 * a run all read, and the mapping of one job's outcome onto it. Prints nothing, decides
 * nothing about devices. */
#pragma once

#include <stddef.h>

#include "job.h"

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 3,
	EXIT_BUSY = 4,
	EXIT_IO = 5,
	EXIT_VERIFY = 6,
	EXIT_CERT_INVALID = 7,
	EXIT_NO_DEVICE = 8,
	EXIT_INTERRUPTED = 130,
};

struct exitcode {
	int status;
	const char *name;    /* the JSON error's "code" */
	const char *summary; /* --help and wipe(8) */
	int rank;	     /* with several devices, the highest rank is the exit status */
};

extern const struct exitcode exitcodes[];
extern const size_t exitcodes_count;

/* The row of @status; NULL for a status not in the table. */
const struct exitcode *exitcode_find(int status);

/* The one of @a and @b a run with both outcomes exits with. */
int exitcode_worst(int a, int b);

/* What an -errno from opening or probing a device means (ENOENT: no such device, ...). */
int exitcode_of_open_error(int error);

/* What one job's outcome means for the exit status (EXIT_OK for a success). */
int exitcode_of_job(const struct wipe_job *j);
