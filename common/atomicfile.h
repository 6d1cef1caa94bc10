/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Durable whole-file replacement: temp file, fsync, rename, fsync of the directory, so a crash
 * leaves the old content or the new, never a torn file. Never logs. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes @n bytes to @path with exactly @mode (the umask does not apply), creating missing
 * directories with @dir_mode (0: the directory must exist). The temp file has a name of its
 * own (mkostemp), so two writers of one path never share it. -errno. */
int atomicfile_write(const char *path, const void *data, size_t n, mode_t mode, mode_t dir_mode);
/* Overwrites @path with zeros, syncs, unlinks it and syncs its directory. 0 also when there
 * is no such file. (A journaling or copy-on-write file system may keep old blocks.) */
int atomicfile_shred(const char *path);
/* fsync of the directory that holds @path. */
int atomicfile_sync_dir(const char *path);
