// SPDX-License-Identifier: GPL-2.0-or-later
/* The refusals, against a fake /sys and /proc: a mount on a partition, a mount through a
 * device-mapper holder, the root file system on the disk (or on another partition of it), a swap
 * file on the device, a clean device that may be wiped, and loop devices followed to what backs
 * them in both directions (a swap file, another loop device). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "safety.h"

static char root[64];
static char sys[PATH_MAX], mountinfo[PATH_MAX], swaps[PATH_MAX], node[PATH_MAX];

static void put(const char *rel, const char *content)
{
	char path[PATH_MAX], cmd[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s/%s')\"", root, rel);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void link_to(const char *target, const char *rel)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(symlink(target, path), 0);
}

/* loop9 with partitions loop9p1 (259:1) and loop9p2 (259:2); dm-0 (253:0) on loop9p1; the
 * machine's own disk vda (254:0). */
static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test-wipe-safety.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", root);
	snprintf(swaps, sizeof(swaps), "%s/swaps", root);
	snprintf(node, sizeof(node), "%s/node", root);
	put("node", "");
	put("sys/class/block/loop9/dev", "7:9\n");
	put("sys/class/block/loop9/holders/.keep", "");
	put("sys/class/block/loop9/loop9p1/dev", "259:1\n");
	put("sys/class/block/loop9/loop9p1/partition", "1\n");
	put("sys/class/block/loop9/loop9p1/holders/dm-0", "");
	put("sys/class/block/loop9/loop9p2/dev", "259:2\n");
	put("sys/class/block/loop9/loop9p2/partition", "2\n");
	put("sys/class/block/dm-0/dev", "253:0\n");
	put("sys/class/block/dm-0/slaves/loop9p1", "");
	put("sys/class/block/vda/dev", "254:0\n");
	link_to("loop9/loop9p1", "sys/class/block/loop9p1");
	link_to("loop9/loop9p2", "sys/class/block/loop9p2");
	put("sys/dev/block/.keep", "");
	link_to("../../class/block/loop9", "sys/dev/block/7:9");
	link_to("../../class/block/loop9p1", "sys/dev/block/259:1");
	link_to("../../class/block/loop9p2", "sys/dev/block/259:2");
	link_to("../../class/block/dm-0", "sys/dev/block/253:0");
	link_to("../../class/block/vda", "sys/dev/block/254:0");
	put("swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static struct device_info target(const char *name, unsigned maj, unsigned min, unsigned part)
{
	struct device_info d = {.devnum = makedev(maj, min), .partition = part};

	/* The "device node" is a plain file here: nothing holds it open exclusively. */
	snprintf(d.path, sizeof(d.path), "%s", node);
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.disk, sizeof(d.disk), "loop9");
	return d;
}

static struct safety_report check(const struct device_info *d, const char *mounts)
{
	struct safety_sources src = {
		.sys = sys, .mountinfo = mountinfo, .swaps = swaps, .dev = root};
	struct safety_report rep;

	put("mountinfo", mounts);
	assert_int_equal(safety_check(d, false, &src, &rep), 0);
	for (size_t i = 0; i < rep.n; i++)
		printf("%s: %s\n", safety_reason_name(rep.items[i].reason), rep.items[i].msg);
	return rep;
}

#define ROOT_ON_VDA "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"

static void test_clean_device(void **state)
{
	struct device_info d = target("loop9", 7, 9, 0);
	struct safety_report rep;

	(void)state;
	/* dm-0's holder link sits on loop9p1: a whole-disk wipe must see it. */
	unlink(strcat(strcpy((char[PATH_MAX]){0}, sys), "/class/block/loop9/loop9p1/holders/dm-0"));
	rep = check(&d, ROOT_ON_VDA "30 22 0:5 / /proc rw - proc proc rw\n");
	assert_int_equal(rep.n, 0);
}

static void test_mounted_partition(void **state)
{
	struct device_info d = target("loop9", 7, 9, 0);
	struct safety_report rep;

	(void)state;
	rep = check(&d, ROOT_ON_VDA "36 22 259:2 / /data\\040dir rw - xfs /dev/loop9p2 rw\n");
	assert_int_equal(rep.n, 2); /* mounted, plus dm-0 holding loop9p1 */
	assert_int_equal(rep.items[0].reason, SAFETY_MOUNTED);
	assert_non_null(strstr(rep.items[0].msg, "mounted on /data dir (xfs, via loop9p2)"));
	assert_int_equal(rep.items[1].reason, SAFETY_HOLDERS);
	assert_non_null(strstr(rep.items[1].msg, "held by dm-0"));
}

static void test_mounted_through_holder(void **state)
{
	struct device_info d = target("loop9p1", 259, 1, 1);
	struct safety_report rep;

	(void)state;
	rep = check(&d, ROOT_ON_VDA "40 22 253:0 / /srv rw - ext4 /dev/mapper/data rw\n");
	assert_int_equal(rep.n, 2);
	assert_int_equal(rep.items[0].reason, SAFETY_MOUNTED);
	assert_non_null(strstr(rep.items[0].msg, "/srv"));
	assert_int_equal(rep.items[1].reason, SAFETY_HOLDERS);
}

static void test_root_disk(void **state)
{
	struct device_info disk = target("loop9", 7, 9, 0);
	struct device_info other = target("loop9p2", 259, 2, 2);
	struct safety_report rep;

	(void)state;
	/* / on dm-0 on loop9p1: the disk is refused, and so is its other, unmounted partition. */
	rep = check(&disk, "22 1 253:0 / / rw - ext4 /dev/mapper/root rw\n");
	assert_true(rep.n >= 1);
	assert_int_equal(rep.items[0].reason, SAFETY_ROOT);
	assert_non_null(strstr(rep.items[0].msg, "holds the root file system"));
	rep = check(&other, "22 1 253:0 / / rw - ext4 /dev/mapper/root rw\n");
	assert_int_equal(rep.n, 1);
	assert_int_equal(rep.items[0].reason, SAFETY_ROOT);
}

static void test_swap_file_on_device(void **state)
{
	struct stat st;
	struct device_info d;
	struct safety_report rep;
	char line[PATH_MAX + 64];

	(void)state;
	/* A swap file lives on the file system of its st_dev: pretend that is our device. */
	assert_int_equal(stat(node, &st), 0);
	d = target("loop9", major(st.st_dev), minor(st.st_dev), 0);
	snprintf(line, sizeof(line), "Filename Type Size Used Priority\n%s file 1024 0 -2\n", node);
	put("swaps", line);
	rep = check(&d, "22 1 8:0 / / rw - ext4 /dev/sda rw\n");
	assert_true(rep.n >= 1);
	assert_int_equal(rep.items[0].reason, SAFETY_SWAP);
	assert_non_null(strstr(rep.items[0].msg, "in use as swap"));
}

/* loop3 (7:3) is backed by a file that is also active swap: wiping loop3 overwrites the swap
 * file. sysfs says only the file's name; its stat says which file it is. */
static void test_loop_on_swap_file(void **state)
{
	struct device_info d = target("loop3", 7, 3, 0);
	struct safety_report rep;
	char line[PATH_MAX + 64];

	(void)state;
	put("sys/class/block/loop3/dev", "7:3\n");
	snprintf(line, sizeof(line), "%s\n", node);
	put("sys/class/block/loop3/loop/backing_file", line);
	link_to("../../class/block/loop3", "sys/dev/block/7:3");
	snprintf(line, sizeof(line), "Filename Type Size Used Priority\n%s file 1024 0 -2\n", node);
	put("swaps", line);
	rep = check(&d, ROOT_ON_VDA);
	assert_int_equal(rep.n, 1);
	assert_int_equal(rep.items[0].reason, SAFETY_SWAP);
	assert_non_null(strstr(rep.items[0].msg, "writes onto"));
	assert_non_null(strstr(rep.items[0].msg, "which is in use as swap"));
}

/* loop4 (7:4) is backed by the block device loop0 (7:0, the machine's own /dev/loop0 so that
 * its stat is a block device's): loop0 carries loop4, and a mount on loop4 is a mount on loop0;
 * loop4 in turn writes onto loop0, whose partition-less self is mounted. */
static void test_loop_on_loop(void **state)
{
	struct device_info under = target("loop0", 7, 0, 0);
	struct device_info over = target("loop4", 7, 4, 0);
	struct safety_report rep;
	struct stat st;

	(void)state;
	if (stat("/dev/loop0", &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != makedev(7, 0)) {
		printf("no /dev/loop0 block device here: nothing to check\n");
		return;
	}
	put("sys/class/block/loop0/dev", "7:0\n");
	put("sys/class/block/loop4/dev", "7:4\n");
	put("sys/class/block/loop4/loop/backing_file", "/dev/loop0\n");
	link_to("../../class/block/loop0", "sys/dev/block/7:0");
	link_to("../../class/block/loop4", "sys/dev/block/7:4");
	rep = check(&under, ROOT_ON_VDA);
	assert_int_equal(rep.n, 1);
	assert_int_equal(rep.items[0].reason, SAFETY_HOLDERS);
	assert_non_null(strstr(rep.items[0].msg, "backs the loop device(s) loop4"));
	rep = check(&under, ROOT_ON_VDA "41 22 7:4 / /srv rw - ext4 /dev/loop4 rw\n");
	assert_int_equal(rep.items[0].reason, SAFETY_MOUNTED);
	assert_non_null(strstr(rep.items[0].msg, "is mounted on /srv (ext4, via loop0)"));
	rep = check(&over, ROOT_ON_VDA "42 22 7:0 / /srv rw - ext4 /dev/loop0 rw\n");
	assert_int_equal(rep.n, 1);
	assert_int_equal(rep.items[0].reason, SAFETY_MOUNTED);
	assert_non_null(strstr(rep.items[0].msg, "writes onto loop0, which holds the mount /srv"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mounted_partition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mounted_through_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_file_on_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_on_swap_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_on_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
