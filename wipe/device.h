/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a block device is: identity (model, serial, WWN, loop backing file) from sysfs, size and
 * block sizes, rotational, what it can do (discard, write-zeroes, firmware sanitize), and the
 * stable id that names its checkpoint and certificates. Reads only; never opens for writing. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sanitize.h"

#define DEVICE_NAME_MAX	   64
#define DEVICE_FIELD_MAX   128 /* model, vendor, serial, WWN as sysfs gives them */
#define DEVICE_ID_MAX	   192
#define DEVICE_CONFIRM_MAX 4

enum device_media {
	DEVICE_MEDIA_MAGNETIC,
	DEVICE_MEDIA_FLASH,
	DEVICE_MEDIA_VIRTUAL, /* loop, virtio, xen: the medium underneath is unknown */
};

struct device_info {
	char path[PATH_MAX];
	char name[DEVICE_NAME_MAX]; /* kernel name: sda, nvme0n1p2, loop3 */
	char disk[DEVICE_NAME_MAX]; /* the whole disk's kernel name */
	unsigned partition;	    /* partition number; 0 for a whole disk */
	dev_t devnum;
	char transport[16]; /* nvme, ata, scsi, virtio, mmc, xen, loop, unknown */
	char vendor[DEVICE_FIELD_MAX];
	char model[DEVICE_FIELD_MAX];
	char serial[DEVICE_FIELD_MAX];
	char wwn[DEVICE_FIELD_MAX];
	char loop_file[PATH_MAX]; /* loop devices: the backing file, its device and inode */
	dev_t loop_file_dev;
	uint64_t loop_inode;
	uint64_t size;
	uint32_t logical_block, physical_block;
	bool rotational, readonly;
	uint64_t discard_max, write_zeroes_max; /* bytes per request; 0: not supported */
	bool secure_discard;
	struct sanitize_caps firmware;
	char id[DEVICE_ID_MAX]; /* stable and file-name safe: wwn-…, MODEL_SERIAL, loop-DEV-INO */
};

/* What backs a bound loop device. */
struct device_loop {
	char file[PATH_MAX]; /* as sysfs's loop/backing_file gives it, without " (deleted)" */
	bool known;	     /* the three below are filled */
	dev_t rdev;	     /* the backing block device; 0 for a file */
	dev_t file_dev;	     /* the device the backing file's file system is on */
	uint64_t inode;
};

/* Reads what backs the loop device whose sysfs directory is @dir (/sys/class/block/NAME):
 * LOOP_GET_STATUS64 on @fd when it is open on that device (-1: not), else the backing file's
 * stat. -ENXIO when the device is not bound (or not a loop device). */
int device_loop_backing(const char *dir, int fd, struct device_loop *ret);

/* Fills @ret for the block device at @path. -ENOENT, -ENOTBLK, -EACCES, -EIO. */
int device_probe(const char *path, struct device_info *ret);
/* The same for the device open at @fd: every fact comes from that descriptor (ioctls) and from
 * sysfs for its st_rdev, and ret->path is the node it was opened on. */
int device_probe_fd(int fd, struct device_info *ret);

enum device_media device_media(const struct device_info *d);
const char *device_media_name(enum device_media m);

/* What the operator may type to confirm a wipe of @d: serial, WWN, the LUKS UUID (@luks_uuid,
 * may be NULL), and for a device with none of these (a loop device) its backing file or id.
 * Returns how many were put in @ids. */
size_t device_confirm_ids(const struct device_info *d, const char *luks_uuid,
			  const char *ids[DEVICE_CONFIRM_MAX]);
/* Whether @typed names @d (WWNs compare without "naa."/"0x" prefixes and case): the identity it
 * matched (d->serial, d->wwn, @luks_uuid, ...), or NULL. */
const char *device_confirm_match(const struct device_info *d, const char *luks_uuid,
				 const char *typed);
bool device_confirm_matches(const struct device_info *d, const char *luks_uuid, const char *typed);

/* Every other block device of this host whose LUKS header carries @uuid (case ignored),
 * leaving out the @n_skip devices in @skip (the device itself and what it is built on), as
 * "/dev/a, /dev/b" in @found ("" when none). Reads headers only. -errno when sysfs cannot be
 * listed. */
int device_luks_uuid_elsewhere(const char *uuid, const dev_t *skip, size_t n_skip, char *found,
			       size_t size);

json_t *device_json(const struct device_info *d);
