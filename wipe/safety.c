// SPDX-License-Identifier: GPL-2.0-or-later
/* The refusals that keep wipe from destroying a live system. A device is "in use" when any
 * mount or swap area sits on it or on anything stacked above it (slaves are walked down from
 * every mount), when it has holders, or when it is open exclusively. Never writes; never logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "safety.h"
#include "util.h"

#define STACK_MAX 64 /* devices in one stack (mount → dm → md → partitions → disks) */

struct devset {
	size_t n;
	dev_t devs[STACK_MAX];
	char names[STACK_MAX][DEVICE_NAME_MAX];
};

static const char *src_sys(const struct safety_sources *s)
{
	return s && s->sys ? s->sys : "/sys";
}

const char *safety_reason_name(enum safety_reason r)
{
	static const char *const names[] = {
		[SAFETY_MOUNTED] = "mounted", [SAFETY_ROOT] = "root-disk",
		[SAFETY_HOLDERS] = "holders", [SAFETY_SWAP] = "swap",
		[SAFETY_BUSY] = "busy",	      [SAFETY_READONLY] = "read-only",
	};
	return names[r];
}

static void add_reason(struct safety_report *rep, enum safety_reason reason, const char *fmt, ...)
	_printf_(3, 4);
static void add_reason(struct safety_report *rep, enum safety_reason reason, const char *fmt, ...)
{
	va_list ap;

	if (rep->n >= SAFETY_REASONS_MAX)
		return;
	rep->items[rep->n].reason = reason;
	va_start(ap, fmt);
	vsnprintf(rep->items[rep->n].msg, SAFETY_MSG_MAX, fmt, ap);
	va_end(ap);
	rep->n++;
}

/* Bounded copy that cannot warn about truncation: device names fit, longer ones are cut. */
static void copy_name(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static bool devset_has(const struct devset *s, dev_t d)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->devs[i] == d)
			return true;
	return false;
}

static void devset_add(struct devset *s, dev_t d, const char *name)
{
	if (s->n >= STACK_MAX || devset_has(s, d))
		return;
	s->devs[s->n] = d;
	copy_name(s->names[s->n], DEVICE_NAME_MAX, name);
	s->n++;
}

static int read_devnum(const char *path, dev_t *ret)
{
	char buf[32] = {0};
	unsigned maj, min;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return -ENOENT;
	if (sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	*ret = makedev(maj, min);
	return 0;
}

/* The kernel name of MAJ:MIN ("" if sysfs does not know it). */
static void devnum_name(const struct safety_sources *src, dev_t d, char *buf, size_t size)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/dev/block/%u:%u", src_sys(src), major(d), minor(d));
	n = readlink(link, target, sizeof(target) - 1);
	buf[0] = 0;
	if (n > 0) {
		target[n] = 0;
		copy_name(buf, size, strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
	}
}

/* @d and everything it is built on (dm, md and loop slaves, recursively), with the whole
 * disk of every partition met on the way when @disks. */
static void stack_below(const struct safety_sources *src, dev_t d, bool disks, struct devset *out,
			int depth)
{
	char name[DEVICE_NAME_MAX], dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *e;
	DIR *dh;

	if (depth > 16 || devset_has(out, d))
		return;
	devnum_name(src, d, name, sizeof(name));
	devset_add(out, d, name);
	if (!name[0])
		return;
	snprintf(dir, sizeof(dir), "%s/class/block/%s", src_sys(src), name);
	snprintf(path, sizeof(path), "%s/partition", dir);
	if (disks && access(path, F_OK) == 0) {
		dev_t parent;

		snprintf(path, sizeof(path), "%s/../dev", dir);
		if (read_devnum(path, &parent) == 0)
			stack_below(src, parent, disks, out, depth + 1);
	}
	snprintf(path, sizeof(path), "%s/slaves", dir);
	dh = opendir(path);
	if (!dh)
		return;
	while ((e = readdir(dh))) {
		char devfile[PATH_MAX * 2];
		dev_t s;

		if (e->d_name[0] == '.')
			continue;
		snprintf(devfile, sizeof(devfile), "%s/class/block/%s/dev", src_sys(src),
			 e->d_name);
		if (read_devnum(devfile, &s) == 0)
			stack_below(src, s, disks, out, depth + 1);
	}
	closedir(dh);
}

/* The device and, for a whole disk, each of its partitions: what a wipe would overwrite. */
static void wipe_targets(const struct safety_sources *src, const struct device_info *d,
			 struct devset *out)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *e;
	DIR *dh;

	devset_add(out, d->devnum, d->name);
	if (d->partition)
		return;
	snprintf(dir, sizeof(dir), "%s/class/block/%s", src_sys(src), d->name);
	dh = opendir(dir);
	if (!dh)
		return;
	while ((e = readdir(dh))) {
		dev_t p;

		if (strncmp(e->d_name, d->name, strlen(d->name)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/partition", dir, e->d_name);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
		if (read_devnum(path, &p) == 0)
			devset_add(out, p, e->d_name);
	}
	closedir(dh);
}

static const char *devset_overlap(const struct devset *a, const struct devset *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (devset_has(b, a->devs[i]))
			return a->names[i];
	return NULL;
}

/* /proc/self/mountinfo and /proc/swaps escape blanks as \040 etc. */
static void proc_unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		unsigned v;

		if (s[0] == '\\' && sscanf(s + 1, "%3o", &v) == 1 &&
		    strspn(s + 1, "01234567") >= 3) {
			*o = (char)v;
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = 0;
}

/* A mount's device: MAJ:MIN, unless anonymous (btrfs, overlay) where its source is a node. */
static dev_t mount_dev(unsigned maj, unsigned min, const char *source)
{
	struct stat st;

	if (maj == 0 && source[0] == '/' && stat(source, &st) == 0 && S_ISBLK(st.st_mode))
		return st.st_rdev;
	return makedev(maj, min);
}

static int check_mounts(const struct safety_sources *src, const struct device_info *d,
			const struct devset *ours, struct safety_report *rep)
{
	const char *path = src && src->mountinfo ? src->mountinfo : "/proc/self/mountinfo";
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return negative_errno();
	while (getline(&line, &cap, f) > 0) {
		char mnt[PATH_MAX], fstype[64], source[PATH_MAX], *dash;
		unsigned maj, min;
		struct devset below = {0};
		const char *hit;

		dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    sscanf(dash + 3, "%63s %4095s", fstype, source) != 2)
			continue;
		proc_unescape(mnt);
		proc_unescape(source);
		stack_below(src, mount_dev(maj, min, source), strcmp(mnt, "/") == 0, &below, 0);
		if (strcmp(mnt, "/") == 0) {
			/* The root disk: the disk of anything the root file system sits on. */
			struct devset disk = {0};

			stack_below(src, d->devnum, true, &disk, 0);
			if ((hit = devset_overlap(ours, &below)) ||
			    devset_has(&below, disk.devs[disk.n - 1]))
				add_reason(rep, SAFETY_ROOT,
					   "%s holds the root file system / (%s on %s): refusing "
					   "to wipe the running system's disk",
					   d->path, fstype, source);
			continue;
		}
		hit = devset_overlap(ours, &below);
		if (hit)
			add_reason(rep, SAFETY_MOUNTED, "%s is mounted on %s (%s, via %s)", d->path,
				   mnt, fstype, hit);
	}
	fclose(f);
	return 0;
}

static int check_swaps(const struct safety_sources *src, const struct device_info *d,
		       const struct devset *ours, struct safety_report *rep)
{
	const char *path = src && src->swaps ? src->swaps : "/proc/swaps";
	char line[PATH_MAX + 128];
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno(); /* no swap support at all */
	while (fgets(line, sizeof(line), f)) {
		char name[PATH_MAX], type[32];
		struct devset below = {0};
		struct stat st;
		const char *hit;

		if (sscanf(line, "%4095s %31s", name, type) != 2 || strcmp(name, "Filename") == 0)
			continue;
		proc_unescape(name);
		if (stat(name, &st) < 0)
			continue;
		stack_below(src, S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev, false, &below, 0);
		hit = devset_overlap(ours, &below);
		if (hit)
			add_reason(rep, SAFETY_SWAP,
				   "%s is in use as swap (%s %s, via %s); swapoff first", d->path,
				   type, name, hit);
	}
	fclose(f);
	return 0;
}

static void check_holders(const struct safety_sources *src, const struct devset *ours,
			  const struct device_info *d, struct safety_report *rep)
{
	for (size_t i = 0; i < ours->n; i++) {
		char dir[PATH_MAX], list[256] = "";
		struct dirent *e;
		DIR *dh;

		snprintf(dir, sizeof(dir), "%s/class/block/%s/holders", src_sys(src),
			 ours->names[i]);
		dh = opendir(dir);
		if (!dh)
			continue;
		while ((e = readdir(dh))) {
			if (e->d_name[0] == '.' ||
			    strlen(list) + strlen(e->d_name) + 3 >= sizeof(list))
				continue;
			if (list[0])
				strcat(list, ", ");
			strcat(list, e->d_name);
		}
		closedir(dh);
		if (list[0])
			add_reason(rep, SAFETY_HOLDERS,
				   "%s is held by %s (%s is part of a device-mapper, md or other "
				   "stacked device); take that down first",
				   d->path, list, ours->names[i]);
	}
}

int safety_check(const struct device_info *d, const struct safety_sources *src,
		 struct safety_report *rep)
{
	struct devset ours = {0};
	int fd, r;

	*rep = (struct safety_report){0};
	wipe_targets(src, d, &ours);
	r = check_mounts(src, d, &ours, rep);
	if (r < 0)
		return r;
	r = check_swaps(src, d, &ours, rep);
	if (r < 0)
		return r;
	check_holders(src, &ours, d, rep);
	if (d->readonly)
		add_reason(rep, SAFETY_READONLY, "%s is read-only", d->path);
	/* Last: an exclusive opener we could not name (btrfs member, another wipe, a mapper). */
	fd = open(d->path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		close(fd);
	else if (errno == EBUSY && rep->n == 0)
		add_reason(rep, SAFETY_BUSY,
			   "%s is open exclusively by another program (a file system, "
			   "device-mapper, md, or another wipe)",
			   d->path);
	return 0;
}
