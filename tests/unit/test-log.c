// SPDX-License-Identifier: GPL-2.0-or-later
/* The log module as journald receives it: each entry one datagram of the native protocol on a
 * socket standing in for /run/systemd/journal/socket, parsed here as journald parses it
 * (FIELD=value lines; FIELD\n + 64-bit little-endian length + value + \n), with MESSAGE_ID,
 * PRIORITY, ERRNO, the caller's fields and the thread's context; rate limits; stderr when
 * there is no journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#define MID "489d22a05b584baa9d5d5cf1d64b8da3"

struct fake_journal {
	char dir[64];
	char path[96];
	int fd;
};

struct entry {
	size_t n;
	char name[32][JOURNAL_FIELD_NAME_MAX + 1];
	char value[32][2048];
};

static struct fake_journal J;

static int setup(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	(void)state;
	snprintf(J.dir, sizeof(J.dir), "/tmp/test-log.XXXXXX");
	assert_non_null(mkdtemp(J.dir));
	snprintf(J.path, sizeof(J.path), "%s/socket", J.dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", J.path);
	J.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(J.fd >= 0);
	assert_int_equal(bind(J.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	log_setup("keyd-test", LOG_INFO);
	assert_int_equal(log_open_journal(J.path), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_close_journal();
	log_context_set(NULL);
	close(J.fd);
	unlink(J.path);
	rmdir(J.dir);
	return 0;
}

/* One datagram, parsed as journald does; false if none arrives within 1 s. */
static bool receive(struct entry *e)
{
	static char buf[JOURNAL_ENTRY_MAX + 1];
	struct pollfd p = {.fd = J.fd, .events = POLLIN};
	ssize_t k;
	size_t i = 0;

	memset(e, 0, sizeof(*e));
	if (poll(&p, 1, 1000) != 1)
		return false;
	k = recv(J.fd, buf, sizeof(buf) - 1, 0);
	assert_true(k > 0);
	while (i < (size_t)k) {
		char *nl = memchr(buf + i, '\n', (size_t)k - i);
		char *eq = memchr(buf + i, '=', (size_t)k - i);
		size_t vl;

		assert_non_null(nl);
		assert_true(e->n < 32);
		if (eq && eq < nl) { /* NAME=value\n */
			memcpy(e->name[e->n], buf + i, (size_t)(eq - (buf + i)));
			vl = (size_t)(nl - eq - 1);
			memcpy(e->value[e->n], eq + 1, vl);
			i = (size_t)(nl - buf) + 1;
		} else { /* NAME\n, 64-bit LE length, value, \n */
			uint64_t len = 0;

			memcpy(e->name[e->n], buf + i, (size_t)(nl - (buf + i)));
			i = (size_t)(nl - buf) + 1;
			assert_true(i + 8 <= (size_t)k);
			for (int b = 0; b < 8; b++)
				len |= (uint64_t)(uint8_t)buf[i + b] << (8 * b);
			i += 8;
			assert_true(i + len + 1 <= (size_t)k);
			assert_true(len < sizeof(e->value[0]));
			memcpy(e->value[e->n], buf + i, len);
			i += len;
			assert_int_equal(buf[i], '\n');
			i++;
		}
		e->n++;
	}
	return true;
}

/* The value of field @name (NULL if absent); fails if it appears more than once. */
static const char *field(const struct entry *e, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->name[i], name) == 0) {
			if (v)
				fail_msg("field %s appears twice", name);
			v = e->value[i];
		}
	return v;
}

static void test_fields(void **state)
{
	char volume[16] = "pgdata";
	struct entry e;

	(void)state;
	log_context_set((const char *const[]){"VOLUME", volume, "KMS", "kp-us-south", "KEY_VERSION",
					      "1", "DEVICE", NULL, NULL});
	/* The context is a copy: the caller's buffer may change or go. */
	snprintf(volume, sizeof(volume), "changed");
	assert_int_equal(log_struct(LOG_WARNING, -EIO, MID,
				    (const char *const[]){"DEVICE", "/dev/sdb", "KEY_VERSION", "2",
							  "KEY_ID", NULL, NULL},
				    "pgdata: unwrap failed: %m"),
			 -EIO);
	assert_true(receive(&e));
	assert_string_equal(field(&e, "MESSAGE"), "pgdata: unwrap failed: Input/output error");
	assert_string_equal(field(&e, "PRIORITY"), "4");
	assert_string_equal(field(&e, "SYSLOG_IDENTIFIER"), "keyd-test");
	assert_string_equal(field(&e, "MESSAGE_ID"), MID);
	assert_string_equal(field(&e, "ERRNO"), "5");
	assert_string_equal(field(&e, "VOLUME"), "pgdata");
	assert_string_equal(field(&e, "KMS"), "kp-us-south");
	assert_string_equal(field(&e, "DEVICE"), "/dev/sdb");
	/* The caller's field wins over the context's; a NULL value is no field. */
	assert_string_equal(field(&e, "KEY_VERSION"), "2");
	assert_null(field(&e, "KEY_ID"));

	/* A plain log line carries the context too, and no ERRNO or MESSAGE_ID. */
	log_info("hello");
	assert_true(receive(&e));
	assert_string_equal(field(&e, "MESSAGE"), "hello");
	assert_string_equal(field(&e, "PRIORITY"), "6");
	assert_string_equal(field(&e, "VOLUME"), "pgdata");
	assert_null(field(&e, "ERRNO"));
	assert_null(field(&e, "MESSAGE_ID"));

	log_context_set(NULL);
	log_info("bye");
	assert_true(receive(&e));
	assert_null(field(&e, "VOLUME"));
}

static void test_multiline_and_bad_names(void **state)
{
	struct entry e;

	(void)state;
	/* A newline in a value takes the length-prefixed form; a name journald would refuse is
	 * left out rather than corrupting the entry. The message itself stays one line, its
	 * unsafe characters escaped as on stderr (text.c): it may quote a disk or a peer. */
	log_struct(
		LOG_ERR, 0, NULL,
		(const char *const[]){"volume", "lowercase", "_PID", "1", "DEVICE", "a\nb", NULL},
		"line one\nline two\x1b[31m");
	assert_true(receive(&e));
	assert_string_equal(field(&e, "MESSAGE"), "line one\\nline two\\x1b[31m");
	assert_string_equal(field(&e, "DEVICE"), "a\nb");
	assert_null(field(&e, "volume"));
	assert_null(field(&e, "_PID"));
	assert_string_equal(field(&e, "PRIORITY"), "3");
}

static void test_level(void **state)
{
	struct entry e;

	(void)state;
	log_debug("not sent at LOG_INFO");
	log_notice("sent");
	assert_true(receive(&e));
	assert_string_equal(field(&e, "MESSAGE"), "sent");
}

static void test_ratelimit(void **state)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT("libtest", 300000, 3);
	unsigned passed = 0;
	struct entry e;

	(void)state;
	for (int i = 0; i < 5; i++)
		passed += log_ratelimit_pass(&rl);
	assert_int_equal(passed, 3);
	usleep(350000);
	assert_true(log_ratelimit_pass(&rl));
	/* The new interval says what the last one dropped. */
	assert_true(receive(&e));
	assert_string_equal(field(&e, "MESSAGE"),
			    "libtest: 2 messages suppressed (more than 3 in 0.3 s)");
	assert_string_equal(field(&e, "PRIORITY"), "4");
}

static void test_no_journal(void **state)
{
	char path[160], buf[512] = "";
	int saved = dup(2), fd;
	ssize_t k;

	(void)state;
	/* journald gone: the line lands on stderr, in the plain form. */
	close(J.fd);
	unlink(J.path);
	J.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(path, sizeof(path), "%s/stderr", J.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	log_struct(LOG_ERR, 0, MID, (const char *const[]){"VOLUME", "pgdata", NULL}, "no journal");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	k = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(k > 0);
	assert_string_equal(buf, "keyd-test: no journal\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multiline_and_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_journal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
