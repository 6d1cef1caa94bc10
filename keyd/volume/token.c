// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd token (de)serialisation, unwrap and convergence. The token is input from disk: every
 * field is checked against a limit before use. The AAD is stored for people; unwrap always
 * recomputes it from the header UUID, so a token copied onto another volume cannot open it.
 * Logs nothing above debug level: callers report what convergence did. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kms.h"
#include "log.h"
#include "luks.h"
#include "secmem.h"
#include "text.h"
#include "token.h"
#include "util.h"

/* A token built in memory with only the first wrap's fields set has one wrap. */
static unsigned token_n_wraps(const struct keyd_token *t)
{
	return t->n_wraps ? t->n_wraps : 1;
}

static void token_wrap_done(struct token_wrap *w)
{
	free(w->provider);
	free(w->kms);
	free(w->key_id);
	free(w->key_version);
	free(w->wdek);
}

void token_done(struct keyd_token *t)
{
	free(t->name);
	for (unsigned i = 0; i < TOKEN_WRAPS_MAX; i++)
		token_wrap_done(&t->wrap[i]);
	free(t->aad);
	free(t->created);
	free(t->updated);
	*t = (struct keyd_token){.id = -1, .keyslot = -1};
}

static int dup_field(json_t *o, const char *path, const char *key, bool required, size_t max,
		     char **ret, struct error *e)
{
	const char *s = NULL;
	int r = jx_string(o, path, key, required, max, &s, e);

	if (r < 0 || !s)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* The token's one text validator: no key and no string (keyslots' included) may carry a
 * character that would forge a log line or drive a terminal where it is shown (logs, luksDump,
 * keydctl). The message names the field and the character, never the value. */
static int token_check_text(json_t *o, const char *path, struct error *e)
{
	const char *key;
	json_t *v, *s;
	uint32_t cp;
	size_t i;
	long at;

	json_object_foreach (o, key, v) {
		if ((at = text_find_unsafe(key, &cp)) >= 0)
			return jx_fail(e,
				       "%s: a key holds the control character U+%04X at offset %ld",
				       path, (unsigned)cp, at);
		json_array_foreach (json_is_array(v) ? v : NULL, i, s)
			if (json_is_string(s) &&
			    (at = text_find_unsafe(json_string_value(s), &cp)) >= 0)
				return jx_fail(e,
					       "%s.%s[%zu]: holds the control character U+%04X at "
					       "offset %ld",
					       path, key, i, (unsigned)cp, at);
		if (json_is_string(v) && (at = text_find_unsafe(json_string_value(v), &cp)) >= 0)
			return jx_fail(e, "%s.%s: holds the control character U+%04X at offset %ld",
				       path, key, (unsigned)cp, at);
	}
	return 0;
}

/* One wrap: at the top level of a version-1 token (@o is the token), or an element of a
 * version-2 token's "wraps" (@o that element). */
static int token_parse_wrap(json_t *o, const char *path, struct token_wrap *w, struct error *e)
{
	int r;

	if ((r = dup_field(o, path, "provider", true, 32, &w->provider, e)) < 0 ||
	    (r = dup_field(o, path, "kms", true, KMS_NAME_MAX, &w->kms, e)) < 0 ||
	    (r = dup_field(o, path, "key_id", true, KMS_KEY_ID_MAX, &w->key_id, e)) < 0 ||
	    (r = dup_field(o, path, "key_version", false, KMS_VERSION_MAX, &w->key_version, e)) <
		    0 ||
	    (r = dup_field(o, path, "wdek", true, KMS_WDEK_MAX, &w->wdek, e)) < 0)
		return r;
	return 0;
}

/* The wraps of a token: the top-level fields of version 1, the "wraps" array of version 2
 * (1..TOKEN_WRAPS_MAX elements of only those keys, no KMS named twice). */
static int token_parse_wraps(json_t *o, const char *path, uint64_t ver, struct keyd_token *t,
			     struct error *e)
{
	static const char *const v1_keys[] = {
		"type",	   "keyslots", "keyd_version", "name",	"provider",
		"kms",	   "key_id",   "key_version",  "wdek",	"aad",
		"created", "updated",  "generation",   "state", NULL};
	static const char *const v2_keys[] = {
		"type",	   "keyslots", "keyd_version", "name",	"wraps", "aad",
		"created", "updated",  "generation",   "state", NULL};
	static const char *const wrap_keys[] = {"provider",    "kms",  "key_id",
						"key_version", "wdek", NULL};
	char wpath[48];
	json_t *wraps, *w;
	size_t i;
	int r;

	if (ver == TOKEN_FORMAT_VERSION) {
		if ((r = jx_only_keys(o, path, v1_keys, e)) < 0)
			return r;
		t->n_wraps = 1;
		return token_parse_wrap(o, path, &t->wrap[0], e);
	}
	if ((r = jx_only_keys(o, path, v2_keys, e)) < 0)
		return r;
	wraps = json_object_get(o, "wraps");
	if (!json_is_array(wraps) || json_array_size(wraps) < 1 ||
	    json_array_size(wraps) > TOKEN_WRAPS_MAX)
		return jx_fail(e, "%s.wraps: must be an array of 1 to %d wrapped keys", path,
			       TOKEN_WRAPS_MAX);
	json_array_foreach (wraps, i, w) {
		snprintf(wpath, sizeof(wpath), "%s.wraps[%zu]", path, i);
		if (!json_is_object(w))
			return jx_fail(e, "%s: must be an object", wpath);
		if ((r = token_check_text(w, wpath, e)) < 0 ||
		    (r = jx_only_keys(w, wpath, wrap_keys, e)) < 0 ||
		    (r = token_parse_wrap(w, wpath, &t->wrap[i], e)) < 0)
			return r;
		t->n_wraps = (unsigned)i + 1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->wrap[j].kms, t->wrap[i].kms) == 0)
				return jx_fail(e, "%s.kms: \"%s\" is also wraps[%zu].kms", wpath,
					       t->wrap[i].kms, j);
	}
	return 0;
}

static int token_parse(json_t *o, int id, struct keyd_token *t, struct error *e)
{
	static const char *const states[] = {
		[TOKEN_ACTIVE] = "active", [TOKEN_PENDING] = "pending", NULL};
	char path[32];
	json_t *slots;
	uint64_t ver = 0, gen = 1;
	uint32_t slot;
	int state = TOKEN_ACTIVE, r;

	if (id >= 0)
		snprintf(path, sizeof(path), "token %d", id);
	else
		snprintf(path, sizeof(path), "token");
	if ((r = token_check_text(o, path, e)) < 0 ||
	    (r = jx_uint(o, path, "keyd_version", 1, 1000, &ver, e)) < 0)
		return r;
	if (ver != TOKEN_FORMAT_VERSION && ver != TOKEN_FORMAT_MULTI)
		return jx_fail(
			e, "%s.keyd_version: %llu is not supported (this keyd reads %d and %d)",
			path, (unsigned long long)ver, TOKEN_FORMAT_VERSION, TOKEN_FORMAT_MULTI);
	if ((r = jx_uint(o, path, "generation", 1, UINT32_MAX, &gen, e)) < 0 ||
	    (r = jx_enum(o, path, "state", states, &state, e)) < 0)
		return r;
	t->id = id;
	t->state = (enum token_state)state;
	t->generation = (unsigned)gen;
	t->keyslot = -1;
	slots = json_object_get(o, "keyslots");
	if (!json_is_array(slots) || json_array_size(slots) > 1)
		return jx_fail(e, "%s.keyslots: must name one keyslot", path);
	if (json_array_size(slots) == 1) {
		if (!json_is_string(json_array_get(slots, 0)) ||
		    parse_u32(json_string_value(json_array_get(slots, 0)), &slot) < 0 || slot > 31)
			return jx_fail(e, "%s.keyslots: must name one keyslot", path);
		t->keyslot = (int)slot;
	}
	/* No keyslot: a pending token, or one whose keyslot libcryptsetup destroyed (which also
	 * unassigns it) before a crash let us remove the token: token_converge() handles both. */
	if ((r = token_parse_wraps(o, path, ver, t, e)) < 0 ||
	    (r = dup_field(o, path, "name", true, 64, &t->name, e)) < 0 ||
	    (r = dup_field(o, path, "aad", true, KMS_AAD_MAX, &t->aad, e)) < 0 ||
	    (r = dup_field(o, path, "created", true, 40, &t->created, e)) < 0 ||
	    (r = dup_field(o, path, "updated", false, 40, &t->updated, e)) < 0)
		return r;
	return 0;
}

int token_from_json(const char *json, int id, struct keyd_token *t, struct error *e)
{
	json_auto_t *o = NULL;
	const char *type = NULL;
	json_error_t je;
	int r;

	*t = (struct keyd_token){.id = -1, .keyslot = -1};
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

int token_read(struct crypt_device *cd, int id, struct keyd_token *t, struct error *e)
{
	const char *json = NULL;
	int r;

	*t = (struct keyd_token){.id = -1, .keyslot = -1};
	r = crypt_token_json_get(cd, id, &json);
	if (r < 0)
		return r == -EINVAL ? -ENOENT : r;
	return token_from_json(json, id, t, e);
}

int token_list(struct crypt_device *cd, struct keyd_token *out, struct error *e)
{
	int n = 0;

	for (int id = 0; id < TOKENS_MAX; id++) {
		const char *type;
		int r;

		if (crypt_token_status(cd, id, &type) == CRYPT_TOKEN_INACTIVE || !type ||
		    strcmp(type, TOKEN_TYPE))
			continue;
		r = token_read(cd, id, &out[n], e);
		if (r < 0) {
			token_list_done(out, n);
			return r;
		}
		n++;
	}
	return n;
}

void token_list_done(struct keyd_token *l, int n)
{
	for (int i = 0; i < n; i++)
		token_done(&l[i]);
}

int token_find(struct crypt_device *cd, struct keyd_token *t, struct error *e)
{
	struct keyd_token all[TOKENS_MAX];
	int n, best = -1;

	*t = (struct keyd_token){.id = -1, .keyslot = -1};
	n = token_list(cd, all, e);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (all[i].state == TOKEN_ACTIVE && all[i].keyslot >= 0 &&
		    (best < 0 || all[i].generation > all[best].generation))
			best = i;
	if (best >= 0) {
		*t = all[best];
		all[best] = (struct keyd_token){.id = -1};
	}
	token_list_done(all, n);
	return n;
}

static char *strdup_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int token_wrap_dup(const struct token_wrap *src, struct token_wrap *dst)
{
	*dst = (struct token_wrap){
		.provider = strdup_null(src->provider),
		.kms = strdup_null(src->kms),
		.key_id = strdup_null(src->key_id),
		.key_version = strdup_null(src->key_version),
		.wdek = strdup_null(src->wdek),
	};
	if (!dst->provider || !dst->kms || !dst->key_id || !dst->wdek ||
	    (src->key_version && !dst->key_version))
		return -ENOMEM;
	return 0;
}

int token_dup(const struct keyd_token *src, struct keyd_token *dst)
{
	int r = 0;

	*dst = *src;
	memset(dst->wrap, 0, sizeof(dst->wrap));
	dst->name = strdup_null(src->name);
	dst->aad = strdup_null(src->aad);
	dst->created = strdup_null(src->created);
	dst->updated = strdup_null(src->updated);
	dst->n_wraps = token_n_wraps(src);
	for (unsigned i = 0; i < dst->n_wraps && r >= 0; i++)
		r = token_wrap_dup(&src->wrap[i], &dst->wrap[i]);
	if (r < 0 || !dst->name || !dst->aad || !dst->created || (src->updated && !dst->updated)) {
		token_done(dst);
		return -ENOMEM;
	}
	return 0;
}

void token_set_wraps(struct keyd_token *t, const struct kms_key *keys, size_t n_keys,
		     const struct kms_wrapped *w)
{
	t->n_wraps = (unsigned)n_keys;
	for (size_t k = 0; k < n_keys; k++)
		t->wrap[k] = (struct token_wrap){.provider = (char *)keys[k].kms->provider->name,
						 .kms = keys[k].kms->name,
						 .key_id = keys[k].key_id,
						 .key_version = w[k].key_version,
						 .wdek = w[k].wdek};
}

int token_wrap_index(const struct keyd_token *t, const char *kms)
{
	for (unsigned i = 0; i < token_n_wraps(t); i++)
		if (t->wrap[i].kms && strcmp(t->wrap[i].kms, kms) == 0)
			return (int)i;
	return -1;
}

/* The wraps as JSON: a single one at the top level of @o (version 1, which every keyd reads),
 * several as "wraps" (version 2). */
static int token_pack_wraps(json_t *o, const struct keyd_token *t)
{
	json_t *wraps;

	if (t->n_wraps <= 1)
		return json_object_update_new(o, json_pack("{s:i, s:s, s:s, s:s, s:s*, s:s}",
							   "keyd_version", TOKEN_FORMAT_VERSION,
							   "provider", t->provider, "kms", t->kms,
							   "key_id", t->key_id, "key_version",
							   t->key_version, "wdek", t->wdek)) < 0
			       ? -ENOMEM
			       : 0;
	wraps = json_array();
	if (!wraps || json_object_set_new(o, "wraps", wraps) < 0 ||
	    json_object_set_new(o, "keyd_version", json_integer(TOKEN_FORMAT_MULTI)) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < t->n_wraps; i++) {
		const struct token_wrap *w = &t->wrap[i];

		if (json_array_append_new(wraps, json_pack("{s:s, s:s, s:s, s:s*, s:s}", "provider",
							   w->provider, "kms", w->kms, "key_id",
							   w->key_id, "key_version", w->key_version,
							   "wdek", w->wdek)) < 0)
			return -ENOMEM;
	}
	return 0;
}

int token_write(struct crypt_device *cd, const struct keyd_token *t)
{
	json_auto_t *o = NULL, *slots = json_array();
	char slot[16], *json;
	int r;

	if (!slots)
		return -ENOMEM;
	if (t->keyslot >= 0) {
		snprintf(slot, sizeof(slot), "%d", t->keyslot);
		json_array_append_new(slots, json_string(slot));
	}
	o = json_pack("{s:s, s:O, s:s, s:i, s:s, s:s, s:s, s:s*}", "type", TOKEN_TYPE, "keyslots",
		      slots, "state", t->state == TOKEN_PENDING ? "pending" : "active",
		      "generation", (int)(t->generation ? t->generation : 1), "name", t->name,
		      "aad", t->aad, "created", t->created, "updated", t->updated);
	if (!o || token_pack_wraps(o, t) < 0)
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

int token_unwrap(struct kms *kms, const struct keyd_token *t, const char *uuid, uint8_t **ret_dek,
		 struct kms_wrapped *rewrapped, kms_wait_fn wait, void *userdata,
		 const volatile bool *stop, struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct error ke;
	char aad[KMS_AAD_MAX];
	size_t len = 0;
	int r;

	const struct token_wrap *w;
	int i = token_wrap_index(t, kms->name);

	*ret_dek = NULL;
	if (i < 0)
		return error_set(e, -EXDEV, "token %d holds no key wrapped by KMS '%s'", t->id,
				 kms->name);
	w = &t->wrap[i];
	if (kms_aad_for_uuid(uuid, aad, sizeof(aad)) < 0)
		return error_set(e, -ENAMETOOLONG, "no usable LUKS UUID in the header");
	r = kms_unwrap(kms, w->key_id, w->wdek, aad, &dek, &len, rewrapped, &ke, wait, userdata,
		       stop);
	if (r < 0)
		return error_set(e, r, "unwrap with KMS '%s' (key %s): %s", kms->name, w->key_id,
				 ke.msg);
	if (len != LUKS_DEK_LEN) {
		if (rewrapped)
			kms_wrapped_done(rewrapped);
		return error_set(e, -EBADMSG, "KMS '%s' returned a %zu-byte key, expected %d",
				 kms->name, len, LUKS_DEK_LEN);
	}
	*ret_dek = TAKE_PTR(dek);
	return 0;
}

/* --- Convergence: after every single header write of enroll or re-key, the active token of
 * the highest generation opens its keyslot; what a crash between two writes leaves is resolved
 * here. --- */

const char *token_change_describe(const struct token_change *c, char *buf, size_t size)
{
	if (c->kind == TOKEN_FINISHED)
		snprintf(buf, size,
			 "finishing token %d (keyslot %d), an interrupted enrollment or re-key",
			 c->token, c->keyslot);
	else
		snprintf(buf, size, "removing token %d, an interrupted enrollment or re-key",
			 c->token);
	return buf;
}

static void changes_add(struct token_changes *changes, enum token_change_kind kind,
			const struct keyd_token *t)
{
	if (changes && changes->n < (int)ELEMENTSOF(changes->c))
		changes->c[changes->n++] =
			(struct token_change){.kind = kind, .token = t->id, .keyslot = t->keyslot};
}

static bool keyslot_taken(const struct keyd_token *all, int n, int slot, int except)
{
	for (int i = 0; i < n; i++)
		if (i != except && all[i].keyslot == slot)
			return true;
	return false;
}

/* The keyslot @dek opens among the active ones no other token claims, or -1. */
static int unclaimed_keyslot(struct crypt_device *cd, const struct keyd_token *all, int n, int i,
			     const uint8_t *dek)
{
	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, s);

		if ((st == CRYPT_SLOT_ACTIVE || st == CRYPT_SLOT_ACTIVE_LAST) &&
		    !keyslot_taken(all, n, s, i) &&
		    luks_activate(cd, NULL, s, dek, LUKS_DEK_LEN, 0) >= 0)
			return s;
	}
	return -1;
}

/* The DEK of pending token @t through the first of @kms that holds a wrap of it and answers. */
static int converge_unwrap(struct crypt_device *cd, const struct keyd_token *t,
			   const struct kms_key *keys, size_t n_keys, uint8_t **dek,
			   struct error *err)
{
	int r = error_set(err, -ENOKEY,
			  "token %d is an interrupted enrollment or re-key for KMS '%s'; "
			  "it needs that KMS to finish",
			  t->id, t->kms);

	for (size_t k = 0; k < n_keys; k++) {
		if (token_wrap_index(t, keys[k].kms->name) < 0)
			continue;
		r = token_unwrap(keys[k].kms, t, crypt_get_uuid(cd), dek, NULL, NULL, NULL, NULL,
				 err);
		if (r >= 0)
			return r;
		error_prefix(err, r, "token %d", t->id);
	}
	return r;
}

/* A pending token: the crash came after the token write, maybe after the keyslot was added.
 * Without a keyslot, find the one its DEK opens among those no token claims; none means the
 * keyslot was never written (roll back), else roll forward. Returns 1 (one header change). */
static int converge_pending(struct crypt_device *cd, struct keyd_token *all, int n, int i,
			    const struct kms_key *keys, size_t n_keys,
			    struct token_changes *changes, struct error *err)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_token *t = &all[i];
	int r;

	if (t->keyslot < 0) {
		r = converge_unwrap(cd, t, keys, n_keys, &dek, err);
		if (r < 0)
			return r;
		t->keyslot = unclaimed_keyslot(cd, all, n, i, dek);
		if (t->keyslot < 0) {
			r = crypt_token_json_set(cd, t->id, NULL);
			if (r < 0)
				return error_set(err, r, "remove token %d: %s", t->id,
						 strerror(-r));
			changes_add(changes, TOKEN_ROLLED_BACK, t);
			return 1;
		}
	}
	t->state = TOKEN_ACTIVE;
	r = token_write(cd, t);
	if (r < 0)
		return error_set(err, r, "activate token %d: %s", t->id, strerror(-r));
	changes_add(changes, TOKEN_FINISHED, t);
	return 1;
}

/* Removes an active token superseded by a newer generation: keyslot first, then the token, so
 * no keyslot is ever left that no token accounts for. */
static int token_retire(struct crypt_device *cd, struct keyd_token *all, int n, int i,
			struct error *err)
{
	struct keyd_token *t = &all[i];
	int r;

	log_debug("%s: removing superseded token %d (generation %u) and keyslot %d",
		  crypt_get_device_name(cd), t->id, t->generation, t->keyslot);
	r = token_remove(cd, t, keyslot_taken(all, n, t->keyslot, i), err);
	return r < 0 ? r : 1;
}

int token_remove(struct crypt_device *cd, const struct keyd_token *t, bool keep_keyslot,
		 struct error *err)
{
	int r;

	if (!keep_keyslot && t->keyslot >= 0 &&
	    crypt_keyslot_status(cd, t->keyslot) > CRYPT_SLOT_INACTIVE) {
		r = crypt_keyslot_destroy(cd, t->keyslot);
		if (r < 0)
			return error_set(err, r, "destroy keyslot %d: %s", t->keyslot,
					 strerror(-r));
	}
	r = crypt_token_json_set(cd, t->id, NULL);
	return r < 0 ? error_set(err, r, "remove token %d: %s", t->id, strerror(-r)) : 0;
}

int token_converge(struct crypt_device *cd, const struct kms_key *keys, size_t n_keys,
		   struct token_changes *changes, struct error *err)
{
	struct keyd_token all[TOKENS_MAX];
	struct error je;
	int n_changes = 0, n, r = 0, best = -1;

	if (changes)
		changes->n = 0;
	n = token_list(cd, all, &je);
	if (n < 0)
		return error_set(err, n, "read tokens: %s", je.msg);
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_PENDING) {
			r = converge_pending(cd, all, n, i, keys, n_keys, changes, err);
			n_changes += r > 0;
		}
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_ACTIVE && all[i].keyslot >= 0 &&
		    (best < 0 || all[i].generation > all[best].generation))
			best = i;
	for (int i = 0; i < n && r >= 0; i++)
		if (all[i].state == TOKEN_ACTIVE && i != best) {
			r = token_retire(cd, all, n, i, err);
			n_changes += r > 0;
		}
	token_list_done(all, n);
	return r < 0 ? r : n_changes;
}
