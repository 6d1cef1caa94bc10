/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether a file keyd reads secrets from or executes can be changed by nobody but root: its
 * whole path, as sshd's StrictModes checks it. Looks only (lstat, fstat, an O_PATH open);
 * never reads a file, never logs. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define SAFEPATH_WHY_MAX 512

/* Checks every directory from / down to @path's (as written, and after resolving symlinks):
 * each owned by root and writable by nobody else, unless it is a root-owned sticky directory
 * such as /tmp (nobody else can rename or remove what it holds); a symlink on the way must be
 * root's. Then the file, on @fd (opened by the caller with O_NOFOLLOW, so the same inode):
 * a regular file owned by @owner with none of the @forbid mode bits set. @why says which
 * component failed and how. -EPERM when untrusted, -errno when a component cannot be read. */
int safepath_check(const char *path, int fd, uid_t owner, mode_t forbid, char *why, size_t size);

/* For a program keyd runs (a hook): safepath_check on the file @path leads to, which must be
 * owned by root and writable by nobody else. -EPERM, -errno; @why says why. */
int safepath_check_program(const char *path, char *why, size_t size);
