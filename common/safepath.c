// SPDX-License-Identifier: GPL-2.0-or-later
/* The path check of files keyd trusts (credentials, hooks): owner and mode of the file and of
 * every directory above it, as written and as resolved. Looks only: it never reads a file's
 * contents (a program is opened O_PATH), never logs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safepath.h"

static int untrusted(char *why, size_t size, const char *what, const char *path, const char *how,
		     const struct stat *st)
{
	snprintf(why, size, "%s %s %s (owner uid %u, mode %04o)", what, path, how,
		 (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
	return -EPERM;
}

/* One directory (or a symlink to one) on the way down. */
static int dir_ok(const char *dir, char *why, size_t size)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		int r = -errno;

		snprintf(why, size, "cannot examine %s: %s", dir, strerror(errno));
		return r;
	}
	if (st.st_uid != 0)
		return untrusted(why, size, S_ISLNK(st.st_mode) ? "symlink" : "directory", dir,
				 "is not owned by root", &st);
	if (S_ISLNK(st.st_mode))
		return 0; /* root's; where it leads is checked on the resolved path */
	if (!S_ISDIR(st.st_mode))
		return untrusted(why, size, "component", dir, "is not a directory", &st);
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
		return untrusted(why, size, "directory", dir, "is writable by group or others",
				 &st);
	return 0;
}

/* Every directory above @path, from / down. */
static int dirs_ok(const char *path, char *why, size_t size)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	int r;

	if (path[0] != '/' || n >= sizeof(buf)) {
		snprintf(why, size, "%s is not an absolute path", path);
		return -EINVAL;
	}
	if ((r = dir_ok("/", why, size)) < 0)
		return r;
	memcpy(buf, path, n + 1);
	for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		r = buf[0] ? dir_ok(buf, why, size) : 0;
		*p = '/';
		if (r < 0)
			return r;
	}
	return 0;
}

int safepath_check(const char *path, int fd, uid_t owner, mode_t forbid, char *why, size_t size)
{
	char real[PATH_MAX];
	struct stat st;
	int r;

	if ((r = dirs_ok(path, why, size)) < 0)
		return r;
	if (!realpath(path, real)) {
		r = -errno;
		snprintf(why, size, "cannot resolve %s: %s", path, strerror(errno));
		return r;
	}
	if (strcmp(real, path) != 0 && (r = dirs_ok(real, why, size)) < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(why, size, "cannot examine %s: %s", path, strerror(errno));
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return untrusted(why, size, "file", path, "is not a regular file", &st);
	if (st.st_uid != owner)
		return untrusted(
			why, size, "file", path,
			owner == 0 ? "is not owned by root" : "is not owned by keyd's user", &st);
	if (st.st_mode & forbid)
		return untrusted(why, size, "file", path,
				 forbid & 044 ? "is accessible by group or others"
					      : "is writable by group or others",
				 &st);
	return 0;
}

int safepath_check_program(const char *path, char *why, size_t size)
{
	char real[PATH_MAX];
	int fd, r;

	if (!realpath(path, real)) {
		r = -errno;
		snprintf(why, size, "cannot resolve %s: %s", path, strerror(errno));
		return r;
	}
	/* O_PATH: the inode to fstat, without reading it or waiting on it. */
	fd = open(real, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(why, size, "cannot open %s: %s", real, strerror(errno));
		return r;
	}
	r = safepath_check(path, fd, 0, 022, why, size);
	close(fd);
	return r;
}
