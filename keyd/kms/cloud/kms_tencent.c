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

#include "cloud.h"
#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_cloud.h"
#include "kms_rest.h"
#include "kms_tencent.h"
#include "secmem.h"
#include "tc3.h"
#include "util.h"

#define TC_VERSION	"2019-01-18"
#define TC_SERVICE	"kms"
#define TC_CT		"application/json; charset=utf-8"
#define TC_HEADER_MAX	(TC3_AUTH_MAX + 64)
#define TC_METADATA	"http://metadata.tencentyun.com"
#define TC_METADATA_DNS "metadata.tencentyun.com"
#define TC_CREDS_PATH	"/latest/meta-data/cam/security-credentials/"
/* DescribeKey of a CMK that does not exist: the answer CmkNotFound proves the signature and
 * the credentials work (a probe without a key). */
#define TC_PROBE_KEY "00000000-0000-0000-0000-000000000000"

#define CHARS_KEY_ID KMS_CHARS_ALNUM "-_/"
#define CHARS_B64    KMS_CHARS_BASE64 "-"

static const struct cloud_file_keys tc_file_keys = {
	.id = "secret_id",
	.secret = "secret_key",
	.token = "token",
};

struct tc {
	struct cloud c; /* first: what every cloud provider has */
	char **hosts;	/* each endpoint's host[:port], as signed and sent */
};

/* KeyState (DescribeKey) and what it means here. */
static const struct cloud_state tc_states[] = {
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
static const struct cloud_error tc_errors[] = {
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
	kms_rest_endpoints_free(t->hosts, t->c.n_endpoints);
	cloud_done(&t->c);
	free(t);
}

static void tc_freep(struct tc **t)
{
	tc_free(*t);
}

static void tc_endpoint(const char *region, char *buf, size_t size)
{
	snprintf(buf, size, "https://kms.%s.tencentcloudapi.com", region);
}

static int tc_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e);
static int tc_send(struct kms *kms, size_t i, const char *action, const char *body,
		   const struct cloud_creds *c, const char *where, json_t **ret, bool *ret_refresh,
		   struct error *e);

static const struct cloud_vendor tc_vendor = {
	.label = "Tencent Cloud KMS",
	.region_hint = "a Tencent Cloud region such as ap-guangzhou",
	.region_max = 32,
	.role_key = "cam_role",
	.metadata_key = "metadata_endpoint",
	.metadata_url = TC_METADATA,
	.metadata_dns = TC_METADATA_DNS,
	.role_kind = "CAM",
	.role_name_hint = "a CAM role name",
	.key_noun = "CMK",
	.usage_hint = "keyd needs an ENCRYPT_DECRYPT CMK",
	.key_id_chars = CHARS_KEY_ID,
	.key_id_kinds = "a CMK id or alias",
	.file_keys = &tc_file_keys,
	.endpoint = tc_endpoint,
	.fetch = tc_fetch_role,
	.send = tc_send,
};

static int tc_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	_cleanup_(tc_freep) struct tc *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	r = cloud_parse(&t->c, &tc_vendor, obj, path, e);
	if (r < 0)
		return r;
	/* TC3 signs the Host header: each endpoint's, as it is sent. */
	t->hosts = calloc(t->c.n_endpoints, sizeof(*t->hosts));
	if (!t->hosts)
		return -ENOMEM;
	for (size_t i = 0; i < t->c.n_endpoints; i++) {
		const char *h = t->c.endpoints[i] + strlen("https://");

		t->hosts[i] = strndup(h, strcspn(h, "/"));
		if (!t->hosts[i])
			return -ENOMEM;
		if (!t->hosts[i][0] || strlen(t->hosts[i]) > TC3_FIELD_MAX)
			return jx_fail(e, "%s.endpoints[%zu]: no host", path, i);
	}
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
	return cloud_creds_set(ret, id, secret, token, expires * 1000000, pe);
}

/* A CAM role's temporary credentials from the CVM metadata service (no session token is
 * needed there). Called with the auth lock held. */
static int tc_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e)
{
	struct cloud *c = kms->data;
	_cleanup_(http_response_done) struct http_response cred = {0};
	json_auto_t *j = NULL;
	char url[KMS_REST_URL_MAX + CLOUD_ROLE_MAX + 64], where[sizeof(url) + 32],
		role[CLOUD_ROLE_MAX + 1];
	long tmo = (long)kms->retry.try_timeout_ms;
	struct error pe;
	int r;

	snprintf(url, sizeof(url), "%s" TC_CREDS_PATH, c->metadata);
	snprintf(where, sizeof(where), "Tencent Cloud metadata %s", url);
	r = cloud_role_name(kms, c, url, NULL, where, role, e);
	if (r < 0)
		return r;
	snprintf(url, sizeof(url), "%s" TC_CREDS_PATH "%s", c->metadata, role);
	snprintf(where, sizeof(where), "Tencent Cloud metadata %s", url);
	r = cloud_metadata_call(&c->http, "GET", url, NULL, tmo, where, &cred, e);
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
	return cloud_open(kms, kms->data, e);
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
	const struct cloud_error *te;
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
	snprintf(region, sizeof(region), "X-TC-Region: %s", t->c.region);
	snprintf(ts, sizeof(ts), "X-TC-Timestamp: %llu", (unsigned long long)now);
	if (c->token) {
		tok = cloud_token_header("X-TC-Token: ", c->token);
		if (!tok)
			return kms_fail(e, -ENOMEM, false,
					"Tencent Cloud KMS: out of secure memory");
		headers[7] = tok;
	}
	snprintf(url, sizeof(url), "%s/", t->c.endpoints[i]);
	r = kms_rest_perform(&t->c.http,
			     &(struct http_request){.method = "POST",
						    .url = url,
						    .headers = headers,
						    .body = body,
						    .body_len = strlen(body),
						    .ca_file = t->c.ca_file,
						    .timeout_ms = (long)kms->retry.try_timeout_ms},
			     where, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		r = kms_fail(e, -EIO, resp.status >= 500 || resp.status == 429, "%s: HTTP %ld",
			     where, resp.status);
		e->http_status = resp.status;
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
	te = cloud_error_find(tc_errors, ELEMENTSOF(tc_errors), code);
	*ret_refresh = te && te->new_credentials;
	return cloud_fail_code(e, te, false, where, code, msg);
}

static int tc_call(struct kms *kms, const char *action, const char *key_id, json_t *req,
		   json_t **ret, char *where, size_t where_size, struct error *e)
{
	return cloud_call(kms, kms->data, action, key_id, req, ret, where, where_size, e);
}

/* EncryptionContext is a JSON string: {"keyd:luks-uuid":"<UUID>"}, always written the same. */
static char *context_for(struct kms *kms, const char *aad, struct error *e)
{
	json_auto_t *j = cloud_context(kms->data, aad, e);

	return j ? json_dumps(j, JSON_COMPACT) : NULL;
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
	m->state = cloud_state_find(tc_states, ELEMENTSOF(tc_states), state);
	if (m->state == SIZE_MAX)
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
	return r < 0 ? cloud_fail_reply(e, where, pe.msg) : 0;
}

/* The key's version as keyd records it: the time of its last rotation ("0": never). */
static void version_of(const struct tencent_meta *m, char *buf, size_t size)
{
	snprintf(buf, size, "%llu", (unsigned long long)m->last_rotate);
}

static int tc_usable(struct kms *kms, const char *key_id, struct tencent_meta *m, struct error *e)
{
	char where[CLOUD_WHERE_MAX];
	int r = tc_describe(kms, key_id, m, where, sizeof(where), e);

	if (r < 0)
		return r;
	return cloud_state_usable(kms->data, &tc_states[m->state], m->symmetric, where, e);
}

/* What Encrypt and ReEncrypt need first: the volume's EncryptionContext (into *ctx, secure
 * memory), a usable symmetric CMK, and its version now. */
static int tc_prepare(struct kms *kms, const char *key_id, const char *aad, char **ctx,
		      char *version, size_t size, struct error *e)
{
	struct tencent_meta m;
	int r;

	*ctx = context_for(kms, aad, e);
	if (!*ctx)
		return -EINVAL;
	r = tc_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	version_of(&m, version, size);
	return 0;
}

static int tc_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		   const char *aad, struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL, *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	char where[CLOUD_WHERE_MAX], version[32];
	int r;

	r = cloud_check_dek_len(kms->data, dek_len, e);
	if (r < 0)
		return r;
	/* The version before Encrypt: a rotation in between makes polling rewrap once. */
	r = tc_prepare(kms, key_id, aad, &ctx, version, sizeof(version), e);
	if (r < 0)
		return r;
	b64 = cloud_dek_b64(kms->data, dek, dek_len, e);
	if (!b64)
		return -ENOMEM;
	req = json_pack("{s:s, s:s, s:s}", "KeyId", key_id, "Plaintext", b64, "EncryptionContext",
			ctx);
	r = tc_call(kms, "Encrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	return cloud_reply_wrapped(kms->data, reply, "reply.Response", "CiphertextBlob", CHARS_B64,
				   where, version, ret, e);
}

/* A reply naming the CMK that did the work: it must be key_id (or key_id names an alias). */
static int check_key(json_t *reply, const char *field, const char *key_id, const char *where,
		     struct error *e)
{
	const char *id = json_string_value(json_object_get(reply, field));

	if (!id)
		return cloud_fail_reply(e, where, "reply.Response: no KeyId");
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
	_cleanup_secure_ char *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	char where[CLOUD_WHERE_MAX];
	int r;

	(void)rewrapped;
	ctx = context_for(kms, aad, e);
	if (!ctx)
		return -EINVAL;
	req = json_pack("{s:s, s:s}", "CiphertextBlob", wdek, "EncryptionContext", ctx);
	r = tc_call(kms, "Decrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = check_key(reply, "KeyId", key_id, where, e);
	if (r < 0)
		return r;
	return cloud_reply_dek(kms->data, reply, "reply.Response", "Plaintext", CHARS_B64, where,
			       ret_dek, ret_len, e);
}

static int tc_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		     struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *ctx = NULL;
	json_auto_t *req = NULL, *reply = NULL;
	char where[CLOUD_WHERE_MAX], version[32];
	int r;

	r = tc_prepare(kms, key_id, aad, &ctx, version, sizeof(version), e);
	if (r < 0)
		return r;
	req = json_pack("{s:s, s:s, s:s, s:s}", "CiphertextBlob", wdek, "DestinationKeyId", key_id,
			"SourceEncryptionContext", ctx, "DestinationEncryptionContext", ctx);
	r = tc_call(kms, "ReEncrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = check_key(reply, "SourceKeyId", key_id, where, e);
	if (r < 0)
		return r;
	return cloud_reply_wrapped(kms->data, reply, "reply.Response", "CiphertextBlob", CHARS_B64,
				   where, version, ret, e);
}

static int tc_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
		       struct error *e)
{
	char where[CLOUD_WHERE_MAX];
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
	char where[CLOUD_WHERE_MAX];
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
