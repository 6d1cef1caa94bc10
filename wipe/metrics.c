// SPDX-License-Identifier: GPL-2.0-or-later
/* The node_exporter textfile of one device's wipe run. Every series carries the same labels
 * (device, device_id, method) so a dashboard can join them; the outcome's words (result,
 * verification, NIST level, certificate) are labels of wipe_run_info, the numbers are gauges.
 * The metric table here is the list docs/metrics-wipe.md documents. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "metrics.h"
#include "util.h"

#define METRICS_LABELS_MAX 2048

/* What one series reports of the job. */
struct metric {
	const char *name, *help;
	double (*value)(const struct wipe_job *j);
	bool info;    /* carries the outcome's labels too */
	bool integer; /* a count, printed without a fraction */
};

static double value_success(const struct wipe_job *j)
{
	return j->result == JOB_SUCCESS;
}

static double value_one(const struct wipe_job *j)
{
	(void)j;
	return 1;
}

static double value_written(const struct wipe_job *j)
{
	return (double)j->write.bytes;
}

static double value_verified(const struct wipe_job *j)
{
	return (double)j->check.bytes;
}

static double value_duration(const struct wipe_job *j)
{
	return j->started_us && j->ended_us > j->started_us
		       ? (double)(j->ended_us - j->started_us) / 1e6
		       : 0;
}

static double value_end(const struct wipe_job *j)
{
	return (double)(j->ended_us ? j->ended_us : now_real_us()) / 1e6;
}

static double value_failed_blocks(const struct wipe_job *j)
{
	return (double)(j->write.io_errors + j->check.io_errors + j->check.mismatches);
}

static const struct metric metrics[] = {
	{"wipe_run_success", "1 if the last wipe run of this device succeeded (verified), else 0",
	 value_success, false, true},
	{"wipe_run_info",
	 "the last wipe run of this device: result, verification, NIST level, certificate",
	 value_one, true, true},
	{"wipe_run_written_bytes", "bytes the last wipe run wrote (or the firmware sanitized)",
	 value_written, false, true},
	{"wipe_run_verified_bytes", "bytes the last wipe run read back to verify", value_verified,
	 false, true},
	{"wipe_run_failed_blocks",
	 "blocks not written, not read or read back wrong in the last run", value_failed_blocks,
	 false, true},
	{"wipe_run_duration_seconds", "how long the last wipe run took (0 when refused)",
	 value_duration, false, false},
	{"wipe_run_timestamp_seconds", "when the last wipe run of this device ended (Unix time)",
	 value_end, false, false},
};

/* A label value as the exposition format quotes it: backslash, double quote and newline
 * escaped. */
static int label_append(char *buf, size_t size, size_t *at, const char *name, const char *v)
{
	int n = snprintf(buf + *at, size - *at, "%s%s=\"", *at ? "," : "", name);

	if (n < 0 || (size_t)n >= size - *at)
		return -ENOBUFS;
	*at += (size_t)n;
	for (; *v; v++) {
		const char *esc = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;
		size_t len = esc ? strlen(esc) : 1;

		if (*at + len + 2 >= size)
			return -ENOBUFS;
		memcpy(buf + *at, esc ? esc : v, len);
		*at += len;
	}
	buf[(*at)++] = '"';
	buf[*at] = 0;
	return 0;
}

static int labels(const struct wipe_job *j, bool info, char *buf, size_t size)
{
	size_t at = 0;
	int r;

	buf[0] = 0;
	r = label_append(buf, size, &at, "device", j->dev.path);
	if (r == 0)
		r = label_append(buf, size, &at, "device_id", j->dev.id);
	if (r == 0)
		r = label_append(buf, size, &at, "method", j->method ? j->method->name : "");
	if (r < 0 || !info)
		return r;
	r = label_append(buf, size, &at, "result", job_result_name(j->result));
	if (r == 0)
		r = label_append(buf, size, &at, "verification", job_verify_name(j->verified));
	if (r == 0)
		r = label_append(buf, size, &at, "nist_level",
				 j->result == JOB_SUCCESS ? nist_level_name(j->level) : "none");
	if (r == 0)
		r = label_append(buf, size, &at, "certificate_id", j->cert_id);
	return r;
}

int metrics_format(const struct wipe_job *j, char *buf, size_t size)
{
	char l[METRICS_LABELS_MAX];
	size_t at = 0;

	for (size_t i = 0; i < ELEMENTSOF(metrics); i++) {
		int r = labels(j, metrics[i].info, l, sizeof(l)), n;

		if (r < 0)
			return r;
		n = snprintf(buf + at, size - at, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %.*f\n",
			     metrics[i].name, metrics[i].help, metrics[i].name, metrics[i].name, l,
			     metrics[i].integer ? 0 : 6, metrics[i].value(j));
		if (n < 0 || (size_t)n >= size - at)
			return -ENOBUFS;
		at += (size_t)n;
	}
	return 0;
}

int metrics_check_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return negative_errno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (access(dir, W_OK | X_OK) < 0)
		return negative_errno();
	return 0;
}

int metrics_write(const char *dir, const struct wipe_job *j, char *path, size_t size)
{
	char text[8 * METRICS_LABELS_MAX];
	int r;

	path[0] = 0;
	if (!j->dev.id[0])
		return -EINVAL;
	if (snprintf(path, size, "%s/wipe-%s.prom", dir, j->dev.id) >= (int)size)
		return -ENAMETOOLONG;
	r = metrics_format(j, text, sizeof(text));
	if (r < 0)
		return r;
	/* 0644: node_exporter runs as its own user and only reads. */
	return atomicfile_write(path, text, strlen(text), 0644, 0755);
}
