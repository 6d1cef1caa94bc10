// SPDX-License-Identifier: GPL-2.0-or-later
/* The `aws` provider: AWS KMS over its JSON 1.1 protocol (Encrypt, Decrypt, ReEncrypt,
 * DescribeKey), every request signed by libcurl's CURLOPT_AWS_SIGV4, the WDEK bound to the
 * volume by the encryption context {"keyd:luks-uuid": "<UUID>"}. Credentials from a root 0600
 * file or the instance role through IMDSv2. One try per endpoint; backoff belongs to kms.c.
 * Never puts a secret, a session token or a key in a message. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cloud.h"
#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_aws.h"
#include "kms_cloud.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define AWS_IMDS_DEFAULT "http://169.254.169.254"
#define AWS_CREDS_PATH	 "/latest/meta-data/iam/security-credentials/"
#define AWS_IMDS_TTL	 "21600" /* seconds an IMDSv2 session token lives (the maximum) */
#define AWS_CT		 "Content-Type: application/x-amz-json-1.1"
#define AWS_TARGET	 "X-Amz-Target: TrentService."
#define AWS_TOKEN_HEADER "X-Amz-Security-Token: "
/* DescribeKey of a key that does not exist: AWS checks the signature first, so the answer
 * NotFoundException proves the credentials work (a probe without a key). */
#define AWS_PROBE_ALIAS "alias/keyd-probe-of-credentials"

/* Key ids, key ARNs, alias names and alias ARNs. */
#define CHARS_KEY_ID KMS_CHARS_ALNUM "-_/:."

static const struct cloud_file_keys aws_file_keys = {
	.id = "aws_access_key_id",
	.secret = "aws_secret_access_key",
	.token = "aws_session_token",
};

struct aws {
	struct cloud c; /* first: what every cloud provider has */
	char *sigv4;	/* "aws:amz:<region>:kms" */
};

/* KeyState (DescribeKey) and what it means here. */
static const struct cloud_state aws_states[] = {
	{"Enabled", KMS_KEY_ACTIVE, 0, NULL},
	{"Updating", KMS_KEY_ACTIVE, 0, NULL},
	{"Disabled", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	 "it was disabled; encrypt and decrypt are refused until it is enabled (EnableKey)"},
	{"PendingDeletion", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	 "it is scheduled for deletion and AWS refuses to use it; CancelKeyDeletion and EnableKey "
	 "bring it back before the waiting period ends"},
	{"PendingReplicaDeletion", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	 "it is a multi-Region replica scheduled for deletion"},
	{"Unavailable", KMS_KEY_SUSPENDED, -EKEYREVOKED, "its custom key store is disconnected"},
	{"PendingImport", KMS_KEY_PRE_ACTIVE, -ENOKEY, "its key material has not been imported"},
	{"Creating", KMS_KEY_PRE_ACTIVE, -ENOKEY, "it is still being created"},
};

/* Error __types (AWS KMS API Reference: each operation's errors and the common errors; the
 * JSON protocol's names for the signature errors) and what they mean here. */
static const struct cloud_error aws_errors[] = {
	{"ThrottlingException", -EBUSY, true, false,
	 "AWS KMS throttled the request; keyd backs off and tries again"},
	{"KeyUnavailableException", -EAGAIN, true, false, NULL},
	{"DependencyTimeoutException", -ETIMEDOUT, true, false, NULL},
	{"KMSInternalException", -EIO, true, false, NULL},
	{"InternalFailure", -EIO, true, false, NULL},
	{"ServiceUnavailable", -EAGAIN, true, false, NULL},
	{"ServiceUnavailableException", -EAGAIN, true, false, NULL},
	{"DisabledException", -EKEYREVOKED, false, false,
	 "the key is disabled; decrypt is refused until it is enabled"},
	{"KMSInvalidStateException", -EKEYREVOKED, false, false,
	 "the key's state does not allow this (pending deletion or import, or unavailable)"},
	{"NotFoundException", -ENOENT, false, false,
	 "no such key in this account and region: check key_id and region (keyd never creates "
	 "keys)"},
	{"InvalidArnException", -EINVAL, false, false, "key_id is not a valid key or alias ARN"},
	{"InvalidCiphertextException", -EBADMSG, false, false,
	 "the WDEK does not open with this key and this volume's encryption context (a token "
	 "copied from another volume, or a damaged token)"},
	{"IncorrectKeyException", -EBADMSG, false, false,
	 "the WDEK was made by another key than key_id"},
	{"InvalidKeyUsageException", -EOPNOTSUPP, false, false,
	 "keyd needs a symmetric (SYMMETRIC_DEFAULT) ENCRYPT_DECRYPT key"},
	{"AccessDeniedException", -EPERM, false, false,
	 "the key policy or IAM policy does not allow this call"},
	{"UnrecognizedClientException", -EACCES, false, true,
	 "AWS does not know this access key id, or the session token is invalid"},
	{"InvalidClientTokenId", -EACCES, false, true,
	 "AWS does not know this access key id, or the session token is invalid"},
	{"ExpiredTokenException", -EACCES, false, true, "the session token has expired"},
	{"InvalidSignatureException", -EACCES, false, false,
	 "the signature does not match: check the secret access key, the region, and the "
	 "host's clock"},
	{"SignatureDoesNotMatch", -EACCES, false, false,
	 "the signature does not match: check the secret access key and the region"},
	{"IncompleteSignatureException", -EACCES, false, false, NULL},
	{"IncompleteSignature", -EACCES, false, false, NULL},
	{"MissingAuthenticationTokenException", -EACCES, false, false, NULL},
	{"RequestExpired", -EACCES, false, false, "the host's clock is more than 15 minutes off"},
	{"ValidationException", -EINVAL, false, false, NULL},
	{"SerializationException", -EPROTO, false, false, NULL},
	{"UnknownOperationException", -EOPNOTSUPP, false, false,
	 "the endpoint is not AWS KMS (check endpoints)"},
};

static void aws_free(struct aws *a)
{
	if (!a)
		return;
	cloud_done(&a->c);
	free(a->sigv4);
	free(a);
}

static void aws_freep(struct aws **a)
{
	aws_free(*a);
}

/* The regional endpoint; FIPS and VPC endpoints are given in endpoints. */
static void aws_endpoint(const char *region, char *buf, size_t size)
{
	snprintf(buf, size, "https://kms.%s.amazonaws.com%s", region,
		 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

static int aws_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e);
static int aws_send(struct kms *kms, size_t i, const char *op, const char *body,
		    const struct cloud_creds *c, const char *where, json_t **ret, bool *ret_refresh,
		    struct error *e);

static const struct cloud_vendor aws_vendor = {
	.label = "AWS KMS",
	.region_hint = "an AWS region such as us-east-1",
	.region_max = 32,
	.role_key = "instance_role",
	.metadata_key = "imds_endpoint",
	.metadata_url = AWS_IMDS_DEFAULT,
	.role_kind = "IAM",
	.role_name_hint = "an IAM role name",
	.key_noun = "key",
	.usage_hint = "keyd needs a symmetric (SYMMETRIC_DEFAULT) ENCRYPT_DECRYPT key",
	.key_id_chars = CHARS_KEY_ID,
	.key_id_kinds = "a key ID, key ARN or alias",
	.file_keys = &aws_file_keys,
	.endpoint = aws_endpoint,
	.fetch = aws_fetch_role,
	.send = aws_send,
};

static int aws_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	_cleanup_(aws_freep) struct aws *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	r = cloud_parse(&a->c, &aws_vendor, obj, path, e);
	if (r < 0)
		return r;
	if (asprintf(&a->sigv4, "aws:amz:%s:kms", a->c.region) < 0) {
		a->sigv4 = NULL;
		return -ENOMEM;
	}
	kms->data = TAKE_PTR(a);
	return 0;
}

/* The instance role's credentials through IMDSv2: a session token (PUT), the role's name if
 * not configured, then its credentials. Called with the auth lock held. */
static int aws_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e)
{
	static const char *const put_headers[] = {
		"X-aws-ec2-metadata-token-ttl-seconds: " AWS_IMDS_TTL, NULL};
	struct cloud *c = kms->data;
	_cleanup_(http_response_done) struct http_response tok = {0}, cred = {0};
	_cleanup_secure_ char *hdr = NULL;
	json_auto_t *j = NULL;
	const char *headers[2] = {NULL, NULL};
	char url[KMS_REST_URL_MAX + CLOUD_ROLE_MAX + 64], where[sizeof(url) + 32],
		role[CLOUD_ROLE_MAX + 1];
	long tmo = (long)kms->retry.try_timeout_ms;
	struct error pe;
	int r;

	snprintf(url, sizeof(url), "%s/latest/api/token", c->metadata);
	snprintf(where, sizeof(where), "AWS IMDS %s", url);
	r = cloud_metadata_call(&c->http, "PUT", url, put_headers, tmo, where, &tok, e);
	if (r < 0)
		return r;
	if (tok.body.len == 0 || tok.body.len > CLOUD_TOKEN_MAX ||
	    !kms_rest_charset(kms_rest_body(&tok), KMS_CHARS_BASE64 "-_"))
		return kms_fail(e, -EPROTO, false, "%s: not an IMDSv2 session token", where);
	hdr = cloud_token_header("X-aws-ec2-metadata-token: ", kms_rest_body(&tok));
	if (!hdr)
		return kms_fail(e, -ENOMEM, false, "AWS IMDS: out of memory");
	headers[0] = hdr;

	snprintf(url, sizeof(url), "%s" AWS_CREDS_PATH, c->metadata);
	snprintf(where, sizeof(where), "AWS IMDS %s", url);
	r = cloud_role_name(kms, c, url, headers, where, role, e);
	if (r < 0)
		return r;
	snprintf(url, sizeof(url), "%s" AWS_CREDS_PATH "%s", c->metadata, role);
	snprintf(where, sizeof(where), "AWS IMDS %s", url);
	r = cloud_metadata_call(&c->http, "GET", url, headers, tmo, where, &cred, e);
	if (r < 0)
		return r;
	r = kms_rest_json(&cred, where, &j, e);
	if (r < 0)
		return r;
	r = aws_parse_role_credentials(j, ret, &pe);
	if (r < 0)
		return kms_fail(e, r, r == -EACCES, "%s: unexpected reply: %s", where, pe.msg);
	return 0;
}

int aws_parse_role_credentials(json_t *j, struct cloud_creds *ret, struct error *pe)
{
	const char *code = NULL, *id = NULL, *secret = NULL, *token = NULL, *exp = NULL;
	uint64_t expires;
	struct error jxe;
	int r;

	*ret = (struct cloud_creds){0};
	if ((r = jx_string(j, "reply", "Code", true, 64, &code, &jxe)) < 0 ||
	    (r = jx_string(j, "reply", "AccessKeyId", true, CLOUD_ID_MAX, &id, &jxe)) < 0 ||
	    (r = jx_string(j, "reply", "SecretAccessKey", true, CLOUD_SECRET_MAX, &secret, &jxe)) <
		    0 ||
	    (r = jx_string(j, "reply", "Token", true, CLOUD_TOKEN_MAX, &token, &jxe)) < 0 ||
	    (r = jx_string(j, "reply", "Expiration", true, 40, &exp, &jxe)) < 0)
		return error_set(pe, -EPROTO, "%s", jxe.msg);
	if (strcmp(code, "Success") != 0)
		return error_set(pe, -EACCES, "the role's credentials are not available (Code %s)",
				 kms_rest_charset(code, KMS_CHARS_ALNUM) ? code : "?");
	if (!id[0] || !secret[0] || !token[0] || !kms_rest_charset(id, KMS_CHARS_ALNUM))
		return error_set(pe, -EPROTO, "empty or malformed credentials");
	if (parse_rfc3339_us(exp, &expires) < 0)
		return error_set(pe, -EPROTO, "Expiration is not RFC 3339");
	return cloud_creds_set(ret, id, secret, token, expires, pe);
}

static int aws_open(struct kms *kms, struct error *e)
{
	return cloud_open(kms, kms->data, e);
}

/* "<namespace>#Type:<url>" -> "Type", as the JSON protocol allows a __type to be written. */
static void error_type(const char *s, char *buf, size_t size)
{
	const char *hash = s ? strrchr(s, '#') : NULL;

	if (hash)
		s = hash + 1;
	snprintf(buf, size, "%.*s", s ? (int)strcspn(s, ":") : 0, s ? s : "");
	if (!kms_rest_charset(buf, KMS_CHARS_ALNUM "._"))
		buf[0] = 0;
}

void aws_parse_error(const char *body, size_t n, char *type, size_t type_size, char *msg,
		     size_t msg_size)
{
	json_auto_t *j = json_loadb(body, n, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));

	error_type(json_string_value(json_object_get(j, "__type")), type, type_size);
	if (!m)
		m = json_string_value(json_object_get(j, "Message"));
	kms_rest_printable(msg, msg_size, m);
}

static int fail_status(struct error *e, const struct http_response *resp, const char *where,
		       bool *ret_refresh)
{
	const struct cloud_error *t;
	char type[64], what[96], m[KMS_REST_DETAIL_MAX];
	int r;

	aws_parse_error(kms_rest_body(resp), resp->body.len, type, sizeof(type), m, sizeof(m));
	t = type[0] ? cloud_error_find(aws_errors, ELEMENTSOF(aws_errors), type) : NULL;
	*ret_refresh = t && t->new_credentials;
	snprintf(what, sizeof(what), "HTTP %ld %s", resp->status, type[0] ? type : "error");
	r = cloud_fail_code(e, t, resp->status >= 500, where, what, m);
	if (e->http_status != 429)
		e->http_status = resp->status;
	if (e->retryable)
		e->retry_after_s = resp->retry_after_s;
	return r;
}

/* One signed request to endpoint @i. */
static int aws_send(struct kms *kms, size_t i, const char *op, const char *body,
		    const struct cloud_creds *c, const char *where, json_t **ret, bool *ret_refresh,
		    struct error *e)
{
	struct aws *a = kms->data;
	_cleanup_(http_response_done) struct http_response resp = {0};
	_cleanup_secure_ char *tok = NULL;
	char target[64], url[KMS_REST_URL_MAX + 2];
	const char *headers[] = {AWS_CT, target, NULL, NULL};
	int r;

	*ret_refresh = false;
	snprintf(target, sizeof(target), AWS_TARGET "%s", op);
	snprintf(url, sizeof(url), "%s/", a->c.endpoints[i]);
	if (c->token) {
		tok = cloud_token_header(AWS_TOKEN_HEADER, c->token);
		if (!tok)
			return kms_fail(e, -ENOMEM, false, "AWS KMS: out of secure memory");
		headers[2] = tok;
	}
	r = kms_rest_perform(&a->c.http,
			     &(struct http_request){.method = "POST",
						    .url = url,
						    .headers = headers,
						    .body = body,
						    .body_len = strlen(body),
						    .ca_file = a->c.ca_file,
						    .timeout_ms = (long)kms->retry.try_timeout_ms,
						    .aws_sigv4 = a->sigv4,
						    .aws_key_id = c->id,
						    .aws_secret = c->secret},
			     where, &resp, e);
	if (r < 0)
		return r;
	if (resp.status != 200)
		return fail_status(e, &resp, where, ret_refresh);
	return kms_rest_json(&resp, where, ret, e);
}

static int aws_call(struct kms *kms, const char *op, const char *key_id, json_t *req, json_t **ret,
		    char *where, size_t where_size, struct error *e)
{
	return cloud_call(kms, kms->data, op, key_id, req, ret, where, where_size, e);
}

int aws_parse_key_metadata(json_t *reply, struct aws_meta *m, struct error *pe)
{
	const char *state = NULL, *usage = NULL, *spec = NULL, *material = NULL;
	json_t *md = json_object_get(reply, "KeyMetadata");
	struct error jxe;
	int r;

	*m = (struct aws_meta){.state = SIZE_MAX};
	if (!json_is_object(md))
		return error_set(pe, -EPROTO, "reply.KeyMetadata: missing or not an object");
	if ((r = jx_string(md, "reply.KeyMetadata", "KeyState", true, 32, &state, &jxe)) < 0 ||
	    (r = jx_string(md, "reply.KeyMetadata", "KeyUsage", false, 32, &usage, &jxe)) < 0 ||
	    (r = jx_string(md, "reply.KeyMetadata", "KeySpec", false, 32, &spec, &jxe)) < 0 ||
	    (r = jx_string(md, "reply.KeyMetadata", "CurrentKeyMaterialId", false, KMS_VERSION_MAX,
			   &material, &jxe)) < 0)
		return error_set(pe, -EPROTO, "%s", jxe.msg);
	if (material && !kms_rest_charset(material, KMS_CHARS_ALNUM "-"))
		return error_set(pe, -EPROTO, "reply.KeyMetadata.CurrentKeyMaterialId: not an id");
	m->state = cloud_state_find(aws_states, ELEMENTSOF(aws_states), state);
	if (m->state == SIZE_MAX)
		return error_set(pe, -EPROTO, "the key is in unknown state %s",
				 kms_rest_charset(state, KMS_CHARS_ALNUM) ? state : "?");
	m->symmetric = (!usage || strcmp(usage, "ENCRYPT_DECRYPT") == 0) &&
		       (!spec || strcmp(spec, "SYMMETRIC_DEFAULT") == 0);
	snprintf(m->material, sizeof(m->material), "%s", material ? material : "");
	return 0;
}

static int aws_describe(struct kms *kms, const char *key_id, struct aws_meta *m, char *where,
			size_t where_size, struct error *e)
{
	json_auto_t *req = json_pack("{s:s}", "KeyId", key_id), *reply = NULL;
	struct error pe;
	int r;

	r = aws_call(kms, "DescribeKey", key_id, req, &reply, where, where_size, e);
	if (r < 0)
		return r;
	r = aws_parse_key_metadata(reply, m, &pe);
	return r < 0 ? cloud_fail_reply(e, where, pe.msg) : 0;
}

/* DescribeKey, and a clear refusal unless the key can encrypt now. */
static int aws_usable(struct kms *kms, const char *key_id, struct aws_meta *m, struct error *e)
{
	char where[CLOUD_WHERE_MAX];
	int r = aws_describe(kms, key_id, m, where, sizeof(where), e);

	if (r < 0)
		return r;
	return cloud_state_usable(kms->data, &aws_states[m->state], m->symmetric, where, e);
}

static int aws_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		    const char *aad, struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL;
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	char where[CLOUD_WHERE_MAX];
	struct aws_meta m;
	int r;

	r = cloud_check_dek_len(kms->data, dek_len, e);
	if (r < 0)
		return r;
	ctx = cloud_context(kms->data, aad, e);
	if (!ctx)
		return -EINVAL;
	/* The key material current before Encrypt: a rotation in between makes the version
	 * older than the WDEK, and polling then rewraps once; never the other way round. */
	r = aws_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	b64 = cloud_dek_b64(kms->data, dek, dek_len, e);
	if (!b64)
		return -ENOMEM;
	req = json_pack("{s:s, s:s, s:O}", "KeyId", key_id, "Plaintext", b64, "EncryptionContext",
			ctx);
	r = aws_call(kms, "Encrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	return cloud_reply_wrapped(kms->data, reply, "reply", "CiphertextBlob", KMS_CHARS_BASE64,
				   where, m.material, ret, e);
}

static int aws_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		      struct error *e)
{
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	char where[CLOUD_WHERE_MAX];
	int r;

	(void)rewrapped; /* AWS decrypts old key material without handing back a new WDEK */
	ctx = cloud_context(kms->data, aad, e);
	if (!ctx)
		return -EINVAL;
	/* KeyId too: AWS then refuses a WDEK made by any other key (IncorrectKeyException). */
	req = json_pack("{s:s, s:s, s:O}", "KeyId", key_id, "CiphertextBlob", wdek,
			"EncryptionContext", ctx);
	r = aws_call(kms, "Decrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	return cloud_reply_dek(kms->data, reply, "reply", "Plaintext", KMS_CHARS_BASE64, where,
			       ret_dek, ret_len, e);
}

static int aws_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      struct kms_wrapped *ret, struct error *e)
{
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	const char *ct = NULL, *material = NULL;
	char where[CLOUD_WHERE_MAX];
	struct aws_meta m;
	struct error jxe;
	int r;

	ctx = cloud_context(kms->data, aad, e);
	if (!ctx)
		return -EINVAL;
	r = aws_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	req = json_pack("{s:s, s:s, s:s, s:O, s:O}", "CiphertextBlob", wdek, "SourceKeyId", key_id,
			"DestinationKeyId", key_id, "SourceEncryptionContext", ctx,
			"DestinationEncryptionContext", ctx);
	r = aws_call(kms, "ReEncrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = cloud_reply_b64(reply, "reply", "CiphertextBlob", KMS_CHARS_BASE64, KMS_WDEK_MAX, &ct,
			    &jxe);
	if (r >= 0)
		r = jx_string(reply, "reply", "DestinationKeyMaterialId", false, KMS_VERSION_MAX,
			      &material, &jxe);
	if (r >= 0 && material && !kms_rest_charset(material, KMS_CHARS_ALNUM "-"))
		r = jx_fail(&jxe, "reply.DestinationKeyMaterialId: not an id");
	if (r < 0)
		return cloud_fail_reply(e, where, jxe.msg);
	return cloud_wrapped_set(kms->data, ret, ct, material ? material : m.material, e);
}

static int aws_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			struct error *e)
{
	char where[CLOUD_WHERE_MAX];
	struct aws_meta m;
	int r;

	r = aws_describe(kms, key_id, &m, where, sizeof(where), e);
	if (r < 0)
		return r;
	*ret = (struct kms_key_info){.state = aws_states[m.state].state};
	snprintf(ret->version, sizeof(ret->version), "%s", m.material);
	return 0;
}

static int aws_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct aws_meta m;
	char where[CLOUD_WHERE_MAX];
	int r;

	if (key_id)
		return aws_usable(kms, key_id, &m, e);
	r = aws_describe(kms, AWS_PROBE_ALIAS, &m, where, sizeof(where), e);
	return r == -ENOENT ? 0 : r;
}

static void aws_done(struct kms *kms)
{
	aws_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_aws = {
	.name = "aws",
	.summary = "AWS KMS (JSON 1.1, SigV4 by libcurl; credentials file or instance role)",
	.parse = aws_parse,
	.open = aws_open,
	.wrap = aws_wrap,
	.unwrap = aws_unwrap,
	.rewrap = aws_rewrap,
	.key_info = aws_key_info,
	.probe = aws_probe,
	.done = aws_done,
};
