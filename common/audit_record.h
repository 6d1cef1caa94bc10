/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The audit log's form, for its writer (audit.c) and its verifier (audit_verify.c) alike: the
 * members of a record, of a checkpoint and of a rotation record, and the hash that chains a
 * line to the next. No I/O. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record, newline included; a longer line is refused when written, an error when read. */
#define AUDIT_LINE_MAX	      (16 * 1024)
#define AUDIT_HASH_LEN	      64
#define AUDIT_HASH_ZERO	      "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_TYPE_CHECKPOINT "audit.checkpoint"
#define AUDIT_TYPE_ROTATED    "audit.rotated"
#define AUDIT_TYPE_RESERVED   "audit."

/* A record's members; the strings and objects are borrowed. */
struct audit_record {
	uint64_t seq; /* from 1, one more than the record before */
	const char *time, *type, *result;
	json_t *subject, *object;
	const char *error; /* NULL: none (the member is left out) */
	const char *host;
	const char *prev; /* the hash of the line before (AUDIT_HASH_ZERO for the first) */
};

/* The record as the JSON object that goes on its line. NULL when jansson refuses (@je says
 * why: out of memory, or a string that is not UTF-8). */
json_t *audit_record_pack(const struct audit_record *r, json_error_t *je);
/* Reads @rec's members into @r (borrowed from @rec; error is left NULL). -EBADMSG when @rec is
 * not an audit record: a member missing or of another type, seq below 1, prev not a hash. */
int audit_record_unpack(json_t *rec, struct audit_record *r);

/* The hash of one line (its bytes, newline included), as the next record's "prev" carries it:
 * SHA-256 in lower-case hex. -EIO. */
int audit_line_hash(const char *line, size_t n, char hash[AUDIT_HASH_LEN + 1]);
bool audit_hash_valid(const char *s);

/* A checkpoint's object: the seq and hash of the record it covers (the one before it). */
json_t *audit_checkpoint_pack(uint64_t covers_seq, const char *chain);
int audit_checkpoint_unpack(json_t *object, uint64_t *covers_seq, const char **chain);

/* The object of the first record of a rotated log: where its chain came from. */
json_t *audit_rotated_pack(const char *previous_file, uint64_t previous_seq,
			   const char *previous_hash);
/* -EBADMSG when @object lacks previous_seq or previous_file_last_hash; *previous_file may be
 * NULL. */
int audit_rotated_unpack(json_t *object, json_t **previous_file, uint64_t *previous_seq,
			 const char **previous_hash);
