// SPDX-License-Identifier: GPL-2.0-or-later
/* The native journal protocol: entries built in a fixed buffer (no allocation, so logging
 * never fails for memory) and sent as one datagram each. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "journal.h"
#include "macro.h"

bool journal_field_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= JOURNAL_FIELD_NAME_MAX && !(name[0] >= '0' && name[0] <= '9') &&
	       name[0] != '_' && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static void journal_put(struct journal_entry *e, const void *p, size_t n)
{
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

int journal_field(struct journal_entry *e, const char *name, const char *value)
{
	size_t nl = strlen(name), vl;
	bool binary;

	if (!value)
		return 0;
	if (!journal_field_name_valid(name))
		return -EINVAL;
	vl = strlen(value);
	binary = memchr(value, '\n', vl) != NULL;
	/* NAME=value\n, or NAME\n + 64-bit little-endian length + value + \n */
	if (e->len + nl + 1 + (binary ? 8 : 0) + vl + 1 > sizeof(e->buf)) {
		e->truncated = true;
		return -E2BIG;
	}
	journal_put(e, name, nl);
	if (binary) {
		uint8_t len[8];

		for (int i = 0; i < 8; i++)
			len[i] = (uint8_t)((uint64_t)vl >> (8 * i));
		journal_put(e, "\n", 1);
		journal_put(e, len, sizeof(len));
	} else {
		journal_put(e, "=", 1);
	}
	journal_put(e, value, vl);
	journal_put(e, "\n", 1);
	return 0;
}

int journal_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

int journal_send(int fd, const struct journal_entry *e)
{
	ssize_t k;

	do
		k = send(fd, e->buf, e->len, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	return k < 0 ? negative_errno() : 0;
}

bool journal_stream_is_stderr(void)
{
	const char *s = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!s || sscanf(s, "%llu:%llu%n", &dev, &ino, &end) != 2 || s[end] || fstat(2, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}
