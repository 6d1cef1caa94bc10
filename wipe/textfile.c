// SPDX-License-Identifier: GPL-2.0-or-later
/* The node_exporter textfile of one device's wipe run. Every series carries the same labels
 * (device, device_id, method) so a dashboard can join them; the result and the verification
 * are one-hot (a series per possible value, 1 for the one that happened, as keyd's volume
 * state), the NIST level and certificate are labels of wipe_run_info, the numbers gauges. The
 * table here is the list docs/wipe.md ("Metrics for Prometheus") documents. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "prom.h"
#include "textfile.h"
#include "util.h"

/* One family. With @label, @n series, the k-th labelled @label=@label_value(k) (@value gets
 * k): one-hot for the result and the verification, by pass for the bytes. */
struct metric {
	const char *name, *help;
	const char *label;
	size_t n;
	const char *(*label_value)(size_t k);
	double (*value)(const struct wipe_job *j, size_t k);
	bool info; /* carries the NIST level and the certificate id too */
};

static const enum job_result result_of[] = {JOB_SUCCESS, JOB_FAILURE, JOB_INTERRUPTED, JOB_REFUSED};
static const enum job_verify verification_of[] = {JOB_VERIFY_PASSED, JOB_VERIFY_FAILED,
						  JOB_VERIFY_INCOMPLETE, JOB_VERIFY_NOT_RUN,
						  JOB_VERIFY_NOT_REQUESTED};
static const char *const passes[] = {"write", "verify"};

static const char *result_label(size_t k)
{
	return job_result_name(result_of[k]);
}

static const char *verification_label(size_t k)
{
	return job_verify_name(verification_of[k]);
}

static const char *pass_label(size_t k)
{
	return passes[k];
}

static double value_result(const struct wipe_job *j, size_t k)
{
	return j->result == result_of[k];
}

static double value_verification(const struct wipe_job *j, size_t k)
{
	return j->verified == verification_of[k];
}

static double value_one(const struct wipe_job *j, size_t k)
{
	(void)j, (void)k;
	return 1;
}

static double value_bytes(const struct wipe_job *j, size_t k)
{
	return (double)(k == 0 ? j->write.bytes : j->check.bytes);
}

static double value_seconds(const struct wipe_job *j, size_t k)
{
	(void)k;
	return j->started_us && j->ended_us > j->started_us
		       ? (double)(j->ended_us - j->started_us) / 1e6
		       : 0;
}

static double value_end(const struct wipe_job *j, size_t k)
{
	(void)k;
	return (double)(j->ended_us ? j->ended_us : now_real_us()) / 1e6;
}

static double value_failed_blocks(const struct wipe_job *j, size_t k)
{
	(void)k;
	return (double)(j->write.io_errors + j->check.io_errors + j->check.mismatches);
}

static const struct metric metrics[] = {
	{"wipe_run_result", "the last wipe run of this device ended so (one-hot by result)",
	 "result", ELEMENTSOF(result_of), result_label, value_result, false},
	{"wipe_run_verification", "what the last run's verification found (one-hot)",
	 "verification", ELEMENTSOF(verification_of), verification_label, value_verification,
	 false},
	{"wipe_run_info", "the last wipe run of this device: NIST level reached, certificate", NULL,
	 1, NULL, value_one, true},
	{"wipe_run_bytes", "bytes the last run wrote (or the firmware sanitized) and read back",
	 "pass", ELEMENTSOF(passes), pass_label, value_bytes, false},
	{"wipe_run_failed_blocks",
	 "blocks not written, not read or read back wrong in the last run", NULL, 1, NULL,
	 value_failed_blocks, false},
	{"wipe_run_seconds", "how long the last wipe run took (0 when refused)", NULL, 1, NULL,
	 value_seconds, false},
	{"wipe_run_timestamp_seconds", "when the last wipe run of this device ended (Unix time)",
	 NULL, 1, NULL, value_end, false},
};

/* One series: the job's labels, then @m's own (@value: NULL for none), then the info's. */
static void series(struct prom *p, const struct wipe_job *j, const struct metric *m, size_t k)
{
	const char *l[16] = {"device",	j->dev.path, "device_id",
			     j->dev.id, "method",    j->method ? j->method->name : ""};
	size_t n = 6;

	if (m->label) {
		l[n++] = m->label;
		l[n++] = m->label_value(k);
	}
	if (m->info) {
		l[n++] = "nist_level";
		l[n++] = j->result == JOB_SUCCESS ? nist_level_name(j->level) : "none";
		l[n++] = "certificate_id";
		l[n++] = j->cert_id;
	}
	prom_sample(p, m->name, l, m->value(j, k));
}

int textfile_format(const struct wipe_job *j, char **ret)
{
	struct prom p = {0};

	for (size_t i = 0; i < ELEMENTSOF(metrics); i++) {
		prom_family(&p, metrics[i].name, "gauge", metrics[i].help);
		for (size_t k = 0; k < metrics[i].n; k++)
			series(&p, j, &metrics[i], k);
	}
	return prom_finish(&p, ret);
}

int textfile_check_dir(const char *dir)
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

int textfile_write(const char *dir, const struct wipe_job *j, char *path, size_t size)
{
	_cleanup_free_ char *text = NULL;
	int r;

	path[0] = 0;
	if (!j->dev.id[0])
		return -EINVAL;
	if (snprintf(path, size, "%s/wipe-%s.prom", dir, j->dev.id) >= (int)size)
		return -ENAMETOOLONG;
	r = textfile_format(j, &text);
	if (r < 0)
		return r;
	/* 0644: node_exporter runs as its own user and only reads. */
	return atomicfile_write(path, text, strlen(text), 0644, 0755);
}
