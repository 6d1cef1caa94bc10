// SPDX-License-Identifier: GPL-2.0-or-later
/* Header inspection from libcryptsetup's own JSON dump (crypt_dump_json), so what we show is
 * what the header holds. Flags keyslots that no keyd token binds to the KMS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inspect.h"
#include "luks.h"
#include "token.h"
#include "util.h"

/* LUKS2 keyslot and token ids are decimal strings in the header JSON. */
static int id_num(const char *s)
{
	uint32_t v;

	return parse_u32(s, &v) < 0 || v > 1000 ? -1 : (int)v;
}

/* The keyd token fields shown to people; the WDEK is ciphertext but long: shown as length. */
static const char *const token_fields[] = {"name", "keyd_version", "state",   "generation",
					   "aad",  "created",	   "updated", NULL};
static const char *const wrap_fields[] = {"provider", "kms", "key_id", "key_version", NULL};

/* One wrap of a keyd token as shown: its KMS, key, version and the WDEK's length. */
static json_t *describe_wrap(json_t *w)
{
	json_t *o = json_object(), *wdek = json_object_get(w, "wdek");

	for (const char *const *f = wrap_fields; o && *f; f++)
		if (json_object_get(w, *f))
			json_object_set(o, *f, json_object_get(w, *f));
	if (o && json_is_string(wdek))
		json_object_set_new(o, "wdek_length",
				    json_integer((json_int_t)json_string_length(wdek)));
	return o;
}

/* A keyd token: its fields, "wraps" (one per KMS: the top level of a version-1 token, the
 * elements of a version-2 one), and the first wrap's fields at the top as before. */
static void describe_keyd_token(json_t *o, json_t *t)
{
	json_t *wraps = json_object_get(t, "wraps"), *shown = json_array(), *w;
	size_t i;

	for (const char *const *f = token_fields; *f; f++)
		if (json_object_get(t, *f))
			json_object_set(o, *f, json_object_get(t, *f));
	if (!shown)
		return;
	if (json_is_array(wraps))
		json_array_foreach (wraps, i, w)
			json_array_append_new(shown, describe_wrap(w));
	else
		json_array_append_new(shown, describe_wrap(t));
	w = json_array_get(shown, 0);
	if (json_is_object(w))
		json_object_update(o, w);
	json_object_set_new(o, "wraps", shown);
}

/* A keyd token as the header holds it, and, when the validator refuses it, why: the same
 * message keyd logs when it skips the token. */
static json_t *describe_token(struct crypt_device *cd, const char *id, json_t *t)
{
	json_t *o = json_pack("{s:i, s:O}", "id", id_num(id), "type", json_object_get(t, "type"));
	const char *type = json_string_value(json_object_get(t, "type"));

	if (!o)
		return NULL;
	json_object_set(o, "keyslots", json_object_get(t, "keyslots"));
	if (type && strcmp(type, TOKEN_TYPE) == 0) {
		struct keyd_token kt;
		struct error je;

		describe_keyd_token(o, t);
		if (token_read(cd, id_num(id), &kt, &je) == -EINVAL)
			json_object_set_new(o, "invalid", json_string(je.msg));
		token_done(&kt);
	}
	return o;
}

/* The token types that bind a keyslot to something other than a typed passphrase. */
static const char *slot_binding(json_t *tokens, const char *slot, const char **token_id)
{
	const char *id;
	json_t *t;

	json_object_foreach (tokens, id, t) {
		size_t i;
		json_t *s;

		json_array_foreach (json_object_get(t, "keyslots"), i, s) {
			if (json_is_string(s) && strcmp(json_string_value(s), slot) == 0) {
				*token_id = id;
				return json_string_value(json_object_get(t, "type"));
			}
		}
	}
	return NULL;
}

/* Other devices carrying this header's UUID: a cloned or restored header. keyd then unlocks
 * neither by UUID nor by discovery (docs/security.md). */
static void inspect_clones(const char *path, const char *uuid, json_t *info, json_t *warnings)
{
	char others[1024];
	int n = luks_uuid_others(uuid ? uuid : "", path, others, sizeof(others));

	json_object_set_new(info, "uuid_also_on", jx_list(n > 0 ? others : ""));
	if (n > 0)
		json_array_append_new(
			warnings,
			json_sprintf(
				"LUKS UUID %s is also on %s (a cloned or restored header): keyd "
				"opens neither by UUID= nor by discovery; configure the volume "
				"by a stable path such as /dev/disk/by-id/...",
				uuid, others));
}

int inspect_device(const char *path, json_t **ret, struct error *err)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	json_auto_t *hdr = NULL, *info = NULL;
	json_t *slots, *tokens, *seg, *out_slots, *out_tokens, *warnings;
	const char *dump = NULL, *id;
	json_t *v;
	int unbound = 0, r;

	r = cryptsetup_load(path, &cd);
	if (r < 0) {
		return error_set(err, r, "%s: %s", path, cryptsetup_load_strerror(r));
	}
	r = crypt_dump_json(cd, &dump, 0);
	if (r < 0 || !(hdr = json_loads(dump, 0, NULL))) {
		return error_set(err, r < 0 ? r : -EBADMSG, "%s: cannot read the LUKS2 metadata",
				 path);
	}
	slots = json_object_get(hdr, "keyslots");
	tokens = json_object_get(hdr, "tokens");
	seg = json_object_get(json_object_get(hdr, "segments"), "0");

	info = json_pack("{s:s, s:s, s:s*, s:O?, s:I}", "device", path, "uuid", crypt_get_uuid(cd),
			 "label", crypt_get_label(cd), "cipher",
			 seg ? json_object_get(seg, "encryption") : NULL, "sector_size",
			 (json_int_t)crypt_get_sector_size(cd));
	out_slots = json_array();
	out_tokens = json_array();
	warnings = json_array();
	if (!info || !out_slots || !out_tokens || !warnings) {
		json_decref(out_slots);
		json_decref(out_tokens);
		json_decref(warnings);
		return -ENOMEM;
	}
	json_object_set_new(info, "keyslots", out_slots);
	json_object_set_new(info, "tokens", out_tokens);
	json_object_set_new(info, "warnings", warnings);

	json_object_foreach (slots, id, v) {
		const char *tid = NULL, *binding = slot_binding(tokens, id, &tid);
		bool kms = binding && strcmp(binding, TOKEN_TYPE) == 0;

		json_array_append_new(
			out_slots,
			json_pack("{s:i, s:O?, s:s?, s:O?, s:b}", "slot", id_num(id), "kdf",
				  json_object_get(json_object_get(v, "kdf"), "type"), "bound_to",
				  binding, "token", tid ? json_integer(id_num(tid)) : NULL,
				  "kms_bound", kms));
		if (!kms) {
			char w[256];

			unbound++;
			snprintf(
				w, sizeof(w),
				"keyslot %s is not bound to the KMS (%s%s): it still opens the volume "
				"after the root key is disabled or destroyed",
				id, binding ? "token type " : "a passphrase or key file",
				binding ? binding : "");
			json_array_append_new(warnings, json_string(w));
		}
	}
	json_object_foreach (tokens, id, v) {
		json_t *d = describe_token(cd, id, v);
		const char *bad = json_string_value(json_object_get(d, "invalid"));

		if (bad)
			json_array_append_new(warnings, json_sprintf("keyd token %s is invalid and "
								     "skipped: %s",
								     id, bad));
		json_array_append_new(out_tokens, d);
	}
	inspect_clones(path, crypt_get_uuid(cd), info, warnings);
	json_object_set_new(info, "unbound_keyslots", json_integer(unbound));
	*ret = json_incref(info);
	return 0;
}
