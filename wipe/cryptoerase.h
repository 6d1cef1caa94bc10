/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The LUKS2 metadata region a cryptographic erase must overwrite (both header copies, every
 * keyslot area), read through libcryptsetup; and the check afterwards that no header loads.
 * Reads only; the overwrite itself is an ordinary pass. Never logs. */
#pragma once

#include <jansson.h>
#include <stdint.h>

struct cryptoerase_region {
	char uuid[40];
	uint64_t end;	      /* [0, end) holds every header copy and keyslot area */
	uint64_t data_offset; /* where the encrypted data begins */
	json_t *keyslots;     /* [{"slot", "offset", "length"}] of every keyslot in use */
};

/* Reads the LUKS2 header of @path. -EMEDIUMTYPE no LUKS2 header; -EINVAL a layout we cannot
 * erase safely (detached header: data offset 0); other -errno from libcryptsetup. */
int cryptoerase_plan(const char *path, uint32_t align, struct cryptoerase_region *ret);
void cryptoerase_region_done(struct cryptoerase_region *r);

/* 0 when libcryptsetup finds no LUKS header on @path; -EEXIST when one still loads. */
int cryptoerase_check_gone(const char *path);
