/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The crash-safe record of a wipe in progress: which device, method and range, how far the
 * device durably holds the pattern, errors so far, what the device was before, and for a
 * keystream its key (file mode 0600, destroyed when the wipe ends). Written atomically (temp
 * file, fsync, rename, fsync of the directory). Never logs. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "device.h"
#include "jsonx.h"
#include "pass.h"

#define CHECKPOINT_DIR_DEFAULT "/var/lib/wipe"
#define CHECKPOINT_METHOD_MAX  32

enum checkpoint_phase {
	CHECKPOINT_WRITE,  /* [0, offset) written; go on from offset */
	CHECKPOINT_VERIFY, /* everything written; verification (re)starts from the beginning */
};

struct checkpoint {
	char device_id[DEVICE_ID_MAX];
	uint64_t device_size;
	char method[CHECKPOINT_METHOD_MAX];
	enum pass_verify verify;
	enum checkpoint_phase phase;
	uint64_t end;	 /* the method covers [0, end) */
	uint64_t offset; /* durable below this */
	uint8_t *key;	 /* secure memory, PATTERN_KEY_LEN bytes; NULL for zeros */
	uint64_t started_us;
	uint64_t resumes;
	struct pass_stats write;
	json_t *before; /* {"device", "signatures", "luks_uuid"} as found before the first write */
};

/* DIR/DEVICE_ID.json */
int checkpoint_path(const char *dir, const char *device_id, char *buf, size_t size);

/* Atomically replaces @path (creating its directory, mode 0700). -errno. */
int checkpoint_save(const char *path, const struct checkpoint *cp);
/* -ENOENT none; -EPERM not root's with mode 0600; -EINVAL malformed (@e says where);
 * -ESTALE all zeros: the checkpoint of a wipe that ended, shredded by checkpoint_remove(),
 * whose unlink a crash or power cut kept off the disk. */
int checkpoint_load(const char *path, struct checkpoint *ret, struct error *e);
/* Overwrites the file (the key) with zeros, syncs, unlinks. 0 also when there was none. */
int checkpoint_remove(const char *path);
void checkpoint_done(struct checkpoint *cp);
