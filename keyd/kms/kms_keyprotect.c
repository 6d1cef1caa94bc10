// SPDX-License-Identifier: GPL-2.0-or-later
/* The `keyprotect` provider: IBM Key Protect and Hyper Protect Crypto Services over their v2 REST
 * API (wrap, unwrap, rewrap, key metadata, event acknowledgement), authenticated by an IAM API
 * key traded for a cached bearer token. One try per endpoint, in order; backoff belongs to
 * kms.c. Never puts the API key, a token or a key in a message. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define KP_INSTANCE_ID_MAX    64
#define KP_TOKEN_MAX	      16384
#define KP_TOKEN_LIFETIME_MAX 86400
#define KP_PLAINTEXT_MAX      1024
#define KP_FORM_MAX	      (128 + 3 * CREDENTIAL_MAX)
#define KP_EVENT_ID_MAX	      128
#define KP_WHERE_MAX	      (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 64)
#define KP_DEK_LEN	      32
/* Refresh a token when less than a tenth of its lifetime, or this long, is left. */
#define KP_REFRESH_MIN_US (60 * 1000000ULL)

#define KP_IAM_DEFAULT	   "https://iam.cloud.ibm.com"
#define KP_IAM_TOKEN_PATH  "/identity/token"
#define KP_IAM_GRANT	   "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey="
#define KP_AUTH_PREFIX	   "Authorization: Bearer "
#define KP_INSTANCE_PREFIX "bluemix-instance: "
#define KP_CT_KEY_ACTION   "application/vnd.ibm.kms.key_action+json"
#define KP_CT_JSON	   "application/json"
#define KP_EVENT_ACK_TYPE  "application/vnd.ibm.kms.event_acknowledge+json"

/* Key IDs are UUIDs; aliases are letters, digits, '-' and '_': safe in a URL path as they are. */
#define CHARS_KEY_ID	  KMS_CHARS_ALNUM "-_"
#define CHARS_INSTANCE_ID KMS_CHARS_ALNUM "-"
/* RFC 6750 b64token: what may follow "Bearer " in a header line. */
#define CHARS_TOKEN KMS_CHARS_ALNUM "-._~+/="
/* RFC 3986 unreserved: left as is in a form value; everything else is %XX. */
#define CHARS_FORM_PLAIN KMS_CHARS_ALNUM "-._~"
/* Event IDs go into a JSON body, not a URL; still, only what IDs are made of. */
#define CHARS_EVENT_ID KMS_CHARS_ALNUM "-_.:"

struct kp {
	char **endpoints; /* without trailing '/' */
	size_t n_endpoints;
	char *iam_url; /* <iam_endpoint>/identity/token */
	char *instance_header;
	char *api_key_file;
	char *ca_file;	  /* NULL: system trust store */
	uint8_t *api_key; /* secure memory */
	size_t api_key_len;
	struct http_client http;

	pthread_mutex_t lock;		       /* guards the token cache below */
	char *auth;			       /* "Authorization: Bearer …", secure memory */
	uint64_t auth_gen;		       /* bumped by every new token */
	uint64_t refresh_at_us, expires_at_us; /* CLOCK_MONOTONIC */
};

/* One Key Protect request: the key it is about and what it does to it. */
struct kp_op {
	const char *what; /* for messages: "wrap", "unwrap", "metadata read" */
	const char *key_id;
	const char *method;
	const char *suffix;	  /* after /api/v2/keys/<id> */
	const char *path;	  /* instead of /api/v2/keys/<id><suffix>, if set */
	const char *body;	  /* secure memory, or NULL */
	const char *content_type; /* of the body; default KP_CT_KEY_ACTION */
	bool no_reply;		  /* any 2xx is success; the body is not read */
};

/* What an HTTP status from Key Protect or IAM means here (iam_error: where IAM means
 * something else). Unlisted 5xx are retryable -EIO, any other status a final -EIO. */
static const struct kp_status {
	long status;
	int error;
	int iam_error;
	bool retryable;
} kp_statuses[] = {
	{400, -EINVAL, -EACCES, false},	  /* IAM: BXNIM0415E, API key not found */
	{401, -EACCES, -EACCES, false},	  /* token rejected, or no access to this instance */
	{403, -EPERM, -EPERM, false},	  /* the role does not allow this action */
	{404, -ENOENT, -ENOENT, false},	  /* KEY_NOT_FOUND_ERR */
	{409, -EKEYREVOKED, -EIO, false}, /* KEY_ACTION_INVALID_STATE_ERR: key disabled */
	{410, -EKEYREVOKED, -EIO, false}, /* KEY_DELETED_ERR */
	{422, -EBADMSG, -EIO, false},	  /* UNPROCESSABLE_CIPHERTEXT_ERR: wrong WDEK or AAD */
	{429, -EBUSY, -EBUSY, true},	  /* rate limited; Retry-After says when */
	{501, -EOPNOTSUPP, -EOPNOTSUPP, false},
};

/* Key states as the metadata reports them (NIST SP 800-57 numbering; 4 is unused). */
static const struct kp_state {
	const char *name;
	enum kms_key_state state;
	int error; /* 0: usable */
	const char *effect;
} kp_states[] = {
	[0] = {"pre-activation", KMS_KEY_PRE_ACTIVE, -ENOKEY, "it cannot be used yet"},
	[1] = {"active", KMS_KEY_ACTIVE, 0, NULL},
	[2] = {"suspended", KMS_KEY_SUSPENDED, -EKEYREVOKED,
	       "it was disabled; wrap and unwrap are refused until it is enabled"},
	[3] = {"deactivated (expired)", KMS_KEY_EXPIRED, -EKEYEXPIRED,
	       "it expired; unwrap still works, wrap does not"},
	[5] = {"destroyed", KMS_KEY_DESTROYED, -EKEYREVOKED,
	       "it was deleted; wrap and unwrap are refused"},
};

/* What an adopter tells Key Protect it now holds (event_ack's adopterKeyState). Only
 * DEK_ENABLED is spelled out in IBM's documentation; see docs/providers/keyprotect.md. */
static const char *const kp_adopter_states[_KMS_KEY_STATE_MAX] = {
	[KMS_KEY_ACTIVE] = "DEK_ENABLED",
	[KMS_KEY_SUSPENDED] = "DEK_DISABLED",
	[KMS_KEY_DESTROYED] = "DEK_DELETED",
};

static void kp_free(struct kp *kp)
{
	if (!kp)
		return;
	http_client_done(&kp->http);
	pthread_mutex_destroy(&kp->lock);
	secmem_free(kp->auth);
	secmem_free(kp->api_key);
	kms_rest_endpoints_free(kp->endpoints, kp->n_endpoints);
	free(kp->iam_url);
	free(kp->instance_header);
	free(kp->api_key_file);
	free(kp->ca_file);
	free(kp);
}

static void kp_freep(struct kp **kp)
{
	kp_free(*kp);
}

static int kp_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"provider",	  "endpoints",	  "iam_endpoint",
					   "instance_id", "api_key_file", "ca_file",
					   NULL};
	_cleanup_(kp_freep) struct kp *kp = NULL;
	const char *instance = NULL, *api_key_file = NULL, *ca_file = NULL, *iam = KP_IAM_DEFAULT;
	char p[KMS_NAME_MAX + 64];
	int r;

	r = jx_only_keys(obj, path, keys, e);
	if (r < 0)
		return r;
	r = jx_string(obj, path, "instance_id", true, KP_INSTANCE_ID_MAX, &instance, e);
	if (r < 0)
		return r;
	if (!kms_rest_charset(instance, CHARS_INSTANCE_ID))
		return jx_fail(e,
			       "%s.instance_id: must be a Key Protect instance ID "
			       "(letters, digits and '-')",
			       path);
	r = jx_string(obj, path, "api_key_file", true, PATH_MAX - 1, &api_key_file, e);
	if (r < 0)
		return r;
	r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca_file, e);
	if (r < 0)
		return r;
	r = jx_string(obj, path, "iam_endpoint", false, KMS_REST_URL_MAX, &iam, e);
	if (r < 0)
		return r;

	kp = calloc(1, sizeof(*kp));
	if (!kp)
		return -ENOMEM;
	pthread_mutex_init(&kp->lock, NULL);
	r = kms_rest_endpoints(obj, path, &kp->endpoints, &kp->n_endpoints, e);
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s.iam_endpoint", path);
	r = kms_rest_url(iam, p, KP_IAM_TOKEN_PATH, &kp->iam_url, e);
	if (r < 0)
		return r;
	kp->instance_header = malloc(strlen(KP_INSTANCE_PREFIX) + strlen(instance) + 1);
	kp->api_key_file = strdup(api_key_file);
	kp->ca_file = ca_file ? strdup(ca_file) : NULL;
	if (!kp->instance_header || !kp->api_key_file || (ca_file && !kp->ca_file))
		return -ENOMEM;
	strcpy(kp->instance_header, KP_INSTANCE_PREFIX);
	strcat(kp->instance_header, instance);
	kms->data = TAKE_PTR(kp);
	return 0;
}

static int kp_open(struct kms *kms, struct error *e)
{
	struct kp *kp = kms->data;
	_cleanup_secure_ uint8_t *key = NULL;
	size_t n;
	int r;

	r = kms_rest_credential(kms->name, "api_key_file", kp->api_key_file, &key, &n, e);
	if (r < 0)
		return r;
	r = kms_rest_open(kms->name, kp->ca_file, &kp->http, e);
	if (r < 0)
		return r;
	kp->api_key = TAKE_PTR(key);
	kp->api_key_len = n;
	return 0;
}

/* Key Protect says why in resources[0].reasons[0].{code,message} or resources[0].errorMsg;
 * IAM in errorCode and errorMessage. Nothing else of the body is quoted. */
static int fail_status(struct error *e, const struct http_response *resp, bool iam,
		       const char *where)
{
	json_auto_t *j = json_loadb(kms_rest_body(resp), resp->body.len, 0, NULL);
	json_t *res = json_array_get(json_object_get(j, "resources"), 0);
	json_t *reason = json_array_get(json_object_get(res, "reasons"), 0);
	const char *code = json_string_value(json_object_get(reason, "code"));
	const char *msg = json_string_value(json_object_get(reason, "message"));
	const struct kp_status *s = NULL;
	char c[64], m[KMS_REST_DETAIL_MAX], detail[sizeof(c) + sizeof(m) + 2];
	int r;

	if (!code)
		code = json_string_value(json_object_get(j, "errorCode"));
	if (!msg)
		msg = json_string_value(json_object_get(res, "errorMsg"));
	if (!msg)
		msg = json_string_value(json_object_get(j, "errorMessage"));
	kms_rest_printable(c, sizeof(c), code);
	kms_rest_printable(m, sizeof(m), msg);
	snprintf(detail, sizeof(detail), "%s%s%s", c, c[0] && m[0] ? ": " : "", m);
	for (size_t i = 0; i < ELEMENTSOF(kp_statuses); i++)
		if (kp_statuses[i].status == resp->status)
			s = &kp_statuses[i];
	r = kms_fail(e,
		     !s	   ? -EIO
		     : iam ? s->iam_error
			   : s->error,
		     s ? s->retryable : resp->status >= 500, "%s: HTTP %ld%s%s", where,
		     resp->status, detail[0] ? " " : "", detail);
	e->http_status = resp->status;
	if (e->retryable)
		e->retry_after_s = resp->retry_after_s;
	return r;
}

/* One HTTPS request, to IAM or Key Protect. With @ret its answer must be 200 with a JSON
 * object; without, any 2xx will do and the body is not read. */
static int kp_http(struct kp *kp, bool iam, const char *where, const struct http_request *req,
		   long *ret_status, json_t **ret, struct error *e)
{
	_cleanup_(http_response_done) struct http_response resp = {0};
	int r;

	r = kms_rest_perform(&kp->http, req, where, &resp, e);
	if (r < 0)
		return r;
	*ret_status = resp.status;
	if (!ret && resp.status >= 200 && resp.status < 300)
		return 0;
	if (resp.status != 200)
		return fail_status(e, &resp, iam, where);
	return kms_rest_json(&resp, where, ret, e);
}

/* Builds the IAM form in secure memory: the API key, %-encoded, never leaves it. */
static int iam_form(const struct kp *kp, struct secbuf *form)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3] = {'%'};
	int r;

	r = secbuf_append(form, KP_IAM_GRANT, strlen(KP_IAM_GRANT));
	for (size_t i = 0; r >= 0 && i < kp->api_key_len; i++) {
		uint8_t c = kp->api_key[i];

		if (memchr(CHARS_FORM_PLAIN, c, strlen(CHARS_FORM_PLAIN))) {
			r = secbuf_append(form, &c, 1);
			continue;
		}
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 15];
		r = secbuf_append(form, enc, sizeof(enc));
	}
	explicit_bzero(enc, sizeof(enc));
	return r;
}

/* Trades the API key for a new bearer token and caches it. Caller holds kp->lock. */
static int iam_token(struct kms *kms, struct kp *kp, struct error *e)
{
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
					      "Accept: application/json", NULL};
	_cleanup_(secbuf_done) struct secbuf form = {.max = KP_FORM_MAX};
	json_auto_t *reply = NULL;
	const char *token = NULL, *type = NULL;
	uint64_t start = now_mono_us(), life_s = 0, life, margin;
	char where[KMS_REST_URL_MAX + 64], *auth;
	struct error jxe;
	long status;
	int r;

	snprintf(where, sizeof(where), "IBM Cloud IAM %s", kp->iam_url);
	if (iam_form(kp, &form) < 0)
		return kms_fail(e, -ENOMEM, false, "%s: out of secure memory for the request",
				where);
	r = kp_http(kp, true, where,
		    &(struct http_request){.method = "POST",
					   .url = kp->iam_url,
					   .headers = headers,
					   .body = (const char *)form.data,
					   .body_len = form.len,
					   .ca_file = kp->ca_file,
					   .timeout_ms = (long)kms->retry.try_timeout_ms},
		    &status, &reply, e);
	if (r < 0)
		return r;
	r = jx_string(reply, "reply", "access_token", true, KP_TOKEN_MAX, &token, &jxe);
	if (r >= 0 && !kms_rest_charset(token, CHARS_TOKEN))
		r = jx_fail(&jxe, "reply.access_token: not a bearer token");
	if (r >= 0)
		r = jx_string(reply, "reply", "token_type", false, 32, &type, &jxe);
	if (r >= 0 && type && strcasecmp(type, "Bearer") != 0)
		r = jx_fail(&jxe, "reply.token_type: not Bearer");
	if (r >= 0)
		r = jx_uint(reply, "reply", "expires_in", 1, KP_TOKEN_LIFETIME_MAX, &life_s, &jxe);
	if (r >= 0 && life_s == 0)
		r = jx_fail(&jxe, "reply.expires_in: missing");
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s", where, jxe.msg);

	auth = secmem_alloc(strlen(KP_AUTH_PREFIX) + strlen(token) + 1);
	if (!auth)
		return kms_fail(e, -ENOMEM, false, "%s: out of secure memory for the token", where);
	strcpy(auth, KP_AUTH_PREFIX);
	strcat(auth, token);
	secmem_free(kp->auth);
	kp->auth = auth;
	kp->auth_gen++;
	/* Counted from before the request, so we never think a token lives longer than it does. */
	life = life_s * 1000000;
	margin = life / 10 > KP_REFRESH_MIN_US ? life / 10 : KP_REFRESH_MIN_US;
	if (margin >= life)
		margin = life / 2;
	kp->expires_at_us = start + life;
	kp->refresh_at_us = kp->expires_at_us - margin;
	return 0;
}

/* Hands out a copy of the Authorization header. Asks IAM for a new token when none is cached,
 * when the cached one is due for refresh, or when it is the one of generation @stale (Key
 * Protect refused it). The lock is held across the IAM request, so threads that need a token
 * at the same time wait for one refresh instead of each asking IAM. *ret_fresh says whether the
 * token was fetched by this call. */
static int kp_auth(struct kms *kms, uint64_t stale, char **ret, uint64_t *ret_gen, bool *ret_fresh,
		   struct error *e)
{
	struct kp *kp = kms->data;
	uint64_t now = now_mono_us();
	char *copy = NULL;
	int r = 0;

	*ret_fresh = false;
	pthread_mutex_lock(&kp->lock);
	if (!kp->auth || now >= kp->refresh_at_us || kp->auth_gen == stale) {
		r = iam_token(kms, kp, e);
		*ret_fresh = r >= 0;
		/* An IAM outage need not stop us while the cached token is still good. */
		if (r < 0 && kp->auth && kp->auth_gen != stale && now < kp->expires_at_us)
			r = 0;
	}
	if (r >= 0) {
		copy = secmem_strdup(kp->auth);
		*ret_gen = kp->auth_gen;
	}
	pthread_mutex_unlock(&kp->lock);
	if (r < 0)
		return r;
	if (!copy)
		return kms_fail(e, -ENOMEM, false,
				"Key Protect: out of secure memory for the token");
	*ret = copy;
	return 0;
}

static const char *kp_where(char *buf, size_t size, const char *endpoint, const struct kp_op *op)
{
	snprintf(buf, size, "Key Protect %s: %s of key %s", endpoint, op->what, op->key_id);
	return buf;
}

static int kp_send(struct kms *kms, const struct kp_op *op, const char *endpoint, const char *auth,
		   long *ret_status, json_t **ret, struct error *e)
{
	struct kp *kp = kms->data;
	char ctype[64], url[KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 64], where[KP_WHERE_MAX];
	const char *headers[] = {auth, kp->instance_header, "Accept: application/json",
				 op->body ? ctype : NULL, NULL};

	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		 op->content_type ? op->content_type : KP_CT_KEY_ACTION);
	if (op->path)
		snprintf(url, sizeof(url), "%s%s", endpoint, op->path);
	else
		snprintf(url, sizeof(url), "%s/api/v2/keys/%s%s", endpoint, op->key_id, op->suffix);
	return kp_http(kp, false, kp_where(where, sizeof(where), endpoint, op),
		       &(struct http_request){.method = op->method,
					      .url = url,
					      .headers = headers,
					      .body = op->body,
					      .body_len = op->body ? strlen(op->body) : 0,
					      .ca_file = kp->ca_file,
					      .timeout_ms = (long)kms->retry.try_timeout_ms},
		       ret_status, op->no_reply ? NULL : ret, e);
}

/* Runs @op against the endpoints in order, moving on only after a retryable failure; the
 * last failure is the one reported. A 401 for a cached token buys one new token and one more
 * try at the same endpoint. */
static int kp_call(struct kms *kms, const struct kp_op *op, json_t **ret, const char **ret_endpoint,
		   struct error *e)
{
	struct kp *kp = kms->data;
	_cleanup_secure_ char *auth = NULL;
	bool fresh, retried = false;
	uint64_t gen;
	int r;

	if (!op->key_id[0] || strlen(op->key_id) > KMS_KEY_ID_MAX ||
	    !kms_rest_charset(op->key_id, CHARS_KEY_ID))
		return kms_fail(e, -EINVAL, false,
				"Key Protect: %s: the key id is not a key ID or alias (1 to %d "
				"letters, digits, '-' and '_')",
				op->what, KMS_KEY_ID_MAX);
	r = kp_auth(kms, 0, &auth, &gen, &fresh, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < kp->n_endpoints; i++) {
		long status = 0;

		r = kp_send(kms, op, kp->endpoints[i], auth, &status, ret, e);
		if (status == 401 && !fresh && !retried) {
			retried = true;
			secmem_free(TAKE_PTR(auth));
			r = kp_auth(kms, gen, &auth, &gen, &fresh, e);
			if (r < 0)
				return r;
			r = kp_send(kms, op, kp->endpoints[i], auth, &status, ret, e);
		}
		if (r >= 0) {
			*ret_endpoint = kp->endpoints[i];
			return r;
		}
		if (!e->retryable)
			return r;
	}
	return r;
}

static int fail_reply(struct error *e, const char *endpoint, const struct kp_op *op,
		      const char *why)
{
	char where[KP_WHERE_MAX];

	return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s",
			kp_where(where, sizeof(where), endpoint, op), why);
}

/* The optional {"id": …} object that names a key version in a reply at @path. */
static int reply_version(json_t *obj, const char *path, const char *key, const char **ret,
			 struct error *jxe)
{
	json_t *v = json_object_get(obj, key);
	char p[64];

	if (!v)
		return 0;
	snprintf(p, sizeof(p), "%s.%s", path, key);
	if (!json_is_object(v))
		return jx_fail(jxe, "%s: must be an object", p);
	return jx_string(v, p, "id", true, KMS_VERSION_MAX, ret, jxe);
}

/* The ciphertext of a reply: opaque to us, but it goes into the LUKS token as it is. */
static int reply_ciphertext(json_t *reply, bool required, const char **ret, struct error *jxe)
{
	int r = jx_string(reply, "reply", "ciphertext", required, KMS_WDEK_MAX, ret, jxe);

	if (r >= 0 && *ret && !kms_rest_charset(*ret, KMS_CHARS_BASE64))
		r = jx_fail(jxe, "reply.ciphertext: not base64");
	return r;
}

/* A new WDEK and the version that made it, as plain heap copies. */
static int wrapped_set(struct kms_wrapped *w, const char *wdek, const char *version,
		       struct error *e)
{
	w->wdek = strdup(wdek);
	w->key_version = version ? strdup(version) : NULL;
	if (!w->wdek || (version && !w->key_version)) {
		kms_wrapped_done(w);
		return kms_fail(e, -ENOMEM, false, "Key Protect: out of memory");
	}
	return 0;
}

/* POST /api/v2/keys/<id>/actions/<what> with the body {"<field>": "<value>", "aad":
 * ["<aad>"]}, built in secure memory (a wrap's value is the DEK). */
static int kp_action(struct kms *kms, const char *key_id, const char *what, const char *field,
		     const char *value, const char *aad, struct kp_op *op, json_t **reply,
		     const char **endpoint, struct error *e)
{
	_cleanup_secure_ char *body = NULL;
	json_auto_t *j = json_pack("{s:s, s:[s]}", field, value, "aad", aad);
	char suffix[32];
	int r;

	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false,
				"Key Protect: out of secure memory for the %s request", what);
	snprintf(suffix, sizeof(suffix), "/actions/%s", what);
	*op = (struct kp_op){
		.what = what, .key_id = key_id, .method = "POST", .suffix = suffix, .body = body};
	r = kp_call(kms, op, reply, endpoint, e);
	/* The caller keeps op for its messages about the reply. */
	op->suffix = NULL;
	op->body = NULL;
	return r;
}

static int kp_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		   const char *aad, struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL;
	json_auto_t *reply = NULL;
	struct kp_op op;
	const char *endpoint, *ct = NULL, *version = NULL;
	struct error jxe;
	int r;

	/* Unwrap accepts only this size back, so anything else would be lost. */
	if (dek_len != KP_DEK_LEN)
		return kms_fail(e, -EINVAL, false,
				"Key Protect: refusing to wrap a %zu-byte key, "
				"expected %d",
				dek_len, KP_DEK_LEN);
	if (b64_encode(dek, dek_len, &b64) < 0)
		return kms_fail(e, -ENOMEM, false, "Key Protect: out of secure memory for the key");
	r = kp_action(kms, key_id, "wrap", "plaintext", b64, aad, &op, &reply, &endpoint, e);
	if (r < 0)
		return r;
	r = reply_ciphertext(reply, true, &ct, &jxe);
	if (r >= 0)
		r = reply_version(reply, "reply", "keyVersion", &version, &jxe);
	if (r < 0)
		return fail_reply(e, endpoint, &op, jxe.msg);
	return wrapped_set(ret, ct, version, e);
}

static int kp_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		     uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		     struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	json_auto_t *reply = NULL;
	struct kp_op op;
	const char *endpoint, *pt = NULL, *ct = NULL, *version = NULL;
	char where[KP_WHERE_MAX];
	struct error jxe;
	size_t n;
	int r;

	r = kp_action(kms, key_id, "unwrap", "ciphertext", wdek, aad, &op, &reply, &endpoint, e);
	if (r < 0)
		return r;
	r = jx_string(reply, "reply", "plaintext", true, KP_PLAINTEXT_MAX, &pt, &jxe);
	/* After a rotation Key Protect also returns the DEK wrapped by the newest version. */
	if (r >= 0)
		r = reply_ciphertext(reply, false, &ct, &jxe);
	if (r >= 0)
		r = reply_version(reply, "reply", "rewrappedKeyVersion", &version, &jxe);
	if (r < 0)
		return fail_reply(e, endpoint, &op, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "Key Protect: out of secure memory for the key");
	if (r < 0)
		return fail_reply(e, endpoint, &op, "reply.plaintext: not base64");
	if (n != KP_DEK_LEN)
		return kms_fail(e, -EPROTO, false, "%s: KMS returned a %zu-byte key, expected %d",
				kp_where(where, sizeof(where), endpoint, &op), n, KP_DEK_LEN);
	/* Exactly when the reply carries a ciphertext made by a newer version, and names it: a
	 * token must not store a WDEK without its version (the unlock goes on either way). */
	if (rewrapped && ct && version && strcmp(ct, wdek) != 0) {
		r = wrapped_set(rewrapped, ct, version, e);
		if (r < 0)
			return r;
	}
	*ret_dek = TAKE_PTR(dek);
	*ret_len = n;
	return 0;
}

static int kp_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		     struct kms_wrapped *ret, struct error *e)
{
	json_auto_t *reply = NULL;
	struct kp_op op;
	const char *endpoint, *ct = NULL, *version = NULL;
	struct error jxe;
	int r;

	r = kp_action(kms, key_id, "rewrap", "ciphertext", wdek, aad, &op, &reply, &endpoint, e);
	if (r < 0)
		return r;
	/* keyVersion is the version of the ciphertext sent, rewrappedKeyVersion the newest. */
	r = reply_ciphertext(reply, true, &ct, &jxe);
	if (r >= 0)
		r = reply_version(reply, "reply", "rewrappedKeyVersion", &version, &jxe);
	if (r < 0)
		return fail_reply(e, endpoint, &op, jxe.msg);
	return wrapped_set(ret, ct, version, e);
}

/* What GET /api/v2/keys/<id>/metadata says about the key. */
struct kp_meta {
	uint64_t state;
	bool extractable;
	const char *version;	  /* keyVersion.id, or NULL */
	const char *last_rotated; /* lastRotateDate, or NULL */
	const char *endpoint;
};

static int kp_metadata(struct kms *kms, const char *key_id, json_t **reply, struct kp_meta *m,
		       struct error *e)
{
	struct kp_op op = {
		.what = "metadata read", .key_id = key_id, .method = "GET", .suffix = "/metadata"};
	char where[KP_WHERE_MAX];
	struct error jxe;
	json_t *key;
	int r;

	*m = (struct kp_meta){.state = UINT64_MAX};
	r = kp_call(kms, &op, reply, &m->endpoint, e);
	if (r < 0)
		return r;
	key = json_array_get(json_object_get(*reply, "resources"), 0);
	if (!json_is_object(key))
		r = jx_fail(&jxe, "reply.resources[0]: missing or not an object");
	if (r >= 0)
		r = jx_uint(key, "reply.resources[0]", "state", 0, ELEMENTSOF(kp_states) - 1,
			    &m->state, &jxe);
	if (r >= 0 && m->state == UINT64_MAX)
		r = jx_fail(&jxe, "reply.resources[0].state: missing");
	if (r >= 0)
		r = jx_bool(key, "reply.resources[0]", "extractable", &m->extractable, &jxe);
	if (r >= 0)
		r = reply_version(key, "reply.resources[0]", "keyVersion", &m->version, &jxe);
	if (r >= 0)
		r = jx_string(key, "reply.resources[0]", "lastRotateDate", false,
			      sizeof(((struct kms_key_info *)0)->last_rotated) - 1,
			      &m->last_rotated, &jxe);
	if (r < 0)
		return fail_reply(e, m->endpoint, &op, jxe.msg);
	if (!kp_states[m->state].name)
		return kms_fail(e, -EPROTO, false, "%s: the key is in unknown state %llu",
				kp_where(where, sizeof(where), m->endpoint, &op),
				(unsigned long long)m->state);
	return 0;
}

static int kp_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
		       struct error *e)
{
	json_auto_t *reply = NULL;
	struct kp_meta m;
	int r;

	r = kp_metadata(kms, key_id, &reply, &m, e);
	if (r < 0)
		return r;
	*ret = (struct kms_key_info){.state = kp_states[m.state].state};
	snprintf(ret->version, sizeof(ret->version), "%s", m.version ? m.version : "");
	snprintf(ret->last_rotated, sizeof(ret->last_rotated), "%s",
		 m.last_rotated ? m.last_rotated : "");
	return 0;
}

static int kp_probe(struct kms *kms, const char *key_id, struct error *e)
{
	_cleanup_secure_ char *auth = NULL;
	json_auto_t *reply = NULL;
	struct kp_op op = {.what = "metadata read", .key_id = key_id};
	const struct kp_state *s;
	char where[KP_WHERE_MAX];
	struct kp_meta m;
	uint64_t gen;
	bool fresh;
	int r;

	if (!key_id)
		return kp_auth(kms, 0, &auth, &gen, &fresh, e);
	r = kp_metadata(kms, key_id, &reply, &m, e);
	if (r < 0)
		return r;
	kp_where(where, sizeof(where), m.endpoint, &op);
	s = &kp_states[m.state];
	if (s->error)
		return kms_fail(e, s->error, false, "%s: the key is %s (state %llu): %s", where,
				s->name, (unsigned long long)m.state, s->effect);
	if (m.extractable)
		return kms_fail(e, -EKEYREJECTED, false,
				"%s: the key is a standard key; wrap and unwrap need a root key",
				where);
	return 0;
}

/* Tells Key Protect this adopter acted on @event_id, in the documented body:
 * {"metadata": {collectionType, collectionTotal}, "resources": [{eventId, adopterKeyState,
 * timestamp, keyStateData: {rewrappedKeyVersion}}]}. DEK_ENABLED must name the key version
 * the DEK is now wrapped with: after a rewrap that is the key's newest, from its metadata. */
static int kp_event_ack(struct kms *kms, const char *key_id, const char *event_id,
			enum kms_key_state key_state, struct error *e)
{
	_cleanup_secure_ char *body = NULL;
	json_auto_t *meta = NULL, *ack = NULL, *data = NULL;
	struct kp_op op = {.what = "event acknowledgement",
			   .key_id = key_id,
			   .method = "POST",
			   .path = "/api/v2/event_ack",
			   .content_type = KP_CT_JSON,
			   .no_reply = true};
	const char *adopter =
		(unsigned)key_state < _KMS_KEY_STATE_MAX ? kp_adopter_states[key_state] : NULL;
	const char *endpoint;
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	struct kp_meta m;
	int r;

	if (!event_id || !event_id[0] || strlen(event_id) > KP_EVENT_ID_MAX ||
	    !kms_rest_charset(event_id, CHARS_EVENT_ID))
		return kms_fail(e, -EINVAL, false,
				"Key Protect: event acknowledgement of key %s: the event id is not "
				"1 to %d letters, digits, '-', '_', '.' and ':'",
				key_id, KP_EVENT_ID_MAX);
	if (!adopter)
		return kms_fail(
			e, -EINVAL, false,
			"Key Protect: event acknowledgement of key %s: no adopter key state "
			"stands for '%s'",
			key_id,
			(unsigned)key_state < _KMS_KEY_STATE_MAX ? kms_key_state_names[key_state]
								 : "?");
	data = json_object();
	if (key_state == KMS_KEY_ACTIVE) {
		r = kp_metadata(kms, key_id, &meta, &m, e);
		if (r < 0)
			return r;
		if (!m.version)
			return fail_reply(e, m.endpoint, &op,
					  "reply.resources[0].keyVersion: missing");
		json_object_set_new(data, "rewrappedKeyVersion", json_string(m.version));
	}
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ack = json_pack("{s:{s:s, s:i}, s:[{s:s, s:s, s:s, s:O}]}", "metadata", "collectionType",
			KP_EVENT_ACK_TYPE, "collectionTotal", 1, "resources", "eventId", event_id,
			"adopterKeyState", adopter, "timestamp", ts, "keyStateData", data);
	body = ack ? json_dumps(ack, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false,
				"Key Protect: out of memory for the event "
				"acknowledgement");
	op.body = body;
	return kp_call(kms, &op, NULL, &endpoint, e);
}

static void kp_done(struct kms *kms)
{
	kp_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_keyprotect = {
	.name = "keyprotect",
	.summary = "IBM Key Protect / Hyper Protect Crypto Services (IAM API key)",
	.parse = kp_parse,
	.open = kp_open,
	.wrap = kp_wrap,
	.unwrap = kp_unwrap,
	.rewrap = kp_rewrap,
	.key_info = kp_key_info,
	.event_ack = kp_event_ack,
	.probe = kp_probe,
	.done = kp_done,
};
