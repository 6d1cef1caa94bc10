// SPDX-License-Identifier: GPL-2.0-or-later
/* The `tencent` provider: Tencent Cloud KMS over API 3.0 (Encrypt, Decrypt, ReEncrypt,
 * DescribeKey; version 2019-01-18), each request signed TC3-HMAC-SHA256 (tc3.c), the WDEK bound
 * to the volume by the EncryptionContext {"keyd:luks-uuid":"<UUID>"}. Credentials from a root
 * 0600 file or a CAM role's temporary credentials from the CVM metadata service. One try per
 * endpoint; backoff with jitter belongs to kms.c. Never puts a secret or a key in a message. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_cloud.h"
#include "kms_rest.h"
#include "kms_tencent.h"
#include "secmem.h"
#include "tc3.h"
#include "util.h"

#define TC_REGION_MAX	 32
#define TC_PLAINTEXT_MAX 1024
#define TC_DEK_LEN	 32
#define TC_VERSION	 "2019-01-18"
#define TC_SERVICE	 "kms"
#define TC_CT		 "application/json; charset=utf-8"
#define TC_WHERE_MAX	 (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 64)
#define TC_HEADER_MAX	 (TC3_AUTH_MAX + 64)
#define TC_METADATA	 "http://metadata.tencentyun.com"
#define TC_METADATA_DNS	 "metadata.tencentyun.com"
#define TC_CREDS_PATH	 "/latest/meta-data/cam/security-credentials/"
/* DescribeKey of a CMK that does not exist: the answer CmkNotFound proves the signature and
 * the credentials work (a probe without a key). */
#define TC_PROBE_KEY "00000000-0000-0000-0000-000000000000"

#define CHARS_REGION KMS_CHARS_ALNUM "-"
#define CHARS_KEY_ID KMS_CHARS_ALNUM "-_/"
#define CHARS_ROLE   KMS_CHARS_ALNUM "+=,.@_-"

static const struct cloud_file_keys tc_file_keys = {
	.id = "secret_id",
	.secret = "secret_key",
	.token = "token",
};

struct tc {
	char *region;
	char **endpoints; /* without trailing '/' */
	char **hosts;	  /* each endpoint's host[:port], as signed and sent */
	size_t n_endpoints;
	char *ca_file;
	char *metadata; /* CAM role: the CVM metadata service; NULL with a credentials file */
	char *role;	/* NULL: the instance's one role, as the metadata service lists it */
	struct http_client http;
	struct cloud_auth auth;
};

/* KeyState (DescribeKey) and what it means here. */
static const struct tc_state {
	const char *name;
	enum kms_key_state state;
	int error; /* 0: usable for encryption */
	const char *effect;
} tc_states[] = {
	{"Enabled", KMS_KEY_ACTIVE, 0, NULL},
	{"Disabled", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	 "it was disabled; encrypt and decrypt are refused until it is enabled (EnableKey)"},
	{"PendingDelete", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	 "it is scheduled for deletion and refused; CancelKeyDeletion and EnableKey bring it "
	 "back before the deletion date"},
	{"PendingImport", KMS_KEY_PRE_ACTIVE, -ENOKEY, "its key material has not been imported"},
	{"Archived", KMS_KEY_EXPIRED, -EKEYEXPIRED,
	 "it is archived: decrypt still works, encrypt does not (CancelKeyArchive)"},
};

/* Error codes (API 3.0 common codes and KMS's own) and what they mean here. A code matches
 * an entry exactly, or as "<entry>.<more>" when the entry ends with '.'. */
static const struct tc_error {
	const char *code;
	int error;
	bool retryable;
	bool new_credentials;
	const char *hint;
} tc_errors[] = {
	{"RequestLimitExceeded", -EBUSY, true, false,
	 "Tencent Cloud's per-account request rate limit; keyd backs off with jitter and tries "
	 "again"},
	{"RequestLimitExceeded.", -EBUSY, true, false,
	 "Tencent Cloud's request rate limit; keyd backs off with jitter and tries again"},
	{"InternalError", -EIO, true, false, NULL},
	{"InternalError.", -EIO, true, false, NULL},
	{"UnsupportedOperation.ServiceTemporaryUnavailable", -EAGAIN, true, false, NULL},
	{"ResourceUnavailable.CmkDisabled", -EKEYREVOKED, false, false,
	 "the CMK is disabled; decrypt is refused until it is enabled"},
	{"ResourceUnavailable.CmkArchived", -EKEYEXPIRED, false, false,
	 "the CMK is archived: decrypt only"},
	{"ResourceUnavailable.CmkStateNotSupport", -EKEYREVOKED, false, false,
	 "the CMK's state (pending deletion or import) does not allow this"},
	{"ResourceUnavailable.KeyPendingDelete", -EKEYREVOKED, false, false,
	 "the CMK is scheduled for deletion"},
	{"ResourceUnavailable.CmkNotFound", -ENOENT, false, false,
	 "no such CMK in this account and region: check key_id and region (keyd never creates "
	 "keys)"},
	{"InvalidParameterValue.InvalidKeyId", -ENOENT, false, false, "key_id is not a CMK id"},
	{"InvalidParameterValue.InvalidCiphertext", -EBADMSG, false, false,
	 "the WDEK is not a Tencent KMS ciphertext (a damaged token)"},
	{"FailedOperation.DecryptError", -EBADMSG, false, false,
	 "the WDEK does not open with this volume's EncryptionContext (a token copied from "
	 "another volume, or a damaged token)"},
	{"InvalidParameterValue.InvalidKeyUsage", -EOPNOTSUPP, false, false,
	 "keyd needs an ENCRYPT_DECRYPT CMK"},
	{"AuthFailure.SignatureFailure", -EACCES, false, false,
	 "the signature does not match: check secret_key"},
	{"AuthFailure.SecretIdNotFound", -EACCES, false, true,
	 "Tencent Cloud does not know this SecretId (deleted or disabled?)"},
	{"AuthFailure.SignatureExpire", -EACCES, false, false,
	 "the host's clock is more than 5 minutes off"},
	{"AuthFailure.TokenFailure", -EACCES, false, true,
	 "the temporary credentials' token is invalid or expired"},
	{"AuthFailure.InvalidSecretId", -EACCES, false, false, "not a TencentCloud API key"},
	{"AuthFailure.InvalidAuthorization", -EACCES, false, false, NULL},
	{"AuthFailure.MFAFailure", -EACCES, false, false, NULL},
	{"AuthFailure.UnauthorizedOperation", -EPERM, false, false,
	 "the CAM policy does not allow this call"},
	{"UnauthorizedOperation", -EPERM, false, false, "the CAM policy does not allow this call"},
	{"UnsupportedRegion", -EINVAL, false, false, "check region"},
	{"InvalidAction", -EOPNOTSUPP, false, false, "the endpoint is not Tencent Cloud KMS"},
	{"NoSuchVersion", -EOPNOTSUPP, false, false, "the endpoint is not Tencent Cloud KMS"},
	{"UnsupportedOperation.ServiceNotEnabled", -EPERM, false, false,
	 "KMS is not activated for this account"},
};

static void tc_free(struct tc *t)
{
	if (!t)
		return;
	http_client_done(&t->http);
	cloud_auth_done(&t->auth);
	kms_rest_endpoints_free(t->endpoints, t->n_endpoints);
	kms_rest_endpoints_free(t->hosts, t->n_endpoints);
	free(t->region);
	free(t->ca_file);
	free(t->metadata);
	free(t->role);
	free(t);
}

static void tc_freep(struct tc **t)
{
	tc_free(*t);
}

static int parse_role(struct tc *t, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"metadata_endpoint", "role", NULL};
	const char *md = TC_METADATA, *role = NULL;
	char p[KMS_NAME_MAX + 64];
	int r;

	snprintf(p, sizeof(p), "%s.cam_role", path);
	if (json_is_true(obj))
		obj = NULL;
	else if (!json_is_object(obj))
		return jx_fail(e, "%s: must be true or an object {metadata_endpoint, role}", p);
	if (obj) {
		if ((r = jx_only_keys(obj, p, keys, e)) < 0 ||
		    (r = jx_string(obj, p, "metadata_endpoint", false, KMS_REST_URL_MAX, &md, e)) <
			    0 ||
		    (r = jx_string(obj, p, "role", false, CLOUD_ROLE_MAX, &role, e)) < 0)
			return r;
		if (role && (!role[0] || !kms_rest_charset(role, CHARS_ROLE)))
			return jx_fail(e, "%s.role: must be a CAM role name", p);
	}
	snprintf(p, sizeof(p), "%s.cam_role.metadata_endpoint", path);
	r = cloud_metadata_url(md, p, TC_METADATA_DNS, &t->metadata, e);
	if (r < 0)
		return r;
	t->role = role ? strdup(role) : NULL;
	return role && !t->role ? -ENOMEM : 0;
}

static int tc_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"provider", "region",  "endpoints", "credentials_file",
					   "cam_role", "ca_file", NULL};
	_cleanup_(tc_freep) struct tc *t = NULL;
	const char *region = NULL, *file = NULL, *ca_file = NULL;
	json_t *role = json_object_get(obj, "cam_role");
	char url[KMS_REST_URL_MAX + 1];
	int r;

	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "region", true, TC_REGION_MAX, &region, e)) < 0 ||
	    (r = jx_string(obj, path, "credentials_file", false, PATH_MAX - 1, &file, e)) < 0 ||
	    (r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca_file, e)) < 0)
		return r;
	if (!region[0] || !kms_rest_charset(region, CHARS_REGION))
		return jx_fail(e, "%s.region: must be a Tencent Cloud region such as ap-guangzhou",
			       path);
	if (!file == !role)
		return jx_fail(e, "%s: give exactly one of credentials_file and cam_role", path);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	cloud_auth_init(&t->auth);
	if (json_object_get(obj, "endpoints")) {
		r = kms_rest_endpoints(obj, path, &t->endpoints, &t->n_endpoints, e);
		if (r < 0)
			return r;
	} else {
		snprintf(url, sizeof(url), "https://kms.%s.tencentcloudapi.com", region);
		t->endpoints = calloc(1, sizeof(*t->endpoints));
		if (!t->endpoints || !(t->endpoints[0] = strdup(url)))
			return -ENOMEM;
		t->n_endpoints = 1;
	}
	t->hosts = calloc(t->n_endpoints, sizeof(*t->hosts));
	if (!t->hosts)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_endpoints; i++) {
		const char *h = t->endpoints[i] + strlen("https://");

		t->hosts[i] = strndup(h, strcspn(h, "/"));
		if (!t->hosts[i])
			return -ENOMEM;
		if (!t->hosts[i][0] || strlen(t->hosts[i]) > TC3_FIELD_MAX)
			return jx_fail(e, "%s.endpoints[%zu]: no host", path, i);
	}
	if (role) {
		r = parse_role(t, role, path, e);
		if (r < 0)
			return r;
	}
	t->region = strdup(region);
	t->ca_file = ca_file ? strdup(ca_file) : NULL;
	t->auth.file = file ? strdup(file) : NULL;
	t->auth.file_key = "credentials_file";
	t->auth.keys = &tc_file_keys;
	if (!t->region || (ca_file && !t->ca_file) || (file && !t->auth.file))
		return -ENOMEM;
	kms->data = TAKE_PTR(t);
	return 0;
}

int tencent_parse_role_credentials(json_t *j, struct cloud_creds *ret, struct error *pe)
{
	const char *code = NULL, *id = NULL, *secret = NULL, *token = NULL;
	uint64_t expires = 0;
	struct error jxe;
	int r;

	*ret = (struct cloud_creds){0};
	if ((r = jx_string(j, "reply", "Code", false, 64, &code, &jxe)) < 0 ||
	    (r = jx_string(j, "reply", "TmpSecretId", true, CLOUD_ID_MAX, &id, &jxe)) < 0 ||
	    (r = jx_string(j, "reply", "TmpSecretKey", true, CLOUD_SECRET_MAX, &secret, &jxe)) <
		    0 ||
	    (r = jx_string(j, "reply", "Token", true, CLOUD_TOKEN_MAX, &token, &jxe)) < 0 ||
	    (r = jx_uint(j, "reply", "ExpiredTime", 1, UINT32_MAX, &expires, &jxe)) < 0)
		return error_set(pe, -EPROTO, "%s", jxe.msg);
	if (code && strcmp(code, "Success") != 0)
		return error_set(pe, -EACCES, "the role's credentials are not available");
	if (expires == 0)
		return error_set(pe, -EPROTO, "reply.ExpiredTime: missing");
	if (!id[0] || !secret[0] || !token[0] || !kms_rest_charset(id, KMS_CHARS_ALNUM))
		return error_set(pe, -EPROTO, "empty or malformed credentials");
	ret->id = secmem_strdup(id);
	ret->secret = secmem_strdup(secret);
	ret->token = secmem_strdup(token);
	ret->expires_real_us = expires * 1000000;
	if (!ret->id || !ret->secret || !ret->token) {
		cloud_creds_done(ret);
		return error_set(pe, -ENOMEM, "out of secure memory");
	}
	return 0;
}

/* A CAM role's temporary credentials from the CVM metadata service (no session token is
 * needed there). Called with the auth lock held. */
static int tc_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e)
{
	struct tc *t = kms->data;
	_cleanup_(http_response_done) struct http_response list = {0}, cred = {0};
	json_auto_t *j = NULL;
	char url[KMS_REST_URL_MAX + CLOUD_ROLE_MAX + 64], where[sizeof(url) + 32],
		role[CLOUD_ROLE_MAX + 1];
	long tmo = (long)kms->retry.try_timeout_ms;
	struct error pe;
	int r;

	if (t->role)
		snprintf(role, sizeof(role), "%s", t->role);
	else {
		snprintf(url, sizeof(url), "%s" TC_CREDS_PATH, t->metadata);
		snprintf(where, sizeof(where), "Tencent Cloud metadata %s", url);
		r = cloud_metadata_call(&t->http, "GET", url, NULL, tmo, where, &list, e);
		if (r < 0)
			return r;
		snprintf(role, sizeof(role), "%.*s", (int)strcspn(kms_rest_body(&list), "\r\n"),
			 kms_rest_body(&list));
		if (!role[0] || !kms_rest_charset(role, CHARS_ROLE))
			return kms_fail(e, -ENOENT, false,
					"%s: no CAM role is bound to this instance", where);
	}
	snprintf(url, sizeof(url), "%s" TC_CREDS_PATH "%s", t->metadata, role);
	snprintf(where, sizeof(where), "Tencent Cloud metadata %s", url);
	r = cloud_metadata_call(&t->http, "GET", url, NULL, tmo, where, &cred, e);
	if (r < 0)
		return r;
	r = kms_rest_json(&cred, where, &j, e);
	if (r < 0)
		return r;
	r = tencent_parse_role_credentials(j, ret, &pe);
	if (r < 0)
		return kms_fail(e, r, r == -EACCES, "%s: unexpected reply: %s", where, pe.msg);
	return 0;
}

static int tc_open(struct kms *kms, struct error *e)
{
	struct tc *t = kms->data;
	int r;

	r = kms_rest_ca_file(kms->name, t->ca_file, e);
	if (r < 0)
		return r;
	r = http_client_init(&t->http);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s: cannot set up the HTTP client: %s", kms->name,
				strerror(-r));
	t->auth.fetch = tc_fetch_role;
	return 0;
}

static const struct tc_error *error_entry(const char *code)
{
	for (size_t i = 0; i < ELEMENTSOF(tc_errors); i++) {
		const char *c = tc_errors[i].code;
		size_t n = strlen(c);

		if (c[n - 1] == '.' ? strncmp(code, c, n) == 0 && code[n] : strcmp(code, c) == 0)
			return &tc_errors[i];
	}
	return NULL;
}

int tencent_parse_response(const char *body, size_t n, json_t **ret, char *code, size_t code_size,
			   char *msg, size_t msg_size)
{
	json_auto_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *resp = json_object_get(j, "Response"), *err;

	code[0] = msg[0] = 0;
	if (!json_is_object(resp))
		return -EPROTO;
	err = json_object_get(resp, "Error");
	if (err) {
		const char *c = json_string_value(json_object_get(err, "Code"));

		if (!json_is_object(err) || !c || !c[0])
			return -EPROTO;
		snprintf(code, code_size, "%s", kms_rest_charset(c, KMS_CHARS_ALNUM ".") ? c : "?");
		kms_rest_printable(msg, msg_size,
				   json_string_value(json_object_get(err, "Message")));
		return -EREMOTEIO;
	}
	*ret = json_incref(resp);
	return 0;
}

static const char *tc_where(char *buf, size_t size, const char *endpoint, const char *action,
			    const char *key_id)
{
	snprintf(buf, size, "Tencent Cloud KMS %s: %s of key %s", endpoint, action, key_id);
	return buf;
}

/* One signed request to endpoint @i; *ret is the reply's Response object. */
static int tc_send(struct kms *kms, size_t i, const char *action, const char *body,
		   const struct cloud_creds *c, const char *where, json_t **ret, bool *ret_refresh,
		   struct error *e)
{
	struct tc *t = kms->data;
	_cleanup_(http_response_done) struct http_response resp = {0};
	_cleanup_secure_ char *tok = NULL;
	char auth[TC_HEADER_MAX], host[TC_HEADER_MAX], act[64], region[64], ts[48],
		url[KMS_REST_URL_MAX + 2], code[96], msg[KMS_REST_DETAIL_MAX];
	const char *headers[] = {"Content-Type: " TC_CT,
				 host,
				 act,
				 "X-TC-Version: " TC_VERSION,
				 region,
				 ts,
				 auth,
				 NULL,
				 NULL};
	uint64_t now = now_real_us() / 1000000;
	const struct tc_error *te;
	int r;

	*ret_refresh = false;
	snprintf(auth, sizeof(auth), "Authorization: ");
	r = tc3_authorization(&(struct tc3_request){.secret_id = c->id,
						    .secret_key = (const uint8_t *)c->secret,
						    .secret_key_len = strlen(c->secret),
						    .service = TC_SERVICE,
						    .host = t->hosts[i],
						    .content_type = TC_CT,
						    .timestamp = now,
						    .payload = body,
						    .payload_len = strlen(body)},
			      auth + strlen(auth), sizeof(auth) - strlen(auth));
	if (r < 0)
		return kms_fail(e, r, false, "%s: cannot sign the request: %s", where,
				strerror(-r));
	snprintf(host, sizeof(host), "Host: %s", t->hosts[i]);
	snprintf(act, sizeof(act), "X-TC-Action: %s", action);
	snprintf(region, sizeof(region), "X-TC-Region: %s", t->region);
	snprintf(ts, sizeof(ts), "X-TC-Timestamp: %llu", (unsigned long long)now);
	if (c->token) {
		tok = secmem_alloc(strlen("X-TC-Token: ") + strlen(c->token) + 1);
		if (!tok)
			return kms_fail(e, -ENOMEM, false,
					"Tencent Cloud KMS: out of secure memory");
		strcpy(tok, "X-TC-Token: ");
		strcat(tok, c->token);
		headers[7] = tok;
	}
	snprintf(url, sizeof(url), "%s/", t->endpoints[i]);
	r = kms_rest_perform(&t->http,
			     &(struct http_request){.method = "POST",
						    .url = url,
						    .headers = headers,
						    .body = body,
						    .body_len = strlen(body),
						    .ca_file = t->ca_file,
						    .timeout_ms = (long)kms->retry.try_timeout_ms},
			     where, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		r = kms_fail(e, -EIO, resp.status >= 500 || resp.status == 429, "%s: HTTP %ld",
			     where, resp.status);
		if (e->retryable)
			e->retry_after_s = resp.retry_after_s;
		return r;
	}
	r = tencent_parse_response(kms_rest_body(&resp), resp.body.len, ret, code, sizeof(code),
				   msg, sizeof(msg));
	if (r == -EPROTO) {
		json_auto_t *j = NULL;

		/* Malformed JSON gets kms_rest_json's message; JSON without Response, ours. */
		r = kms_rest_json(&resp, where, &j, e);
		return r < 0 ? r
			     : kms_fail(e, -EPROTO, false,
					"%s: unexpected reply: no Response object", where);
	}
	if (r >= 0)
		return 0;
	te = error_entry(code);
	*ret_refresh = te && te->new_credentials;
	return kms_fail(e, te ? te->error : -EIO, te && te->retryable, "%s: %s%s%s%s%s%s", where,
			code, msg[0] ? ": " : "", msg, te && te->hint ? " (" : "",
			te && te->hint ? te->hint : "", te && te->hint ? ")" : "");
}

static int tc_call(struct kms *kms, const char *action, const char *key_id, json_t *req,
		   json_t **ret, char *where, size_t where_size, struct error *e)
{
	struct tc *t = kms->data;
	_cleanup_secure_ char *body = NULL;
	struct cloud_creds c = {0};
	bool refresh, retried = false;
	uint64_t gen;
	int r;

	if (!key_id[0] || strlen(key_id) > KMS_KEY_ID_MAX ||
	    !kms_rest_charset(key_id, CHARS_KEY_ID))
		return kms_fail(e, -EINVAL, false,
				"Tencent Cloud KMS: %s: the key id is not a CMK id or alias",
				action);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false,
				"Tencent Cloud KMS: out of secure memory for the request");
	r = cloud_auth_get(kms, &t->auth, 0, &c, &gen, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_endpoints; i++) {
		tc_where(where, where_size, t->endpoints[i], action, key_id);
		r = tc_send(kms, i, action, body, &c, where, ret, &refresh, e);
		if (r < 0 && refresh && c.token && !retried) {
			retried = true;
			cloud_creds_done(&c);
			r = cloud_auth_get(kms, &t->auth, gen, &c, &gen, e);
			if (r >= 0)
				r = tc_send(kms, i, action, body, &c, where, ret, &refresh, e);
		}
		if (r >= 0 || !e->retryable)
			break;
	}
	cloud_creds_done(&c);
	return r;
}

static int fail_reply(struct error *e, const char *where, const char *why)
{
	return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s", where, why);
}

/* EncryptionContext is a JSON string: {"keyd:luks-uuid":"<UUID>"}, always written the same. */
static char *context_for(const char *aad, struct error *e)
{
	char uuid[CLOUD_UUID_MAX + 1];
	json_auto_t *j = NULL;

	if (cloud_context_uuid(aad, uuid, sizeof(uuid)) < 0) {
		kms_fail(e, -EINVAL, false,
			 "Tencent Cloud KMS: the associated data is not keyd:v1:<UUID>");
		return NULL;
	}
	j = json_pack("{s:s}", CLOUD_CONTEXT_KEY, uuid);
	return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static int reply_b64(json_t *reply, const char *key, size_t max, const char **ret,
		     struct error *jxe)
{
	int r = jx_string(reply, "reply.Response", key, true, max, ret, jxe);

	if (r >= 0 && (!(*ret)[0] || !kms_rest_charset(*ret, KMS_CHARS_BASE64 "-")))
		r = jx_fail(jxe, "reply.Response.%s: not base64", key);
	return r;
}

static int wrapped_set(struct kms_wrapped *w, const char *wdek, const char *version,
		       struct error *e)
{
	w->wdek = strdup(wdek);
	w->key_version = version ? strdup(version) : NULL;
	if (!w->wdek || (version && !w->key_version)) {
		kms_wrapped_done(w);
		return kms_fail(e, -ENOMEM, false, "Tencent Cloud KMS: out of memory");
	}
	return 0;
}

int tencent_parse_key_metadata(json_t *resp, struct tencent_meta *m, struct error *pe)
{
	json_t *md = json_object_get(resp, "KeyMetadata");
	const char *state = NULL, *usage = NULL, *id = NULL;
	uint64_t rotated = 0;
	struct error jxe;
	int r;

	*m = (struct tencent_meta){0};
	if (!json_is_object(md))
		return error_set(pe, -EPROTO, "reply.Response.KeyMetadata: missing");
	if ((r = jx_string(md, "KeyMetadata", "KeyId", true, KMS_KEY_ID_MAX, &id, &jxe)) < 0 ||
	    (r = jx_string(md, "KeyMetadata", "KeyState", true, 32, &state, &jxe)) < 0 ||
	    (r = jx_string(md, "KeyMetadata", "KeyUsage", false, 64, &usage, &jxe)) < 0 ||
	    (r = jx_uint(md, "KeyMetadata", "LastRotateTime", 0, UINT32_MAX, &rotated, &jxe)) < 0)
		return error_set(pe, -EPROTO, "%s", jxe.msg);
	for (size_t i = 0; i < ELEMENTSOF(tc_states); i++)
		if (strcmp(tc_states[i].name, state) == 0)
			m->state = i;
	if (strcmp(tc_states[m->state].name, state) != 0)
		return error_set(pe, -EPROTO, "the key is in unknown state %s",
				 kms_rest_charset(state, KMS_CHARS_ALNUM) ? state : "?");
	m->symmetric = !usage || strcmp(usage, "ENCRYPT_DECRYPT") == 0;
	m->last_rotate = rotated;
	snprintf(m->key_id, sizeof(m->key_id), "%s", id);
	return 0;
}

static int tc_describe(struct kms *kms, const char *key_id, struct tencent_meta *m, char *where,
		       size_t where_size, struct error *e)
{
	json_auto_t *req = json_pack("{s:s}", "KeyId", key_id), *reply = NULL;
	struct error pe;
	int r;

	r = tc_call(kms, "DescribeKey", key_id, req, &reply, where, where_size, e);
	if (r < 0)
		return r;
	r = tencent_parse_key_metadata(reply, m, &pe);
	return r < 0 ? fail_reply(e, where, pe.msg) : 0;
}

/* The key's version as keyd records it: the time of its last rotation ("0": never). */
static void version_of(const struct tencent_meta *m, char *buf, size_t size)
{
	snprintf(buf, size, "%llu", (unsigned long long)m->last_rotate);
}

static int tc_usable(struct kms *kms, const char *key_id, struct tencent_meta *m, struct error *e)
{
	char where[TC_WHERE_MAX];
	const struct tc_state *s;
	int r = tc_describe(kms, key_id, m, where, sizeof(where), e);

	if (r < 0)
		return r;
	s = &tc_states[m->state];
	if (s->error)
		return kms_fail(e, s->error, false, "%s: the CMK is %s: %s", where, s->name,
				s->effect);
	if (!m->symmetric)
		return kms_fail(e, -EOPNOTSUPP, false, "%s: keyd needs an ENCRYPT_DECRYPT CMK",
				where);
	return 0;
}

static int tc_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		   const char *aad, struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL, *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	const char *ct = NULL;
	char where[TC_WHERE_MAX], version[32];
	struct tencent_meta m;
	struct error jxe;
	int r;

	if (dek_len != TC_DEK_LEN)
		return kms_fail(e, -EINVAL, false,
				"Tencent Cloud KMS: refusing to wrap a %zu-byte key, expected %d",
				dek_len, TC_DEK_LEN);
	ctx = context_for(aad, e);
	if (!ctx)
		return -EINVAL;
	/* The version before Encrypt: a rotation in between makes polling rewrap once. */
	r = tc_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	version_of(&m, version, sizeof(version));
	if (b64_encode(dek, dek_len, &b64) < 0)
		return kms_fail(e, -ENOMEM, false,
				"Tencent Cloud KMS: out of secure memory for the key");
	req = json_pack("{s:s, s:s, s:s}", "KeyId", key_id, "Plaintext", b64, "EncryptionContext",
			ctx);
	r = tc_call(kms, "Encrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = reply_b64(reply, "CiphertextBlob", KMS_WDEK_MAX, &ct, &jxe);
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	return wrapped_set(ret, ct, version, e);
}

/* A reply naming the CMK that did the work: it must be key_id (or key_id names an alias). */
static int check_key(json_t *reply, const char *field, const char *key_id, const char *where,
		     struct error *e)
{
	const char *id = json_string_value(json_object_get(reply, field));

	if (!id)
		return fail_reply(e, where, "reply.Response: no KeyId");
	if (strchr(key_id, '/') || strcmp(id, key_id) == 0)
		return 0;
	return kms_fail(e, -EBADMSG, false,
			"%s: the WDEK was made by CMK %s, not by key_id: refusing it", where,
			kms_rest_charset(id, CHARS_KEY_ID) ? id : "?");
}

static int tc_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		     uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		     struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	_cleanup_secure_ char *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	const char *pt = NULL;
	char where[TC_WHERE_MAX];
	struct error jxe;
	size_t n;
	int r;

	(void)rewrapped;
	ctx = context_for(aad, e);
	if (!ctx)
		return -EINVAL;
	req = json_pack("{s:s, s:s}", "CiphertextBlob", wdek, "EncryptionContext", ctx);
	r = tc_call(kms, "Decrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = check_key(reply, "KeyId", key_id, where, e);
	if (r < 0)
		return r;
	r = reply_b64(reply, "Plaintext", TC_PLAINTEXT_MAX, &pt, &jxe);
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "Tencent Cloud KMS: out of secure memory for the key");
	if (r < 0)
		return fail_reply(e, where, "reply.Response.Plaintext: not base64");
	if (n != TC_DEK_LEN)
		return kms_fail(e, -EPROTO, false, "%s: KMS returned a %zu-byte key, expected %d",
				where, n, TC_DEK_LEN);
	*ret_dek = TAKE_PTR(dek);
	*ret_len = n;
	return 0;
}

static int tc_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		     struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	const char *ct = NULL;
	char where[TC_WHERE_MAX], version[32];
	struct tencent_meta m;
	struct error jxe;
	int r;

	ctx = context_for(aad, e);
	if (!ctx)
		return -EINVAL;
	r = tc_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	version_of(&m, version, sizeof(version));
	req = json_pack("{s:s, s:s, s:s, s:s}", "CiphertextBlob", wdek, "DestinationKeyId", key_id,
			"SourceEncryptionContext", ctx, "DestinationEncryptionContext", ctx);
	r = tc_call(kms, "ReEncrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = check_key(reply, "SourceKeyId", key_id, where, e);
	if (r < 0)
		return r;
	r = reply_b64(reply, "CiphertextBlob", KMS_WDEK_MAX, &ct, &jxe);
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	return wrapped_set(ret, ct, version, e);
}

static int tc_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
		       struct error *e)
{
	char where[TC_WHERE_MAX];
	struct tencent_meta m;
	int r;

	r = tc_describe(kms, key_id, &m, where, sizeof(where), e);
	if (r < 0)
		return r;
	*ret = (struct kms_key_info){.state = tc_states[m.state].state};
	version_of(&m, ret->version, sizeof(ret->version));
	if (m.last_rotate)
		format_rfc3339_us(m.last_rotate * 1000000, ret->last_rotated,
				  sizeof(ret->last_rotated));
	return 0;
}

static int tc_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct tencent_meta m;
	char where[TC_WHERE_MAX];
	int r;

	if (key_id)
		return tc_usable(kms, key_id, &m, e);
	r = tc_describe(kms, TC_PROBE_KEY, &m, where, sizeof(where), e);
	return r == -ENOENT ? 0 : r;
}

static void tc_done(struct kms *kms)
{
	tc_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_tencent = {
	.name = "tencent",
	.summary = "Tencent Cloud KMS (API 3.0, TC3-HMAC-SHA256; credentials file or CAM role)",
	.parse = tc_parse,
	.open = tc_open,
	.wrap = tc_wrap,
	.unwrap = tc_unwrap,
	.rewrap = tc_rewrap,
	.key_info = tc_key_info,
	.probe = tc_probe,
	.done = tc_done,
};
