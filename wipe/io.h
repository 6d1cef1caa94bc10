/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The I/O layer under every method: exclusive O_DIRECT opens, aligned buffers, whole writes and
 * reads, ranged ioctls, the shared rate limit. The syscalls sit behind a table (struct io_ops)
 * that a test replaces to inject faults. Never logs, never retries an error silently. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* The largest logical block size handled (buffers are page-aligned, so they fit any). */
#define IO_ALIGN 4096

struct io_ops {
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	int (*fdatasync)(int fd);
	/* BLKZEROOUT, BLKDISCARD, BLKSECDISCARD on range[0] (offset), range[1] (length). */
	int (*ioctl_range)(int fd, unsigned long request, uint64_t range[2]);
};
extern const struct io_ops io_ops_system;

struct io_dev {
	int fd;
	const struct io_ops *ops;
	uint64_t size;	/* bytes */
	uint32_t block; /* logical block size: the unit of alignment and of error accounting */
};

/* Opens a block device O_EXCL|O_CLOEXEC|O_DIRECT, read-write when @write. -EBUSY when it is
 * mounted or held open exclusively (device-mapper, md, another wipe), -ENOTBLK if it is not a
 * block device, -EROFS if @write and the device is read-only. */
int io_open(const char *path, bool write, struct io_dev *ret);
/* O_DIRECT on or off for the descriptor (libblkid and libcryptsetup read it unaligned). */
int io_set_direct(struct io_dev *d, bool on);
/* What the device's size is now (it may have been resized since io_open). -errno. */
int io_size_now(struct io_dev *d, uint64_t *ret);
/* Checked close: -EIO (or close's errno) when buffered state could not be written. */
int io_close(struct io_dev *d);

/* Whole transfers at @off (aligned), restarting after EINTR and continuing after short
 * transfers. -EIO and friends from the device; -ENOSPC if the device ends early. */
int io_write_at(struct io_dev *d, const void *buf, size_t n, uint64_t off);
int io_read_at(struct io_dev *d, void *buf, size_t n, uint64_t off);
int io_sync(struct io_dev *d);
/* BLKFLSBUF: drops the device's page cache, so what libblkid reads next comes from the device
 * (firmware sanitize changes data behind the kernel's back). */
int io_drop_cache(struct io_dev *d);
/* One ranged ioctl; -EOPNOTSUPP when the device cannot do it (the caller falls back). */
int io_range(struct io_dev *d, unsigned long request, uint64_t off, uint64_t len);

/* A zeroed, page-aligned buffer straight from mmap (zero pages cost nothing until written);
 * NULL on -ENOMEM. Give it back with io_buffer_free() and the same size. */
void *io_buffer(size_t n);
void io_buffer_free(void *p, size_t n);

/* A rate limit shared by every device of a run (0 = none): callers reserve bytes and sleep
 * until their share of the time has come. */
struct io_throttle {
	pthread_mutex_t lock;
	uint64_t bytes_per_s;
	uint64_t next_us;
};
void io_throttle_init(struct io_throttle *t, uint64_t bytes_per_s);
void io_throttle_wait(struct io_throttle *t, uint64_t bytes, const volatile bool *stop);
