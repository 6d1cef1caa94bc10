// SPDX-License-Identifier: GPL-2.0-or-later
/* The `vault` provider: HashiCorp Vault / OpenBao Transit (encrypt, decrypt, key read) with
 * token or AppRole auth. The client token lives in secure memory and is renewed, re-read or
 * fetched again before it expires. One try per endpoint, in order; backoff belongs to kms.c.
 * Never puts a token, a secret ID or a key in a message. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "jsonx.h"
#include "kms.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define VAULT_PATH_MAX	    128 /* mount, namespace, AppRole mount */
#define VAULT_TOKEN_MAX	    4096
#define VAULT_TTL_MAX	    (100ULL * 366 * 86400)
#define VAULT_PLAINTEXT_MAX 1024
#define VAULT_VERSION_MAX   4294967295ULL
#define VAULT_DEK_LEN	    32
#define VAULT_WHERE_MAX	    (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 2 * VAULT_PATH_MAX + 64)
#define VAULT_URL_MAX	    (KMS_REST_URL_MAX + KMS_KEY_ID_MAX + 2 * VAULT_PATH_MAX + 64)
/* After a failed renewal, try again this much later (the token still works meanwhile). */
#define VAULT_RENEW_RETRY_US (10 * 1000000ULL)
#define VAULT_NEVER	     UINT64_MAX

#define VAULT_TOKEN_HEADER     "X-Vault-Token: "
#define VAULT_NAMESPACE_HEADER "X-Vault-Namespace: "
#define VAULT_WDEK_PREFIX      "vault:v"

/* Transit key names match Vault's GenericNameRegex: word characters, '-' and '.'. */
#define CHARS_KEY_NAME KMS_CHARS_ALNUM "_-."
#define CHARS_PATH     KMS_CHARS_ALNUM "_-./"
#define CHARS_TOKEN    KMS_CHARS_ALNUM "-._~+/="

/* Transit key types whose encrypt and decrypt take associated_data (AEAD ciphers). */
static const char *const vault_aead_types[] = {"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"};

struct vault {
	char **endpoints; /* without trailing '/' */
	size_t n_endpoints;
	char *mount;
	char *namespace;    /* NULL: none */
	char *ns_header;    /* "X-Vault-Namespace: …", or NULL */
	char *token_file;   /* token auth, or NULL */
	char *role_id_file; /* AppRole auth, or NULL */
	char *secret_id_file;
	char *login_path;	      /* /v1/auth/<approle mount>/login */
	char *ca_file;		      /* NULL: system trust store */
	uint8_t *role_id, *secret_id; /* secure memory */
	size_t role_id_len, secret_id_len;
	struct http_client http;

	pthread_mutex_t lock; /* guards the token cache below */
	char *auth;	      /* "X-Vault-Token: …", secure memory */
	uint64_t auth_gen;    /* bumped by every new token */
	bool checked;	      /* token auth: lookup-self was asked about this token */
	bool renewable;
	uint64_t full_ttl_us;		     /* the token's whole TTL, for "past 2/3 of it" */
	uint64_t renew_at_us, expires_at_us; /* CLOCK_MONOTONIC; VAULT_NEVER */
};

/* One Vault request and, for messages, what it does to which key. */
struct vault_req {
	const char *what;   /* "decrypt with", "token lookup", … */
	const char *key_id; /* NULL: not about a key */
	const char *method;
	char path[VAULT_PATH_MAX * 2 + KMS_KEY_ID_MAX + 32]; /* "/v1/…" */
	const char *body;				     /* secure memory, or NULL */
};

/* What Vault's HTTP status means here (developer.hashicorp.com/vault/api-docs, "HTTP status
 * codes", and sys/health). Unlisted 5xx are retryable -EIO, anything else a final -EIO. */
static const struct vault_status {
	long status;
	int error;
	bool retryable;
	const char *hint;
} vault_statuses[] = {
	{307, -EAGAIN, true,
	 "a standby node redirecting to the active node; keyd does not follow redirects: list "
	 "the active node, or a load balancer in front of it, in endpoints"},
	{400, -EINVAL, false, NULL},
	{403, -EPERM, false,
	 "the token is invalid or expired, or its policies do not allow this request"},
	{404, -ENOENT, false, NULL},
	{405, -EOPNOTSUPP, false, NULL},
	{412, -EAGAIN, true, "this node has not caught up with a recent write yet"},
	{429, -EBUSY, true, "rate limited, or an unsealed standby node"},
	{473, -EAGAIN, true, "a performance standby node"},
	{500, -EIO, true, NULL},
	{502, -EIO, true, NULL},
	{503, -EAGAIN, true, "Vault is sealed or down for maintenance"},
};

/* Vault's own words (its "errors" array) that say more than the status. */
static const struct vault_message {
	const char *text;
	int error;
	bool retryable;
	const char *hint;
} vault_messages[] = {
	{"Vault is sealed", -EAGAIN, true, "an operator must unseal it; keyd keeps trying"},
	{"encryption key not found", -ENOENT, false, "no Transit key of that name on this mount"},
	{"no handler for route", -ENOENT, false,
	 "no such path: check mount (and namespace) in the configuration"},
	{"cipher: message authentication failed", -EBADMSG, false,
	 "the WDEK does not open with this key and this volume's associated data (another key "
	 "of the same name, a WDEK copied from another volume, or a damaged token)"},
	{"disallowed by policy (too old)", -EKEYEXPIRED, false, NULL},
	{"version is too new", -EBADMSG, false,
	 "the WDEK names a version this key does not have (another key of the same name?)"},
	{"invalid role or secret ID", -EACCES, false,
	 "check approle.role_id_file and approle.secret_id_file (a secret ID may have expired "
	 "or used up its uses)"},
	{"invalid secret id", -EACCES, false,
	 "check approle.secret_id_file (it may have expired or used up its uses)"},
	{"invalid role ID", -EACCES, false, "check approle.role_id_file"},
	{"does not support encryption", -EOPNOTSUPP, false,
	 "keyd needs an aes256-gcm96 (or other AEAD) key"},
};

static void vault_free(struct vault *v)
{
	if (!v)
		return;
	http_client_done(&v->http);
	pthread_mutex_destroy(&v->lock);
	secmem_free(v->auth);
	secmem_free(v->role_id);
	secmem_free(v->secret_id);
	kms_rest_endpoints_free(v->endpoints, v->n_endpoints);
	free(v->mount);
	free(v->namespace);
	free(v->ns_header);
	free(v->token_file);
	free(v->role_id_file);
	free(v->secret_id_file);
	free(v->login_path);
	free(v->ca_file);
	free(v);
}

static void vault_freep(struct vault **v)
{
	vault_free(*v);
}

/* A mount or namespace path: "a/b", no empty, "." or ".." segments. */
static bool path_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VAULT_PATH_MAX || !kms_rest_charset(s, CHARS_PATH) || s[0] == '/' ||
	    s[n - 1] == '/' || strstr(s, "//"))
		return false;
	for (const char *seg = s; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
		size_t len = strcspn(seg, "/");

		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
	}
	return true;
}

static int parse_path(json_t *obj, const char *path, const char *key, const char **ret,
		      struct error *e)
{
	int r = jx_string(obj, path, key, false, VAULT_PATH_MAX, ret, e);

	if (r >= 0 && *ret && !path_valid(*ret))
		return jx_fail(e,
			       "%s.%s: must be a Vault path (letters, digits, '_', '-', '.' "
			       "and inner '/')",
			       path, key);
	return r;
}

static char *strjoin(const char *a, const char *b, const char *c)
{
	char *s = malloc(strlen(a) + strlen(b) + strlen(c) + 1);

	if (s) {
		strcpy(s, a);
		strcat(s, b);
		strcat(s, c);
	}
	return s;
}

static int parse_approle(json_t *obj, const char *path, struct vault *v, struct error *e)
{
	static const char *const keys[] = {"role_id_file", "secret_id_file", "mount", NULL};
	const char *role = NULL, *secret = NULL, *mount = "approle";
	char p[KMS_NAME_MAX + 64];
	int r;

	snprintf(p, sizeof(p), "%s.approle", path);
	r = jx_only_keys(obj, p, keys, e);
	if (r >= 0)
		r = jx_string(obj, p, "role_id_file", true, PATH_MAX - 1, &role, e);
	if (r >= 0)
		r = jx_string(obj, p, "secret_id_file", true, PATH_MAX - 1, &secret, e);
	if (r >= 0)
		r = parse_path(obj, p, "mount", &mount, e);
	if (r < 0)
		return r;
	v->role_id_file = strdup(role);
	v->secret_id_file = strdup(secret);
	v->login_path = strjoin("/v1/auth/", mount, "/login");
	return v->role_id_file && v->secret_id_file && v->login_path ? 0 : -ENOMEM;
}

static int vault_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"provider",	 "endpoints", "mount",	 "namespace",
					   "token_file", "approle",   "ca_file", NULL};
	_cleanup_(vault_freep) struct vault *v = NULL;
	const char *mount = "transit", *ns = NULL, *token_file = NULL, *ca_file = NULL;
	json_t *approle = json_object_get(obj, "approle");
	int r;

	r = jx_only_keys(obj, path, keys, e);
	if (r < 0)
		return r;
	r = parse_path(obj, path, "mount", &mount, e);
	if (r >= 0)
		r = parse_path(obj, path, "namespace", &ns, e);
	if (r >= 0)
		r = jx_string(obj, path, "token_file", false, PATH_MAX - 1, &token_file, e);
	if (r >= 0)
		r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca_file, e);
	if (r < 0)
		return r;
	if (!!token_file == !!approle)
		return jx_fail(e,
			       "%s: give exactly one of token_file and approle (how keyd logs "
			       "in to Vault)",
			       path);

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	r = kms_rest_endpoints(obj, path, &v->endpoints, &v->n_endpoints, e);
	if (r >= 0 && approle)
		r = parse_approle(approle, path, v, e);
	if (r < 0)
		return r;
	v->mount = strdup(mount);
	v->namespace = ns ? strdup(ns) : NULL;
	v->ns_header = ns ? strjoin(VAULT_NAMESPACE_HEADER, ns, "") : NULL;
	v->token_file = token_file ? strdup(token_file) : NULL;
	v->ca_file = ca_file ? strdup(ca_file) : NULL;
	if (!v->mount || (ns && (!v->namespace || !v->ns_header)) ||
	    (token_file && !v->token_file) || (ca_file && !v->ca_file))
		return -ENOMEM;
	kms->data = TAKE_PTR(v);
	return 0;
}

static int vault_open(struct kms *kms, struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_secure_ uint8_t *role = NULL, *secret = NULL;
	size_t role_len = 0, secret_len = 0;
	int r;

	if (v->role_id_file) {
		r = kms_rest_credential(kms->name, "approle.role_id_file", v->role_id_file, &role,
					&role_len, e);
		if (r < 0)
			return r;
		r = kms_rest_credential(kms->name, "approle.secret_id_file", v->secret_id_file,
					&secret, &secret_len, e);
		if (r < 0)
			return r;
	}
	r = kms_rest_ca_file(kms->name, v->ca_file, e);
	if (r < 0)
		return r;
	r = http_client_init(&v->http);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s: cannot set up the HTTP client: %s", kms->name,
				strerror(-r));
	v->role_id = TAKE_PTR(role);
	v->role_id_len = role_len;
	v->secret_id = TAKE_PTR(secret);
	v->secret_id_len = secret_len;
	return 0;
}

static const char *vault_where(char *buf, size_t size, const struct vault *v, const char *endpoint,
			       const struct vault_req *req)
{
	int n = snprintf(buf, size, "Vault %s%s%s: %s", endpoint, v->namespace ? " namespace " : "",
			 v->namespace ? v->namespace : "", req->what);

	if (req->key_id && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - n, " key %s/%s", v->mount, req->key_id);
	return buf;
}

/* Vault says why in {"errors": [...]}; the first two are quoted, as printable text. */
static int fail_status(struct error *e, const struct http_response *resp, const char *where)
{
	json_auto_t *j = json_loadb(kms_rest_body(resp), resp->body.len, 0, NULL);
	json_t *errs = json_object_get(j, "errors");
	const struct vault_status *s = NULL;
	const struct vault_message *m = NULL;
	char e0[KMS_REST_DETAIL_MAX], e1[KMS_REST_DETAIL_MAX / 2];
	const char *hint;
	int r;

	kms_rest_printable(e0, sizeof(e0), json_string_value(json_array_get(errs, 0)));
	kms_rest_printable(e1, sizeof(e1), json_string_value(json_array_get(errs, 1)));
	for (size_t i = 0; i < ELEMENTSOF(vault_statuses); i++)
		if (vault_statuses[i].status == resp->status)
			s = &vault_statuses[i];
	for (size_t i = 0; i < ELEMENTSOF(vault_messages) && !m; i++)
		if (strstr(e0, vault_messages[i].text) || strstr(e1, vault_messages[i].text))
			m = &vault_messages[i];
	hint = m && m->hint ? m->hint : s ? s->hint : NULL;
	r = kms_fail(e,
		     m	 ? m->error
		     : s ? s->error
			 : -EIO,
		     m	 ? m->retryable
		     : s ? s->retryable
			 : resp->status >= 500,
		     "%s: HTTP %ld%s%s%s%s%s%s", where, resp->status, e0[0] ? " " : "", e0,
		     e1[0] ? "; " : "", e1, hint ? ": " : "", hint ? hint : "");
	if (e->retryable)
		e->retry_after_s = resp->retry_after_s;
	return r;
}

/* One request to one endpoint, with the token header @auth (NULL: none). The answer must be
 * 200 with a JSON object. */
static int vault_send(struct kms *kms, const struct vault_req *req, const char *endpoint,
		      const char *auth, long *ret_status, json_t **ret, struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_(http_response_done) struct http_response resp = {0};
	const char *headers[6] = {0};
	char url[VAULT_URL_MAX], where[VAULT_WHERE_MAX];
	size_t h = 0;
	int r;

	if (auth)
		headers[h++] = auth;
	if (v->ns_header)
		headers[h++] = v->ns_header;
	/* What the Vault CLI sends; Vault Agent's listener may insist on it. */
	headers[h++] = "X-Vault-Request: true";
	headers[h++] = "Accept: application/json";
	if (req->body)
		headers[h++] = "Content-Type: application/json";
	snprintf(url, sizeof(url), "%s%s", endpoint, req->path);
	vault_where(where, sizeof(where), v, endpoint, req);
	*ret_status = 0;
	r = kms_rest_perform(&v->http,
			     &(struct http_request){.method = req->method,
						    .url = url,
						    .headers = headers,
						    .body = req->body,
						    .body_len = req->body ? strlen(req->body) : 0,
						    .ca_file = v->ca_file,
						    .timeout_ms = (long)kms->retry.try_timeout_ms},
			     where, &resp, e);
	if (r < 0)
		return r;
	*ret_status = resp.status;
	if (resp.status != 200)
		return fail_status(e, &resp, where);
	return kms_rest_json(&resp, where, ret, e);
}

static int fail_reply(struct error *e, const struct vault *v, const char *endpoint,
		      const struct vault_req *req, const char *why)
{
	char where[VAULT_WHERE_MAX];

	return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s",
			vault_where(where, sizeof(where), v, endpoint, req), why);
}

/* The object at @key of a reply ("data", "auth"). */
static json_t *reply_object(json_t *reply, const char *key, struct error *jxe)
{
	json_t *o = json_object_get(reply, key);

	if (!json_is_object(o))
		jx_fail(jxe, "reply.%s: missing or not an object", key);
	return json_is_object(o) ? o : NULL;
}

/* "X-Vault-Token: <token>" in secure memory, from @token of @len bytes. */
static char *token_header(const char *token, size_t len)
{
	char *h;

	if (len == 0 || len > VAULT_TOKEN_MAX || strnlen(token, len) != len)
		return NULL;
	h = secmem_alloc(strlen(VAULT_TOKEN_HEADER) + len + 1);
	if (!h)
		return NULL;
	strcpy(h, VAULT_TOKEN_HEADER);
	memcpy(h + strlen(VAULT_TOKEN_HEADER), token, len);
	if (!kms_rest_charset(h + strlen(VAULT_TOKEN_HEADER), CHARS_TOKEN)) {
		secmem_free(h);
		return NULL;
	}
	return h;
}

/* Caches a new token header (taking @auth) valid for @ttl_s seconds from @start (0: no
 * expiry), renewed or replaced once 2/3 of it has passed. Caller holds v->lock. */
static void token_set(struct vault *v, char *auth, uint64_t start, uint64_t ttl_s, bool renewable)
{
	if (auth) {
		secmem_free(v->auth);
		v->auth = auth;
		v->auth_gen++;
	}
	v->renewable = renewable;
	if (ttl_s == 0) {
		v->expires_at_us = v->renew_at_us = VAULT_NEVER;
		return;
	}
	v->full_ttl_us = ttl_s * 1000000;
	v->expires_at_us = start + v->full_ttl_us;
	v->renew_at_us = v->expires_at_us - v->full_ttl_us / 3;
}

/* Reads token_file; *ret is its token header, secure memory. */
static int token_read(struct kms *kms, struct vault *v, char **ret, struct error *e)
{
	_cleanup_secure_ uint8_t *token = NULL;
	size_t n;
	int r;

	r = kms_rest_credential(kms->name, "token_file", v->token_file, &token, &n, e);
	if (r < 0)
		return r;
	*ret = token_header((const char *)token, n);
	if (!*ret)
		return kms_fail(e, -EINVAL, false,
				"kms.%s.token_file: %s does not hold a Vault token (1 to %d "
				"letters, digits and -._~+/=)",
				kms->name, v->token_file, VAULT_TOKEN_MAX);
	return 0;
}

/* lookup-self: how long the token lives and whether it may be renewed. A token whose lookup
 * is refused (403: invalid, expired, or no default policy) is kept: the request it is for
 * will say. Caller holds v->lock. */
static int token_lookup(struct kms *kms, struct vault *v, const char *endpoint, struct error *e)
{
	struct vault_req req = {
		.what = "token lookup", .method = "GET", .path = "/v1/auth/token/lookup-self"};
	json_auto_t *reply = NULL;
	uint64_t start = now_mono_us(), ttl = 0, creation_ttl = 0;
	bool renewable = false;
	struct error jxe;
	json_t *data;
	long status;
	int r;

	r = vault_send(kms, &req, endpoint, v->auth, &status, &reply, e);
	if (status == 403) {
		token_set(v, NULL, start, 0, false);
		return 0;
	}
	if (r < 0)
		return r;
	data = reply_object(reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_uint(data, "reply.data", "ttl", 0, VAULT_TTL_MAX, &ttl, &jxe);
	if (r >= 0)
		r = jx_uint(data, "reply.data", "creation_ttl", 0, VAULT_TTL_MAX, &creation_ttl,
			    &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "renewable", &renewable, &jxe);
	if (r < 0)
		return fail_reply(e, v, endpoint, &req, jxe.msg);
	token_set(v, NULL, start, ttl, renewable);
	/* Past 2/3 of the whole TTL, not of what is left of it. */
	if (ttl && creation_ttl > ttl) {
		v->full_ttl_us = creation_ttl * 1000000;
		v->renew_at_us = v->expires_at_us > v->full_ttl_us / 3
					 ? v->expires_at_us - v->full_ttl_us / 3
					 : 0;
	}
	return 0;
}

/* renew-self. A failure is not fatal while the token lives: the next call tries again a
 * little later. A renewal that no longer extends the token (max TTL) stops renewing. Caller
 * holds v->lock. */
static void token_renew(struct kms *kms, struct vault *v, const char *endpoint)
{
	struct vault_req req = {.what = "token renewal",
				.method = "POST",
				.path = "/v1/auth/token/renew-self",
				.body = "{}"};
	json_auto_t *reply = NULL;
	uint64_t start = now_mono_us(), lease = 0, full = v->full_ttl_us, old = v->expires_at_us;
	bool renewable = false;
	struct error e;
	struct error jxe;
	json_t *auth;
	long status;
	int r;

	r = vault_send(kms, &req, endpoint, v->auth, &status, &reply, &e);
	auth = r >= 0 ? reply_object(reply, "auth", &jxe) : NULL;
	if (auth &&
	    jx_uint(auth, "reply.auth", "lease_duration", 0, VAULT_TTL_MAX, &lease, &jxe) >= 0 &&
	    jx_bool(auth, "reply.auth", "renewable", &renewable, &jxe) >= 0) {
		token_set(v, NULL, start, lease, renewable);
		if (lease && full > v->full_ttl_us) {
			v->full_ttl_us = full;
			v->renew_at_us =
				v->expires_at_us > full / 3 ? v->expires_at_us - full / 3 : 0;
		}
		if (lease && old != VAULT_NEVER && v->expires_at_us <= old + 1000000)
			v->renew_at_us = VAULT_NEVER;
		return;
	}
	v->renew_at_us = start + VAULT_RENEW_RETRY_US;
	if (v->renew_at_us > v->expires_at_us)
		v->renew_at_us = v->expires_at_us;
}

/* AppRole login: a new client token for role_id and secret_id. Caller holds v->lock. */
static int approle_login(struct kms *kms, struct vault *v, const char *endpoint, struct error *e)
{
	_cleanup_secure_ char *role = NULL, *secret = NULL, *body = NULL;
	struct vault_req req = {.what = "AppRole login", .method = "POST"};
	json_auto_t *reply = NULL, *j = NULL;
	uint64_t start = now_mono_us(), lease = 0;
	const char *token = NULL;
	bool renewable = false;
	struct error jxe;
	char *header;
	json_t *auth;
	long status;
	int r;

	snprintf(req.path, sizeof(req.path), "%s", v->login_path);
	role = secmem_alloc(v->role_id_len + 1);
	secret = secmem_alloc(v->secret_id_len + 1);
	if (role && secret) {
		memcpy(role, v->role_id, v->role_id_len);
		memcpy(secret, v->secret_id, v->secret_id_len);
		j = json_pack("{s:s, s:s}", "role_id", role, "secret_id", secret);
	}
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false, "Vault: out of secure memory for the login");
	req.body = body;
	r = vault_send(kms, &req, endpoint, NULL, &status, &reply, e);
	if (r < 0)
		return r;
	auth = reply_object(reply, "auth", &jxe);
	r = auth ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(auth, "reply.auth", "client_token", true, VAULT_TOKEN_MAX, &token,
			      &jxe);
	if (r >= 0)
		r = jx_uint(auth, "reply.auth", "lease_duration", 0, VAULT_TTL_MAX, &lease, &jxe);
	if (r >= 0)
		r = jx_bool(auth, "reply.auth", "renewable", &renewable, &jxe);
	if (r < 0)
		return fail_reply(e, v, endpoint, &req, jxe.msg);
	header = token_header(token, strlen(token));
	if (!header)
		return fail_reply(e, v, endpoint, &req, "reply.auth.client_token: not a token");
	token_set(v, header, start, lease, renewable);
	return 0;
}

/* Token auth: reads token_file when nothing is cached, when the cached token expired, or
 * when it is the one of generation @stale (Vault refused it): Vault Agent and operators
 * replace that file. *ret_fresh: a token other than the cached one is in use. Caller holds
 * v->lock. */
static int token_auth(struct kms *kms, struct vault *v, const char *endpoint, uint64_t stale,
		      bool *ret_fresh, struct error *e)
{
	uint64_t now = now_mono_us();
	char *header = NULL;
	int r;

	if (!v->auth || v->auth_gen == stale || now >= v->expires_at_us) {
		r = token_read(kms, v, &header, e);
		if (r < 0)
			return r;
		if (v->auth && strcmp(header, v->auth) == 0) {
			secmem_free(header);
			if (v->auth_gen != stale)
				return kms_fail(e, -EACCES, false,
						"kms.%s.token_file: the Vault token in %s expired "
						"(not renewable, or at its max TTL): write a new "
						"one there",
						kms->name, v->token_file);
		} else {
			token_set(v, header, now, 0, false);
			v->checked = false;
			*ret_fresh = true;
		}
	}
	if (!v->checked) {
		r = token_lookup(kms, v, endpoint, e);
		if (r < 0)
			return r;
		v->checked = true;
	}
	if (v->renewable && now >= v->renew_at_us)
		token_renew(kms, v, endpoint);
	return 0;
}

/* Hands out a copy of the X-Vault-Token header for a request to @endpoint, logging in,
 * looking up, renewing or re-reading first as due. The lock is held across those requests,
 * so threads that need a token at the same time wait for one of them. */
static int vault_auth(struct kms *kms, const char *endpoint, uint64_t stale, char **ret,
		      uint64_t *ret_gen, bool *ret_fresh, struct error *e)
{
	struct vault *v = kms->data;
	uint64_t now = now_mono_us();
	char *copy = NULL;
	int r = 0;

	*ret_fresh = false;
	pthread_mutex_lock(&v->lock);
	if (v->token_file)
		r = token_auth(kms, v, endpoint, stale, ret_fresh, e);
	else if (!v->auth || now >= v->renew_at_us || v->auth_gen == stale) {
		r = approle_login(kms, v, endpoint, e);
		*ret_fresh = r >= 0;
		/* A failed early re-login need not stop us while the token still lives. */
		if (r < 0 && v->auth && v->auth_gen != stale && now < v->expires_at_us)
			r = 0;
	}
	if (r >= 0) {
		copy = secmem_strdup(v->auth);
		*ret_gen = v->auth_gen;
	}
	pthread_mutex_unlock(&v->lock);
	if (r < 0)
		return r;
	if (!copy)
		return kms_fail(e, -ENOMEM, false, "Vault: out of secure memory for the token");
	*ret = copy;
	return 0;
}

/* Runs @req against the endpoints in order, moving on only after a retryable failure; the
 * last failure is the one reported. A 403 with a token this call did not fetch buys one new
 * token (AppRole login, or a changed token_file) and one more try at the same endpoint. */
static int vault_call(struct kms *kms, const struct vault_req *req, json_t **ret,
		      const char **ret_endpoint, long *ret_status, struct error *e)
{
	struct vault *v = kms->data;
	long status = 0;
	int r = 0;

	if (req->key_id && (!req->key_id[0] || strlen(req->key_id) > KMS_KEY_ID_MAX ||
			    !kms_rest_charset(req->key_id, CHARS_KEY_NAME)))
		return kms_fail(e, -EINVAL, false,
				"Vault: %s key: the key id is not a Transit key name (1 to %d "
				"letters, digits, '_', '-' and '.')",
				req->what, KMS_KEY_ID_MAX);
	for (size_t i = 0; i < v->n_endpoints; i++) {
		_cleanup_secure_ char *auth = NULL, *auth2 = NULL;
		const char *ep = v->endpoints[i];
		bool fresh, fresh2;
		uint64_t gen;

		status = 0;
		r = vault_auth(kms, ep, 0, &auth, &gen, &fresh, e);
		if (r >= 0) {
			r = vault_send(kms, req, ep, auth, &status, ret, e);
			if (status == 403 && !fresh) {
				struct error e2;
				int r2 = vault_auth(kms, ep, gen, &auth2, &gen, &fresh2, &e2);

				if (r2 < 0) {
					*e = e2;
					r = r2;
					break;
				}
				if (fresh2)
					r = vault_send(kms, req, ep, auth2, &status, ret, e);
			}
		}
		if (r >= 0)
			*ret_endpoint = ep;
		if (r >= 0 || !e->retryable)
			break;
	}
	if (ret_status)
		*ret_status = status;
	return r;
}

/* "vault:v<N>:<base64>", the WDEK as Transit makes it; *ret_version is N. */
static bool wdek_parse(const char *wdek, uint64_t *ret_version)
{
	const char *p = wdek + strlen(VAULT_WDEK_PREFIX);
	char digits[11];
	size_t n;

	if (strncmp(wdek, VAULT_WDEK_PREFIX, strlen(VAULT_WDEK_PREFIX)) != 0 ||
	    strlen(wdek) > KMS_WDEK_MAX)
		return false;
	n = strspn(p, "0123456789");
	if (n == 0 || n >= sizeof(digits) || p[0] == '0' || p[n] != ':' || !p[n + 1] ||
	    !kms_rest_charset(p + n + 1, KMS_CHARS_BASE64))
		return false;
	memcpy(digits, p, n);
	digits[n] = 0;
	return parse_u64(digits, ret_version) >= 0 && *ret_version <= VAULT_VERSION_MAX;
}

/* What GET /v1/<mount>/keys/<name> says about the key (pointers into @reply). */
struct vault_key {
	const char *type;
	bool derived, supports_encryption, supports_decryption, deletion_allowed;
	uint64_t latest, min_decryption;
	uint64_t latest_time; /* unix seconds; 0: unknown */
	const char *endpoint;
};

static int vault_read_key(struct kms *kms, const char *key_id, json_t **reply, struct vault_key *k,
			  long *ret_status, struct error *e)
{
	struct vault *v = kms->data;
	struct vault_req req = {.what = "read of", .key_id = key_id, .method = "GET"};
	char ver[24];
	struct error jxe;
	json_t *data, *t;
	int r;

	*k = (struct vault_key){0};
	*ret_status = 0;
	snprintf(req.path, sizeof(req.path), "/v1/%s/keys/%s", v->mount, key_id);
	r = vault_call(kms, &req, reply, &k->endpoint, ret_status, e);
	/* A missing key is a 404 with no errors; a wrong mount's 404 says "no handler". */
	if (r < 0 && *ret_status == 404 && strstr(e->msg, "no handler for route"))
		*ret_status = 0;
	if (r < 0)
		return r;
	data = reply_object(*reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(data, "reply.data", "type", true, 64, &k->type, &jxe);
	if (r >= 0)
		r = jx_uint(data, "reply.data", "latest_version", 1, VAULT_VERSION_MAX, &k->latest,
			    &jxe);
	if (r >= 0 && !k->latest)
		r = jx_fail(&jxe, "reply.data.latest_version: missing");
	if (r >= 0)
		r = jx_uint(data, "reply.data", "min_decryption_version", 0, VAULT_VERSION_MAX,
			    &k->min_decryption, &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "derived", &k->derived, &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "supports_encryption", &k->supports_encryption,
			    &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "supports_decryption", &k->supports_decryption,
			    &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "deletion_allowed", &k->deletion_allowed, &jxe);
	if (r < 0)
		return fail_reply(e, v, k->endpoint, &req, jxe.msg);
	/* keys: {"<version>": <creation, unix seconds>} for symmetric keys. */
	snprintf(ver, sizeof(ver), "%llu", (unsigned long long)k->latest);
	t = json_object_get(json_object_get(data, "keys"), ver);
	if (json_is_integer(t) && json_integer_value(t) > 0)
		k->latest_time = (uint64_t)json_integer_value(t);
	return 0;
}

/* keyd binds every WDEK to its volume with associated_data: the key must take it. */
static int vault_key_usable(struct kms *kms, const char *key_id, const struct vault_key *k,
			    struct error *e)
{
	struct vault *v = kms->data;
	struct vault_req req = {.what = "read of", .key_id = key_id};
	char where[VAULT_WHERE_MAX];
	bool aead = false;

	vault_where(where, sizeof(where), v, k->endpoint, &req);
	for (size_t i = 0; i < ELEMENTSOF(vault_aead_types); i++)
		aead |= strcmp(k->type, vault_aead_types[i]) == 0;
	if (!aead || !k->supports_encryption || !k->supports_decryption)
		return kms_fail(e, -EOPNOTSUPP, false,
				"%s: the key is of type %s; keyd needs an AEAD key that takes "
				"associated_data (aes256-gcm96, aes128-gcm96 or chacha20-poly1305)",
				where, k->type);
	if (k->derived)
		return kms_fail(
			e, -EOPNOTSUPP, false,
			"%s: the key is a derived key (it needs a context); keyd binds WDEKs "
			"with associated_data and needs a key created without derived=true",
			where);
	return 0;
}

/* Reads the key and refuses one keyd cannot use: Transit's encrypt would create a missing
 * key on the spot, which must never happen behind a customer's back. */
static int vault_key_check(struct kms *kms, const char *key_id, json_t **reply, struct vault_key *k,
			   struct error *e)
{
	long status;
	int r = vault_read_key(kms, key_id, reply, k, &status, e);

	if (r < 0 && status == 404) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n,
			 ": no such key (keyd never creates keys: create it in Vault first)");
	}
	if (r < 0)
		return r;
	return vault_key_usable(kms, key_id, k, e);
}

/* The body {"<field>": "<value>", "associated_data": "<base64 AAD>"}, in secure memory. */
static char *transit_body(const char *field, const char *value, const char *aad)
{
	_cleanup_secure_ char *ad = NULL;
	json_auto_t *j = NULL;

	if (b64_encode((const uint8_t *)aad, strlen(aad), &ad) < 0)
		return NULL;
	j = json_pack("{s:s, s:s}", field, value, "associated_data", ad);
	return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static int wrapped_set(struct kms_wrapped *w, const char *wdek, uint64_t version, struct error *e)
{
	char ver[24];

	snprintf(ver, sizeof(ver), "%llu", (unsigned long long)version);
	w->wdek = strdup(wdek);
	w->key_version = strdup(ver);
	if (!w->wdek || !w->key_version) {
		kms_wrapped_done(w);
		return kms_fail(e, -ENOMEM, false, "Vault: out of memory");
	}
	return 0;
}

/* encrypt, without the key check. */
static int transit_encrypt(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
			   const char *aad, struct kms_wrapped *ret, struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_secure_ char *b64 = NULL, *body = NULL;
	json_auto_t *reply = NULL;
	struct vault_req req = {.what = "encrypt with", .key_id = key_id, .method = "POST"};
	const char *endpoint, *ct = NULL;
	uint64_t version = 0, reported = 0;
	struct error jxe;
	json_t *data;
	int r;

	if (b64_encode(dek, dek_len, &b64) < 0 || !(body = transit_body("plaintext", b64, aad)))
		return kms_fail(e, -ENOMEM, false,
				"Vault: out of secure memory for the encrypt "
				"request");
	req.body = body;
	snprintf(req.path, sizeof(req.path), "/v1/%s/encrypt/%s", v->mount, key_id);
	r = vault_call(kms, &req, &reply, &endpoint, NULL, e);
	if (r < 0)
		return r;
	data = reply_object(reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(data, "reply.data", "ciphertext", true, KMS_WDEK_MAX, &ct, &jxe);
	if (r >= 0 && !wdek_parse(ct, &version))
		r = jx_fail(&jxe, "reply.data.ciphertext: not a vault:v<N>:<base64> ciphertext");
	if (r >= 0)
		r = jx_uint(data, "reply.data", "key_version", 1, VAULT_VERSION_MAX, &reported,
			    &jxe);
	if (r >= 0 && reported && reported != version)
		r = jx_fail(&jxe, "reply.data.key_version: %llu, but the ciphertext says v%llu",
			    (unsigned long long)reported, (unsigned long long)version);
	if (r < 0)
		return fail_reply(e, v, endpoint, &req, jxe.msg);
	return wrapped_set(ret, ct, version, e);
}

static int vault_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		      const char *aad, struct kms_wrapped *ret, struct error *e)
{
	json_auto_t *reply = NULL;
	struct vault_key k;
	int r;

	/* Unwrap accepts only this size back, so anything else would be lost. */
	if (dek_len != VAULT_DEK_LEN)
		return kms_fail(e, -EINVAL, false,
				"Vault: refusing to wrap a %zu-byte key, "
				"expected %d",
				dek_len, VAULT_DEK_LEN);
	r = vault_key_check(kms, key_id, &reply, &k, e);
	if (r < 0)
		return r;
	return transit_encrypt(kms, key_id, dek, dek_len, aad, ret, e);
}

/* Vault refuses ciphertexts of versions below min_decryption_version: say which numbers. */
static void explain_too_old(struct kms *kms, const char *key_id, uint64_t version, struct error *e)
{
	json_auto_t *reply = NULL;
	struct vault_key k;
	struct error e2;
	size_t n = strlen(e->msg);
	long status;
	char min[48] = "";

	if (vault_read_key(kms, key_id, &reply, &k, &status, &e2) >= 0)
		snprintf(min, sizeof(min), " (%llu)", (unsigned long long)k.min_decryption);
	snprintf(
		e->msg + n, sizeof(e->msg) - n,
		": the WDEK was made by key version %llu, below the key's min_decryption_version%s, "
		"so Vault refuses to decrypt it; lower min_decryption_version to unlock this volume",
		(unsigned long long)version, min);
}

static int vault_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
			uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
			struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_secure_ char *body = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	json_auto_t *reply = NULL;
	struct vault_req req = {.what = "decrypt with", .key_id = key_id, .method = "POST"};
	const char *endpoint, *pt = NULL;
	char where[VAULT_WHERE_MAX];
	uint64_t version;
	struct error jxe;
	json_t *data;
	size_t n;
	int r;

	/* Transit's decrypt never hands back a rewrapped ciphertext. */
	(void)rewrapped;
	if (!wdek_parse(wdek, &version))
		return kms_fail(e, -EBADMSG, false,
				"Vault: decrypt with key %s/%s: the wrapped key is not a Transit "
				"ciphertext (vault:v<N>:<base64>)",
				v->mount, key_id);
	body = transit_body("ciphertext", wdek, aad);
	if (!body)
		return kms_fail(e, -ENOMEM, false,
				"Vault: out of secure memory for the decrypt "
				"request");
	req.body = body;
	snprintf(req.path, sizeof(req.path), "/v1/%s/decrypt/%s", v->mount, key_id);
	r = vault_call(kms, &req, &reply, &endpoint, NULL, e);
	if (r == -EKEYEXPIRED)
		explain_too_old(kms, key_id, version, e);
	if (r < 0)
		return r;
	data = reply_object(reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(data, "reply.data", "plaintext", true, VAULT_PLAINTEXT_MAX, &pt,
			      &jxe);
	if (r < 0)
		return fail_reply(e, v, endpoint, &req, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "Vault: out of secure memory for the key");
	if (r < 0)
		return fail_reply(e, v, endpoint, &req, "reply.data.plaintext: not base64");
	if (n != VAULT_DEK_LEN)
		return kms_fail(e, -EPROTO, false, "%s: KMS returned a %zu-byte key, expected %d",
				vault_where(where, sizeof(where), v, endpoint, &req), n,
				VAULT_DEK_LEN);
	*ret_dek = TAKE_PTR(dek);
	*ret_len = n;
	return 0;
}

/* Transit's own rewrap endpoint takes no associated_data (its decrypt step would fail with
 * "cipher: message authentication failed"), so rewrap is decrypt + encrypt here: the DEK
 * passes through secure memory, as at every unlock. A WDEK already at the newest version is
 * returned as it is. */
static int vault_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
			struct kms_wrapped *ret, struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_secure_ uint8_t *dek = NULL;
	json_auto_t *reply = NULL;
	struct vault_key k;
	uint64_t version;
	size_t n = 0;
	int r;

	if (!wdek_parse(wdek, &version))
		return kms_fail(e, -EBADMSG, false,
				"Vault: rewrap with key %s/%s: the wrapped key is not a Transit "
				"ciphertext (vault:v<N>:<base64>)",
				v->mount, key_id);
	r = vault_key_check(kms, key_id, &reply, &k, e);
	if (r < 0)
		return r;
	if (version >= k.latest)
		return wrapped_set(ret, wdek, version, e);
	r = vault_unwrap(kms, key_id, wdek, aad, &dek, &n, NULL, e);
	if (r < 0)
		return r;
	return transit_encrypt(kms, key_id, dek, n, aad, ret, e);
}

/* Transit keys have no disabled state: a readable key is active. A key that is gone (404,
 * deleted) is destroyed, and that is also an -ENOENT error. */
static int vault_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			  struct error *e)
{
	json_auto_t *reply = NULL;
	struct vault_key k;
	long status;
	int r;

	r = vault_read_key(kms, key_id, &reply, &k, &status, e);
	if (r < 0 && status == 404) {
		size_t n = strlen(e->msg);

		ret->state = KMS_KEY_DESTROYED;
		snprintf(e->msg + n, sizeof(e->msg) - n, ": the key does not exist (deleted?)");
	}
	if (r < 0)
		return r;
	*ret = (struct kms_key_info){.state = KMS_KEY_ACTIVE};
	snprintf(ret->version, sizeof(ret->version), "%llu", (unsigned long long)k.latest);
	if (k.latest > 1 && k.latest_time) {
		time_t t = (time_t)k.latest_time;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ret->last_rotated, sizeof(ret->last_rotated), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	return 0;
}

/* Logs in (or looks the token up) and, given a key, checks keyd can use it. */
static int vault_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct vault *v = kms->data;
	json_auto_t *reply = NULL;
	struct vault_req req = {
		.what = "token lookup", .method = "GET", .path = "/v1/auth/token/lookup-self"};
	const char *endpoint;
	struct vault_key k;

	int r = 0;

	if (key_id)
		return vault_key_check(kms, key_id, &reply, &k, e);
	if (v->token_file)
		return vault_call(kms, &req, &reply, &endpoint, NULL, e);
	for (size_t i = 0; i < v->n_endpoints; i++) {
		_cleanup_secure_ char *auth = NULL;
		uint64_t gen;
		bool fresh;

		r = vault_auth(kms, v->endpoints[i], 0, &auth, &gen, &fresh, e);
		if (r >= 0 || !e->retryable)
			break;
	}
	return r;
}

static void vault_done(struct kms *kms)
{
	vault_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_vault = {
	.name = "vault",
	.summary = "HashiCorp Vault / OpenBao Transit (token or AppRole)",
	.parse = vault_parse,
	.open = vault_open,
	.wrap = vault_wrap,
	.unwrap = vault_unwrap,
	.rewrap = vault_rewrap,
	.key_info = vault_key_info,
	.event_ack = NULL, /* Vault has no event acknowledgement */
	.probe = vault_probe,
	.done = vault_done,
};
