/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tamper-evident audit log, writing side: one JSON record per line, each carrying the hash
 * of the one before, fsync'd, with checkpoints signed by the node key; a copy to the journal.
 * Never key material in a record. The verifier is audit_verify.h. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_PATH_DEFAULT "/var/log/keyd/audit.jsonl"

struct audit;

/* Opens (creating) the log at @path and reads the hash of its last record so the chain
 * continues; @key signs checkpoints (may be NULL: no checkpoints). Thread-safe handle. */
int audit_open(const char *path, EVP_PKEY *key, struct audit **ret);

/* What audit_set_anchor found missing. */
struct audit_gap {
	uint64_t anchor_seq;   /* the position the anchor sealed */
	uint64_t log_last_seq; /* where the log ended (0: empty) */
	char reason[512];
};
/* Keeps each checkpoint's position in the anchor file @anchor (audit_anchor.h), signed by the
 * log's key (which @a must have). First compares the log with the anchor: a log that ends
 * before the sealed position (cut back, or deleted and begun anew) or an anchor that does not
 * verify is recorded as an "audit.gap" record, sealed at once, and returned as 1 with @gap
 * filled in, for the caller to say loudly; 0 when all is well (or there is no anchor yet).
 * -EINVAL, -errno. */
int audit_set_anchor(struct audit *a, const char *anchor, struct audit_gap *gap);
void audit_close(struct audit *a);

/* Appends one record: time (RFC 3339, µs), @type ("wipe.run", "keyd.unlock", ...), @result
 * ("success", "failure", "refused"), @subject (uid/user/pid or peer address; NULL: this
 * process), @object (volume, device, LUKS UUID, key id...; may be NULL), @error (may be NULL).
 * Steals neither json reference. Durable (fsync) before it returns. */
int audit_write(struct audit *a, const char *type, const char *result, json_t *subject,
		json_t *object, const char *error);

/* What an operator watches of the log (keyd's metrics): its size now, and when the newest
 * checkpoint this handle saw (written, or found closing the log at open) was made. */
struct audit_stats {
	uint64_t size;
	uint64_t last_checkpoint_us; /* wall clock; 0: none seen since open */
};
/* -errno from stat(2) of the log's path. */
int audit_stats(struct audit *a, struct audit_stats *ret);

/* Rotates the log keeping the chain: closes the file with a checkpoint, keeps it as @archive
 * (same filesystem, must not exist), and puts a new file at the path whose first record,
 * "audit.rotated", carries the old file's last hash and seq. Other writers follow on their next
 * record. -EEXIST, -EXDEV, -EBADMSG (the old file's last line is damaged). */
int audit_rotate(struct audit *a, const char *archive);
