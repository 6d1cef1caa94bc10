/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What libblkid finds on a device: every superblock (file systems, LUKS, RAID, swap) and
 * partition table, with type, UUID, label, version and offset. Read-only; never logs. */
#pragma once

#include <jansson.h>

#define SIGNATURES_UUID_MAX 64

/* A JSON array of {"type", "usage", "uuid"?, "label"?, "version"?, "offset"} for the device
 * at @path, every signature rather than the first. If one is LUKS, its UUID goes to
 * @luks_uuid (else ""). -errno from opening or probing (blkid errors map to -EIO). */
int signatures_probe(const char *path, json_t **ret, char luks_uuid[SIGNATURES_UUID_MAX]);
/* The same on a descriptor the caller holds (not O_DIRECT: libblkid reads unaligned). */
int signatures_probe_fd(int fd, json_t **ret, char luks_uuid[SIGNATURES_UUID_MAX]);

/* "ext4 (UUID …), gpt" for people; @sigs as signatures_probe returns it. */
void signatures_format(json_t *sigs, char *buf, size_t size);
