/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A LUKS2 header in a temp file for unit tests: libcryptsetup formats and reads regular files
 * without root or a loop device. Keyslots use keyd's PBKDF (PBKDF2, 1000 iterations). */
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "luks.h"
#include "secmem.h"

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

/* A test program's main over temp headers: the secure heap, @dir (a mkdtemp template) made,
 * the tests run, @dir removed. */
#define temp_luks_main(dir, tests)                                                                 \
	temp_luks_run(dir, #tests, tests, sizeof(tests) / sizeof((tests)[0]))
static inline int temp_luks_run(char *dir, const char *name, const struct CMUnitTest *tests,
				size_t n)
{
	char cmd[128];
	int r;

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	cryptsetup_setup();
	r = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
