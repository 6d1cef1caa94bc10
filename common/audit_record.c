// SPDX-License-Identifier: GPL-2.0-or-later
/* The audit log's form: what each kind of line holds and how lines chain. The writer builds
 * lines only through here and the verifier reads them only through here, so the two cannot
 * disagree about a member. */
#include <errno.h>
#include <string.h>

#include "audit_record.h"
#include "sign.h"

json_t *audit_record_pack(const struct audit_record *r, json_error_t *je)
{
	return json_pack_ex(je, 0, "{s:I, s:s, s:s, s:s, s:O, s:O, s:s*, s:s, s:s}", "seq",
			    (json_int_t)r->seq, "time", r->time, "type", r->type, "result",
			    r->result, "subject", r->subject, "object", r->object, "error",
			    r->error, "host", r->host, "prev", r->prev);
}

int audit_record_unpack(json_t *rec, struct audit_record *r)
{
	json_int_t seq;

	*r = (struct audit_record){0};
	if (json_unpack(rec, "{s:I, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "seq", &seq, "time",
			&r->time, "type", &r->type, "result", &r->result, "subject", &r->subject,
			"object", &r->object, "host", &r->host, "prev", &r->prev) < 0 ||
	    seq < 1 || !audit_hash_valid(r->prev) || !json_is_object(r->subject) ||
	    !json_is_object(r->object))
		return -EBADMSG;
	r->seq = (uint64_t)seq;
	return 0;
}

int audit_line_hash(const char *line, size_t n, char hash[AUDIT_HASH_LEN + 1])
{
	return sign_sha256_hex(line, n, hash);
}

bool audit_hash_valid(const char *s)
{
	return strlen(s) == AUDIT_HASH_LEN && strspn(s, "0123456789abcdef") == AUDIT_HASH_LEN;
}

json_t *audit_checkpoint_pack(uint64_t covers_seq, const char *chain)
{
	return json_pack("{s:I, s:s}", "covers_seq", (json_int_t)covers_seq, "chain", chain);
}

int audit_checkpoint_unpack(json_t *object, uint64_t *covers_seq, const char **chain)
{
	json_int_t covers;

	if (json_unpack(object, "{s:I, s:s}", "covers_seq", &covers, "chain", chain) < 0 ||
	    covers < 0)
		return -EBADMSG;
	*covers_seq = (uint64_t)covers;
	return 0;
}

json_t *audit_rotated_pack(const char *previous_file, uint64_t previous_seq,
			   const char *previous_hash)
{
	return json_pack("{s:s, s:I, s:s}", "previous_file", previous_file, "previous_seq",
			 (json_int_t)previous_seq, "previous_file_last_hash", previous_hash);
}

int audit_rotated_unpack(json_t *object, json_t **previous_file, uint64_t *previous_seq,
			 const char **previous_hash)
{
	json_int_t seq;

	if (json_unpack(object, "{s:I, s:s}", "previous_seq", &seq, "previous_file_last_hash",
			previous_hash) < 0)
		return -EBADMSG;
	*previous_seq = (uint64_t)seq;
	*previous_file = json_object_get(object, "previous_file");
	return 0;
}
