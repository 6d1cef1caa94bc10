// SPDX-License-Identifier: GPL-2.0-or-later
/* common/posture.c against a made-up root: what a host's /proc, /sys, /boot and /etc say about
 * swap, freed pages, hibernation and core dumps, including what a test machine cannot have
 * (swap on dm-crypt under LVM, a kernel that hibernates, systemd-coredump's drop-ins). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "posture.h"

static char root[] = "/tmp/test-posture.XXXXXX";

static void mkdirs(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

/* put REL CONTENT: writes @content to root/@rel, making its directories; NULL removes it. */
static void put(const char *rel, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s%s", root, rel);
	if (!content) {
		unlink(p);
		return;
	}
	*strrchr(p, '/') = 0;
	mkdirs(p);
	snprintf(p, sizeof(p), "%s%s", root, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(content, f);
	fclose(f);
}

/* A block device NAME at sys/devices/DIR/NAME, linked from sys/class/block/NAME and, with
 * @dev, from sys/dev/block/MAJ:MIN; @uuid its DM UUID, @slaves what it is built on. */
static void blockdev(const char *dir, const char *name, dev_t dev, const char *uuid,
		     const char *const *slaves)
{
	char p[PATH_MAX], t[PATH_MAX];

	snprintf(p, sizeof(p), "%s/sys/devices/%s/%s", root, dir, name);
	mkdirs(p);
	if (uuid) {
		snprintf(p, sizeof(p), "/sys/devices/%s/%s/dm/uuid", dir, name);
		put(p, uuid);
	}
	for (; slaves && *slaves; slaves++) {
		snprintf(p, sizeof(p), "%s/sys/devices/%s/%s/slaves/%s", root, dir, name, *slaves);
		mkdirs(p);
	}
	snprintf(p, sizeof(p), "%s/sys/class/block", root);
	mkdirs(p);
	snprintf(p, sizeof(p), "%s/sys/class/block/%s", root, name);
	snprintf(t, sizeof(t), "../../devices/%s/%s", dir, name);
	unlink(p);
	assert_int_equal(symlink(t, p), 0);
	if (dev) {
		snprintf(p, sizeof(p), "%s/sys/dev/block", root);
		mkdirs(p);
		snprintf(p, sizeof(p), "%s/sys/dev/block/%u:%u", root, major(dev), minor(dev));
		snprintf(t, sizeof(t), "../../devices/%s/%s", dir, name);
		unlink(p);
		assert_int_equal(symlink(t, p), 0);
	}
}

static const struct posture_finding *find(const struct posture *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->findings[i].id, id) == 0)
			return &p->findings[i];
	fail_msg("no finding %s", id);
	return NULL;
}

/* The finding @id of a fresh probe is in @state and says @text. */
static void expect(const char *id, enum posture_state state, const char *text)
{
	static struct posture p;
	const struct posture_finding *f;

	posture_probe(&p, root);
	f = find(&p, id);
	if (f->state != state || !strstr(f->message, text))
		fail_msg("%s: expected %s saying \"%s\", got %s: %s", id,
			 posture_state_names[state], text, posture_state_names[f->state],
			 f->message);
}

static void fresh_root(void)
{
	char cmd[PATH_MAX + 16];

	if (root[strlen(root) - 1] != 'X') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(root, sizeof(root), "/tmp/test-posture.XXXXXX");
	assert_non_null(mkdtemp(root));
}

static dev_t swapfile_dev(void)
{
	char p[PATH_MAX];
	struct stat st;

	put("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n"
			   "/var/swap\\040file file\t1024\t0\t-2\n");
	put("/var/swap file", "");
	snprintf(p, sizeof(p), "%s/var/swap file", root);
	assert_int_equal(stat(p, &st), 0);
	return st.st_dev;
}

static void test_swap(void **state)
{
	static const char *const on_crypt[] = {"dm-0", NULL};
	static const char *const on_two[] = {"dm-0", "sdb", NULL};
	static const char *const on_part[] = {"sda2", NULL};
	dev_t dev;

	(void)state;
	fresh_root();
	expect("swap", POSTURE_UNKNOWN, "/proc/swaps");
	put("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
	expect("swap", POSTURE_OK, "no swap is active");

	/* A swap file (its name escaped as the kernel does) on LVM over dm-crypt over a partition. */
	dev = swapfile_dev();
	expect("swap", POSTURE_UNKNOWN, "has no block device in /sys/dev/block");
	blockdev("pci0/block", "sda", 0, NULL, NULL);
	blockdev("pci0/block/sda", "sda2", 0, NULL, NULL);
	put("/sys/devices/pci0/block/sda/sda2/partition", "2\n");
	blockdev("virtual/block", "dm-0", 0, "CRYPT-LUKS2-0123-swap\n", on_part);
	blockdev("virtual/block", "dm-1", dev, "LVM-abc\n", on_crypt);
	expect("swap", POSTURE_OK, "the file system it is on is on dm-crypt (dm-0)");

	/* One leg of the stack is plain: not encrypted. */
	blockdev("pci0/block", "sdb", 0, NULL, NULL);
	blockdev("virtual/block", "dm-1", dev, "LVM-abc\n", on_two);
	expect("swap", POSTURE_WARN, "swap /var/swap file (file) is not encrypted");

	/* A partition is judged by its disk, which is on nothing. */
	blockdev("pci0/block/sda", "sda2", dev, NULL, NULL);
	expect("swap", POSTURE_WARN, "(sda2) is not on dm-crypt");

	/* A partition of a device that is on dm-crypt. */
	blockdev("virtual/block", "dm-2", 0, NULL, on_crypt);
	blockdev("virtual/block/dm-2", "dm-2p1", dev, NULL, NULL);
	put("/sys/devices/virtual/block/dm-2/dm-2p1/partition", "1\n");
	expect("swap", POSTURE_OK, "on dm-crypt (dm-0)");
}

/* Each row writes its file (NULL: leaves them as the rows before left them), then expects. */
struct row {
	const char *path, *content;
	enum posture_state state;
	const char *says;
};

static void run_rows(const char *id, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (rows[i].path)
			put(rows[i].path, rows[i].content);
		expect(id, rows[i].state, rows[i].says);
	}
}

static void test_init_on_free(void **state)
{
	static const char cmdline[] = "/proc/cmdline";
	struct utsname u;
	char config[PATH_MAX];
	const struct row rows[] = {
		{NULL, NULL, POSTURE_UNKNOWN, "/proc/cmdline"},
		{cmdline, "root=/dev/sda1 init_on_free=1 quiet\n", POSTURE_OK,
		 "init_on_free=1 is on the kernel command line"},
		{cmdline, "init_on_free=1 init_on_free=0\n", POSTURE_WARN,
		 "init_on_free=0 is on the kernel command line"},
		{cmdline, "page_poison=on\n", POSTURE_OK, "page_poison=1"},
		/* After "--" the words are init's, not the kernel's. */
		{cmdline, "quiet -- init_on_free=1\n", POSTURE_UNKNOWN, "is absent"},
		{config, "# CONFIG_INIT_ON_FREE_DEFAULT_ON is not set\n", POSTURE_WARN,
		 "lacks CONFIG_INIT_ON_FREE_DEFAULT_ON=y"},
		{config, "CONFIG_X=y\nCONFIG_INIT_ON_FREE_DEFAULT_ON=y\n", POSTURE_OK,
		 "has CONFIG_INIT_ON_FREE_DEFAULT_ON=y"},
		{cmdline, "init_on_free=off\n", POSTURE_WARN, "init_on_free=0"},
	};

	(void)state;
	fresh_root();
	assert_int_equal(uname(&u), 0);
	snprintf(config, sizeof(config), "/boot/config-%s", u.release);
	run_rows("init_on_free", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_hibernation(void **state)
{
	static const struct row rows[] = {
		{NULL, NULL, POSTURE_UNKNOWN, "/sys/power/state"},
		{"/sys/power/disk", "[platform] shutdown reboot suspend test_resume\n",
		 POSTURE_UNKNOWN, "/sys/power/state"},
		{"/sys/power/state", "freeze mem disk\n", POSTURE_WARN,
		 "/sys/power/disk: [platform] shutdown"},
		{"/proc/cmdline", "nohibernate\n", POSTURE_WARN, "add nohibernate"},
		{"/sys/power/state", "freeze mem\n", POSTURE_OK,
		 "nohibernate is on the kernel command line"},
		{"/proc/cmdline", "quiet\n", POSTURE_OK, "hibernation is not offered"},
		{"/sys/kernel/security/lockdown", "none [integrity] confidentiality\n", POSTURE_OK,
		 "locked down: none [integrity] confidentiality"},
	};

	(void)state;
	fresh_root();
	run_rows("hibernation", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_core_dumps(void **state)
{
	static const char pattern[] = "/proc/sys/kernel/core_pattern";
	static const struct row rows[] = {
		{NULL, NULL, POSTURE_UNKNOWN, "core_pattern"},
		{"/proc/sys/fs/suid_dumpable", "1\n", POSTURE_UNKNOWN, "core_pattern"},
		{pattern, "core\n", POSTURE_WARN, "is \"core\": a crashing process"},
		{NULL, NULL, POSTURE_WARN, "processes that changed credentials dump too"},
		{pattern, "|/bin/false\n", POSTURE_OK,
		 "pipes core dumps to /bin/false, which keeps nothing"},
		{pattern, "|/usr/bin/falsely %p\n", POSTURE_WARN,
		 "hands core dumps to \"|/usr/bin/falsely %p\""},
		{pattern, "\n", POSTURE_OK, "is empty"},
		/* systemd-coredump: coredump.conf, then drop-ins by name, /etc hiding /usr/lib. */
		{pattern, "|/usr/lib/systemd/systemd-coredump %P %u %g\n", POSTURE_WARN,
		 "Storage=external"},
		{"/etc/systemd/coredump.conf", "[Coredump]\n#Storage=none\nStorage=journal\n",
		 POSTURE_WARN, "Storage=journal"},
		{"/usr/lib/systemd/coredump.conf.d/50-none.conf", "[Coredump]\nStorage=none\n",
		 POSTURE_OK, "which keeps none (Storage=none)"},
		{"/etc/systemd/coredump.conf.d/50-none.conf", "[Coredump]\nStorage=external\n",
		 POSTURE_WARN, "Storage=external"},
		{"/run/systemd/coredump.conf.d/60-later.conf", "[Coredump]\nStorage=none\n",
		 POSTURE_OK, "Storage=none"},
	};

	(void)state;
	fresh_root();
	run_rows("core_dumps", rows, sizeof(rows) / sizeof(rows[0]));
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_swap, teardown),
		cmocka_unit_test_teardown(test_init_on_free, teardown),
		cmocka_unit_test_teardown(test_hibernation, teardown),
		cmocka_unit_test_teardown(test_core_dumps, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
