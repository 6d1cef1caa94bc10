// SPDX-License-Identifier: GPL-2.0-or-later
/* Checkpoints: a round trip keeps offset, errors, key and the "before" record; the file is
 * root's, mode 0600; a malformed or exposed file is refused with a reason; removal leaves
 * nothing. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "secmem.h"

static char dir[64], path[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-wipe-cp.XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* A directory that does not exist yet: saving creates it. */
	snprintf(path, sizeof(path), "%s/state/loop-254_0-42.json", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct checkpoint sample(void)
{
	struct checkpoint cp = {
		.device_size = 1 << 30,
		.verify = PASS_VERIFY_FULL,
		.phase = CHECKPOINT_WRITE,
		.end = 1 << 30,
		.offset = 300 << 20,
		.started_us = 1700000000000000ull,
		.resumes = 1,
	};

	snprintf(cp.device_id, sizeof(cp.device_id), "loop-254_0-42");
	snprintf(cp.method, sizeof(cp.method), "random");
	pass_stats_init(&cp.write);
	cp.write.bytes = 300 << 20;
	cp.write.io_errors = 2;
	cp.write.first_bad = 4096;
	cp.write.first_error = -EIO;
	cp.key = secmem_alloc(PATTERN_KEY_LEN);
	memset(cp.key, 0x5c, PATTERN_KEY_LEN);
	cp.before = json_pack("{s:s, s:[]}", "luks_uuid", "abc", "signatures");
	return cp;
}

static void test_round_trip(void **state)
{
	struct checkpoint cp = sample(), back;
	struct error e;
	struct stat st;

	(void)state;
	if (geteuid() != 0)
		skip(); /* checkpoints must be root's */
	assert_int_equal(checkpoint_save(path, &cp), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(checkpoint_load(path, &back, &e), 0);
	assert_string_equal(back.device_id, cp.device_id);
	assert_string_equal(back.method, "random");
	assert_int_equal(back.offset, cp.offset);
	assert_int_equal(back.end, cp.end);
	assert_int_equal(back.verify, PASS_VERIFY_FULL);
	assert_int_equal(back.write.io_errors, 2);
	assert_int_equal(back.write.first_bad, 4096);
	assert_int_equal(back.write.first_error, -EIO);
	assert_int_equal(back.resumes, 1);
	assert_memory_equal(back.key, cp.key, PATTERN_KEY_LEN);
	assert_string_equal(json_string_value(json_object_get(back.before, "luks_uuid")), "abc");
	checkpoint_done(&back);

	/* No key for zeros; replaced atomically. */
	secmem_free(cp.key);
	cp.key = NULL;
	cp.phase = CHECKPOINT_VERIFY;
	assert_int_equal(checkpoint_save(path, &cp), 0);
	assert_int_equal(checkpoint_load(path, &back, &e), 0);
	assert_null(back.key);
	assert_int_equal(back.phase, CHECKPOINT_VERIFY);
	checkpoint_done(&back);

	assert_int_equal(checkpoint_remove(path), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(checkpoint_remove(path), 0);
	assert_int_equal(checkpoint_load(path, &back, &e), -ENOENT);
	checkpoint_done(&cp);
}

static void write_file(const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_refusals(void **state)
{
	struct checkpoint cp = sample(), back;
	struct error e;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(checkpoint_save(path, &cp), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(checkpoint_load(path, &back, &e), -EPERM);

	write_file(
		"{\"format\": \"wipe-checkpoint/1\", \"device_id\": \"x\", \"device_size\": 100, "
		"\"method\": \"zero\", \"verify\": \"none\", \"phase\": \"write\", \"end\": 100, "
		"\"offset\": 200, \"started_us\": 1, \"resumes\": 0, \"before\": {}, "
		"\"write\": {\"bytes\": 0, \"failed_blocks\": 0, \"first_bad\": -1, "
		"\"first_error\": 0}}",
		0600);
	assert_int_equal(checkpoint_load(path, &back, &e), -EINVAL);
	printf("%s\n", e.msg);
	assert_non_null(strstr(e.msg, "inconsistent"));

	write_file("{\"format\": \"wipe-checkpoint/1\", \"surprise\": 1}", 0600);
	assert_int_equal(checkpoint_load(path, &back, &e), -EINVAL);
	assert_string_equal(e.msg, "checkpoint.surprise: unknown key");

	write_file(
		"{\"format\": \"wipe-checkpoint/1\", \"device_id\": \"x\", \"device_size\": 100, "
		"\"method\": \"zero\", \"verify\": \"often\"}",
		0600);
	assert_int_equal(checkpoint_load(path, &back, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "checkpoint.verify"));

	write_file("not json", 0600);
	assert_int_equal(checkpoint_load(path, &back, &e), -EINVAL);
	checkpoint_done(&cp);
}

/* What checkpoint_remove() leaves when a crash keeps its unlink off the disk: all zeros, told
 * apart from a malformed checkpoint. */
static void test_shredded(void **state)
{
	struct checkpoint cp = sample(), back;
	struct error e;
	char cmd[PATH_MAX + 64];

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(checkpoint_save(path, &cp), 0);
	/* The shred without its unlink: zeros over the whole file, as checkpoint_remove writes. */
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=4096 count=1 status=none", path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(checkpoint_load(path, &back, &e), -ESTALE);
	/* A zero byte inside a checkpoint is malformed, not shredded. */
	write_file("{\"format\": \"wipe-checkpoint/1\"}\n", 0600);
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(checkpoint_load(path, &back, &e), -EINVAL);
	assert_int_equal(checkpoint_remove(path), 0);
	assert_int_equal(access(path, F_OK), -1);
	checkpoint_done(&cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shredded, setup, teardown),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
