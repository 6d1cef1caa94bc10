/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Thin layer over libcryptsetup and libblkid: finding devices, loading LUKS2 headers, the keyd
 * keyslot's PBKDF, activation (or check-only activation where device-mapper is missing). */
#pragma once

#include <libcryptsetup.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define LUKS_DEK_LEN	      32
#define LUKS_SECTOR_SIZE      4096
#define LUKS_PBKDF_ITERATIONS 1000
#define LUKS_UUID_MAX	      40

/* Once per process: libcryptsetup's messages go to our log, and external token plugins are
 * off — keyd reads its own tokens, and no plugin's code (ours included) runs in a process that
 * holds keys. */
void luks_setup(void);

/* Resolves a path, UUID=, PARTUUID= or LABEL= to a device node (malloc'd).
 * -ENODEV if nothing matches. */
int luks_resolve_device(const char *spec, char **ret);

/* crypt_init + crypt_load(LUKS2). -EMEDIUMTYPE if the device holds no LUKS2 header
 * (LUKS1 included), other -errno from libcryptsetup. */
int luks_load(const char *path, struct crypt_device **ret);

/* The keyd keyslot's KDF: PBKDF2-SHA512, 1000 iterations, no benchmark (the DEK is already
 * 256 bits of randomness). */
int luks_set_keyd_pbkdf(struct crypt_device *cd);

/* Whether this kernel can create device-mapper mappings; when not, @why says what is missing. */
bool luks_dm_available(char *why, size_t size);

/* Opens keyslot @slot with @dek; @name NULL only checks the key (no mapping). */
int luks_activate(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek,
		  size_t len, uint32_t flags);

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

/* Names of what libblkid finds on @path ("ext4", "gpt", "crypto_LUKS"...), comma-separated in
 * buf; returns how many. For refusing to format a device that is not blank. */
int luks_probe_signatures(const char *path, char *buf, size_t size);

static inline void crypt_freep(struct crypt_device **cd)
{
	crypt_free(*cd);
}
#define _cleanup_crypt_ _cleanup_(crypt_freep)
