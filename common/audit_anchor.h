/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The audit log's anchor: the last sealed position (seq and line hash of the newest signed
 * checkpoint), kept outside the log (beside the node key, in the state directory) and signed
 * by the node key, so that a log cut back or deleted and begun anew no longer verifies clean.
 * Reads and writes only the anchor file; never the log. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_record.h"
#include "error.h"

#define AUDIT_TYPE_GAP "audit.gap"

struct audit_anchor {
	uint64_t seq;		       /* of the checkpoint it seals */
	char hash[AUDIT_HASH_LEN + 1]; /* of that checkpoint's line */
};

/* Where the anchor of the log @log_path lives: "<basename of the log>.anchor" in the directory
 * of @key_path (the node key's, /var/lib/keyd). -ENAMETOOLONG; -EINVAL when @key_path is not
 * absolute (a systemd credential name: no directory of ours to keep an anchor in). */
#define AUDIT_ANCHOR_NO_DIR                                                                        \
	"the node key is not an absolute path (a credential name), so there is no directory "      \
	"to keep the anchor in: a log cut back cannot be told"
int audit_anchor_path(const char *log_path, const char *key_path, char *buf, size_t size);
/* Replaces the anchor at @path with @a, signed by @key: a temp file, fsync, rename, fsync of
 * the directory. Mode 0600. -errno. */
int audit_anchor_write(const char *path, EVP_PKEY *key, const struct audit_anchor *a);
/* Reads the anchor at @path; its signature must be @trusted's (NULL: the embedded key's).
 * -ENOENT when there is none; -EBADMSG (err says why) when it is not an anchor or its
 * signature does not hold; other -errno from reading. */
int audit_anchor_read(const char *path, EVP_PKEY *trusted, struct audit_anchor *ret,
		      struct error *err);
