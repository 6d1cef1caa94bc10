/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyd's LUKS2 volume glue over libcryptsetup and libblkid: finding devices, the keyd
 * keyslot's PBKDF, activation (or check-only activation where device-mapper is missing). */
#pragma once

#include <libcryptsetup.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cryptsetup_util.h"

#define LUKS_DEK_LEN	      32
#define LUKS_SECTOR_SIZE      4096
#define LUKS_PBKDF_ITERATIONS 1000
#define LUKS_UUID_MAX	      40
#define LUKS_KEYSLOTS_MAX     32 /* LUKS2 */

#include "error.h"

/* A LUKS header clone (luksHeaderRestore, dd, a cloned VM disk) makes two devices answer to one
 * UUID: a UUID then names no device at all (as blkid and LVM treat duplicate UUIDs). */
#define LUKS_DEVICES_MAX 256

struct luks_device {
	char *node; /* /dev/... as blkid names it */
	char uuid[LUKS_UUID_MAX];
};

/* Every block device that carries a LUKS header, probed afresh by libblkid's LUKS prober (no
 * cache file), up to LUKS_DEVICES_MAX. Returns how many; -ENOMEM, or -errno when
 * /proc/partitions cannot be read. */
int luks_devices(struct luks_device **ret);
void luks_devices_free(struct luks_device *l, int n);

/* Whether paths @a and @b are one block device (links resolved, by device number). */
bool luks_same_device(const char *a, const char *b);

/* The devices of @l (from luks_devices) other than @except (may be NULL) whose UUID is
 * @uuid, joined by ", " into @buf; returns how many there are. A device that another carrier
 * of the UUID holds (the paths under a multipath map, a disk under dm-linear) is not counted:
 * the device stacked on it shows the same header and is the one to open. */
int luks_uuid_find(const struct luks_device *l, int n, const char *uuid, const char *except,
		   char *buf, size_t size);
/* luks_uuid_find over the devices probed afresh, except @device (a path or a link to it).
 * Threads that ask at once share one scan, one that began after each of them asked. */
int luks_uuid_others(const char *uuid, const char *device, char *buf, size_t size);

/* Resolves a path, UUID=, PARTUUID= or LABEL= to a device node (malloc'd). -ENODEV if nothing
 * matches; -ENOTUNIQ if UUID= matches several LUKS devices (@e, may be NULL, names them). */
int luks_resolve_device(const char *spec, char **ret, struct error *e);

/* The keyd keyslot's KDF: PBKDF2-SHA512, 1000 iterations, no benchmark (the DEK is already
 * 256 bits of randomness). */
int luks_set_keyd_pbkdf(struct crypt_device *cd);

/* Whether this kernel can create device-mapper mappings; when not, @why says what is missing. */
bool luks_dm_available(char *why, size_t size);

/* Opens keyslot @slot with @dek; @name NULL only checks the key (no mapping). A keyslot of
 * keyd's own kind is opened by keyd (keyslot.c), any other by libcryptsetup. */
int luks_activate(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek,
		  size_t len, uint32_t flags);

/* A new keyslot under @new_dek for the volume key that keyslot @slot holds under @dek (both
 * @len bytes); returns its number. */
int luks_keyslot_add(struct crypt_device *cd, int slot, const uint8_t *dek, const uint8_t *new_dek,
		     size_t len);

/* Device-mapper calls, serialised process-wide (libdevmapper is not thread-safe). */
int luks_resume(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek,
		size_t len);
int luks_deactivate(const char *name);
int luks_suspend(const char *name);
/* The LUKS UUID behind the active mapping @name; -ENODEV if there is none. */
int luks_mapping_uuid(const char *name, char *buf, size_t size);

/* True when @path holds a LUKS2 header with no keyslot and no token: nothing can be
 * decrypted with it (an enrollment that died between format and its first keyslot). */
bool luks_is_empty(const char *path);
