// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd token (de)serialisation. The token is input from disk: every field is checked against a
 * limit before use. The AAD is stored for people; unwrap always recomputes it from the header
 * UUID, so a token copied onto another volume cannot open it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kms.h"
#include "secmem.h"
#include "token.h"
#include "util.h"

void token_done(struct keyd_token *t)
{
	free(t->name);
	free(t->provider);
	free(t->kms);
	free(t->key_id);
	free(t->key_version);
	free(t->wdek);
	free(t->aad);
	free(t->created);
	free(t->updated);
	*t = (struct keyd_token){ .id = -1, .keyslot = -1 };
}

static int dup_field(json_t *o, const char *path, const char *key, bool required, size_t max,
		     char **ret, struct jx_error *e)
{
	const char *s = NULL;
	int r = jx_string(o, path, key, required, max, &s, e);

	if (r < 0 || !s)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int token_parse(json_t *o, int id, struct keyd_token *t, struct jx_error *e)
{
	static const char *const keys[] = { "type",	"keyslots", "keyd_version", "name",
					    "provider", "kms",	    "key_id",	    "key_version",
					    "wdek",	"aad",	    "created",	    "updated",
					    NULL };
	char path[32];
	json_t *slots;
	uint64_t ver = 0;
	uint32_t slot;
	int r;

	snprintf(path, sizeof(path), "token %d", id);
	if ((r = jx_only_keys(o, path, keys, e)) < 0 ||
	    (r = jx_uint(o, path, "keyd_version", 1, 1000, &ver, e)) < 0)
		return r;
	if (ver != TOKEN_FORMAT_VERSION)
		return jx_fail(e, "%s.keyd_version: %llu is not supported (this keyd reads %d)",
			       path, (unsigned long long)ver, TOKEN_FORMAT_VERSION);
	slots = json_object_get(o, "keyslots");
	if (!json_is_array(slots) || json_array_size(slots) != 1 ||
	    !json_is_string(json_array_get(slots, 0)) ||
	    parse_u32(json_string_value(json_array_get(slots, 0)), &slot) < 0 || slot > 31)
		return jx_fail(e, "%s.keyslots: must name exactly one keyslot", path);
	t->id = id;
	t->keyslot = (int)slot;
	if ((r = dup_field(o, path, "name", true, 64, &t->name, e)) < 0 ||
	    (r = dup_field(o, path, "provider", true, 32, &t->provider, e)) < 0 ||
	    (r = dup_field(o, path, "kms", true, KMS_NAME_MAX, &t->kms, e)) < 0 ||
	    (r = dup_field(o, path, "key_id", true, KMS_KEY_ID_MAX, &t->key_id, e)) < 0 ||
	    (r = dup_field(o, path, "key_version", false, KMS_VERSION_MAX, &t->key_version, e)) <
		    0 ||
	    (r = dup_field(o, path, "wdek", true, KMS_WDEK_MAX, &t->wdek, e)) < 0 ||
	    (r = dup_field(o, path, "aad", true, KMS_AAD_MAX, &t->aad, e)) < 0 ||
	    (r = dup_field(o, path, "created", true, 40, &t->created, e)) < 0 ||
	    (r = dup_field(o, path, "updated", false, 40, &t->updated, e)) < 0)
		return r;
	return 0;
}

int token_read(struct crypt_device *cd, int id, struct keyd_token *t, struct jx_error *e)
{
	json_auto_t *o = NULL;
	const char *json = NULL, *type = NULL;
	json_error_t je;
	int r;

	*t = (struct keyd_token){ .id = -1, .keyslot = -1 };
	r = crypt_token_json_get(cd, id, &json);
	if (r < 0)
		return r == -EINVAL ? -ENOENT : r;
	if (strlen(json) > TOKEN_JSON_MAX)
		return jx_fail(e, "token %d: larger than %d bytes", id, TOKEN_JSON_MAX);
	o = json_loads(json, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return jx_fail(e, "token %d: %s", id, je.text);
	if (jx_string(o, "token", "type", true, 64, &type, e) < 0 || strcmp(type, TOKEN_TYPE))
		return -EMEDIUMTYPE;
	r = token_parse(o, id, t, e);
	if (r < 0)
		token_done(t);
	return r;
}

int token_find(struct crypt_device *cd, struct keyd_token *t, struct jx_error *e)
{
	int count = 0;

	*t = (struct keyd_token){ .id = -1, .keyslot = -1 };
	for (int id = 0; id < 32; id++) {
		const char *type;
		struct keyd_token tmp;
		int r;

		if (crypt_token_status(cd, id, &type) == CRYPT_TOKEN_INACTIVE ||
		    !type || strcmp(type, TOKEN_TYPE))
			continue;
		r = token_read(cd, id, &tmp, e);
		if (r < 0)
			return r;
		if (count++ == 0)
			*t = tmp;
		else
			token_done(&tmp);
	}
	return count;
}

int token_write(struct crypt_device *cd, const struct keyd_token *t)
{
	json_auto_t *o = NULL;
	char slot[16], *json;
	int r;

	snprintf(slot, sizeof(slot), "%d", t->keyslot);
	o = json_pack("{s:s, s:[s], s:i, s:s, s:s, s:s, s:s, s:s*, s:s, s:s, s:s, s:s*}", "type",
		      TOKEN_TYPE, "keyslots", slot, "keyd_version", TOKEN_FORMAT_VERSION, "name",
		      t->name, "provider", t->provider, "kms", t->kms, "key_id", t->key_id,
		      "key_version", t->key_version, "wdek", t->wdek, "aad", t->aad, "created",
		      t->created, "updated", t->updated);
	if (!o)
		return -ENOMEM;
	json = json_dumps(o, JSON_COMPACT);
	if (!json)
		return -ENOMEM;
	if (strlen(json) > TOKEN_JSON_MAX) {
		secmem_free(json);
		return -E2BIG;
	}
	r = crypt_token_json_set(cd, t->id, json);
	secmem_free(json); /* jansson allocates from the secure heap */
	return r;
}
