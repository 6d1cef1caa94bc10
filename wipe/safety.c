// SPDX-License-Identifier: GPL-2.0-or-later
/* The refusals that keep wipe from destroying a live system. Devices form a graph: partitions
 * sit on their disk, device-mapper and md devices on their slaves, a loop device on its
 * backing device or file, and a file on the device its file system lives on. A device is "in
 * use" when a mount or swap area sits on it or on anything above it (every user is walked
 * down), when anything it writes onto is used (its loop backing, the disk of a partition), when
 * it has holders (device-mapper, md, or loop devices backed by it), or when it is open
 * exclusively. Never writes; never logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "safety.h"
#include "util.h"

#define STACK_MAX	  64 /* nodes in one stack (mount → dm → md → loop → partitions → disks) */
#define STACK_DEPTH_MAX	  16   /* edges followed from one start */
#define SAFETY_LOOPS_MAX  4096 /* bound loop devices considered */
#define SAFETY_NAME_MAX	  128  /* kernel names, or a backing file's path cut to this */
#define SAFETY_HOLDER_MAX 256  /* the list of holders in one message */
#define SAFETY_LINKS_MAX  64   /* slaves or holders of one device */

/* A block device (ino == 0), or a file that backs a loop device (dev: the device of its file
 * system, ino: its inode). */
struct node {
	dev_t dev;
	uint64_t ino;
	bool whole; /* reached from the start through loop backings only: written all over */
	char name[SAFETY_NAME_MAX];
};

struct devset {
	size_t n;
	struct node nodes[STACK_MAX];
};

/* A bound loop device and what backs it (device_loop_backing). */
struct loop_backing {
	dev_t loop;
	char name[DEVICE_NAME_MAX];
	dev_t rdev;	/* a block device; else 0 */
	dev_t file_dev; /* a file: the device its file system is on */
	uint64_t ino;
	bool known;
	char file[SAFETY_NAME_MAX]; /* backing_file, for messages */
};

/* What one check reads once: the sources and the table of loop devices. */
struct ctx {
	const struct safety_sources *src;
	struct loop_backing *loops;
	size_t n_loops;
};

enum walk_flags {
	WALK_DISKS = 1 << 0, /* a partition to its disk */
	WALK_FILES = 1 << 1, /* a backing file to the device its file system is on */
};

static const char *src_sys(const struct safety_sources *s)
{
	return s && s->sys ? s->sys : "/sys";
}

static const char *src_dev(const struct safety_sources *s)
{
	return s && s->dev ? s->dev : "/dev";
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

static bool node_same(const struct node *a, const struct node *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

static const struct node *devset_find(const struct devset *s, const struct node *n)
{
	for (size_t i = 0; i < s->n; i++)
		if (node_same(&s->nodes[i], n))
			return &s->nodes[i];
	return NULL;
}

static bool devset_has_dev(const struct devset *s, dev_t d)
{
	return devset_find(s, &(struct node){.dev = d}) != NULL;
}

/* false when it was there already (or the set is full): the walk stops there. */
static bool devset_add(struct devset *s, const struct node *n)
{
	if (s->n >= STACK_MAX || devset_find(s, n))
		return false;
	s->nodes[s->n++] = *n;
	return true;
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

/* ---- the loop devices of the system ---- */

/* The node of loop device @d, if @dev_dir/@name is that very device (a stale name must not
 * describe another one); -1 otherwise. */
static int loop_node_open(const struct ctx *x, const char *name, dev_t d)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", src_dev(x->src), name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != d)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int loops_read(struct ctx *x)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *e;
	DIR *dh;

	snprintf(dir, sizeof(dir), "%s/class/block", src_sys(x->src));
	dh = opendir(dir);
	if (!dh)
		return negative_errno();
	while ((e = readdir(dh))) {
		struct device_loop dl;
		struct loop_backing *l;
		_cleanup_close_ int fd = -1;
		dev_t d;

		if (strncmp(e->d_name, "loop", 4) != 0 || x->n_loops >= SAFETY_LOOPS_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
		if (read_devnum(path, &d) < 0)
			continue;
		fd = loop_node_open(x, e->d_name, d);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (device_loop_backing(path, fd, &dl) < 0)
			continue; /* not bound */
		l = reallocarray(x->loops, x->n_loops + 1, sizeof(*l));
		if (!l) {
			closedir(dh);
			return -ENOMEM;
		}
		x->loops = l;
		x->loops[x->n_loops++] = (struct loop_backing){.loop = d,
							       .rdev = dl.rdev,
							       .file_dev = dl.file_dev,
							       .ino = dl.inode,
							       .known = dl.known};
		copy_name(l[x->n_loops - 1].name, DEVICE_NAME_MAX, e->d_name);
		copy_name(l[x->n_loops - 1].file, SAFETY_NAME_MAX, dl.file);
	}
	closedir(dh);
	return 0;
}

static const struct loop_backing *loop_find(const struct ctx *x, dev_t d)
{
	for (size_t i = 0; i < x->n_loops; i++)
		if (x->loops[i].loop == d)
			return &x->loops[i];
	return NULL;
}

/* ---- walking the graph ---- */

static void walk_down(const struct ctx *x, const struct node *n, unsigned flags, struct devset *out,
		      int depth);

struct sysfs_link {
	dev_t dev;
	char name[DEVICE_NAME_MAX];
};

/* The devices linked from @n's @what directory in sysfs ("slaves" or "holders"), at most @max;
 * how many. */
static size_t sysfs_links(const struct ctx *x, const struct node *n, const char *what,
			  struct sysfs_link *out, size_t max)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *e;
	size_t k = 0;
	DIR *dh;

	snprintf(dir, sizeof(dir), "%s/class/block/%s/%s", src_sys(x->src), n->name, what);
	dh = opendir(dir);
	if (!dh)
		return 0;
	while (k < max && (e = readdir(dh))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/class/block/%s/dev", src_sys(x->src), e->d_name);
		if (read_devnum(path, &out[k].dev) < 0)
			continue;
		copy_name(out[k].name, sizeof(out[k].name), e->d_name);
		k++;
	}
	closedir(dh);
	return k;
}

static void walk_block(const struct ctx *x, dev_t d, bool whole, unsigned flags, struct devset *out,
		       int depth)
{
	struct node n = {.dev = d, .whole = whole};

	devnum_name(x->src, d, n.name, sizeof(n.name));
	walk_down(x, &n, flags, out, depth);
}

/* A loop device's backing: the device itself (written all over), or the file and, with
 * WALK_FILES, the device its file system is on (of which the file is only a part). */
static void walk_loop(const struct ctx *x, const struct node *n, unsigned flags, struct devset *out,
		      int depth)
{
	const struct loop_backing *l = loop_find(x, n->dev);
	struct node file;

	if (!l || !l->known)
		return;
	if (l->rdev) {
		walk_block(x, l->rdev, n->whole, flags, out, depth + 1);
		return;
	}
	file = (struct node){.dev = l->file_dev, .ino = l->ino, .whole = n->whole};
	copy_name(file.name, sizeof(file.name), l->file[0] ? l->file : "(backing file)");
	if (devset_add(out, &file) && (flags & WALK_FILES))
		walk_block(x, l->file_dev, false, flags, out, depth + 1);
}

/* @n and everything it is built on. */
static void walk_down(const struct ctx *x, const struct node *n, unsigned flags, struct devset *out,
		      int depth)
{
	struct sysfs_link slaves[SAFETY_LINKS_MAX];
	char dir[PATH_MAX], path[PATH_MAX + 300];
	size_t n_slaves;

	if (depth > STACK_DEPTH_MAX || !devset_add(out, n) || n->ino || !n->name[0])
		return;
	walk_loop(x, n, flags, out, depth);
	snprintf(dir, sizeof(dir), "%s/class/block/%s", src_sys(x->src), n->name);
	snprintf(path, sizeof(path), "%s/partition", dir);
	if ((flags & WALK_DISKS) && access(path, F_OK) == 0) {
		dev_t parent;

		snprintf(path, sizeof(path), "%s/../dev", dir);
		if (read_devnum(path, &parent) == 0)
			walk_block(x, parent, false, flags, out, depth + 1);
	}
	n_slaves = sysfs_links(x, n, "slaves", slaves, ELEMENTSOF(slaves));
	for (size_t i = 0; i < n_slaves; i++)
		walk_block(x, slaves[i].dev, false, flags, out, depth + 1);
}

/* The device and, for a whole disk, each of its partitions: what a wipe overwrites and what
 * lives inside it. */
static void wipe_targets(const struct ctx *x, const struct device_info *d, struct devset *out)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct node n = {.dev = d->devnum, .whole = true};
	struct dirent *e;
	DIR *dh;

	snprintf(n.name, sizeof(n.name), "%s", d->name);
	devset_add(out, &n);
	if (d->partition)
		return;
	snprintf(dir, sizeof(dir), "%s/class/block/%s", src_sys(x->src), d->name);
	dh = opendir(dir);
	if (!dh)
		return;
	while ((e = readdir(dh))) {
		struct node p = {.whole = true};

		if (strncmp(e->d_name, d->name, strlen(d->name)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/partition", dir, e->d_name);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
		if (read_devnum(path, &p.dev) == 0) {
			copy_name(p.name, sizeof(p.name), e->d_name);
			devset_add(out, &p);
		}
	}
	closedir(dh);
}

static const char *devset_overlap(const struct devset *a, const struct devset *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (devset_find(b, &a->nodes[i]))
			return a->nodes[i].name;
	return NULL;
}

/* What the target writes onto besides itself and is in use by @user (walked down in @below):
 * the user's own device, or anything the target covers whole. */
static const char *chain_hit(const struct devset *chain, const struct devset *below)
{
	for (size_t i = 1; below->n && i < chain->n; i++) {
		const struct node *c = &chain->nodes[i];

		if (node_same(c, &below->nodes[0]) || (c->whole && devset_find(below, c)))
			return c->name;
	}
	return NULL;
}

/* A mount's device: MAJ:MIN, unless anonymous (btrfs, overlay) where its source is a node. */
static dev_t mount_dev(unsigned maj, unsigned min, const char *source)
{
	struct stat st;

	if (maj == 0 && source[0] == '/' && stat(source, &st) == 0 && S_ISBLK(st.st_mode))
		return st.st_rdev;
	return makedev(maj, min);
}

/* The root file system: refused when the target is (under) it or shares its disk. */
static void check_root(const struct ctx *x, const struct device_info *d, const struct devset *ours,
		       const struct devset *chain, dev_t root, const char *fstype,
		       const char *source, struct safety_report *rep)
{
	struct devset below = {0};
	bool hit = false;

	walk_block(x, root, true, WALK_DISKS | WALK_FILES, &below, 0);
	hit = devset_overlap(ours, &below) != NULL;
	for (size_t i = 0; !hit && i < chain->n; i++)
		hit = !chain->nodes[i].ino && devset_find(&below, &chain->nodes[i]);
	if (hit)
		add_reason(rep, SAFETY_ROOT,
			   "%s holds the root file system / (%s on %s): refusing to wipe the "
			   "running system's disk",
			   d->path, fstype, source);
}

static int check_mounts(const struct ctx *x, const struct device_info *d, const struct devset *ours,
			const struct devset *chain, struct safety_report *rep)
{
	const char *path = x->src && x->src->mountinfo ? x->src->mountinfo : "/proc/self/mountinfo";
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
		dev_t dev;

		dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    sscanf(dash + 3, "%63s %4095s", fstype, source) != 2)
			continue;
		proc_unescape(mnt);
		proc_unescape(source);
		dev = mount_dev(maj, min, source);
		if (strcmp(mnt, "/") == 0) {
			check_root(x, d, ours, chain, dev, fstype, source, rep);
			continue;
		}
		walk_block(x, dev, true, WALK_FILES, &below, 0);
		if ((hit = devset_overlap(ours, &below)))
			add_reason(rep, SAFETY_MOUNTED, "%s is mounted on %s (%s, via %s)", d->path,
				   mnt, fstype, hit);
		else if ((hit = chain_hit(chain, &below)))
			add_reason(rep, SAFETY_MOUNTED,
				   "%s writes onto %s, which holds the mount %s (%s on %s)",
				   d->path, hit, mnt, fstype, source);
	}
	fclose(f);
	return 0;
}

static int check_swaps(const struct ctx *x, const struct device_info *d, const struct devset *ours,
		       const struct devset *chain, struct safety_report *rep)
{
	const char *path = x->src && x->src->swaps ? x->src->swaps : "/proc/swaps";
	char line[PATH_MAX + 128];
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno(); /* no swap support at all */
	while (fgets(line, sizeof(line), f)) {
		char name[PATH_MAX], type[32];
		struct devset below = {0};
		struct node user = {.whole = true};
		struct stat st;
		const char *hit;

		if (sscanf(line, "%4095s %31s", name, type) != 2 || strcmp(name, "Filename") == 0)
			continue;
		proc_unescape(name);
		if (stat(name, &st) < 0)
			continue;
		if (S_ISBLK(st.st_mode)) {
			walk_block(x, st.st_rdev, true, WALK_FILES, &below, 0);
		} else {
			/* A swap file: itself, and the file system it is on. */
			user = (struct node){.dev = st.st_dev, .ino = st.st_ino, .whole = true};
			copy_name(user.name, sizeof(user.name), name);
			devset_add(&below, &user);
			walk_block(x, st.st_dev, false, WALK_FILES, &below, 0);
		}
		if ((hit = devset_overlap(ours, &below)))
			add_reason(rep, SAFETY_SWAP,
				   "%s is in use as swap (%s %s, via %s); swapoff first", d->path,
				   type, name, hit);
		else if ((hit = chain_hit(chain, &below)))
			add_reason(rep, SAFETY_SWAP,
				   "%s writes onto %s, which is in use as swap (%s %s); swapoff "
				   "first",
				   d->path, hit, type, name);
	}
	fclose(f);
	return 0;
}

/* "a, b": @name added when it fits whole. */
static void list_append(char *list, size_t size, const char *name)
{
	size_t o = strlen(list);

	if (o + strlen(name) + 3 < size)
		snprintf(list + o, size - o, "%s%s", o ? ", " : "", name);
}

/* The sysfs holders of @n other than those in @skip, as "a, b". */
static void holders_of(const struct ctx *x, const struct node *n, const struct devset *skip,
		       char *list, size_t size)
{
	struct sysfs_link holders[SAFETY_LINKS_MAX];
	size_t k = sysfs_links(x, n, "holders", holders, ELEMENTSOF(holders));

	list[0] = 0;
	for (size_t i = 0; i < k; i++)
		if (!skip || !devset_has_dev(skip, holders[i].dev))
			list_append(list, size, holders[i].name);
}

/* Loop devices backed by @n (the device, the file, or a file on the device's file system),
 * other than those in @skip, as "loop3, loop7". */
static void loops_on(const struct ctx *x, const struct node *n, const struct devset *skip,
		     char *list, size_t size)
{
	list[0] = 0;
	for (size_t i = 0; i < x->n_loops; i++) {
		const struct loop_backing *l = &x->loops[i];
		bool on = l->known &&
			  (n->ino ? !l->rdev && l->file_dev == n->dev && l->ino == n->ino
				  : l->rdev == n->dev || (!l->rdev && l->file_dev == n->dev));

		if (on && (!skip || !devset_has_dev(skip, l->loop)))
			list_append(list, size, l->name);
	}
}

/* Whatever else holds what the wipe writes: holders and loop devices on the target or its
 * partitions, and on anything the target covers whole (another loop device on the same
 * backing). */
static void check_holders(const struct ctx *x, const struct devset *ours,
			  const struct devset *chain, const struct device_info *d,
			  struct safety_report *rep)
{
	char list[SAFETY_HOLDER_MAX];

	for (size_t i = 0; i < ours->n; i++) {
		holders_of(x, &ours->nodes[i], NULL, list, sizeof(list));
		if (list[0])
			add_reason(rep, SAFETY_HOLDERS,
				   "%s is held by %s (%s is part of a device-mapper, md or other "
				   "stacked device); take that down first",
				   d->path, list, ours->nodes[i].name);
		loops_on(x, &ours->nodes[i], NULL, list, sizeof(list));
		if (list[0])
			add_reason(rep, SAFETY_HOLDERS,
				   "%s backs the loop device(s) %s (through %s); detach them first "
				   "(losetup -d)",
				   d->path, list, ours->nodes[i].name);
	}
	for (size_t i = 1; i < chain->n; i++) {
		const struct node *w = &chain->nodes[i];

		if (!w->whole)
			continue;
		if (!w->ino)
			holders_of(x, w, chain, list, sizeof(list));
		else
			list[0] = 0;
		if (!list[0])
			loops_on(x, w, chain, list, sizeof(list));
		if (list[0])
			add_reason(rep, SAFETY_HOLDERS,
				   "%s writes onto %s, which %s also uses; take that down first",
				   d->path, w->name, list);
	}
}

int safety_below(const struct device_info *d, dev_t *devs, size_t max, size_t *ret_n)
{
	struct devset chain = {0};
	struct ctx x = {0};
	struct node self = {.dev = d->devnum, .whole = true};
	size_t n = 0;
	int r;

	r = loops_read(&x);
	if (r < 0)
		return r;
	snprintf(self.name, sizeof(self.name), "%s", d->name);
	walk_down(&x, &self, WALK_DISKS, &chain, 0);
	for (size_t i = 0; i < chain.n && n < max; i++)
		if (!chain.nodes[i].ino)
			devs[n++] = chain.nodes[i].dev;
	*ret_n = n;
	free(x.loops);
	return 0;
}

int safety_check(const struct device_info *d, bool held_exclusively,
		 const struct safety_sources *src, struct safety_report *rep)
{
	struct devset ours = {0}, chain = {0};
	struct ctx x = {.src = src};
	struct node self = {.dev = d->devnum, .whole = true};
	int fd, r;

	*rep = (struct safety_report){0};
	r = loops_read(&x);
	if (r < 0)
		goto out;
	wipe_targets(&x, d, &ours);
	snprintf(self.name, sizeof(self.name), "%s", d->name);
	/* What the wipe writes onto: its own stack down to the disks, not a backing file's file
	 * system (a file is only a part of it). */
	walk_down(&x, &self, WALK_DISKS, &chain, 0);
	r = check_mounts(&x, d, &ours, &chain, rep);
	if (r < 0)
		goto out;
	r = check_swaps(&x, d, &ours, &chain, rep);
	if (r < 0)
		goto out;
	check_holders(&x, &ours, &chain, d, rep);
	if (d->readonly)
		add_reason(rep, SAFETY_READONLY, "%s is read-only", d->path);
	/* Last: an exclusive opener we could not name (btrfs member, another wipe, a mapper). */
	if (!held_exclusively) {
		fd = open(d->path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0)
			close(fd);
		else if (errno == EBUSY && rep->n == 0)
			add_reason(rep, SAFETY_BUSY,
				   "%s is open exclusively by another program (a file system, "
				   "device-mapper, md, or another wipe)",
				   d->path);
	}
out:
	free(x.loops);
	return r;
}
