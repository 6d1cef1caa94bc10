// SPDX-License-Identifier: GPL-2.0-or-later
/* What the aws and tencent providers do alike (cloud.h): their configuration, the call loop
 * over endpoints and credentials, role discovery, key states and error codes, and the checks
 * of replies. How a request is signed and sent, and what each reply means, stay in
 * kms_aws.c and kms_tencent.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cloud.h"
#include "jsonx.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define CHARS_REGION KMS_CHARS_ALNUM "-"

static int parse_role(struct cloud *c, json_t *obj, const char *path, struct error *e)
{
	const struct cloud_vendor *v = c->vendor;
	const char *const keys[] = {v->metadata_key, "role", NULL};
	const char *md = v->metadata_url, *role = NULL;
	char p[KMS_NAME_MAX + 64];
	int r;

	snprintf(p, sizeof(p), "%s.%s", path, v->role_key);
	if (json_is_true(obj))
		obj = NULL;
	else if (!json_is_object(obj))
		return jx_fail(e, "%s: must be true or an object {%s, role}", p, v->metadata_key);
	if (obj) {
		if ((r = jx_only_keys(obj, p, keys, e)) < 0 ||
		    (r = jx_string(obj, p, v->metadata_key, false, KMS_REST_URL_MAX, &md, e)) < 0 ||
		    (r = jx_string(obj, p, "role", false, CLOUD_ROLE_MAX, &role, e)) < 0)
			return r;
		if (role && (!role[0] || !kms_rest_charset(role, CLOUD_CHARS_ROLE)))
			return jx_fail(e, "%s.role: must be %s", p, v->role_name_hint);
	}
	snprintf(p, sizeof(p), "%s.%s.%s", path, v->role_key, v->metadata_key);
	r = cloud_metadata_url(md, p, v->metadata_dns, &c->metadata, e);
	if (r < 0)
		return r;
	c->role = role ? strdup(role) : NULL;
	return role && !c->role ? -ENOMEM : 0;
}

static int default_endpoint(struct cloud *c, const char *region)
{
	char url[KMS_REST_URL_MAX + 1];

	c->vendor->endpoint(region, url, sizeof(url));
	c->endpoints = calloc(1, sizeof(*c->endpoints));
	if (!c->endpoints || !(c->endpoints[0] = strdup(url)))
		return -ENOMEM;
	c->n_endpoints = 1;
	return 0;
}

int cloud_parse(struct cloud *c, const struct cloud_vendor *v, json_t *obj, const char *path,
		struct error *e)
{
	const char *const keys[] = {"provider",	 "region",  "endpoints", "credentials_file",
				    v->role_key, "ca_file", NULL};
	const char *region = NULL, *file = NULL, *ca_file = NULL;
	json_t *role = json_object_get(obj, v->role_key);
	int r;

	*c = (struct cloud){.vendor = v};
	cloud_auth_init(&c->auth);
	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "region", true, v->region_max, &region, e)) < 0 ||
	    (r = jx_string(obj, path, "credentials_file", false, PATH_MAX - 1, &file, e)) < 0 ||
	    (r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca_file, e)) < 0)
		return r;
	if (!region[0] || !kms_rest_charset(region, CHARS_REGION))
		return jx_fail(e, "%s.region: must be %s", path, v->region_hint);
	if (!file == !role)
		return jx_fail(e, "%s: give exactly one of credentials_file and %s", path,
			       v->role_key);
	if (json_object_get(obj, "endpoints"))
		r = kms_rest_endpoints(obj, path, &c->endpoints, &c->n_endpoints, e);
	else
		r = default_endpoint(c, region);
	if (r < 0)
		return r;
	if (role) {
		r = parse_role(c, role, path, e);
		if (r < 0)
			return r;
	}
	c->region = strdup(region);
	c->ca_file = ca_file ? strdup(ca_file) : NULL;
	c->auth.file = file ? strdup(file) : NULL;
	c->auth.file_key = "credentials_file";
	c->auth.keys = v->file_keys;
	if (!c->region || (ca_file && !c->ca_file) || (file && !c->auth.file))
		return -ENOMEM;
	return 0;
}

int cloud_open(struct kms *kms, struct cloud *c, struct error *e)
{
	int r;

	r = kms_rest_open(kms->name, c->ca_file, &c->http, e);
	if (r < 0)
		return r;
	c->auth.fetch = c->vendor->fetch;
	return 0;
}

void cloud_done(struct cloud *c)
{
	if (!c->vendor)
		return;
	http_client_done(&c->http);
	cloud_auth_done(&c->auth);
	kms_rest_endpoints_free(c->endpoints, c->n_endpoints);
	free(c->region);
	free(c->ca_file);
	free(c->metadata);
	free(c->role);
	*c = (struct cloud){0};
}

int cloud_role_name(struct kms *kms, struct cloud *c, const char *list_url,
		    const char *const *headers, const char *where, char *role, struct error *e)
{
	_cleanup_(http_response_done) struct http_response list = {0};
	int r;

	if (c->role) {
		snprintf(role, CLOUD_ROLE_MAX + 1, "%s", c->role);
		return 0;
	}
	r = cloud_metadata_call(&c->http, "GET", list_url, headers, (long)kms->retry.try_timeout_ms,
				where, &list, e);
	if (r < 0)
		return r;
	snprintf(role, CLOUD_ROLE_MAX + 1, "%.*s", (int)strcspn(kms_rest_body(&list), "\r\n"),
		 kms_rest_body(&list));
	if (!role[0] || !kms_rest_charset(role, CLOUD_CHARS_ROLE))
		return kms_fail(e, -ENOENT, false, "%s: no %s role is attached to this instance",
				where, c->vendor->role_kind);
	return 0;
}

int cloud_call(struct kms *kms, struct cloud *c, const char *op, const char *key_id, json_t *req,
	       json_t **ret, char *where, size_t where_size, struct error *e)
{
	const struct cloud_vendor *v = c->vendor;
	_cleanup_secure_ char *body = NULL;
	struct cloud_creds creds = {0};
	bool refresh, retried = false;
	uint64_t gen;
	int r;

	if (!key_id[0] || strlen(key_id) > KMS_KEY_ID_MAX ||
	    !kms_rest_charset(key_id, v->key_id_chars))
		return kms_fail(e, -EINVAL, false, "%s: %s: the key id is not %s", v->label, op,
				v->key_id_kinds);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false, "%s: out of secure memory for the request",
				v->label);
	r = cloud_auth_get(kms, &c->auth, 0, &creds, &gen, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->n_endpoints; i++) {
		snprintf(where, where_size, "%s %s: %s of key %s", v->label, c->endpoints[i], op,
			 key_id);
		r = v->send(kms, i, op, body, &creds, where, ret, &refresh, e);
		if (r < 0 && refresh && creds.token && !retried) {
			retried = true;
			cloud_creds_done(&creds);
			r = cloud_auth_get(kms, &c->auth, gen, &creds, &gen, e);
			if (r >= 0)
				r = v->send(kms, i, op, body, &creds, where, ret, &refresh, e);
		}
		if (r >= 0 || !e->retryable)
			break;
	}
	cloud_creds_done(&creds);
	return r;
}

char *cloud_token_header(const char *prefix, const char *token)
{
	char *s = secmem_alloc(strlen(prefix) + strlen(token) + 1);

	if (s) {
		strcpy(s, prefix);
		strcat(s, token);
	}
	return s;
}

size_t cloud_state_find(const struct cloud_state *states, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(states[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

int cloud_state_usable(const struct cloud *c, const struct cloud_state *s, bool symmetric,
		       const char *where, struct error *e)
{
	if (s->error)
		return kms_fail(e, s->error, false, "%s: the %s is %s: %s", where,
				c->vendor->key_noun, s->name, s->effect);
	if (!symmetric)
		return kms_fail(e, -EOPNOTSUPP, false, "%s: %s", where, c->vendor->usage_hint);
	return 0;
}

const struct cloud_error *cloud_error_find(const struct cloud_error *table, size_t n,
					   const char *code)
{
	for (size_t i = 0; i < n; i++) {
		const char *t = table[i].code;
		size_t len = strlen(t);

		if (t[len - 1] == '.' ? strncmp(code, t, len) == 0 && code[len]
				      : strcmp(code, t) == 0)
			return &table[i];
	}
	return NULL;
}

int cloud_fail_code(struct error *e, const struct cloud_error *t, bool retryable, const char *where,
		    const char *what, const char *msg)
{
	const char *hint = t ? t->hint : NULL;
	int r;

	r = kms_fail(e, t ? t->error : -EIO, t ? t->retryable : retryable, "%s: %s%s%s%s%s%s",
		     where, what, msg[0] ? ": " : "", msg, hint ? " (" : "", hint ? hint : "",
		     hint ? ")" : "");
	/* Throttling (-EBUSY in the tables) counts as the 429 it is, whatever status carried
	 * it: AWS says ThrottlingException with 400, Tencent RequestLimitExceeded with 200. */
	if (t && t->error == -EBUSY)
		e->http_status = 429;
	return r;
}

json_t *cloud_context(const struct cloud *c, const char *aad, struct error *e)
{
	char uuid[CLOUD_UUID_MAX + 1];

	if (cloud_context_uuid(aad, uuid, sizeof(uuid)) < 0) {
		kms_fail(e, -EINVAL, false, "%s: the associated data is not keyd:v1:<UUID>",
			 c->vendor->label);
		return NULL;
	}
	return json_pack("{s:s}", CLOUD_CONTEXT_KEY, uuid);
}

int cloud_fail_reply(struct error *e, const char *where, const char *why)
{
	return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s", where, why);
}

int cloud_reply_b64(json_t *reply, const char *path, const char *key, const char *chars, size_t max,
		    const char **ret, struct error *jxe)
{
	int r = jx_string(reply, path, key, true, max, ret, jxe);

	if (r >= 0 && (!(*ret)[0] || !kms_rest_charset(*ret, chars)))
		r = jx_fail(jxe, "%s.%s: not base64", path, key);
	return r;
}

int cloud_wrapped_set(const struct cloud *c, struct kms_wrapped *w, const char *wdek,
		      const char *version, struct error *e)
{
	bool has_version = version && version[0];

	w->wdek = strdup(wdek);
	w->key_version = has_version ? strdup(version) : NULL;
	if (!w->wdek || (has_version && !w->key_version)) {
		kms_wrapped_done(w);
		return kms_fail(e, -ENOMEM, false, "%s: out of memory", c->vendor->label);
	}
	return 0;
}

int cloud_reply_wrapped(const struct cloud *c, json_t *reply, const char *path, const char *key,
			const char *chars, const char *where, const char *version,
			struct kms_wrapped *w, struct error *e)
{
	const char *ct = NULL;
	struct error jxe;

	if (cloud_reply_b64(reply, path, key, chars, KMS_WDEK_MAX, &ct, &jxe) < 0)
		return cloud_fail_reply(e, where, jxe.msg);
	return cloud_wrapped_set(c, w, ct, version, e);
}

int cloud_check_dek_len(const struct cloud *c, size_t dek_len, struct error *e)
{
	if (dek_len == CLOUD_DEK_LEN)
		return 0;
	return kms_fail(e, -EINVAL, false, "%s: refusing to wrap a %zu-byte key, expected %d",
			c->vendor->label, dek_len, CLOUD_DEK_LEN);
}

int cloud_reply_dek(const struct cloud *c, json_t *reply, const char *path, const char *key,
		    const char *chars, const char *where, uint8_t **ret_dek, size_t *ret_len,
		    struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	const char *pt = NULL;
	char why[128];
	struct error jxe;
	size_t n;
	int r;

	/* The plaintext of a 32-byte key in base64 is 44 characters; 1 KiB is plenty. */
	r = cloud_reply_b64(reply, path, key, chars, 1024, &pt, &jxe);
	if (r < 0)
		return cloud_fail_reply(e, where, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "%s: out of secure memory for the key",
				c->vendor->label);
	if (r < 0) {
		snprintf(why, sizeof(why), "%s.%s: not base64", path, key);
		return cloud_fail_reply(e, where, why);
	}
	if (n != CLOUD_DEK_LEN)
		return kms_fail(e, -EPROTO, false, "%s: KMS returned a %zu-byte key, expected %d",
				where, n, CLOUD_DEK_LEN);
	*ret_dek = TAKE_PTR(dek);
	*ret_len = n;
	return 0;
}

char *cloud_dek_b64(const struct cloud *c, const uint8_t *dek, size_t dek_len, struct error *e)
{
	char *b64 = NULL;

	if (b64_encode(dek, dek_len, &b64) < 0) {
		kms_fail(e, -ENOMEM, false, "%s: out of secure memory for the key",
			 c->vendor->label);
		return NULL;
	}
	return b64;
}
