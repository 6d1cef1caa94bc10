// SPDX-License-Identifier: GPL-2.0-or-later
/* Whole wipes of a loop device through job_plan/job_run with faults injected in the I/O layer
 * (struct io_ops): write errors in the middle give a signed failure certificate that claims no
 * sanitization, read errors fail the verification, and a clean run certifies success. Needs root
 * and a loop device (skipped otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "job.h"
#include "secmem.h"

#define DEV_MIB 32

static char dir[64], loopdev[64];
static EVP_PKEY *key;

/* Faults: [bad_from, bad_to) fails with EIO, for writes or for reads. */
static uint64_t bad_from, bad_to;
static bool bad_reads;

static bool hits(size_t n, off_t off)
{
	return (uint64_t)off < bad_to && (uint64_t)off + n > bad_from;
}

static ssize_t faulty_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (!bad_reads && hits(n, off)) {
		errno = EIO;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

static ssize_t faulty_pread(int fd, void *buf, size_t n, off_t off)
{
	if (bad_reads && hits(n, off)) {
		errno = EIO;
		return -1;
	}
	return pread(fd, buf, n, off);
}

static struct io_ops faulty;

static int group_setup(void **state)
{
	char cmd[256];
	FILE *p;

	(void)state;
	faulty = io_ops_system;
	faulty.pwrite = faulty_pwrite;
	faulty.pread = faulty_pread;
	if (geteuid() != 0)
		return 0;
	snprintf(dir, sizeof(dir), "/tmp/test-wipe-job.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "truncate -s %dM %s/disk && losetup -f --show %s/disk", DEV_MIB,
		 dir, dir);
	p = popen(cmd, "r");
	if (!p || !fgets(loopdev, sizeof(loopdev), p))
		loopdev[0] = 0;
	if (p)
		pclose(p);
	loopdev[strcspn(loopdev, "\n")] = 0;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return key ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	if (loopdev[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
		if (system(cmd) != 0)
			return -1;
	}
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return -1;
	}
	EVP_PKEY_free(key);
	return 0;
}

static struct wipe_options options(const char *method)
{
	static char cpdir[PATH_MAX], certdir[PATH_MAX];

	snprintf(cpdir, sizeof(cpdir), "%s/cp", dir);
	snprintf(certdir, sizeof(certdir), "%s/certs", dir);
	return (struct wipe_options){
		.method = method_find(method),
		.verify = PASS_VERIFY_FULL,
		.verify_given = true,
		.checkpoint_dir = cpdir,
		.checkpoint_every = 8 << 20,
		.cert_dir = certdir,
		.performed_by = json_pack("{s:s}", "name", "test"),
		.fields = json_object(),
		.key = key,
		.io_ops = &faulty,
	};
}

static json_t *run(const char *method, struct wipe_job *j, int want)
{
	struct wipe_options *opt = malloc(sizeof(*opt));
	json_t *cert = NULL;
	struct error err;

	*opt = options(method);
	assert_int_equal(job_plan(j, loopdev, opt), 0);
	assert_int_equal(job_run(j), want);
	printf("%s: %s\n", job_result_name(j->result), j->message);
	assert_true(j->cert_path[0]);
	assert_int_equal(cert_load(j->cert_path, &cert), 0);
	/* Signed, and the record is consistent whatever the outcome. */
	assert_int_equal(cert_check(cert, key, &err), 0);
	assert_int_equal(access(j->checkpoint_path, F_OK), -1);
	job_done(j);
	json_decref(opt->performed_by);
	json_decref(opt->fields);
	free(opt);
	return cert;
}

static json_t *get(json_t *c, const char *a, const char *b)
{
	return b ? json_object_get(json_object_get(c, a), b) : json_object_get(c, a);
}

static void test_write_errors_give_failure_certificate(void **state)
{
	struct wipe_job j;
	json_t *c;

	(void)state;
	if (!loopdev[0])
		skip();
	bad_reads = false;
	bad_from = 20 << 20;
	bad_to = bad_from + 4 * 512; /* four dead sectors */
	c = run("random", &j, -EIO);
	assert_string_equal(json_string_value(get(c, "result", NULL)), "failure");
	assert_int_equal(json_integer_value(get(c, "errors", "write_failed_blocks")), 4);
	assert_int_equal(json_integer_value(get(c, "errors", "first_write_error_offset")),
			 20 << 20);
	assert_string_equal(json_string_value(get(c, "nist", "level")), "none");
	assert_string_equal(json_string_value(get(c, "verification", "result")), "not-run");
	/* The rest of the device was still written; the four dead sectors were not. */
	assert_int_equal(json_integer_value(get(c, "bytes_written", NULL)),
			 (DEV_MIB << 20) - 4 * 512);
	assert_non_null(strstr(json_string_value(get(c, "sp800_88_rev1_appendix_g", "method_type")),
			       "None"));
	json_decref(c);
}

static void test_read_errors_fail_verification(void **state)
{
	struct wipe_job j;
	json_t *c;

	(void)state;
	if (!loopdev[0])
		skip();
	bad_reads = true;
	bad_from = 3 << 20;
	bad_to = bad_from + 512;
	c = run("zero", &j, -EBADMSG);
	assert_string_equal(json_string_value(get(c, "result", NULL)), "failure");
	assert_int_equal(json_integer_value(get(c, "errors", "write_failed_blocks")), 0);
	assert_string_equal(json_string_value(get(c, "verification", "result")), "failed");
	assert_int_equal(json_integer_value(get(c, "verification", "unreadable_blocks")), 1);
	json_decref(c);
}

static void test_clean_run(void **state)
{
	struct wipe_job j;
	json_t *c;

	(void)state;
	if (!loopdev[0])
		skip();
	bad_from = bad_to = 0;
	c = run("random", &j, 0);
	assert_string_equal(json_string_value(get(c, "result", NULL)), "success");
	assert_string_equal(json_string_value(get(c, "verification", "result")), "passed");
	assert_int_equal(json_integer_value(get(c, "verification", "bytes_read")), DEV_MIB << 20);
	assert_string_equal(json_string_value(get(c, "nist", "level")), "clear");
	assert_string_equal(json_string_value(get(c, "operator", "name")), "test");
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_errors_give_failure_certificate),
		cmocka_unit_test(test_read_errors_fail_verification),
		cmocka_unit_test(test_clean_run),
	};

	if (secmem_init(4 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
