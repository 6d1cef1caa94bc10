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

#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_aws.h"
#include "kms_cloud.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define AWS_REGION_MAX	  32
#define AWS_PLAINTEXT_MAX 1024
#define AWS_DEK_LEN	  32
#define AWS_WHERE_MAX	  (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 64)
#define AWS_IMDS_DEFAULT  "http://169.254.169.254"
#define AWS_IMDS_TTL	  "21600" /* seconds an IMDSv2 session token lives (the maximum) */
#define AWS_CT		  "Content-Type: application/x-amz-json-1.1"
#define AWS_TARGET	  "X-Amz-Target: TrentService."
#define AWS_TOKEN_HEADER  "X-Amz-Security-Token: "
/* DescribeKey of a key that does not exist: AWS checks the signature first, so the answer
 * NotFoundException proves the credentials work (a probe without a key). */
#define AWS_PROBE_ALIAS "alias/keyd-probe-of-credentials"

#define CHARS_REGION KMS_CHARS_ALNUM "-"
/* Key ids, key ARNs, alias names and alias ARNs. */
#define CHARS_KEY_ID KMS_CHARS_ALNUM "-_/:."
#define CHARS_ROLE   KMS_CHARS_ALNUM "+=,.@_-"

static const struct cloud_file_keys aws_file_keys = {
	.id = "aws_access_key_id",
	.secret = "aws_secret_access_key",
	.token = "aws_session_token",
};

struct aws {
	char *region;
	char **endpoints; /* without trailing '/' */
	size_t n_endpoints;
	char *sigv4; /* "aws:amz:<region>:kms" */
	char *ca_file;
	char *imds; /* instance role: the metadata service; NULL with a credentials file */
	char *role; /* NULL: the instance's one role, as IMDS lists it */
	struct http_client http;
	struct cloud_auth auth;
};

/* KeyState (DescribeKey) and what it means here. */
static const struct aws_state {
	const char *name;
	enum kms_key_state state;
	int error; /* 0: usable */
	const char *effect;
} aws_states[] = {
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
static const struct aws_error {
	const char *type;
	int error;
	bool retryable;
	bool new_credentials; /* fresh role credentials may help, once */
	const char *hint;
} aws_errors[] = {
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
	http_client_done(&a->http);
	cloud_auth_done(&a->auth);
	kms_rest_endpoints_free(a->endpoints, a->n_endpoints);
	free(a->region);
	free(a->sigv4);
	free(a->ca_file);
	free(a->imds);
	free(a->role);
	free(a);
}

static void aws_freep(struct aws **a)
{
	aws_free(*a);
}

static int parse_role(struct aws *a, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"imds_endpoint", "role", NULL};
	const char *imds = AWS_IMDS_DEFAULT, *role = NULL;
	char p[KMS_NAME_MAX + 64];
	int r;

	snprintf(p, sizeof(p), "%s.instance_role", path);
	if (json_is_true(obj))
		obj = NULL;
	else if (!json_is_object(obj))
		return jx_fail(e, "%s: must be true or an object {imds_endpoint, role}", p);
	if (obj) {
		if ((r = jx_only_keys(obj, p, keys, e)) < 0 ||
		    (r = jx_string(obj, p, "imds_endpoint", false, KMS_REST_URL_MAX, &imds, e)) <
			    0 ||
		    (r = jx_string(obj, p, "role", false, CLOUD_ROLE_MAX, &role, e)) < 0)
			return r;
		if (role && (!role[0] || !kms_rest_charset(role, CHARS_ROLE)))
			return jx_fail(e, "%s.role: must be an IAM role name", p);
	}
	snprintf(p, sizeof(p), "%s.instance_role.imds_endpoint", path);
	r = cloud_metadata_url(imds, p, NULL, &a->imds, e);
	if (r < 0)
		return r;
	a->role = role ? strdup(role) : NULL;
	return role && !a->role ? -ENOMEM : 0;
}

static int aws_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {
		"provider",	 "region",  "endpoints", "credentials_file",
		"instance_role", "ca_file", NULL};
	_cleanup_(aws_freep) struct aws *a = NULL;
	const char *region = NULL, *file = NULL, *ca_file = NULL;
	json_t *role = json_object_get(obj, "instance_role");
	char url[KMS_REST_URL_MAX + 1];
	int r;

	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "region", true, AWS_REGION_MAX, &region, e)) < 0 ||
	    (r = jx_string(obj, path, "credentials_file", false, PATH_MAX - 1, &file, e)) < 0 ||
	    (r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca_file, e)) < 0)
		return r;
	if (!region[0] || !kms_rest_charset(region, CHARS_REGION))
		return jx_fail(e, "%s.region: must be an AWS region such as us-east-1", path);
	if (!file == !role)
		return jx_fail(e, "%s: give exactly one of credentials_file and instance_role",
			       path);

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	cloud_auth_init(&a->auth);
	if (json_object_get(obj, "endpoints")) {
		r = kms_rest_endpoints(obj, path, &a->endpoints, &a->n_endpoints, e);
		if (r < 0)
			return r;
	} else {
		/* The regional endpoint; FIPS and VPC endpoints are given in endpoints. */
		snprintf(url, sizeof(url), "https://kms.%s.amazonaws.com%s", region,
			 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
		a->endpoints = calloc(1, sizeof(*a->endpoints));
		if (!a->endpoints || !(a->endpoints[0] = strdup(url)))
			return -ENOMEM;
		a->n_endpoints = 1;
	}
	if (role) {
		r = parse_role(a, role, path, e);
		if (r < 0)
			return r;
	}
	a->region = strdup(region);
	a->ca_file = ca_file ? strdup(ca_file) : NULL;
	a->auth.file = file ? strdup(file) : NULL;
	a->auth.file_key = "credentials_file";
	a->auth.keys = &aws_file_keys;
	if (asprintf(&a->sigv4, "aws:amz:%s:kms", region) < 0)
		a->sigv4 = NULL;
	if (!a->region || !a->sigv4 || (ca_file && !a->ca_file) || (file && !a->auth.file))
		return -ENOMEM;
	kms->data = TAKE_PTR(a);
	return 0;
}

/* The instance role's credentials through IMDSv2: a session token (PUT), the role's name if
 * not configured, then its credentials. Called with the auth lock held. */
static int aws_fetch_role(struct kms *kms, struct cloud_creds *ret, struct error *e)
{
	static const char *const put_headers[] = {
		"X-aws-ec2-metadata-token-ttl-seconds: " AWS_IMDS_TTL, NULL};
	struct aws *a = kms->data;
	_cleanup_(http_response_done) struct http_response tok = {0}, list = {0}, cred = {0};
	_cleanup_secure_ char *hdr = NULL;
	json_auto_t *j = NULL;
	const char *headers[2] = {NULL, NULL};
	char url[KMS_REST_URL_MAX + CLOUD_ROLE_MAX + 64], where[sizeof(url) + 32],
		role[CLOUD_ROLE_MAX + 1];
	long tmo = (long)kms->retry.try_timeout_ms;
	struct error pe;
	int r;

	snprintf(url, sizeof(url), "%s/latest/api/token", a->imds);
	snprintf(where, sizeof(where), "AWS IMDS %s", url);
	r = cloud_metadata_call(&a->http, "PUT", url, put_headers, tmo, where, &tok, e);
	if (r < 0)
		return r;
	if (tok.body.len == 0 || tok.body.len > CLOUD_TOKEN_MAX ||
	    !kms_rest_charset(kms_rest_body(&tok), KMS_CHARS_BASE64 "-_"))
		return kms_fail(e, -EPROTO, false, "%s: not an IMDSv2 session token", where);
	if (asprintf(&hdr, "X-aws-ec2-metadata-token: %s", kms_rest_body(&tok)) < 0)
		hdr = NULL;
	/* asprintf allocates from the normal heap: move it to secure memory at once. */
	if (hdr) {
		char *s = secmem_strdup(hdr);

		explicit_bzero(hdr, strlen(hdr));
		free(hdr);
		hdr = s;
	}
	if (!hdr)
		return kms_fail(e, -ENOMEM, false, "AWS IMDS: out of memory");
	headers[0] = hdr;

	if (a->role)
		snprintf(role, sizeof(role), "%s", a->role);
	else {
		snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/",
			 a->imds);
		snprintf(where, sizeof(where), "AWS IMDS %s", url);
		r = cloud_metadata_call(&a->http, "GET", url, headers, tmo, where, &list, e);
		if (r < 0)
			return r;
		snprintf(role, sizeof(role), "%.*s", (int)strcspn(kms_rest_body(&list), "\r\n"),
			 kms_rest_body(&list));
		if (!role[0] || !kms_rest_charset(role, CHARS_ROLE))
			return kms_fail(e, -ENOENT, false,
					"%s: no IAM role is attached to this instance", where);
	}
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", a->imds,
		 role);
	snprintf(where, sizeof(where), "AWS IMDS %s", url);
	r = cloud_metadata_call(&a->http, "GET", url, headers, tmo, where, &cred, e);
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
	if (parse_rfc3339_us(exp, &ret->expires_real_us) < 0)
		return error_set(pe, -EPROTO, "Expiration is not RFC 3339");
	ret->id = secmem_strdup(id);
	ret->secret = secmem_strdup(secret);
	ret->token = secmem_strdup(token);
	if (!ret->id || !ret->secret || !ret->token) {
		cloud_creds_done(ret);
		return error_set(pe, -ENOMEM, "out of secure memory");
	}
	return 0;
}

static int aws_open(struct kms *kms, struct error *e)
{
	struct aws *a = kms->data;
	int r;

	r = kms_rest_ca_file(kms->name, a->ca_file, e);
	if (r < 0)
		return r;
	r = http_client_init(&a->http);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s: cannot set up the HTTP client: %s", kms->name,
				strerror(-r));
	a->auth.fetch = aws_fetch_role;
	return 0;
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
	const struct aws_error *t = NULL;
	char type[64], m[KMS_REST_DETAIL_MAX];
	int r;

	aws_parse_error(kms_rest_body(resp), resp->body.len, type, sizeof(type), m, sizeof(m));
	for (size_t i = 0; i < ELEMENTSOF(aws_errors); i++)
		if (strcmp(aws_errors[i].type, type) == 0)
			t = &aws_errors[i];
	*ret_refresh = t && t->new_credentials;
	r = kms_fail(e, t ? t->error : -EIO, t ? t->retryable : resp->status >= 500,
		     "%s: HTTP %ld %s%s%s%s%s%s", where, resp->status, type[0] ? type : "error",
		     m[0] ? ": " : "", m, t && t->hint ? " (" : "", t && t->hint ? t->hint : "",
		     t && t->hint ? ")" : "");
	e->http_status = resp->status;
	if (e->retryable)
		e->retry_after_s = resp->retry_after_s;
	return r;
}

static const char *aws_where(char *buf, size_t size, const char *endpoint, const char *op,
			     const char *key_id)
{
	snprintf(buf, size, "AWS KMS %s: %s of key %s", endpoint, op, key_id);
	return buf;
}

/* One signed request to one endpoint. */
static int aws_send(struct kms *kms, const char *endpoint, const char *op, const char *body,
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
	snprintf(url, sizeof(url), "%s/", endpoint);
	if (c->token) {
		tok = secmem_alloc(strlen(AWS_TOKEN_HEADER) + strlen(c->token) + 1);
		if (!tok)
			return kms_fail(e, -ENOMEM, false, "AWS KMS: out of secure memory");
		strcpy(tok, AWS_TOKEN_HEADER);
		strcat(tok, c->token);
		headers[2] = tok;
	}
	r = kms_rest_perform(&a->http,
			     &(struct http_request){.method = "POST",
						    .url = url,
						    .headers = headers,
						    .body = body,
						    .body_len = strlen(body),
						    .ca_file = a->ca_file,
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

/* Runs @op with @req against the endpoints in order, moving on only after a retryable
 * failure. Role credentials that AWS calls expired or unknown buy one fresh set and one more
 * try at the same endpoint. */
static int aws_call(struct kms *kms, const char *op, const char *key_id, json_t *req, json_t **ret,
		    char *where, size_t where_size, struct error *e)
{
	struct aws *a = kms->data;
	_cleanup_secure_ char *body = NULL;
	struct cloud_creds c = {0};
	bool refresh, retried = false;
	uint64_t gen;
	int r;

	if (!key_id[0] || strlen(key_id) > KMS_KEY_ID_MAX ||
	    !kms_rest_charset(key_id, CHARS_KEY_ID))
		return kms_fail(e, -EINVAL, false,
				"AWS KMS: %s: the key id is not a key ID, key ARN or alias", op);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false, "AWS KMS: out of secure memory for the request");
	r = cloud_auth_get(kms, &a->auth, 0, &c, &gen, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < a->n_endpoints; i++) {
		aws_where(where, where_size, a->endpoints[i], op, key_id);
		r = aws_send(kms, a->endpoints[i], op, body, &c, where, ret, &refresh, e);
		if (r < 0 && refresh && c.token && !retried) {
			retried = true;
			cloud_creds_done(&c);
			r = cloud_auth_get(kms, &a->auth, gen, &c, &gen, e);
			if (r >= 0)
				r = aws_send(kms, a->endpoints[i], op, body, &c, where, ret,
					     &refresh, e);
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

/* The volume's encryption context, {"keyd:luks-uuid": "<UUID>"}, from the AAD. */
static json_t *context_for(const char *aad, struct error *e)
{
	char uuid[CLOUD_UUID_MAX + 1];

	if (cloud_context_uuid(aad, uuid, sizeof(uuid)) < 0) {
		kms_fail(e, -EINVAL, false, "AWS KMS: the associated data is not keyd:v1:<UUID>");
		return NULL;
	}
	return json_pack("{s:s}", CLOUD_CONTEXT_KEY, uuid);
}

static int reply_blob(json_t *reply, const char *key, size_t max, const char **ret,
		      struct error *jxe)
{
	int r = jx_string(reply, "reply", key, true, max, ret, jxe);

	if (r >= 0 && (!(*ret)[0] || !kms_rest_charset(*ret, KMS_CHARS_BASE64)))
		r = jx_fail(jxe, "reply.%s: not base64", key);
	return r;
}

static int wrapped_set(struct kms_wrapped *w, const char *wdek, const char *version,
		       struct error *e)
{
	w->wdek = strdup(wdek);
	w->key_version = version && version[0] ? strdup(version) : NULL;
	if (!w->wdek || (version && version[0] && !w->key_version)) {
		kms_wrapped_done(w);
		return kms_fail(e, -ENOMEM, false, "AWS KMS: out of memory");
	}
	return 0;
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
	for (size_t i = 0; i < ELEMENTSOF(aws_states); i++)
		if (strcmp(aws_states[i].name, state) == 0)
			m->state = i;
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
	return r < 0 ? fail_reply(e, where, pe.msg) : 0;
}

/* DescribeKey, and a clear refusal unless the key can encrypt now. */
static int aws_usable(struct kms *kms, const char *key_id, struct aws_meta *m, struct error *e)
{
	char where[AWS_WHERE_MAX];
	int r = aws_describe(kms, key_id, m, where, sizeof(where), e);

	if (r < 0)
		return r;
	if (aws_states[m->state].error)
		return kms_fail(e, aws_states[m->state].error, false, "%s: the key is %s: %s",
				where, aws_states[m->state].name, aws_states[m->state].effect);
	if (!m->symmetric)
		return kms_fail(
			e, -EOPNOTSUPP, false,
			"%s: keyd needs a symmetric (SYMMETRIC_DEFAULT) ENCRYPT_DECRYPT key",
			where);
	return 0;
}

static int aws_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		    const char *aad, struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL;
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	const char *ct = NULL;
	char where[AWS_WHERE_MAX];
	struct aws_meta m;
	struct error jxe;
	int r;

	if (dek_len != AWS_DEK_LEN)
		return kms_fail(e, -EINVAL, false,
				"AWS KMS: refusing to wrap a %zu-byte key, expected %d", dek_len,
				AWS_DEK_LEN);
	ctx = context_for(aad, e);
	if (!ctx)
		return -EINVAL;
	/* The key material current before Encrypt: a rotation in between makes the version
	 * older than the WDEK, and polling then rewraps once; never the other way round. */
	r = aws_usable(kms, key_id, &m, e);
	if (r < 0)
		return r;
	if (b64_encode(dek, dek_len, &b64) < 0)
		return kms_fail(e, -ENOMEM, false, "AWS KMS: out of secure memory for the key");
	req = json_pack("{s:s, s:s, s:O}", "KeyId", key_id, "Plaintext", b64, "EncryptionContext",
			ctx);
	r = aws_call(kms, "Encrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = reply_blob(reply, "CiphertextBlob", KMS_WDEK_MAX, &ct, &jxe);
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	return wrapped_set(ret, ct, m.material, e);
}

static int aws_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		      struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	const char *pt = NULL;
	char where[AWS_WHERE_MAX];
	struct error jxe;
	size_t n;
	int r;

	(void)rewrapped; /* AWS decrypts old key material without handing back a new WDEK */
	ctx = context_for(aad, e);
	if (!ctx)
		return -EINVAL;
	/* KeyId too: AWS then refuses a WDEK made by any other key (IncorrectKeyException). */
	req = json_pack("{s:s, s:s, s:O}", "KeyId", key_id, "CiphertextBlob", wdek,
			"EncryptionContext", ctx);
	r = aws_call(kms, "Decrypt", key_id, req, &reply, where, sizeof(where), e);
	if (r < 0)
		return r;
	r = reply_blob(reply, "Plaintext", AWS_PLAINTEXT_MAX, &pt, &jxe);
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "AWS KMS: out of secure memory for the key");
	if (r < 0)
		return fail_reply(e, where, "reply.Plaintext: not base64");
	if (n != AWS_DEK_LEN)
		return kms_fail(e, -EPROTO, false, "%s: KMS returned a %zu-byte key, expected %d",
				where, n, AWS_DEK_LEN);
	*ret_dek = TAKE_PTR(dek);
	*ret_len = n;
	return 0;
}

static int aws_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		      struct kms_wrapped *ret, struct error *e)
{
	json_auto_t *ctx = NULL, *req = NULL, *reply = NULL;
	const char *ct = NULL, *material = NULL;
	char where[AWS_WHERE_MAX];
	struct aws_meta m;
	struct error jxe;
	int r;

	ctx = context_for(aad, e);
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
	r = reply_blob(reply, "CiphertextBlob", KMS_WDEK_MAX, &ct, &jxe);
	if (r >= 0)
		r = jx_string(reply, "reply", "DestinationKeyMaterialId", false, KMS_VERSION_MAX,
			      &material, &jxe);
	if (r >= 0 && material && !kms_rest_charset(material, KMS_CHARS_ALNUM "-"))
		r = jx_fail(&jxe, "reply.DestinationKeyMaterialId: not an id");
	if (r < 0)
		return fail_reply(e, where, jxe.msg);
	return wrapped_set(ret, ct, material ? material : m.material, e);
}

static int aws_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			struct error *e)
{
	char where[AWS_WHERE_MAX];
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
	char where[AWS_WHERE_MAX];
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
