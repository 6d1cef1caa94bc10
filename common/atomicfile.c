// SPDX-License-Identifier: GPL-2.0-or-later
/* Atomic file replacement (wipe's checkpoints and certificates, the node_exporter textfiles,
 * the audit anchor). The temp file lives next to the target (same file system, so rename is
 * atomic) and is removed on failure. Never logs. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "macro.h"
#include "util.h"

static int make_dirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

int atomicfile_sync_dir(const char *path)
{
	char dir[PATH_MAX];
	_cleanup_close_ int fd = -1;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return negative_errno();
	return 0;
}

int atomicfile_write(const char *path, const void *data, size_t n, mode_t mode, mode_t dir_mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd, r;

	snprintf(dir, sizeof(dir), "%s", path);
	r = dir_mode ? make_dirs(dirname(dir), dir_mode) : 0;
	if (r < 0)
		return r;
	/* Not ending in the target's suffix: node_exporter skips it while it is written. */
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	/* The mode asked for, whatever the umask (wipe@.service runs with 0077, and
	 * node_exporter, as its own user, must read a metrics file). */
	r = fchmod(fd, mode) < 0 ? negative_errno() : 0;
	if (r == 0)
		r = write_full(fd, data, n);
	if (r == 0 && fsync(fd) < 0)
		r = negative_errno();
	if (close(fd) < 0 && r == 0)
		r = negative_errno();
	if (r == 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return atomicfile_sync_dir(path);
}

int atomicfile_shred(const char *path)
{
	static const char zeros[4096];
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = 0;

	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (fstat(fd, &st) == 0)
		for (off_t o = 0; o < st.st_size && r == 0; o += (off_t)sizeof(zeros))
			r = write_full(fd, zeros, sizeof(zeros));
	if (r == 0 && fsync(fd) < 0)
		r = negative_errno();
	if (unlink(path) < 0)
		return negative_errno();
	atomicfile_sync_dir(path);
	return r;
}
