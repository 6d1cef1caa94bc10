/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A LUKS2 header in a temp file for unit tests: libcryptsetup formats and reads regular files
 * without root or a loop device. Keyslots use keyd's PBKDF (PBKDF2, 1000 iterations). */
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "luks.h"

/* Formats @dir/@name (32 MiB, sparse) as LUKS2; the returned context still holds the volume
 * key, so keyslots can be added with crypt_keyslot_add_by_volume_key. The file's path in
 * @path. */
static inline struct crypt_device *temp_luks_header(const char *dir, const char *name, char *path,
						    size_t size)
{
	struct crypt_params_luks2 p = {.sector_size = 512};
	struct crypt_device *cd = NULL;
	int fd;

	snprintf(path, size, "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 32 << 20), 0);
	close(fd);
	assert_int_equal(crypt_init(&cd, path), 0);
	assert_int_equal(luks_set_keyd_pbkdf(cd), 0);
	assert_int_equal(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &p), 0);
	assert_int_equal(luks_set_keyd_pbkdf(cd), 0);
	return cd;
}
