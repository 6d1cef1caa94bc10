// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe's exit statuses: the table is one status per name, the old meanings kept (0 ok, 1
 * failed, 2 usage, 3 refused, 130 interrupted), and a job's outcome maps to the status a script
 * would expect: a safety refusal 3, another holder or keyd 4, a missing device 8, write errors
 * 5, a failed read-back 6; with several devices the one that needs a person most wins. Also the
 * node_exporter textfile of a job: its label values escaped as the exposition format wants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "textfile.h"

static void test_table(void **state)
{
	static const struct {
		int status;
		const char *name;
	} kept[] = {{0, "ok"}, {1, "failed"}, {2, "usage"}, {3, "refused"}, {130, "interrupted"}};

	(void)state;
	for (size_t i = 0; i < exitcodes_count; i++)
		for (size_t k = i + 1; k < exitcodes_count; k++) {
			assert_int_not_equal(exitcodes[i].status, exitcodes[k].status);
			assert_string_not_equal(exitcodes[i].name, exitcodes[k].name);
			assert_int_not_equal(exitcodes[i].rank, exitcodes[k].rank);
		}
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		assert_string_equal(exitcode_find(kept[i].status)->name, kept[i].name);
	assert_null(exitcode_find(77));
}

/* A job that ended @result with @error, on a device that was probed (@devnum) or not. */
static struct wipe_job job(enum job_result result, int error, unsigned devnum)
{
	struct wipe_job j = {.result = result, .error = error};

	j.dev.devnum = devnum;
	return j;
}

static void test_job_outcomes(void **state)
{
	static const struct {
		enum job_result result;
		int error;
		unsigned devnum;
		int want;
	} cases[] = {
		{JOB_SUCCESS, 0, 7, EXIT_OK},
		{JOB_INTERRUPTED, -EINTR, 7, EXIT_INTERRUPTED},
		{JOB_REFUSED, -EPERM, 7, EXIT_REFUSED},	     /* mounted, holders, not confirmed */
		{JOB_REFUSED, -ENOTUNIQ, 7, EXIT_REFUSED},   /* a LUKS UUID on two disks */
		{JOB_REFUSED, -EOPNOTSUPP, 7, EXIT_REFUSED}, /* method not supported here */
		{JOB_REFUSED, -ENOENT, 7, EXIT_REFUSED},     /* --resume without a checkpoint */
		{JOB_REFUSED, -EBUSY, 7, EXIT_BUSY},	     /* open elsewhere, keyd manages it */
		{JOB_REFUSED, -ENOENT, 0, EXIT_NO_DEVICE},
		{JOB_REFUSED, -ENOTBLK, 0, EXIT_NO_DEVICE},
		{JOB_REFUSED, -EACCES, 0, EXIT_FAILED},
		{JOB_FAILURE, -EIO, 7, EXIT_IO},
		{JOB_FAILURE, -EBADMSG, 7, EXIT_VERIFY},
		{JOB_FAILURE, -EEXIST, 7, EXIT_VERIFY}, /* a header still loads afterwards */
		{JOB_FAILURE, -ENOSPC, 7, EXIT_IO},
		{JOB_FAILURE, -EACCES, 7, EXIT_FAILED},	   /* the certificate directory */
		{JOB_FAILURE, -ENOENT, 0, EXIT_NO_DEVICE}, /* wipe verify of a missing device */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wipe_job j = job(cases[i].result, cases[i].error, cases[i].devnum);

		printf("%s %s probed=%d -> %d\n", job_result_name(cases[i].result),
		       strerror(-cases[i].error), cases[i].devnum != 0, exitcode_of_job(&j));
		assert_int_equal(exitcode_of_job(&j), cases[i].want);
	}
}

static void test_write_errors_are_io(void **state)
{
	/* A device turned read-only refuses writes with EPERM: still an I/O error. */
	struct wipe_job j = job(JOB_FAILURE, -EPERM, 7);

	(void)state;
	j.write.io_errors = 3;
	assert_int_equal(exitcode_of_job(&j), EXIT_IO);
}

static void test_worst_wins(void **state)
{
	(void)state;
	assert_int_equal(exitcode_worst(EXIT_OK, EXIT_REFUSED), EXIT_REFUSED);
	assert_int_equal(exitcode_worst(EXIT_REFUSED, EXIT_BUSY), EXIT_BUSY);
	assert_int_equal(exitcode_worst(EXIT_INTERRUPTED, EXIT_BUSY), EXIT_INTERRUPTED);
	assert_int_equal(exitcode_worst(EXIT_FAILED, EXIT_INTERRUPTED), EXIT_FAILED);
	assert_int_equal(exitcode_worst(EXIT_IO, EXIT_VERIFY), EXIT_VERIFY);
	assert_int_equal(exitcode_worst(EXIT_NO_DEVICE, EXIT_REFUSED), EXIT_REFUSED);
	assert_int_equal(exitcode_worst(EXIT_VERIFY, EXIT_USAGE), EXIT_USAGE);
}

static void test_metrics_labels_escaped(void **state)
{
	struct wipe_job j = job(JOB_SUCCESS, 0, 7);
	char *text = NULL;

	(void)state;
	snprintf(j.dev.path, sizeof(j.dev.path), "/dev/disk/by-label/a\"b\\c");
	snprintf(j.dev.id, sizeof(j.dev.id), "x");
	j.method = method_find("zero");
	j.write.bytes = 4096;
	assert_int_equal(textfile_format(&j, &text), 0);
	printf("%s", text);
	assert_non_null(strstr(text, "wipe_run_result{device=\"/dev/disk/by-label/a\\\"b\\\\c\","
				     "device_id=\"x\",method=\"zero\",result=\"success\"} 1\n"));
	assert_non_null(strstr(text, "wipe_run_result{device=\"/dev/disk/by-label/a\\\"b\\\\c\","
				     "device_id=\"x\",method=\"zero\",result=\"refused\"} 0\n"));
	assert_non_null(strstr(text,
			       "wipe_run_bytes{device=\"/dev/disk/by-label/"
			       "a\\\"b\\\\c\",device_id=\"x\",method=\"zero\",pass=\"write\"} "
			       "4096\n"));
	assert_non_null(strstr(text, "# TYPE wipe_run_info gauge\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_job_outcomes),
		cmocka_unit_test(test_write_errors_are_io),
		cmocka_unit_test(test_worst_wins),
		cmocka_unit_test(test_metrics_labels_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
