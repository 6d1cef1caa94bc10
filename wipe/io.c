// SPDX-License-Identifier: GPL-2.0-or-later
/* Block device I/O for wipe: exclusive O_DIRECT opens, whole transfers, ranged ioctls, the rate
 * limit. Every syscall goes through struct io_ops so tests can inject failures. Never logs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "io.h"
#include "util.h"

static int sys_ioctl_range(int fd, unsigned long request, uint64_t range[2])
{
	return ioctl(fd, request, range);
}

const struct io_ops io_ops_system = {
	.pwrite = pwrite,
	.pread = pread,
	.fdatasync = fdatasync,
	.ioctl_range = sys_ioctl_range,
};

int io_open(const char *path, bool write, struct io_dev *ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	uint64_t size;
	int block, ro = 0;

	fd = open(path, (write ? O_RDWR : O_RDONLY) | O_EXCL | O_CLOEXEC | O_DIRECT);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0 || ioctl(fd, BLKSSZGET, &block) < 0)
		return negative_errno();
	if (write && ioctl(fd, BLKROGET, &ro) == 0 && ro)
		return -EROFS;
	if (block < 512 || block > IO_ALIGN || (block & (block - 1)))
		return -EINVAL;
	*ret = (struct io_dev){
		.fd = TAKE_FD(fd), .ops = &io_ops_system, .size = size, .block = (uint32_t)block};
	return 0;
}

int io_set_direct(struct io_dev *d, bool on)
{
	int fl = fcntl(d->fd, F_GETFL);

	if (fl < 0)
		return negative_errno();
	fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
	return fcntl(d->fd, F_SETFL, fl) < 0 ? negative_errno() : 0;
}

int io_size_now(struct io_dev *d, uint64_t *ret)
{
	return ioctl(d->fd, BLKGETSIZE64, ret) < 0 ? negative_errno() : 0;
}

int io_close(struct io_dev *d)
{
	int fd = TAKE_FD(d->fd);

	if (fd < 0)
		return 0;
	return close(fd) < 0 ? negative_errno() : 0;
}

static int io_transfer(struct io_dev *d, bool write, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	if (off > d->size || n > d->size - off)
		return -ENOSPC;
	while (n > 0) {
		ssize_t k = write ? d->ops->pwrite(d->fd, p, n, (off_t)off)
				  : d->ops->pread(d->fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return write ? -ENOSPC : -EIO;
		/* A short O_DIRECT transfer stops on a block boundary; anything else cannot be
		 * continued with aligned I/O. */
		if ((size_t)k < n && (size_t)k % d->block)
			return -EIO;
		p += k;
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}

int io_write_at(struct io_dev *d, const void *buf, size_t n, uint64_t off)
{
	return io_transfer(d, true, (void *)buf, n, off);
}

int io_read_at(struct io_dev *d, void *buf, size_t n, uint64_t off)
{
	return io_transfer(d, false, buf, n, off);
}

int io_sync(struct io_dev *d)
{
	return d->ops->fdatasync(d->fd) < 0 ? negative_errno() : 0;
}

int io_drop_cache(struct io_dev *d)
{
	return ioctl(d->fd, BLKFLSBUF, 0) < 0 ? negative_errno() : 0;
}

int io_range(struct io_dev *d, unsigned long request, uint64_t off, uint64_t len)
{
	uint64_t range[2] = {off, len};

	if (d->ops->ioctl_range(d->fd, request, range) < 0)
		return errno == ENOTTY ? -EOPNOTSUPP : negative_errno();
	return 0;
}

void *io_buffer(size_t n)
{
	void *p = mmap(NULL, n ? n : IO_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void io_buffer_free(void *p, size_t n)
{
	if (p)
		munmap(p, n ? n : IO_ALIGN);
}

void io_throttle_init(struct io_throttle *t, uint64_t bytes_per_s)
{
	pthread_mutex_init(&t->lock, NULL);
	t->bytes_per_s = bytes_per_s;
	t->next_us = 0;
}

void io_throttle_wait(struct io_throttle *t, uint64_t bytes, const volatile bool *stop)
{
	uint64_t now, start;

	if (!t || !t->bytes_per_s)
		return;
	/* Each caller books the next free slot of time for its bytes, so devices share the
	 * budget and none can borrow from an idle past. */
	pthread_mutex_lock(&t->lock);
	now = now_mono_us();
	start = t->next_us > now ? t->next_us : now;
	t->next_us = start + bytes * 1000000 / t->bytes_per_s;
	pthread_mutex_unlock(&t->lock);
	if (start > now)
		sleep_us(start - now, stop);
}
