// SPDX-License-Identifier: GPL-2.0-or-later
/* Passes over a device held in memory behind a replaced struct io_ops: the pattern lands where it
 * should, verification catches one flipped byte, and injected write and read failures are
 * counted block by block without stopping the rest of the wipe (unless the device is gone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"
#include "secmem.h"

#define DEV_SIZE (24u << 20) /* six 4 MiB chunks */
#define BLOCK	 512

/* The fake device: memory, plus the faults a test asks for. */
static uint8_t *disk;
static uint64_t bad_from, bad_to; /* [from, to): writes (or reads) there fail */
static int bad_error;
static bool bad_reads;
static unsigned syncs;
static volatile bool stop_after_writes_flag;
static unsigned writes, stop_after_writes;

static bool hits_bad(size_t n, off_t off)
{
	return bad_error && (uint64_t)off < bad_to && (uint64_t)off + n > bad_from;
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	(void)fd;
	if (!bad_reads && hits_bad(n, off)) {
		errno = bad_error;
		return -1;
	}
	if (stop_after_writes &&
	    __atomic_add_fetch(&writes, 1, __ATOMIC_SEQ_CST) >= stop_after_writes)
		__atomic_store_n(&stop_after_writes_flag, true, __ATOMIC_RELAXED);
	memcpy(disk + off, buf, n);
	return (ssize_t)n;
}

static ssize_t fake_pread(int fd, void *buf, size_t n, off_t off)
{
	(void)fd;
	if (bad_reads && hits_bad(n, off)) {
		errno = bad_error;
		return -1;
	}
	memcpy(buf, disk + off, n);
	return (ssize_t)n;
}

static int fake_fdatasync(int fd)
{
	(void)fd;
	syncs++;
	return 0;
}

static int fake_ioctl(int fd, unsigned long req, uint64_t range[2])
{
	(void)fd;
	if (req != BLKZEROOUT) {
		errno = EOPNOTSUPP;
		return -1;
	}
	memset(disk + range[0], 0, range[1]);
	return 0;
}

static const struct io_ops fake_ops = {
	.pwrite = fake_pwrite,
	.pread = fake_pread,
	.fdatasync = fake_fdatasync,
	.ioctl_range = fake_ioctl,
};

static struct io_dev dev = {.fd = -1, .ops = &fake_ops, .size = DEV_SIZE, .block = BLOCK};

static int setup(void **state)
{
	(void)state;
	disk = malloc(DEV_SIZE);
	assert_non_null(disk);
	memset(disk, 0xa5, DEV_SIZE); /* the previous tenant's data */
	bad_from = bad_to = 0;
	bad_error = 0;
	bad_reads = false;
	syncs = 0;
	writes = stop_after_writes = 0;
	stop_after_writes_flag = false;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(disk);
	return 0;
}

static struct pass new_pass(const struct pattern *p)
{
	return (struct pass){.dev = &dev, .pattern = p, .start = 0, .end = DEV_SIZE};
}

static void test_keystream_written_and_verified(void **state)
{
	struct pattern p = {0};
	struct pattern_gen g;
	struct pass_stats st;
	struct pass ps = new_pass(&p);
	uint8_t *want = malloc(DEV_SIZE);

	(void)state;
	assert_int_equal(pattern_new_keystream(&p), 0);
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	assert_int_equal(st.bytes, DEV_SIZE);
	assert_int_equal(st.io_errors, 0);
	assert_true(syncs >= 1); /* fdatasync at the end of the pass */

	/* The device holds exactly the keystream, regenerated independently. */
	assert_int_equal(pattern_gen_init(&g, &p), 0);
	assert_int_equal(pattern_fill(&g, want, DEV_SIZE, 0), 0);
	pattern_gen_done(&g);
	assert_memory_equal(disk, want, DEV_SIZE);
	free(want);

	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), 0);
	assert_int_equal(st.bytes, DEV_SIZE);
	assert_int_equal(st.mismatches, 0);
	pattern_done(&p);
}

static void test_verify_catches_one_flipped_byte(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);
	const uint64_t where = 13 * 1024 * 1024 + 777;

	(void)state;
	assert_int_equal(pattern_new_keystream(&p), 0);
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	disk[where] ^= 0x01;
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), -EBADMSG);
	printf("mismatches %llu, first bad %llu\n", (unsigned long long)st.mismatches,
	       (unsigned long long)st.first_bad);
	assert_int_equal(st.mismatches, 1);
	assert_int_equal(st.first_bad, where);
	pattern_done(&p);
}

static void test_zero_flipped_byte(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	disk[DEV_SIZE - 1] = 0x80;
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), -EBADMSG);
	assert_int_equal(st.mismatches, 1);
	assert_int_equal(st.first_bad, DEV_SIZE - 1);
}

static void test_write_errors_counted_by_block(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	/* Three bad sectors in the middle of the second chunk. */
	bad_from = 5 * 1024 * 1024;
	bad_to = bad_from + 3 * BLOCK;
	bad_error = EIO;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), -EIO);
	assert_int_equal(st.io_errors, 3);
	assert_int_equal(st.first_bad, bad_from);
	assert_int_equal(st.first_error, -EIO);
	/* Everything else was still written: the pass went on past the bad blocks. */
	for (uint64_t o = 0; o < DEV_SIZE; o += BLOCK)
		if (o < bad_from || o >= bad_to)
			assert_int_equal(disk[o], 0);
	assert_int_equal(disk[bad_from], 0xa5);
}

static void test_device_gone_aborts(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	/* Read-only from 8 MiB on (what `blockdev --setro` does to a running wipe). */
	bad_from = 8 << 20;
	bad_to = DEV_SIZE;
	bad_error = EPERM;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), -EIO);
	assert_int_equal(st.first_error, -EPERM);
	assert_int_equal(st.first_bad, bad_from);
	/* The whole failing chunk is counted, and the pass stopped there. */
	assert_int_equal(st.io_errors, PASS_CHUNK / BLOCK);
	assert_int_equal(st.bytes, 8 << 20);
}

static void test_too_many_errors_give_up(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	bad_from = 0;
	bad_to = DEV_SIZE;
	bad_error = EIO;
	ps.error_limit = 100;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), -EIO);
	assert_true(st.io_errors > 100);
	assert_true(st.bytes < DEV_SIZE);
}

static void test_read_errors_fail_verification(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	bad_reads = true;
	bad_from = 1 << 20;
	bad_to = bad_from + 2 * BLOCK;
	bad_error = EIO;
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), -EBADMSG);
	assert_int_equal(st.io_errors, 2);
	assert_int_equal(st.mismatches, 0);
	assert_int_equal(st.first_bad, bad_from);
}

struct cp_log {
	unsigned calls;
	uint64_t last;
};

static int record_checkpoint(void *userdata, uint64_t off, const struct pass_stats *st)
{
	struct cp_log *l = userdata;

	(void)st;
	/* Only ever called with a synced device. */
	assert_true(syncs > 0);
	assert_true(off > l->last || l->calls == 0);
	l->calls++;
	l->last = off;
	return 0;
}

static void test_checkpoints_and_resume(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct cp_log log = {0};
	struct pass ps = new_pass(&p);

	(void)state;
	assert_int_equal(pattern_new_keystream(&p), 0);
	ps.sync_every = 8 << 20;
	ps.on_synced = record_checkpoint;
	ps.userdata = &log;
	/* Resume from 8 MiB: what lies before it is the previous run's. */
	ps.start = 8 << 20;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	assert_int_equal(st.bytes, DEV_SIZE - (8 << 20));
	assert_int_equal(log.last, DEV_SIZE);
	assert_int_equal(log.calls, 2); /* at 16 and 24 MiB (the end) */
	assert_int_equal(disk[0], 0xa5);
	ps.start = 8 << 20;
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), 0);
	pattern_done(&p);
}

static void test_stop_flag(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct cp_log log = {0};
	struct pass ps = new_pass(&p);
	volatile bool stop = true;

	(void)state;
	pattern_zero(&p);
	ps.stop = &stop;
	ps.on_synced = record_checkpoint;
	ps.userdata = &log;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), -EINTR);
	/* Stopping still syncs and leaves a checkpoint of what is durable. */
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.last, 0);
}

static void test_stop_midway(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct cp_log log = {0};
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	stop_after_writes = 2; /* SIGINT while the second chunk is being written */
	ps.stop = &stop_after_writes_flag;
	ps.on_synced = record_checkpoint;
	ps.userdata = &log;
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), -EINTR);
	printf("stopped after %llu bytes, checkpoint at %llu\n", (unsigned long long)st.bytes,
	       (unsigned long long)log.last);
	/* What is accounted for was written and synced, and the checkpoint says exactly that. */
	assert_true(st.bytes < DEV_SIZE);
	assert_int_equal(st.bytes % PASS_CHUNK, 0);
	assert_int_equal(log.last, st.bytes);
	for (uint64_t o = 0; o < st.bytes; o += BLOCK)
		assert_int_equal(disk[o], 0);
}

static void test_ioctl_pass(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	pass_stats_init(&st);
	assert_int_equal(pass_ioctl(&ps, BLKZEROOUT, &st), 0);
	assert_int_equal(st.bytes, DEV_SIZE);
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_FULL, &st), 0);
	/* The fake cannot discard: the caller is told, nothing is counted as done. */
	pass_stats_init(&st);
	assert_int_equal(pass_ioctl(&ps, BLKDISCARD, &st), -EOPNOTSUPP);
	assert_int_equal(st.bytes, 0);
}

static void test_sample(void **state)
{
	struct pattern p = {0};
	struct pass_stats st;
	struct pass ps = new_pass(&p);

	(void)state;
	pattern_zero(&p);
	pass_stats_init(&st);
	assert_int_equal(pass_write(&ps, &st), 0);
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_SAMPLE, &st), 0);
	/* 384 units of 64 KiB: at least PASS_SAMPLE_MIN of them plus the first and last. */
	assert_int_equal(st.bytes, pass_verify_bytes(&ps, PASS_VERIFY_SAMPLE));
	assert_int_equal(st.bytes, (PASS_SAMPLE_MIN + 2) * PASS_SAMPLE_UNIT);
	/* The last block is always in the sample. */
	disk[DEV_SIZE - 1] = 1;
	pass_stats_init(&st);
	assert_int_equal(pass_verify(&ps, PASS_VERIFY_SAMPLE, &st), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keystream_written_and_verified, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_catches_one_flipped_byte, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_zero_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_errors_counted_by_block, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_device_gone_aborts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_errors_give_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_errors_fail_verification, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_and_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_midway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ioctl_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
