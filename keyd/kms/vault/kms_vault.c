// SPDX-License-Identifier: GPL-2.0-or-later
/* The `vault` provider: HashiCorp Vault / OpenBao Transit (encrypt, decrypt, key read); its
 * login (token or AppRole) is kms_vault_auth.c's. One try per endpoint, in order; backoff
 * belongs to kms.c. Never puts a token, a secret ID or a key in a message. */
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
#include "kms_vault_auth.h"
#include "kms_vault_client.h"
#include "secmem.h"
#include "util.h"

/* Transit key types whose encrypt and decrypt take associated_data (AEAD ciphers). */
static const char *const vault_aead_types[] = {"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"};

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
	r = kms_rest_open(kms->name, v->ca_file, &v->http, e);
	if (r < 0)
		return r;
	v->role_id = TAKE_PTR(role);
	v->role_id_len = role_len;
	v->secret_id = TAKE_PTR(secret);
	v->secret_id_len = secret_len;
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
	data = vault_reply_object(*reply, "data", &jxe);
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
		return vault_fail_reply(e, v, k->endpoint, &req, jxe.msg);
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
	data = vault_reply_object(reply, "data", &jxe);
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
		return vault_fail_reply(e, v, endpoint, &req, jxe.msg);
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
	data = vault_reply_object(reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(data, "reply.data", "plaintext", true, VAULT_PLAINTEXT_MAX, &pt,
			      &jxe);
	if (r < 0)
		return vault_fail_reply(e, v, endpoint, &req, jxe.msg);
	r = b64_decode(pt, &dek, &n);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "Vault: out of secure memory for the key");
	if (r < 0)
		return vault_fail_reply(e, v, endpoint, &req, "reply.data.plaintext: not base64");
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
	/* Deleted (Transit's delete needs deletion_allowed first), or never there: an answer, not
	 * a failure. The key cannot be used, but a 404 proves no destruction (a wrong key name
	 * reads the same), so it is "missing", which revokes and never shreds. */
	if (r < 0 && status == 404) {
		*ret = (struct kms_key_info){.state = KMS_KEY_MISSING};
		return 0;
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
