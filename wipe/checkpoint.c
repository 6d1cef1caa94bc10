// SPDX-License-Identifier: GPL-2.0-or-later
/* Checkpoints: JSON in a root-only file, replaced atomically so a crash leaves the old or the
 * new record, never a torn one. The keystream key is base64 in the file (see docs/wipe.md for
 * why that is acceptable) and only ever in secure memory in this process. Never logs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "atomicfile.h"
#include "checkpoint.h"
#include "secmem.h"
#include "util.h"

#define CHECKPOINT_FORMAT "wipe-checkpoint/1"

static const char *const phase_names[] = {"write", "verify", NULL};

int checkpoint_path(const char *dir, const char *device_id, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s.json", dir, device_id);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static json_t *stats_json(const struct pass_stats *st)
{
	return json_pack("{s:I, s:I, s:I, s:i}", "bytes", (json_int_t)st->bytes, "failed_blocks",
			 (json_int_t)st->io_errors, "first_bad",
			 st->first_bad == UINT64_MAX ? (json_int_t)-1 : (json_int_t)st->first_bad,
			 "first_error", st->first_error);
}

int checkpoint_save(const char *path, const struct checkpoint *cp)
{
	_cleanup_secure_ char *key = NULL, *text = NULL;
	json_auto_t *j = NULL;

	if (cp->key && b64_encode(cp->key, PATTERN_KEY_LEN, &key) < 0)
		return -ENOMEM;
	j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s*, s:I, s:I, s:o, s:O}",
		      "format", CHECKPOINT_FORMAT, "device_id", cp->device_id, "device_size",
		      (json_int_t)cp->device_size, "method", cp->method, "verify",
		      pass_verify_names[cp->verify], "phase", phase_names[cp->phase], "end",
		      (json_int_t)cp->end, "offset", (json_int_t)cp->offset, "key", key,
		      "started_us", (json_int_t)cp->started_us, "resumes", (json_int_t)cp->resumes,
		      "write", stats_json(&cp->write), "before", cp->before ?: json_null());
	if (!j)
		return -ENOMEM;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;

	return atomicfile_write(path, text, strlen(text), 0600, 0700);
}

static int load_stats(json_t *o, struct pass_stats *st, struct error *e)
{
	uint64_t bad = UINT64_MAX;
	json_t *fb = json_object_get(o, "first_bad"), *fe = json_object_get(o, "first_error");
	int r;

	pass_stats_init(st);
	if (!json_is_object(o))
		return jx_fail(e, "checkpoint.write: must be an object");
	r = jx_uint(o, "checkpoint.write", "bytes", 0, INT64_MAX, &st->bytes, e);
	if (r == 0)
		r = jx_uint(o, "checkpoint.write", "failed_blocks", 0, INT64_MAX, &st->io_errors,
			    e);
	if (r < 0)
		return r;
	if (!json_is_integer(fb) || !json_is_integer(fe) || json_integer_value(fe) > 0 ||
	    json_integer_value(fe) < -4095)
		return jx_fail(e, "checkpoint.write: first_bad and first_error must be integers");
	if (json_integer_value(fb) >= 0)
		bad = (uint64_t)json_integer_value(fb);
	st->first_bad = bad;
	st->first_error = (int)json_integer_value(fe);
	return 0;
}

int checkpoint_load(const char *path, struct checkpoint *ret, struct error *e)
{
	static const char *const keys[] = {
		"format", "device_id", "device_size", "method",	 "verify", "phase",  "end",
		"offset", "key",       "started_us",  "resumes", "write",  "before", NULL};
	_cleanup_secure_ uint8_t *raw = NULL, *key = NULL;
	const char *format = NULL, *id = NULL, *method = NULL, *k64 = NULL;
	json_auto_t *j = NULL;
	struct checkpoint cp = {0};
	size_t n = 0, key_len = 0;
	int phase = 0, verify = 0, r;

	*ret = (struct checkpoint){0};
	r = read_credential(path, true, &raw, &n, e);
	if (r < 0)
		return r;
	if (n > 0 && raw[0] == 0 && memcmp(raw, raw + 1, n - 1) == 0)
		return -ESTALE; /* checkpoints are written whole (atomicfile); only shredding zeroes */
	j = json_loadb((const char *)raw, n, 0, NULL);
	if (!j)
		return jx_fail(e, "%s: not JSON", path);
	r = jx_only_keys(j, "checkpoint", keys, e);
	if (r == 0)
		r = jx_string(j, "checkpoint", "format", true, 64, &format, e);
	if (r == 0 && strcmp(format, CHECKPOINT_FORMAT) != 0)
		r = jx_fail(e, "checkpoint.format: \"%s\" is not %s", format, CHECKPOINT_FORMAT);
	if (r == 0)
		r = jx_string(j, "checkpoint", "device_id", true, DEVICE_ID_MAX - 1, &id, e);
	if (r == 0)
		r = jx_string(j, "checkpoint", "method", true, CHECKPOINT_METHOD_MAX - 1, &method,
			      e);
	if (r == 0)
		r = jx_enum(j, "checkpoint", "verify", pass_verify_names, &verify, e);
	if (r == 0)
		r = jx_enum(j, "checkpoint", "phase", phase_names, &phase, e);
	if (r == 0)
		r = jx_uint(j, "checkpoint", "device_size", 1, INT64_MAX, &cp.device_size, e);
	if (r == 0)
		r = jx_uint(j, "checkpoint", "end", 1, INT64_MAX, &cp.end, e);
	if (r == 0)
		r = jx_uint(j, "checkpoint", "offset", 0, INT64_MAX, &cp.offset, e);
	if (r == 0)
		r = jx_uint(j, "checkpoint", "started_us", 0, INT64_MAX, &cp.started_us, e);
	if (r == 0)
		r = jx_uint(j, "checkpoint", "resumes", 0, 1000000, &cp.resumes, e);
	if (r == 0)
		r = jx_string(j, "checkpoint", "key", false, 128, &k64, e);
	if (r == 0)
		r = load_stats(json_object_get(j, "write"), &cp.write, e);
	if (r < 0)
		return r;
	if (!cp.device_size || !cp.end || cp.end > cp.device_size || cp.offset > cp.end)
		return jx_fail(e, "checkpoint: device_size, end and offset are inconsistent");
	if (k64 && (b64_decode(k64, &key, &key_len) < 0 || key_len != PATTERN_KEY_LEN))
		return jx_fail(e, "checkpoint.key: not a base64 %d-byte key", PATTERN_KEY_LEN);
	if (!json_is_object(json_object_get(j, "before")))
		return jx_fail(e, "checkpoint.before: must be an object");

	snprintf(cp.device_id, sizeof(cp.device_id), "%s", id);
	snprintf(cp.method, sizeof(cp.method), "%s", method);
	cp.verify = (enum pass_verify)verify;
	cp.phase = (enum checkpoint_phase)phase;
	cp.key = TAKE_PTR(key);
	cp.before = json_incref(json_object_get(j, "before"));
	*ret = cp;
	return 0;
}

int checkpoint_remove(const char *path)
{
	/* The key only regenerates noise: zeroing the file is enough (see docs/wipe.md). */
	return atomicfile_shred(path);
}

void checkpoint_done(struct checkpoint *cp)
{
	secmem_free(cp->key);
	json_decref(cp->before);
	*cp = (struct checkpoint){0};
}
