// SPDX-License-Identifier: GPL-2.0-or-later
/* Device identity and capabilities from sysfs and read-only ioctls. Everything read from sysfs
 * is bounded (DEVICE_FIELD_MAX), trimmed and stripped of non-printable bytes before use. Never
 * opens a device for writing. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "device.h"
#include "signatures.h"
#include "util.h"

/* Reads a sysfs attribute into @buf as printable text, trimmed; "" when absent. @skip drops a
 * binary header (SCSI VPD pages carry 4 bytes before the text). */
static void sysfs_text(const char *dir, const char *attr, size_t skip, char *buf, size_t size)
{
	char path[PATH_MAX], raw[512];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t o = 0;

	buf[0] = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, raw, sizeof(raw));
	if (n <= (ssize_t)skip)
		return;
	for (size_t i = skip; i < (size_t)n && o + 1 < size; i++)
		if (isprint((unsigned char)raw[i]))
			buf[o++] = raw[i];
	buf[o] = 0;
	while (o > 0 && buf[o - 1] == ' ')
		buf[--o] = 0;
	if (buf[0] == ' ')
		memmove(buf, buf + strspn(buf, " "), strlen(buf + strspn(buf, " ")) + 1);
}

static uint64_t sysfs_u64(const char *dir, const char *attr)
{
	char s[32];
	uint64_t v;

	sysfs_text(dir, attr, 0, s, sizeof(s));
	return parse_u64(s, &v) < 0 ? 0 : v;
}

/* The first non-empty attribute of a list, for fields that live in different places per
 * transport. */
struct sysfs_source {
	const char *attr;
	size_t skip;
};

static void sysfs_first(const char *dir, const struct sysfs_source *src, char *buf, size_t size)
{
	for (; src->attr && !buf[0]; src++)
		sysfs_text(dir, src->attr, src->skip, buf, size);
}

static const struct sysfs_source serial_sources[] = {
	{.attr = "serial"},			/* virtio */
	{.attr = "device/serial"},		/* nvme, mmc */
	{.attr = "device/vpd_pg80", .skip = 4}, /* scsi, ata (unit serial number page) */
	{},
};
static const struct sysfs_source wwn_sources[] = {
	{.attr = "wwid"},	 /* nvme namespace */
	{.attr = "device/wwid"}, /* scsi, ata */
	{},
};
static const struct sysfs_source model_sources[] = {
	{.attr = "device/model"},
	{.attr = "device/name"}, /* mmc */
	{},
};

static void detect_transport(const char *dir, const struct device_info *d, char *buf, size_t size)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/loop", dir);
	if (access(link, F_OK) == 0) {
		snprintf(buf, size, "loop");
		return;
	}
	snprintf(link, sizeof(link), "%s/device/subsystem", dir);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		/* An NVMe namespace's device is the controller, whose class is "nvme". */
		snprintf(buf, size, strncmp(d->disk, "nvme", 4) == 0 ? "nvme" : "unknown");
		return;
	}
	target[n] = 0;
	snprintf(buf, size, "%s", basename(target));
	if (strcmp(buf, "scsi") == 0 && strcmp(d->vendor, "ATA") == 0)
		snprintf(buf, size, "ata");
	else if (strcmp(buf, "nvme") && strncmp(d->disk, "nvme", 4) == 0)
		snprintf(buf, size, "nvme");
}

/* Kernel name, whole disk and partition number from /sys/dev/block/MAJ:MIN. */
static int sysfs_names(struct device_info *d)
{
	char link[64], real[PATH_MAX], parent[PATH_MAX], part[PATH_MAX], num[16];
	uint32_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(d->devnum), minor(d->devnum));
	if (!realpath(link, real))
		return negative_errno();
	snprintf(d->name, sizeof(d->name), "%s", basename(real));
	snprintf(d->disk, sizeof(d->disk), "%s", d->name);
	snprintf(part, sizeof(part), "%s", real);
	sysfs_text(part, "partition", 0, num, sizeof(num));
	if (num[0] && parse_u32(num, &n) == 0 && n > 0) {
		d->partition = n;
		snprintf(parent, sizeof(parent), "%s", real);
		snprintf(d->disk, sizeof(d->disk), "%s", basename(dirname(parent)));
	}
	return 0;
}

int device_loop_backing(const char *dir, int fd, struct device_loop *ret)
{
	struct loop_info64 li;
	struct stat st;
	char *deleted;

	*ret = (struct device_loop){0};
	sysfs_text(dir, "loop/backing_file", 0, ret->file, sizeof(ret->file));
	if (!ret->file[0])
		return -ENXIO; /* not bound */
	/* The backing file may be gone from the namespace (still open by the loop driver). */
	deleted = strstr(ret->file, " (deleted)");
	if (deleted && deleted[10] == 0)
		*deleted = 0;
	/* The driver's own answer first (as losetup asks): it holds even when the path does not
	 * resolve here (deleted, renamed, another mount namespace). */
	if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &li) == 0) {
		ret->rdev = (dev_t)li.lo_rdevice;
		ret->file_dev = (dev_t)li.lo_device;
		ret->inode = li.lo_inode;
		ret->known = true;
	} else if (stat(ret->file, &st) == 0) {
		ret->rdev = S_ISBLK(st.st_mode) ? st.st_rdev : 0;
		ret->file_dev = st.st_dev;
		ret->inode = st.st_ino;
		ret->known = true;
	}
	return 0;
}

static void loop_identity(int fd, const char *dir, struct device_info *d)
{
	struct device_loop l;

	if (device_loop_backing(dir, fd, &l) < 0)
		return;
	snprintf(d->loop_file, sizeof(d->loop_file), "%s", l.file);
	if (l.known) {
		d->loop_file_dev = l.file_dev;
		d->loop_inode = l.inode;
	}
}

static void append_safe(char *buf, size_t size, const char *s)
{
	size_t o = strlen(buf);

	for (; *s && o + 1 < size; s++) {
		char c = isalnum((unsigned char)*s) || strchr("._-", *s) ? *s : '_';

		if (c == '_' && o > 0 && buf[o - 1] == '_')
			continue;
		buf[o++] = c;
	}
	buf[o] = 0;
}

static void make_id(struct device_info *d)
{
	char tmp[DEVICE_NAME_MAX + 48];

	d->id[0] = 0;
	if (d->wwn[0]) {
		append_safe(d->id, sizeof(d->id), "wwn-");
		append_safe(d->id, sizeof(d->id), d->wwn);
	} else if (d->serial[0]) {
		append_safe(d->id, sizeof(d->id), d->model[0] ? d->model : d->transport);
		append_safe(d->id, sizeof(d->id), "_");
		append_safe(d->id, sizeof(d->id), d->serial);
	} else if (d->loop_inode) {
		/* The backing file's device and inode survive a detach and re-attach; the loop
		 * number does not. */
		snprintf(tmp, sizeof(tmp), "loop-%u_%u-%" PRIu64, major(d->loop_file_dev),
			 minor(d->loop_file_dev), d->loop_inode);
		append_safe(d->id, sizeof(d->id), tmp);
	} else {
		snprintf(tmp, sizeof(tmp), "%s-%" PRIu64, d->disk, d->size);
		append_safe(d->id, sizeof(d->id), tmp);
	}
	if (d->partition) {
		snprintf(tmp, sizeof(tmp), "-part%u", d->partition);
		append_safe(d->id, sizeof(d->id), tmp);
	}
}

int device_probe(const char *path, struct device_info *ret)
{
	_cleanup_close_ int fd = -1;

	*ret = (struct device_info){0};
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	return device_probe_fd(fd, ret);
}

/* The node @fd was opened on, as the kernel names it now: a path that was a symlink, or has
 * been replaced since, names what the descriptor holds. */
static int fd_path(int fd, char *buf, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, size - 1);
	if (n < 0)
		return negative_errno();
	if ((size_t)n >= size - 1)
		return -ENAMETOOLONG;
	buf[n] = 0;
	return 0;
}

int device_probe_fd(int fd, struct device_info *ret)
{
	struct device_info *d = ret;
	char disk_dir[128], features[256];
	struct stat st;
	int block = 0, pblock = 0, ro = 0, r;

	*d = (struct device_info){0};
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	r = fd_path(fd, d->path, sizeof(d->path));
	if (r < 0)
		return r;
	d->devnum = st.st_rdev;
	if (ioctl(fd, BLKGETSIZE64, &d->size) < 0 || ioctl(fd, BLKSSZGET, &block) < 0 ||
	    ioctl(fd, BLKPBSZGET, &pblock) < 0)
		return negative_errno();
	if (ioctl(fd, BLKROGET, &ro) < 0)
		return negative_errno();
	d->logical_block = (uint32_t)block;
	d->physical_block = (uint32_t)pblock;
	d->readonly = ro;
	r = sysfs_names(d);
	if (r < 0)
		return r;

	snprintf(disk_dir, sizeof(disk_dir), "/sys/class/block/%s", d->disk);
	sysfs_text(disk_dir, "device/vendor", 0, d->vendor, sizeof(d->vendor));
	sysfs_first(disk_dir, model_sources, d->model, sizeof(d->model));
	sysfs_first(disk_dir, serial_sources, d->serial, sizeof(d->serial));
	sysfs_first(disk_dir, wwn_sources, d->wwn, sizeof(d->wwn));
	detect_transport(disk_dir, d, d->transport, sizeof(d->transport));
	if (strcmp(d->transport, "loop") == 0)
		loop_identity(fd, disk_dir, d);

	d->rotational = sysfs_u64(disk_dir, "queue/rotational") == 1;
	d->discard_max = sysfs_u64(disk_dir, "queue/discard_max_bytes");
	d->write_zeroes_max = sysfs_u64(disk_dir, "queue/write_zeroes_max_bytes");
	/* The kernel does not publish secure-erase support in sysfs; these drivers advertise it:
	 * mmc (eMMC secure trim), virtio-blk (feature bit 16, VIRTIO_BLK_F_SECURE_ERASE). */
	if (strcmp(d->transport, "mmc") == 0)
		d->secure_discard = d->discard_max > 0;
	if (strcmp(d->transport, "virtio") == 0) {
		sysfs_text(disk_dir, "device/features", 0, features, sizeof(features));
		d->secure_discard = strlen(features) > 16 && features[16] == '1';
	}
	/* A partition cannot be sanitized by the firmware alone: that would erase the disk. */
	if (!d->partition)
		sanitize_probe(fd, d->transport, &d->firmware);
	make_id(d);
	return 0;
}

enum device_media device_media(const struct device_info *d)
{
	static const char *const virtual[] = {"loop", "virtio", "xen", "unknown"};

	for (size_t i = 0; i < ELEMENTSOF(virtual); i++)
		if (strcmp(d->transport, virtual[i]) == 0)
			return DEVICE_MEDIA_VIRTUAL;
	return d->rotational && strcmp(d->transport, "nvme") ? DEVICE_MEDIA_MAGNETIC
							     : DEVICE_MEDIA_FLASH;
}

const char *device_media_name(enum device_media m)
{
	static const char *const names[] = {
		[DEVICE_MEDIA_MAGNETIC] = "magnetic",
		[DEVICE_MEDIA_FLASH] = "flash",
		[DEVICE_MEDIA_VIRTUAL] = "virtual",
	};
	return names[m];
}

size_t device_confirm_ids(const struct device_info *d, const char *luks_uuid,
			  const char *ids[DEVICE_CONFIRM_MAX])
{
	size_t n = 0;

	if (d->serial[0])
		ids[n++] = d->serial;
	if (d->wwn[0])
		ids[n++] = d->wwn;
	if (luks_uuid && luks_uuid[0])
		ids[n++] = luks_uuid;
	/* Without a serial or WWN the operator names what they can see: the backing file of a
	 * loop device (as losetup prints it), else our id. */
	if (!d->serial[0] && !d->wwn[0])
		ids[n++] = d->loop_file[0] ? d->loop_file : d->id;
	return n;
}

/* "naa.5000C500A1B2C3D4", "0x5000c500a1b2c3d4" and "5000c500a1b2c3d4" name the same WWN. */
static const char *wwn_core(const char *s)
{
	static const char *const prefixes[] = {"naa.", "eui.", "t10.", "0x"};

	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
		if (strncasecmp(s, prefixes[i], strlen(prefixes[i])) == 0)
			return s + strlen(prefixes[i]);
	return s;
}

const char *device_confirm_match(const struct device_info *d, const char *luks_uuid,
				 const char *typed)
{
	const char *ids[DEVICE_CONFIRM_MAX];
	size_t n = device_confirm_ids(d, luks_uuid, ids);

	if (!typed || !typed[0])
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], typed) == 0)
			return ids[i];
	return d->wwn[0] && strcasecmp(wwn_core(d->wwn), wwn_core(typed)) == 0 ? d->wwn : NULL;
}

bool device_confirm_matches(const struct device_info *d, const char *luks_uuid, const char *typed)
{
	return device_confirm_match(d, luks_uuid, typed) != NULL;
}

static bool devnum_in(dev_t d, const dev_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == d)
			return true;
	return false;
}

/* The LUKS UUID on the device sysfs calls @name, or "" (no node, no medium, no header). */
static void luks_uuid_of(const char *name, dev_t d, char uuid[SIGNATURES_UUID_MAX])
{
	char path[DEVICE_NAME_MAX + 8];
	_cleanup_close_ int fd = -1;
	json_auto_t *sigs = NULL;
	struct stat st;

	uuid[0] = 0;
	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	/* Only the node of this very device: a stale name must not speak for another one. */
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != d ||
	    signatures_probe_fd(fd, &sigs, uuid) < 0)
		uuid[0] = 0;
}

int device_luks_uuid_elsewhere(const char *uuid, const dev_t *skip, size_t n_skip, char *found,
			       size_t size)
{
	char dir[DEVICE_NAME_MAX + 32], other[SIGNATURES_UUID_MAX];
	unsigned maj, min;
	struct dirent *e;
	DIR *dh;

	found[0] = 0;
	dh = opendir("/sys/class/block");
	if (!dh)
		return negative_errno();
	while ((e = readdir(dh))) {
		dev_t d;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= DEVICE_NAME_MAX)
			continue;
		snprintf(dir, sizeof(dir), "/sys/class/block/%s", e->d_name);
		sysfs_text(dir, "dev", 0, other, sizeof(other));
		if (sscanf(other, "%u:%u", &maj, &min) != 2)
			continue;
		d = makedev(maj, min);
		/* Devices of size 0 are unbound loop devices and empty drives. */
		if (devnum_in(d, skip, n_skip) || sysfs_u64(dir, "size") == 0)
			continue;
		luks_uuid_of(e->d_name, d, other);
		if (!other[0] || strcasecmp(other, uuid) != 0)
			continue;
		snprintf(found + strlen(found), size - strlen(found), "%s/dev/%s",
			 found[0] ? ", " : "", e->d_name);
	}
	closedir(dh);
	return 0;
}

json_t *device_json(const struct device_info *d)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:b, s:b, s:s}", "path",
			      d->path, "id", d->id, "name", d->name, "transport", d->transport,
			      "media", device_media_name(device_media(d)), "size",
			      (json_int_t)d->size, "logical_block_size", (int)d->logical_block,
			      "physical_block_size", (int)d->physical_block, "rotational",
			      d->rotational, "read_only", d->readonly, "disk", d->disk);
	json_t *caps, *fw;

	if (!j)
		return NULL;
	/* Empty identity fields are left out rather than shown as "". */
	if (d->vendor[0])
		json_object_set_new(j, "vendor", json_string(d->vendor));
	if (d->model[0])
		json_object_set_new(j, "model", json_string(d->model));
	if (d->serial[0])
		json_object_set_new(j, "serial", json_string(d->serial));
	if (d->wwn[0])
		json_object_set_new(j, "wwn", json_string(d->wwn));
	if (d->partition)
		json_object_set_new(j, "partition", json_integer(d->partition));
	if (strcmp(d->transport, "loop") == 0) {
		char dev[32];

		snprintf(dev, sizeof(dev), "%u:%u", major(d->loop_file_dev),
			 minor(d->loop_file_dev));
		json_object_set_new(j, "loop",
				    json_pack("{s:s, s:s, s:I}", "backing_file", d->loop_file,
					      "backing_device", dev, "backing_inode",
					      (json_int_t)d->loop_inode));
	}
	fw = json_array();
	for (int a = 0; a < _SANITIZE_ACTION_MAX; a++)
		if (d->firmware.action[a])
			json_array_append_new(fw, json_string(sanitize_action_name(a)));
	caps = json_pack("{s:b, s:I, s:b, s:b, s:I, s:o}", "discard", d->discard_max > 0,
			 "discard_max_bytes", (json_int_t)d->discard_max, "secure_discard",
			 d->secure_discard, "write_zeroes", d->write_zeroes_max > 0,
			 "write_zeroes_max_bytes", (json_int_t)d->write_zeroes_max,
			 "firmware_sanitize", fw);
	json_object_set_new(j, "capabilities", caps);
	return j;
}
