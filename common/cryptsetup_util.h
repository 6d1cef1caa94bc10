/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every program that talks to libcryptsetup needs: its log routed into ours, external
 * token plugins off, LUKS2 header loading, and the one process-wide device-mapper lock. Holds
 * no key material and never unlocks anything. */
#pragma once

#include <libcryptsetup.h>

#include "macro.h"

/* Once per process: libcryptsetup's messages go to our log, and external token plugins are
 * off — keyd reads its own tokens, and no plugin's code (ours included) runs in a process that
 * holds keys. */
void cryptsetup_setup(void);

/* crypt_init + crypt_load(LUKS2). -ENOENT if @path does not exist, -EACCES if it cannot be
 * opened for reading (libcryptsetup calls both "Block device required"), -EMEDIUMTYPE if the
 * device holds no LUKS2 header (LUKS1 included), other -errno from libcryptsetup. */
int cryptsetup_load(const char *path, struct crypt_device **ret);
/* What cryptsetup_load's @r means, in words for an error message. */
const char *cryptsetup_load_strerror(int r);

/* libdevmapper keeps process-wide, unlocked state (its list of pending /dev/mapper node
 * operations): two threads creating mappings at once corrupt it. Every call that reaches
 * device-mapper is made between these two. */
void cryptsetup_dm_lock(void);
void cryptsetup_dm_unlock(void);

static inline void crypt_freep(struct crypt_device **cd)
{
	crypt_free(*cd);
}
#define _cleanup_crypt_ _cleanup_(crypt_freep)
