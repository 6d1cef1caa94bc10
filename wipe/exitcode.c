// SPDX-License-Identifier: GPL-2.0-or-later
/* The exit-status table and the one mapping of a job's outcome (result and -errno) onto it.
 * In the spirit of cryptsetup's (1 usage, 4 wrong device, 5 busy) but wipe's own numbers: 0-3
 * and 130 kept their old meaning, so scripts that knew them still work. */
#include <errno.h>

#include "exitcode.h"
#include "util.h"

/* Ranks: what needs a person most wins when several devices end differently. */
const struct exitcode exitcodes[] = {
	{EXIT_OK, "ok", "done", 0},
	{EXIT_FAILED, "failed", "failed (what no other status names)", 60},
	{EXIT_USAGE, "usage", "usage error: bad option, argument or command", 90},
	{EXIT_REFUSED, "refused", "refused by a safety check or the confirmation; nothing written",
	 20},
	{EXIT_BUSY, "busy", "device open elsewhere, or keyd still manages it; nothing written", 30},
	{EXIT_IO, "io-error", "I/O error: blocks not written or read, or the device changed", 70},
	{EXIT_VERIFY, "verification-failed",
	 "verification failed: the device holds other than the method leaves", 80},
	{EXIT_CERT_INVALID, "certificate-invalid",
	 "certificate invalid, or signed by no trusted key", 50},
	{EXIT_NO_DEVICE, "not-found", "no such device, or not a block device", 10},
	{EXIT_INTERRUPTED, "interrupted", "interrupted by SIGINT or SIGTERM (resumable)", 40},
};
const size_t exitcodes_count = ELEMENTSOF(exitcodes);

const struct exitcode *exitcode_find(int status)
{
	for (size_t i = 0; i < exitcodes_count; i++)
		if (exitcodes[i].status == status)
			return &exitcodes[i];
	return NULL;
}

int exitcode_worst(int a, int b)
{
	const struct exitcode *x = exitcode_find(a), *y = exitcode_find(b);
	int ra = x ? x->rank : 60, rb = y ? y->rank : 60;

	return rb > ra ? b : a;
}

/* -errno of a failed wipe onto a status; the rest is EXIT_FAILED. */
struct errno_status {
	int error, status;
};

static const struct errno_status failure_errors[] = {
	{-EBADMSG, EXIT_VERIFY}, /* read back differs */
	{-EEXIST, EXIT_VERIFY},	 /* a header or signature still found afterwards */
	{-EIO, EXIT_IO},	 {-ENODATA, EXIT_IO},	 {-EILSEQ, EXIT_IO}, {-EREMOTEIO, EXIT_IO},
	{-ETIMEDOUT, EXIT_IO},	 {-EROFS, EXIT_IO},	 {-ENOSPC, EXIT_IO}, {-ENODEV, EXIT_IO},
	{-ENXIO, EXIT_IO},	 {-EOPNOTSUPP, EXIT_IO},
};

/* -errno of a refusal, before anything was written: a device in use elsewhere is busy, every
 * other refusal is a safety check's. */
static const struct errno_status refusal_errors[] = {
	{-EBUSY, EXIT_BUSY},
	{-EIO, EXIT_IO},
};

/* -errno of a device that could not be opened or probed at all (it has no device number). */
static const struct errno_status open_errors[] = {
	{-ENOENT, EXIT_NO_DEVICE}, {-ENOTBLK, EXIT_NO_DEVICE},	 {-ENXIO, EXIT_NO_DEVICE},
	{-ENODEV, EXIT_NO_DEVICE}, {-ENOMEDIUM, EXIT_NO_DEVICE}, {-EBUSY, EXIT_BUSY},
	{-EIO, EXIT_IO},	   {-EINVAL, EXIT_USAGE}, /* named twice */
};

static int lookup(const struct errno_status *t, size_t n, int error, int fallback)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].error == error)
			return t[i].status;
	return fallback;
}

int exitcode_of_open_error(int error)
{
	return lookup(open_errors, ELEMENTSOF(open_errors), error, EXIT_FAILED);
}

int exitcode_of_job(const struct wipe_job *j)
{
	switch (j->result) {
	case JOB_PENDING:
	case JOB_SUCCESS:
		return EXIT_OK;
	case JOB_INTERRUPTED:
		return EXIT_INTERRUPTED;
	case JOB_FAILURE:
	case JOB_REFUSED:
		break;
	}
	if (!j->dev.devnum)
		return exitcode_of_open_error(j->error);
	if (j->result == JOB_FAILURE) {
		int status =
			lookup(failure_errors, ELEMENTSOF(failure_errors), j->error, EXIT_FAILED);

		/* Blocks the device refused to write are an I/O error, whatever errno it gave. */
		return status == EXIT_FAILED && j->write.io_errors ? EXIT_IO : status;
	}
	return lookup(refusal_errors, ELEMENTSOF(refusal_errors), j->error, EXIT_REFUSED);
}
