// SPDX-License-Identifier: GPL-2.0-or-later
/* Files keyd trusts (issue 10, items 14 and 15): a credential that is a FIFO is refused at
 * once instead of blocking open(); symlinks, files others may read or write, directories
 * others may change and systemd credentials are all checked, whole path; a hook program
 * someone else could change is refused. Needs root (the files must be root's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "safepath.h"
#include "secmem.h"
#include "util.h"

#define NOBODY 65534

static char top[64];

static void path_of(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", top, name);
}

static void put(const char *name, const char *text, mode_t mode)
{
	char p[256];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void mkdir_at(const char *name, mode_t mode)
{
	char p[256];

	path_of(p, sizeof(p), name);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, mode), 0);
}

/* read_credential of @name; its message in @msg. */
static int read_cred(const char *name, char *msg, size_t size)
{
	_cleanup_secure_ uint8_t *d = NULL;
	struct error e = {.msg = ""};
	char p[256];
	size_t n;
	int r;

	if (name[0] == '@')
		snprintf(p, sizeof(p), "%s", name + 1); /* a systemd credential name */
	else
		path_of(p, sizeof(p), name);
	r = read_credential(p, true, &d, &n, &e);
	snprintf(msg, size, "%s", e.msg);
	if (r >= 0)
		assert_string_equal((const char *)d, "secret");
	return r;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		return 0;
	snprintf(top, sizeof(top), "/tmp/test-safepath.XXXXXX");
	assert_non_null(mkdtemp(top));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (!top[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_credential_ok(void **state)
{
	char msg[ERROR_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	put("good", "secret\n", 0600);
	assert_int_equal(read_cred("good", msg, sizeof(msg)), 0);
}

static void test_credential_fifo(void **state)
{
	char p[256], msg[ERROR_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	path_of(p, sizeof(p), "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	/* Before the fix open() waited for a writer forever: the alarm ends the test then. */
	alarm(5);
	assert_int_equal(read_cred("fifo", msg, sizeof(msg)), -EPERM);
	alarm(0);
	assert_non_null(strstr(msg, "is a FIFO, not a regular file"));
	assert_non_null(strstr(msg, p));
}

static void test_credential_untrusted(void **state)
{
	char p[256], target[256], msg[ERROR_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	put("readable", "secret\n", 0644);
	assert_int_equal(read_cred("readable", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "is accessible by group or others"));

	put("target", "secret\n", 0600);
	path_of(p, sizeof(p), "link");
	path_of(target, sizeof(target), "target");
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(read_cred("link", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "is a symlink"));

	/* A private file in a directory anyone may change: it could be swapped at will. */
	mkdir_at("open", 0777);
	put("open/key", "secret\n", 0600);
	assert_int_equal(read_cred("open/key", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "open is writable by group or others"));

	mkdir_at("theirs", 0755);
	path_of(p, sizeof(p), "theirs");
	assert_int_equal(chown(p, NOBODY, NOBODY), 0);
	put("theirs/key", "secret\n", 0600);
	assert_int_equal(read_cred("theirs/key", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "theirs is not owned by root"));
}

static void test_systemd_credential(void **state)
{
	char dir[256], msg[ERROR_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	mkdir_at("creds", 0700);
	path_of(dir, sizeof(dir), "creds");
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	put("creds/ok", "secret\n", 0400);
	assert_int_equal(read_cred("@ok", msg, sizeof(msg)), 0);
	/* Before the fix a name relative to $CREDENTIALS_DIRECTORY skipped owner and mode. */
	put("creds/readable", "secret\n", 0644);
	assert_int_equal(read_cred("@readable", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "is accessible by group or others"));
	put("creds/theirs", "secret\n", 0600);
	path_of(dir, sizeof(dir), "creds/theirs");
	assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
	assert_int_equal(read_cred("@theirs", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "is not owned by root"));
	path_of(dir, sizeof(dir), "creds");
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(read_cred("@ok", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "creds is writable by group or others"));
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_program(void **state)
{
	char p[256], why[SAFEPATH_WHY_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(safepath_check_program("/bin/true", why, sizeof(why)), 0);
	mkdir_at("bin", 0755);
	put("bin/hook", "#!/bin/sh\n", 0755);
	path_of(p, sizeof(p), "bin/hook");
	assert_int_equal(safepath_check_program(p, why, sizeof(why)), 0);

	put("bin/shared", "#!/bin/sh\n", 0775);
	path_of(p, sizeof(p), "bin/shared");
	assert_int_equal(safepath_check_program(p, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "is writable by group or others"));

	put("bin/theirs", "#!/bin/sh\n", 0755);
	path_of(p, sizeof(p), "bin/theirs");
	assert_int_equal(chown(p, NOBODY, NOBODY), 0);
	assert_int_equal(safepath_check_program(p, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "is not owned by root"));

	/* A link in a directory another user owns: they may point it anywhere later. */
	mkdir_at("user", 0755);
	path_of(p, sizeof(p), "user");
	assert_int_equal(chown(p, NOBODY, NOBODY), 0);
	path_of(p, sizeof(p), "user/true");
	assert_int_equal(symlink("/bin/true", p), 0);
	assert_int_equal(safepath_check_program(p, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "user is not owned by root"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credential_ok),
		cmocka_unit_test(test_credential_fifo),
		cmocka_unit_test(test_credential_untrusted),
		cmocka_unit_test(test_systemd_credential),
		cmocka_unit_test(test_program),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
