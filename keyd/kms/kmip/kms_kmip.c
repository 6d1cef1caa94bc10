// SPDX-License-Identifier: GPL-2.0-or-later
/* The `kmip` provider: a KMIP 1.4/1.2 key manager over mutual TLS. Mode `crypto` has the
 * server Encrypt/Decrypt the DEK (AES-GCM with the volume's AAD, or AES-CBC with the AAD bound
 * by an HMAC under the DEK where GCM is missing); mode `get` fetches the root key (Get) and
 * wraps locally with AES-256-GCM, the key held in secure memory only while it is used. One
 * connection per call, failing over between endpoints; backoff belongs to kms.c. Never puts
 * a key, a DEK or the password in a message. */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jsonx.h"
#include "kmip.h"
#include "kmip_conn.h"
#include "kms.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

#define KMIP_ENDPOINTS_MAX    8
#define KMIP_REPLACEMENTS_MAX 64
#define KMIP_CHAIN_MAX	      8 /* replacement links followed from a volume's key id */
#define KMIP_USERNAME_MAX     128
#define KMIP_REQUEST_MAX      4096
#define KMIP_DEK_LEN	      32
#define KMIP_ROOT_KEY_LEN     32 /* mode get: AES-256 */
#define KMIP_GCM_IV_LEN	      12
#define KMIP_GCM_TAG_LEN      16
#define KMIP_CBC_IV_LEN	      16
#define KMIP_MAC_LEN	      32
#define KMIP_CBC_CT_LEN	      80 /* DEK + HMAC (64 bytes) and a block of PKCS#5 padding */
#define KMIP_WHERE_MAX	      (KMIP_HOST_MAX + KMIP_UID_MAX + 64)
#define KMIP_WDEK_PREFIX      "kmip:v1:"
/* The HMAC that binds a CBC-wrapped DEK to its volume: HMAC-SHA256(DEK, label 0x00 AAD). */
#define KMIP_CBC_MAC_LABEL "keyd:kmip:cbc:v1"

enum kmip_mode {
	MODE_CRYPTO,
	MODE_GET
};
enum kmip_cipher {
	CIPHER_AUTO,
	CIPHER_GCM,
	CIPHER_CBC
};
static const char *const mode_names[] = {"crypto", "get", NULL};
static const char *const cipher_names[] = {"auto", "aes-gcm", "aes-cbc-pkcs5", NULL};

/* How a WDEK was made; its name is the third field of the WDEK. The blob is IV, ciphertext,
 * tag, with these lengths. */
enum kmip_scheme {
	SCHEME_GCM,
	SCHEME_CBC,
	SCHEME_GET,
	_SCHEME_MAX
};
static const struct kmip_scheme_info {
	const char *name;
	size_t iv_len, ct_len, tag_len;
} schemes[_SCHEME_MAX] = {
	[SCHEME_GCM] = {"gcm", KMIP_GCM_IV_LEN, KMIP_DEK_LEN, KMIP_GCM_TAG_LEN},
	[SCHEME_CBC] = {"cbc", KMIP_CBC_IV_LEN, KMIP_CBC_CT_LEN, 0},
	[SCHEME_GET] = {"get", KMIP_GCM_IV_LEN, KMIP_DEK_LEN, KMIP_GCM_TAG_LEN},
};
#define KMIP_BLOB_MAX (KMIP_CBC_IV_LEN + KMIP_CBC_CT_LEN + KMIP_GCM_TAG_LEN)

/* The versions keyd speaks, most preferred first (KMIP 1.4 is what Key Protect speaks; 1.2 is
 * the first with Encrypt and Decrypt). */
static const struct kmip_version kmip_versions[] = {{1, 4}, {1, 2}};

struct replacement {
	char *from, *to;
};

struct kmip_kms {
	struct kmip_endpoint endpoints[KMIP_ENDPOINTS_MAX];
	size_t n_endpoints;
	enum kmip_mode mode;
	enum kmip_cipher cipher;
	char *cert_file, *key_file, *ca_file, *username, *password_file;
	struct replacement *replacements;
	size_t n_replacements;
	char *password; /* secure memory */
	struct kmip_tls tls;
	int minor[KMIP_ENDPOINTS_MAX]; /* negotiated minor version per endpoint, 0: not yet */
};

/* What a Result Reason means to keyd (KMIP 1.4 section 11.10). Unlisted: a final -EIO. */
static const struct kmip_reason_info {
	uint32_t reason;
	int error;
	const char *hint;
} reason_infos[] = {
	{KMIP_REASON_ITEM_NOT_FOUND, -ENOENT,
	 "no such key at the server, or keyd's client may not use it (keyd never creates keys)"},
	{KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL, -EACCES,
	 "the server did not accept keyd's client certificate or its username and password"},
	{KMIP_REASON_PERMISSION_DENIED, -EPERM, NULL},
	{KMIP_REASON_ILLEGAL_OPERATION, -EPERM, NULL},
	{KMIP_REASON_OPERATION_NOT_SUPPORTED, -EOPNOTSUPP, NULL},
	{KMIP_REASON_FEATURE_NOT_SUPPORTED, -EOPNOTSUPP, NULL},
	{KMIP_REASON_KEY_FORMAT_NOT_SUPPORTED, -EOPNOTSUPP,
	 "the server cannot hand out the key as Raw bytes"},
	{KMIP_REASON_INVALID_MESSAGE, -EPROTO, NULL},
	{KMIP_REASON_INVALID_FIELD, -EINVAL, NULL},
	{KMIP_REASON_MISSING_DATA, -EINVAL, NULL},
	{KMIP_REASON_RESPONSE_TOO_LARGE, -E2BIG, NULL},
	{KMIP_REASON_CRYPTOGRAPHIC_FAILURE, -EBADMSG,
	 "the wrapped key does not open with this key for this volume (another key, or a token "
	 "copied from another volume)"},
	{KMIP_REASON_SENSITIVE, -EPERM, "the key may not leave the server: use mode \"crypto\""},
	{KMIP_REASON_NOT_EXTRACTABLE, -EPERM,
	 "the key may not leave the server: use mode \"crypto\""},
	{KMIP_REASON_GENERAL_FAILURE, -EIO, NULL},
};

/* Reasons after which cipher "auto" tries AES-CBC: the server does not do GCM. */
static const uint32_t no_gcm_reasons[] = {KMIP_REASON_OPERATION_NOT_SUPPORTED,
					  KMIP_REASON_FEATURE_NOT_SUPPORTED,
					  KMIP_REASON_INVALID_FIELD};

static const char *const attribute_names[] = {
	"State",
	"Link",
	"Cryptographic Algorithm",
	"Cryptographic Length",
	"Cryptographic Usage Mask",
	"Initial Date",
	NULL,
};

/* ---- configuration ---- */

static void kmip_free(struct kmip_kms *k)
{
	if (!k)
		return;
	kmip_tls_done(&k->tls);
	secmem_free(k->password);
	for (size_t i = 0; i < k->n_replacements; i++) {
		free(k->replacements[i].from);
		free(k->replacements[i].to);
	}
	free(k->replacements);
	free(k->cert_file);
	free(k->key_file);
	free(k->ca_file);
	free(k->username);
	free(k->password_file);
	free(k);
}

static void kmip_freep(struct kmip_kms **k)
{
	kmip_free(*k);
}

static int parse_endpoints(json_t *obj, const char *path, struct kmip_kms *k, struct error *e)
{
	json_t *eps = json_object_get(obj, "endpoints"), *v;
	size_t i;

	if (!json_is_array(eps) || json_array_size(eps) == 0 ||
	    json_array_size(eps) > KMIP_ENDPOINTS_MAX)
		return jx_fail(e, "%s.endpoints: %s: give 1 to %d \"host[:port]\" strings", path,
			       eps ? "not an array of the right size" : "missing",
			       KMIP_ENDPOINTS_MAX);
	json_array_foreach (eps, i, v)
		if (!json_is_string(v) ||
		    kmip_endpoint_parse(json_string_value(v), &k->endpoints[i]) < 0)
			return jx_fail(e,
				       "%s.endpoints[%zu]: must be \"host\", \"host:port\" or "
				       "\"[IPv6]:port\" (port 5696 when left out)",
				       path, i);
	k->n_endpoints = json_array_size(eps);
	return 0;
}

static int parse_replacements(json_t *obj, const char *path, struct kmip_kms *k, struct error *e)
{
	json_t *m = json_object_get(obj, "replacements"), *v;
	const char *from;

	if (!m)
		return 0;
	if (!json_is_object(m) || json_object_size(m) > KMIP_REPLACEMENTS_MAX)
		return jx_fail(e,
			       "%s.replacements: must be an object of at most %d "
			       "\"old key id\": \"new key id\" pairs",
			       path, KMIP_REPLACEMENTS_MAX);
	k->replacements = calloc(json_object_size(m) + 1, sizeof(*k->replacements));
	if (!k->replacements)
		return -ENOMEM;
	json_object_foreach (m, from, v) {
		struct replacement *rp = &k->replacements[k->n_replacements];

		if (!kmip_uid_valid(from) || !json_is_string(v) ||
		    !kmip_uid_valid(json_string_value(v)) ||
		    strcmp(from, json_string_value(v)) == 0)
			return jx_fail(e,
				       "%s.replacements.%.64s: must map a key id to another (1 to "
				       "%d printable characters, no spaces)",
				       path, from, KMIP_UID_MAX);
		rp->from = strdup(from);
		rp->to = strdup(json_string_value(v));
		k->n_replacements++;
		if (!rp->from || !rp->to)
			return -ENOMEM;
	}
	return 0;
}

static int dup_opt(const char *s, char **ret)
{
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int kmip_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {
		"provider",	    "endpoints",       "mode",	  "cipher",
		"client_cert_file", "client_key_file", "ca_file", "username",
		"password_file",    "replacements",    NULL,
	};
	_cleanup_(kmip_freep) struct kmip_kms *k = NULL;
	const char *cert = NULL, *key = NULL, *ca = NULL, *user = NULL, *pass = NULL;
	int mode = 0, cipher = CIPHER_AUTO, r;

	r = jx_only_keys(obj, path, keys, e);
	if (r < 0)
		return r;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	if ((r = parse_endpoints(obj, path, k, e)) < 0 ||
	    (r = jx_enum(obj, path, "mode", mode_names, &mode, e)) < 0 ||
	    (r = jx_enum(obj, path, "cipher", cipher_names, &cipher, e)) < 0 ||
	    (r = jx_string(obj, path, "client_cert_file", true, PATH_MAX - 1, &cert, e)) < 0 ||
	    (r = jx_string(obj, path, "client_key_file", true, PATH_MAX - 1, &key, e)) < 0 ||
	    (r = jx_string(obj, path, "ca_file", false, PATH_MAX - 1, &ca, e)) < 0 ||
	    (r = jx_string(obj, path, "username", false, KMIP_USERNAME_MAX, &user, e)) < 0 ||
	    (r = jx_string(obj, path, "password_file", false, PATH_MAX - 1, &pass, e)) < 0 ||
	    (r = parse_replacements(obj, path, k, e)) < 0)
		return r;
	if (!json_object_get(obj, "mode"))
		return jx_fail(e,
			       "%s.mode: missing: \"crypto\" (the server encrypts) or \"get\" "
			       "(keyd fetches the key and wraps locally)",
			       path);
	if (mode == MODE_GET && json_object_get(obj, "cipher"))
		return jx_fail(e,
			       "%s.cipher: only for mode \"crypto\" (mode \"get\" always wraps "
			       "with AES-256-GCM)",
			       path);
	if (pass && !user)
		return jx_fail(e, "%s.password_file: needs username", path);
	if (user && (!user[0] || strspn(user, KMS_CHARS_ALNUM "-_.@+") != strlen(user)))
		return jx_fail(e, "%s.username: 1 to %d letters, digits and - _ . @ +", path,
			       KMIP_USERNAME_MAX);
	k->mode = (enum kmip_mode)mode;
	k->cipher = (enum kmip_cipher)cipher;
	if ((r = dup_opt(cert, &k->cert_file)) < 0 || (r = dup_opt(key, &k->key_file)) < 0 ||
	    (r = dup_opt(ca, &k->ca_file)) < 0 || (r = dup_opt(user, &k->username)) < 0 ||
	    (r = dup_opt(pass, &k->password_file)) < 0)
		return r;
	kms->data = TAKE_PTR(k);
	return 0;
}

static int kmip_open(struct kms *kms, struct error *e)
{
	struct kmip_kms *k = kms->data;
	_cleanup_secure_ uint8_t *cert = NULL, *key = NULL, *pass = NULL;
	size_t cert_len = 0, key_len = 0, pass_len = 0;
	struct error why;
	int r;

	r = kms_rest_credential(kms->name, "client_cert_file", k->cert_file, &cert, &cert_len, e);
	if (r >= 0)
		r = kms_rest_credential(kms->name, "client_key_file", k->key_file, &key, &key_len,
					e);
	if (r >= 0 && k->password_file)
		r = kms_rest_credential(kms->name, "password_file", k->password_file, &pass,
					&pass_len, e);
	if (r >= 0)
		r = kms_rest_ca_file(kms->name, k->ca_file, e);
	if (r < 0)
		return r;
	r = kmip_tls_init(&k->tls, k->ca_file, cert, cert_len, key, key_len, &why);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s: %s", kms->name, why.msg);
	k->password = (char *)TAKE_PTR(pass);
	return 0;
}

/* ---- one call: a connection to the first endpoint that answers ---- */

struct session {
	struct kms *kms;
	struct kmip_kms *k;
	struct kmip_conn conn;
	const struct kmip_endpoint *ep;
	struct kmip_header hdr;
	uint8_t *req;	/* secure memory: requests carry DEKs and the password */
	uint8_t *reply; /* secure memory: the last reply */
	size_t reply_len;
	struct kmip_response *resp; /* the last reply, parsed (points into reply) */
};

static void session_close(struct session *s)
{
	kmip_conn_close(&s->conn);
	secmem_free(s->req);
	secmem_free(s->reply);
	free(s->resp);
	*s = (struct session){.conn.fd = -1};
}

static const char *where(char *buf, size_t size, const struct session *s, uint32_t op,
			 const char *uid)
{
	snprintf(buf, size, "KMIP %s: %s%s%s", s->ep ? s->ep->text : "?",
		 kmip_operation_name(op) ?: "request", uid ? " of key " : "", uid ? uid : "");
	return buf;
}

/* A reply that says the operation failed, as a message and an errno. */
static int fail_result(struct session *s, uint32_t op, const char *uid, struct error *e)
{
	const struct kmip_response *resp = s->resp;
	const struct kmip_reason_info *ri = NULL;
	const char *name = kmip_reason_name(resp->reason), *hint;
	char w[KMIP_WHERE_MAX];
	int error;

	for (size_t i = 0; i < ELEMENTSOF(reason_infos); i++)
		if (reason_infos[i].reason == resp->reason)
			ri = &reason_infos[i];
	error = ri ? ri->error : -EIO;
	hint = ri ? ri->hint : NULL;
	/* PyKMIP reports a failed GCM tag check as a General Failure. */
	if (op == KMIP_OP_DECRYPT && resp->reason == KMIP_REASON_GENERAL_FAILURE) {
		error = -EBADMSG;
		hint = "the server could not decrypt the wrapped key: with AES-GCM that is what "
		       "another key, or a token copied from another volume, looks like";
	}
	if (resp->status == KMIP_STATUS_PENDING || resp->status == KMIP_STATUS_UNDONE)
		return kms_fail(e, -EIO, false,
				"%s: the server answered asynchronously (Result "
				"Status %u), which keyd does not use",
				where(w, sizeof(w), s, op, uid), resp->status);
	return kms_fail(e, error, false, "%s: %s%s%s%s%s%s", where(w, sizeof(w), s, op, uid),
			name ? name : "failed", resp->message[0] ? " (" : "", resp->message,
			resp->message[0] ? ")" : "", hint ? ": " : "", hint ? hint : "");
}

/* Requests are built into s->req (secure memory). */
static void session_enc(struct session *s, struct ttlv_enc *enc)
{
	ttlv_enc_init(enc, s->req, KMIP_REQUEST_MAX);
}

/* Sends the request built in @enc and parses the reply to @op into s->resp; the reply's
 * Result Status is left to the caller. */
static int session_send(struct session *s, struct ttlv_enc *enc, uint32_t op, const char *uid,
			struct error *e)
{
	struct error why;
	char w[KMIP_WHERE_MAX];
	size_t n = 0;
	int r;

	r = ttlv_finish(enc, &n);
	if (r < 0)
		return kms_fail(e, r, false, "%s: the request does not fit in %d bytes",
				where(w, sizeof(w), s, op, uid), KMIP_REQUEST_MAX);
	secmem_free(s->reply);
	s->reply = NULL;
	r = kmip_conn_call(&s->conn, s->req, n, &s->reply, &s->reply_len, &why);
	OPENSSL_cleanse(s->req, n);
	if (r < 0)
		return kms_fail(e, r, why.retryable, "%s: %s", where(w, sizeof(w), s, op, uid),
				why.msg);
	r = kmip_parse_response(s->reply, s->reply_len, op, s->resp, &why);
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: malformed reply: %s",
				where(w, sizeof(w), s, op, uid), why.msg);
	return 0;
}

/* Discover Versions, first with a 1.4 header and, if the server refuses that, with 1.2: the
 * highest version both speak. */
static int negotiate(struct session *s, size_t ep_index, struct error *e)
{
	struct kmip_version got[KMIP_VERSIONS_MAX];
	struct error why;
	char w[KMIP_WHERE_MAX];
	size_t n = 0;
	int r = 0, minor;

	minor = __atomic_load_n(&s->k->minor[ep_index], __ATOMIC_RELAXED);
	if (minor) {
		s->hdr.version = (struct kmip_version){1, minor};
		return 0;
	}
	for (size_t h = 0; h < ELEMENTSOF(kmip_versions); h++) {
		struct ttlv_enc enc;

		s->hdr.version = kmip_versions[h];
		session_enc(s, &enc);
		kmip_req_discover_versions(&enc, &s->hdr, kmip_versions, ELEMENTSOF(kmip_versions));
		r = session_send(s, &enc, KMIP_OP_DISCOVER_VERSIONS, NULL, e);
		if (r < 0)
			return r;
		if (s->resp->status == KMIP_STATUS_SUCCESS)
			break;
	}
	if (s->resp->status != KMIP_STATUS_SUCCESS)
		return fail_result(s, KMIP_OP_DISCOVER_VERSIONS, NULL, e);
	r = kmip_resp_versions(s->resp, got, ELEMENTSOF(got), &n, &why);
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: malformed reply: %s",
				where(w, sizeof(w), s, KMIP_OP_DISCOVER_VERSIONS, NULL), why.msg);
	for (size_t i = 0; i < ELEMENTSOF(kmip_versions); i++)
		for (size_t j = 0; j < n; j++)
			if (got[j].major == kmip_versions[i].major &&
			    got[j].minor == kmip_versions[i].minor) {
				s->hdr.version = kmip_versions[i];
				__atomic_store_n(&s->k->minor[ep_index], kmip_versions[i].minor,
						 __ATOMIC_RELAXED);
				return 0;
			}
	return kms_fail(e, -EPROTONOSUPPORT, false,
			"%s: the server speaks none of KMIP 1.4 and 1.2, which keyd needs",
			where(w, sizeof(w), s, KMIP_OP_DISCOVER_VERSIONS, NULL));
}

/* A connection or handshake that failed; a server certificate that did not verify names the
 * trust anchors it was checked against. */
static void fail_connect(struct session *s, int r, const struct error *why, struct error *e)
{
	bool verify = r == -EPROTO && strstr(why->msg, "the server certificate");

	kms_fail(e, r, why->retryable, "KMIP %s: %s%s%s%s%s", s->ep->text, why->msg,
		 verify ? " (checked against " : "",
		 verify ? (s->k->ca_file ? "ca_file " : "the system trust store") : "",
		 verify && s->k->ca_file ? s->k->ca_file : "", verify ? ")" : "");
}

/* Connects to the endpoints in order until one answers Discover Versions; each try is
 * bounded by unlock.try_timeout_s. */
static int session_open(struct kms *kms, struct session *s, struct error *e)
{
	struct kmip_kms *k = kms->data;
	uint64_t try_us = (kms->retry.try_timeout_ms ? kms->retry.try_timeout_ms : 30000) * 1000;
	struct error why;
	int r = -EHOSTUNREACH;

	*s = (struct session){.kms = kms,
			      .k = k,
			      .conn.fd = -1,
			      .hdr = {.username = k->username, .password = k->password}};
	s->req = secmem_alloc(KMIP_REQUEST_MAX);
	s->resp = calloc(1, sizeof(*s->resp));
	if (!s->req || !s->resp) {
		session_close(s);
		return kms_fail(e, -ENOMEM, false, "KMIP: out of memory for a request");
	}
	for (size_t i = 0; i < k->n_endpoints; i++) {
		s->ep = &k->endpoints[i];
		r = kmip_conn_open(&s->conn, &k->tls, s->ep, now_mono_us() + try_us, &why);
		if (r < 0) {
			fail_connect(s, r, &why, e);
		} else {
			r = negotiate(s, i, e);
			if (r >= 0)
				return 0;
			kmip_conn_close(&s->conn);
		}
		if (!e->retryable)
			break;
	}
	session_close(s);
	return r;
}

/* ---- the operations keyd uses ---- */

static int get_attributes(struct session *s, const char *uid, struct kmip_attrs *a, struct error *e)
{
	struct error why;
	char w[KMIP_WHERE_MAX];
	struct ttlv_enc enc;
	int r;

	session_enc(s, &enc);
	kmip_req_get_attributes(&enc, &s->hdr, uid, attribute_names);
	r = session_send(s, &enc, KMIP_OP_GET_ATTRIBUTES, uid, e);
	if (r < 0)
		return r;
	if (s->resp->status != KMIP_STATUS_SUCCESS)
		return fail_result(s, KMIP_OP_GET_ATTRIBUTES, uid, e);
	r = kmip_resp_attributes(s->resp, uid, a, &why);
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: malformed reply: %s",
				where(w, sizeof(w), s, KMIP_OP_GET_ATTRIBUTES, uid), why.msg);
	if (!a->has_state)
		return kms_fail(e, -EPROTO, false, "%s: the reply has no State",
				where(w, sizeof(w), s, KMIP_OP_GET_ATTRIBUTES, uid));
	return 0;
}

static const char *configured_replacement(const struct kmip_kms *k, const char *uid)
{
	for (size_t i = 0; i < k->n_replacements; i++)
		if (strcmp(k->replacements[i].from, uid) == 0)
			return k->replacements[i].to;
	return NULL;
}

/* A volume's root key and the keys that replaced it: the server's Replacement Object links
 * first (what Re-key leaves), then kms.NAME.replacements. The current key is the newest one
 * that is not Pre-Active (a replacement prepared, not yet in use). */
struct chain {
	char uid[KMIP_CHAIN_MAX][KMIP_UID_MAX + 1];
	struct kmip_attrs attrs[KMIP_CHAIN_MAX];
	size_t n, current;
};

static int chain_resolve(struct session *s, const char *key_id, struct chain *c, struct error *e)
{
	int r;

	*c = (struct chain){0};
	snprintf(c->uid[0], sizeof(c->uid[0]), "%s", key_id);
	for (c->n = 1;; c->n++) {
		const char *uid = c->uid[c->n - 1], *next;

		r = get_attributes(s, uid, &c->attrs[c->n - 1], e);
		if (r < 0 && c->n > 1) {
			size_t n = strlen(e->msg);

			snprintf(e->msg + n, sizeof(e->msg) - n,
				 " (key %s is named as the replacement of key %s)", uid,
				 c->uid[c->n - 2]);
		}
		if (r < 0)
			return r;
		if (c->attrs[c->n - 1].state != KMIP_STATE_PRE_ACTIVE || c->n == 1)
			c->current = c->n - 1;
		next = c->attrs[c->n - 1].replacement[0] ? c->attrs[c->n - 1].replacement
							 : configured_replacement(s->k, uid);
		if (!next)
			return 0;
		for (size_t i = 0; i < c->n; i++)
			if (strcmp(c->uid[i], next) == 0)
				return kms_fail(e, -ELOOP, false,
						"KMIP: the replacements of key %s lead back to key "
						"%s",
						key_id, next);
		if (c->n == KMIP_CHAIN_MAX)
			return kms_fail(e, -ELOOP, false,
					"KMIP: key %s has been replaced more than %d times; "
					"shorten kms.%s.replacements",
					key_id, KMIP_CHAIN_MAX - 1, s->kms->name);
		snprintf(c->uid[c->n], sizeof(c->uid[c->n]), "%s", next);
	}
}

static int require_active(struct session *s, const char *uid, const struct kmip_attrs *a,
			  const char *use, struct error *e)
{
	const char *state = kmip_state_name(a->state);

	if (a->state == KMIP_STATE_ACTIVE)
		return 0;
	return kms_fail(e, a->state == KMIP_STATE_PRE_ACTIVE ? -ENOKEY : -EKEYREVOKED, false,
			"KMIP %s: key %s is %s: keyd %s only with an Active key", s->ep->text, uid,
			state ? state : "in an unknown State", use);
}

/* Mode crypto needs an AES key that may encrypt and decrypt; mode get an AES-256 key. */
static int check_key(struct session *s, const char *uid, const struct kmip_attrs *a,
		     struct error *e)
{
	if (a->has_algorithm && a->algorithm != KMIP_ALGORITHM_AES)
		return kms_fail(e, -EOPNOTSUPP, false,
				"KMIP %s: key %s is not an AES key (Cryptographic Algorithm %u)",
				s->ep->text, uid, a->algorithm);
	if (s->k->mode == MODE_GET && a->has_length && a->length != 8 * KMIP_ROOT_KEY_LEN)
		return kms_fail(e, -EOPNOTSUPP, false,
				"KMIP %s: key %s is AES-%d; mode \"get\" needs an AES-256 key",
				s->ep->text, uid, a->length);
	if (s->k->mode == MODE_CRYPTO && a->has_usage &&
	    (a->usage & (KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT)) !=
		    (KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT))
		return kms_fail(e, -EPERM, false,
				"KMIP %s: key %s may not both encrypt and decrypt (Cryptographic "
				"Usage Mask 0x%x); mode \"crypto\" needs both",
				s->ep->text, uid, (unsigned)a->usage);
	return 0;
}

/* Encrypt or Decrypt on the server; the reply's fields stay in s->reply. */
static int server_crypt(struct session *s, uint32_t op, const struct kmip_crypt *c,
			struct kmip_crypt_reply *out, struct error *e)
{
	struct error why;
	char w[KMIP_WHERE_MAX];
	struct ttlv_enc enc;
	int r;

	session_enc(s, &enc);
	if (op == KMIP_OP_ENCRYPT)
		kmip_req_encrypt(&enc, &s->hdr, c);
	else
		kmip_req_decrypt(&enc, &s->hdr, c);
	r = session_send(s, &enc, op, c->uid, e);
	if (r < 0)
		return r;
	if (s->resp->status != KMIP_STATUS_SUCCESS)
		return fail_result(s, op, c->uid, e);
	r = kmip_resp_crypt(s->resp, c->uid, out, &why);
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: malformed reply: %s",
				where(w, sizeof(w), s, op, c->uid), why.msg);
	return 0;
}

/* Mode get: the root key's bytes, copied into secure memory; the reply is wiped at once. */
static int server_get_key(struct session *s, const char *uid, uint8_t **ret, struct error *e)
{
	struct error why;
	char w[KMIP_WHERE_MAX];
	struct ttlv_enc enc;
	const uint8_t *key;
	uint32_t alg = 0;
	size_t len = 0;
	int r;

	session_enc(s, &enc);
	kmip_req_get(&enc, &s->hdr, uid);
	r = session_send(s, &enc, KMIP_OP_GET, uid, e);
	if (r < 0)
		return r;
	if (s->resp->status != KMIP_STATUS_SUCCESS)
		return fail_result(s, KMIP_OP_GET, uid, e);
	r = kmip_resp_key(s->resp, uid, &key, &len, &alg, &why);
	if (r >= 0 && (alg != KMIP_ALGORITHM_AES || len != KMIP_ROOT_KEY_LEN))
		r = -EOPNOTSUPP;
	if (r >= 0) {
		*ret = secmem_dup(key, len);
		r = *ret ? 0 : -ENOMEM;
	}
	OPENSSL_cleanse(s->reply, s->reply_len);
	if (r == -EOPNOTSUPP)
		return kms_fail(e, r, false,
				"%s: the key is not AES-256 (%zu bytes); mode \"get\" needs one",
				where(w, sizeof(w), s, KMIP_OP_GET, uid), len);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "KMIP: out of secure memory for the key");
	if (r < 0)
		return kms_fail(e, -EPROTO, false, "%s: malformed reply: %s",
				where(w, sizeof(w), s, KMIP_OP_GET, uid), why.msg);
	return 0;
}

/* ---- local cryptography (OpenSSL) ---- */

/* AES-256-GCM with @aad, for mode get. */
static int local_gcm(const uint8_t *key, bool enc, const uint8_t *iv, const char *aad,
		     const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len, ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KMIP_GCM_IV_LEN, NULL) &&
	     EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) &&
	     EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) &&
	     EVP_CipherUpdate(ctx, out, &len, in, (int)n) &&
	     (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KMIP_GCM_TAG_LEN, tag)) &&
	     EVP_CipherFinal_ex(ctx, out + len, &len) &&
	     (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KMIP_GCM_TAG_LEN, tag));
	/* Frees (and wipes) the expanded key. */
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

/* The CBC fallback's binding: HMAC-SHA256 keyed by the DEK over the label, a 0 byte and the
 * AAD. Only a party that knows the DEK can make it, so a WDEK moved to another volume fails
 * the check even though CBC itself authenticates nothing. */
static int cbc_mac(const uint8_t *dek, const char *aad, uint8_t *mac)
{
	_cleanup_secure_ uint8_t *msg = NULL;
	size_t ln = strlen(KMIP_CBC_MAC_LABEL) + 1, an = strlen(aad);
	unsigned len = 0;

	msg = secmem_alloc(ln + an);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, KMIP_CBC_MAC_LABEL, ln);
	memcpy(msg + ln, aad, an);
	return HMAC(EVP_sha256(), dek, KMIP_DEK_LEN, msg, ln + an, mac, &len) && len == KMIP_MAC_LEN
		       ? 0
		       : -EIO;
}

/* ---- WDEKs: "kmip:v1:<scheme>:<key uid>:<base64 of IV, ciphertext, tag>" ---- */

struct wdek {
	enum kmip_scheme scheme;
	char uid[KMIP_UID_MAX + 1];
	uint8_t *blob; /* secure memory (b64_decode) */
	size_t blob_len;
};

static void wdek_done(struct wdek *w)
{
	secmem_free(w->blob);
	w->blob = NULL;
}

static int wdek_parse(const char *s, struct wdek *w, struct error *e)
{
	const char *p = s + strlen(KMIP_WDEK_PREFIX), *colon, *last;
	const struct kmip_scheme_info *si;
	size_t sn, un;
	int r;

	*w = (struct wdek){0};
	if (strncmp(s, KMIP_WDEK_PREFIX, strlen(KMIP_WDEK_PREFIX)) != 0 ||
	    strlen(s) > KMS_WDEK_MAX || !(colon = strchr(p, ':')) || !(last = strrchr(p, ':')) ||
	    last == colon)
		return kms_fail(e, -EBADMSG, false,
				"the wrapped key is not a KMIP one (kmip:v1:<scheme>:<key "
				"id>:<base64>)");
	sn = (size_t)(colon - p);
	for (w->scheme = 0; w->scheme < _SCHEME_MAX; w->scheme++)
		if (strlen(schemes[w->scheme].name) == sn &&
		    strncmp(p, schemes[w->scheme].name, sn) == 0)
			break;
	if (w->scheme == _SCHEME_MAX)
		return kms_fail(e, -EBADMSG, false, "the wrapped key names an unknown scheme");
	un = (size_t)(last - colon - 1);
	if (un == 0 || un > KMIP_UID_MAX)
		return kms_fail(e, -EBADMSG, false, "the wrapped key names no valid key id");
	memcpy(w->uid, colon + 1, un);
	w->uid[un] = 0;
	if (!kmip_uid_valid(w->uid))
		return kms_fail(e, -EBADMSG, false, "the wrapped key names no valid key id");
	si = &schemes[w->scheme];
	r = b64_decode(last + 1, &w->blob, &w->blob_len);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "KMIP: out of secure memory");
	if (r < 0 || w->blob_len != si->iv_len + si->ct_len + si->tag_len) {
		wdek_done(w);
		return kms_fail(e, -EBADMSG, false,
				"the wrapped key is malformed (not %zu bytes of base64 for "
				"scheme %s)",
				si->iv_len + si->ct_len + si->tag_len, si->name);
	}
	return 0;
}

static int wdek_format(enum kmip_scheme scheme, const char *uid, const uint8_t *blob, size_t n,
		       struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ char *b64 = NULL;
	size_t len;

	if (b64_encode(blob, n, &b64) < 0)
		return kms_fail(e, -ENOMEM, false, "KMIP: out of secure memory");
	len = strlen(KMIP_WDEK_PREFIX) + strlen(schemes[scheme].name) + strlen(uid) + strlen(b64) +
	      3;
	ret->wdek = malloc(len);
	ret->key_version = strdup(uid);
	if (!ret->wdek || !ret->key_version) {
		kms_wrapped_done(ret);
		return kms_fail(e, -ENOMEM, false, "KMIP: out of memory");
	}
	snprintf(ret->wdek, len, "%s%s:%s:%s", KMIP_WDEK_PREFIX, schemes[scheme].name, uid, b64);
	return 0;
}

/* ---- wrap, unwrap, rewrap ---- */

/* The scheme a new WDEK gets from this KMS at the negotiated version. */
static enum kmip_scheme wanted_scheme(const struct session *s)
{
	if (s->k->mode == MODE_GET)
		return SCHEME_GET;
	if (s->k->cipher == CIPHER_CBC || (s->k->cipher == CIPHER_AUTO && s->hdr.version.minor < 4))
		return SCHEME_CBC;
	return SCHEME_GCM;
}

static int wrap_gcm(struct session *s, const char *uid, const uint8_t *dek, const char *aad,
		    uint8_t *blob, struct error *e)
{
	struct kmip_crypt c = {.uid = uid,
			       .mode = KMIP_MODE_GCM,
			       .data = dek,
			       .data_len = KMIP_DEK_LEN,
			       .iv = blob,
			       .iv_len = KMIP_GCM_IV_LEN,
			       .aad = (const uint8_t *)aad,
			       .aad_len = strlen(aad),
			       .tag_len = KMIP_GCM_TAG_LEN};
	struct kmip_crypt_reply out;
	char w[KMIP_WHERE_MAX];
	int r;

	if (s->hdr.version.minor < 4)
		return kms_fail(e, -EOPNOTSUPP, false,
				"KMIP %s speaks KMIP 1.%d: AES-GCM with additional data needs "
				"1.4; set cipher \"aes-cbc-pkcs5\" or \"auto\"",
				s->ep->text, s->hdr.version.minor);
	if (RAND_bytes(blob, KMIP_GCM_IV_LEN) != 1)
		return kms_fail(e, -EIO, false, "KMIP: no randomness for the IV");
	r = server_crypt(s, KMIP_OP_ENCRYPT, &c, &out, e);
	if (r < 0)
		return r;
	if (out.data_len != KMIP_DEK_LEN || out.tag_len != KMIP_GCM_TAG_LEN ||
	    (out.iv_len && (out.iv_len != KMIP_GCM_IV_LEN || memcmp(out.iv, blob, out.iv_len))))
		return kms_fail(e, -EPROTO, false,
				"%s: AES-GCM gave %zu bytes of ciphertext and a %zu-byte tag, "
				"expected %d and %d with keyd's IV",
				where(w, sizeof(w), s, KMIP_OP_ENCRYPT, uid), out.data_len,
				out.tag_len, KMIP_DEK_LEN, KMIP_GCM_TAG_LEN);
	memcpy(blob + KMIP_GCM_IV_LEN, out.data, KMIP_DEK_LEN);
	memcpy(blob + KMIP_GCM_IV_LEN + KMIP_DEK_LEN, out.tag, KMIP_GCM_TAG_LEN);
	return 0;
}

static int wrap_cbc(struct session *s, const char *uid, const uint8_t *dek, const char *aad,
		    uint8_t *blob, struct error *e)
{
	_cleanup_secure_ uint8_t *pt = secmem_alloc(KMIP_DEK_LEN + KMIP_MAC_LEN);
	struct kmip_crypt c = {.uid = uid,
			       .mode = KMIP_MODE_CBC,
			       .data = pt,
			       .data_len = KMIP_DEK_LEN + KMIP_MAC_LEN,
			       .iv = blob,
			       .iv_len = KMIP_CBC_IV_LEN};
	struct kmip_crypt_reply out;
	char w[KMIP_WHERE_MAX];
	int r;

	if (!pt)
		return kms_fail(e, -ENOMEM, false, "KMIP: out of secure memory");
	memcpy(pt, dek, KMIP_DEK_LEN);
	if (cbc_mac(dek, aad, pt + KMIP_DEK_LEN) < 0 || RAND_bytes(blob, KMIP_CBC_IV_LEN) != 1)
		return kms_fail(e, -EIO, false, "KMIP: cannot compute the binding HMAC or IV");
	r = server_crypt(s, KMIP_OP_ENCRYPT, &c, &out, e);
	if (r < 0)
		return r;
	if (out.data_len != KMIP_CBC_CT_LEN ||
	    (out.iv_len && (out.iv_len != KMIP_CBC_IV_LEN || memcmp(out.iv, blob, out.iv_len))))
		return kms_fail(e, -EPROTO, false,
				"%s: AES-CBC gave %zu bytes of ciphertext, expected %d with "
				"keyd's IV",
				where(w, sizeof(w), s, KMIP_OP_ENCRYPT, uid), out.data_len,
				KMIP_CBC_CT_LEN);
	memcpy(blob + KMIP_CBC_IV_LEN, out.data, KMIP_CBC_CT_LEN);
	return 0;
}

static int wrap_get(struct session *s, const char *uid, const uint8_t *dek, const char *aad,
		    uint8_t *blob, struct error *e)
{
	_cleanup_secure_ uint8_t *root = NULL;
	int r;

	r = server_get_key(s, uid, &root, e);
	if (r < 0)
		return r;
	if (RAND_bytes(blob, KMIP_GCM_IV_LEN) != 1)
		return kms_fail(e, -EIO, false, "KMIP: no randomness for the nonce");
	r = local_gcm(root, true, blob, aad, dek, KMIP_DEK_LEN, blob + KMIP_GCM_IV_LEN,
		      blob + KMIP_GCM_IV_LEN + KMIP_DEK_LEN);
	return r < 0 ? kms_fail(e, r, false, "KMIP: local AES-256-GCM wrap failed") : 0;
}

/* Wraps @dek under the chain's current key in this session. */
static int session_wrap(struct session *s, const struct chain *c, const uint8_t *dek,
			const char *aad, struct kms_wrapped *ret, struct error *e)
{
	const char *uid = c->uid[c->current];
	const struct kmip_attrs *a = &c->attrs[c->current];
	enum kmip_scheme scheme = wanted_scheme(s);
	uint8_t blob[KMIP_BLOB_MAX];
	size_t n;
	int r;

	r = require_active(s, uid, a, "wraps", e);
	if (r >= 0)
		r = check_key(s, uid, a, e);
	if (r < 0)
		return r;
	if (scheme == SCHEME_GET)
		r = wrap_get(s, uid, dek, aad, blob, e);
	else if (scheme == SCHEME_GCM)
		r = wrap_gcm(s, uid, dek, aad, blob, e);
	else
		r = wrap_cbc(s, uid, dek, aad, blob, e);
	/* cipher "auto": a server that does not do GCM gets the CBC binding instead. */
	if (r < 0 && scheme == SCHEME_GCM && s->k->cipher == CIPHER_AUTO &&
	    s->resp->status == KMIP_STATUS_FAILED) {
		for (size_t i = 0; i < ELEMENTSOF(no_gcm_reasons); i++)
			if (s->resp->reason == no_gcm_reasons[i])
				scheme = SCHEME_CBC;
		if (scheme == SCHEME_CBC)
			r = wrap_cbc(s, uid, dek, aad, blob, e);
	}
	if (r < 0)
		return r;
	n = schemes[scheme].iv_len + schemes[scheme].ct_len + schemes[scheme].tag_len;
	return wdek_format(scheme, uid, blob, n, ret, e);
}

/* Unwraps a parsed WDEK in this session: the key that made it must still be Active. */
static int session_unwrap(struct session *s, const struct wdek *w, const char *aad,
			  uint8_t **ret_dek, struct error *e)
{
	const struct kmip_scheme_info *si = &schemes[w->scheme];
	const uint8_t *iv = w->blob, *ct = w->blob + si->iv_len, *tag = ct + si->ct_len;
	_cleanup_secure_ uint8_t *dek = secmem_alloc(KMIP_CBC_CT_LEN), *root = NULL;
	struct kmip_crypt c = {.uid = w->uid, .iv = iv, .iv_len = si->iv_len};
	struct kmip_crypt_reply out;
	struct kmip_attrs a;
	uint8_t mac[KMIP_MAC_LEN];
	char wh[KMIP_WHERE_MAX];
	int r;

	if (!dek)
		return kms_fail(e, -ENOMEM, false, "KMIP: out of secure memory");
	r = get_attributes(s, w->uid, &a, e);
	if (r >= 0)
		r = require_active(s, w->uid, &a, "unwraps", e);
	if (r < 0)
		return r;
	switch (w->scheme) {
	case SCHEME_GET:
		r = server_get_key(s, w->uid, &root, e);
		if (r < 0)
			return r;
		r = local_gcm(root, false, iv, aad, ct, KMIP_DEK_LEN, dek, (uint8_t *)tag);
		if (r < 0)
			return kms_fail(e, -EBADMSG, false,
					"KMIP: the wrapped key does not open with key %s for this "
					"volume (another key, or a token copied from another "
					"volume)",
					w->uid);
		break;
	case SCHEME_GCM:
		if (s->hdr.version.minor < 4)
			return kms_fail(e, -EOPNOTSUPP, false,
					"KMIP %s speaks KMIP 1.%d: this AES-GCM wrapped key needs "
					"1.4",
					s->ep->text, s->hdr.version.minor);
		c.mode = KMIP_MODE_GCM;
		c.data = ct;
		c.data_len = KMIP_DEK_LEN;
		c.aad = (const uint8_t *)aad;
		c.aad_len = strlen(aad);
		c.tag = tag;
		c.tag_len = KMIP_GCM_TAG_LEN;
		r = server_crypt(s, KMIP_OP_DECRYPT, &c, &out, e);
		if (r >= 0 && out.data_len != KMIP_DEK_LEN)
			r = kms_fail(e, -EPROTO, false, "%s: returned a %zu-byte key, expected %d",
				     where(wh, sizeof(wh), s, KMIP_OP_DECRYPT, w->uid),
				     out.data_len, KMIP_DEK_LEN);
		if (r < 0)
			return r;
		memcpy(dek, out.data, KMIP_DEK_LEN);
		break;
	case SCHEME_CBC:
		c.mode = KMIP_MODE_CBC;
		c.data = ct;
		c.data_len = KMIP_CBC_CT_LEN;
		r = server_crypt(s, KMIP_OP_DECRYPT, &c, &out, e);
		if (r >= 0 && out.data_len != KMIP_DEK_LEN + KMIP_MAC_LEN)
			r = kms_fail(e, -EBADMSG, false,
				     "%s: returned %zu bytes, not a DEK and its binding",
				     where(wh, sizeof(wh), s, KMIP_OP_DECRYPT, w->uid),
				     out.data_len);
		if (r < 0)
			return r;
		memcpy(dek, out.data, KMIP_DEK_LEN + KMIP_MAC_LEN);
		r = cbc_mac(dek, aad, mac);
		if (r < 0 || CRYPTO_memcmp(mac, dek + KMIP_DEK_LEN, KMIP_MAC_LEN) != 0)
			return kms_fail(e, -EBADMSG, false,
					"KMIP: the wrapped key opened with key %s but is bound to "
					"another volume (a token copied from another volume)",
					w->uid);
		OPENSSL_cleanse(dek + KMIP_DEK_LEN, KMIP_MAC_LEN);
		break;
	case _SCHEME_MAX:
		return -EINVAL;
	}
	OPENSSL_cleanse(s->reply, s->reply_len);
	*ret_dek = TAKE_PTR(dek);
	return 0;
}

static int kmip_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		     const char *aad, struct kms_wrapped *ret, struct error *e)
{
	struct session s;
	struct chain c;
	int r;

	/* Unwrap accepts only this size back, so anything else would be lost. */
	if (dek_len != KMIP_DEK_LEN)
		return kms_fail(e, -EINVAL, false,
				"KMIP: refusing to wrap a %zu-byte key, "
				"expected %d",
				dek_len, KMIP_DEK_LEN);
	if (!kmip_uid_valid(key_id))
		return kms_fail(e, -EINVAL, false,
				"KMIP: the key id must be a Unique Identifier (1 to %d printable "
				"characters, no spaces)",
				KMIP_UID_MAX);
	r = session_open(kms, &s, e);
	if (r < 0)
		return r;
	r = chain_resolve(&s, key_id, &c, e);
	if (r >= 0)
		r = session_wrap(&s, &c, dek, aad, ret, e);
	session_close(&s);
	return r;
}

static int kmip_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		       uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		       struct error *e)
{
	struct session s;
	struct wdek w;
	int r;

	/* The key that made the WDEK unwraps it, wherever the chain from @key_id now ends. */
	(void)key_id;
	(void)rewrapped;
	r = wdek_parse(wdek, &w, e);
	if (r < 0)
		return r;
	r = session_open(kms, &s, e);
	if (r >= 0) {
		r = session_unwrap(&s, &w, aad, ret_dek, e);
		session_close(&s);
	}
	wdek_done(&w);
	if (r >= 0)
		*ret_len = KMIP_DEK_LEN;
	return r;
}

/* Moves a WDEK forward along the chain of @key_id to its current key (and to the configured
 * mode and cipher); the DEK passes through secure memory. A WDEK already there is returned as
 * it is; one made by a key not in the chain is refused, so a stale configuration never moves
 * a volume back to an older key. */
static int kmip_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		       struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct session s;
	struct chain c;
	struct wdek w;
	bool in_chain = false;
	int r;

	r = wdek_parse(wdek, &w, e);
	if (r < 0)
		return r;
	r = session_open(kms, &s, e);
	if (r < 0)
		goto out;
	r = chain_resolve(&s, key_id, &c, e);
	if (r < 0)
		goto close;
	for (size_t i = 0; i <= c.current; i++)
		in_chain |= strcmp(c.uid[i], w.uid) == 0;
	if (!in_chain) {
		r = kms_fail(e, -ESTALE, false,
			     "KMIP: the wrapped key was made by key %s, which the replacements of "
			     "key %s do not lead to (current: %s); is kms.%s.replacements out of "
			     "date?",
			     w.uid, key_id, c.uid[c.current], kms->name);
		goto close;
	}
	if (strcmp(w.uid, c.uid[c.current]) == 0 && w.scheme == wanted_scheme(&s)) {
		ret->wdek = strdup(wdek);
		ret->key_version = strdup(w.uid);
		r = ret->wdek && ret->key_version ? 0
						  : kms_fail(e, -ENOMEM, false, "out of memory");
		goto close;
	}
	r = session_unwrap(&s, &w, aad, &dek, e);
	if (r >= 0)
		r = session_wrap(&s, &c, dek, aad, ret, e);
close:
	session_close(&s);
out:
	wdek_done(&w);
	return r;
}

/* ---- key state ---- */

static const enum kms_key_state state_map[] = {
	[KMIP_STATE_PRE_ACTIVE] = KMS_KEY_PRE_ACTIVE,
	[KMIP_STATE_ACTIVE] = KMS_KEY_ACTIVE,
	[KMIP_STATE_DEACTIVATED] = KMS_KEY_DEACTIVATED,
	/* keyd has no "compromised": the key must not be used, as after a Revoke. */
	[KMIP_STATE_COMPROMISED] = KMS_KEY_DEACTIVATED,
	[KMIP_STATE_DESTROYED] = KMS_KEY_DESTROYED,
	[KMIP_STATE_DESTROYED_COMPROMISED] = KMS_KEY_DESTROYED,
};

static int kmip_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			 struct error *e)
{
	struct session s;
	struct chain c;
	const struct kmip_attrs *a;
	int r;

	if (!kmip_uid_valid(key_id))
		return kms_fail(e, -EINVAL, false, "KMIP: not a Unique Identifier: the key id");
	r = session_open(kms, &s, e);
	if (r < 0)
		return r;
	r = chain_resolve(&s, key_id, &c, e);
	session_close(&s);
	if (r == -ENOENT && c.n == 1)
		ret->state = KMS_KEY_DESTROYED; /* and an error: a missing key is not acted on */
	if (r < 0)
		return r;
	a = &c.attrs[c.current];
	*ret = (struct kms_key_info){.state = a->state < ELEMENTSOF(state_map) ? state_map[a->state]
									       : KMS_KEY_UNKNOWN};
	snprintf(ret->version, sizeof(ret->version), "%s", c.uid[c.current]);
	if (c.current > 0 && a->has_initial_date) {
		time_t t = (time_t)a->initial_date;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ret->last_rotated, sizeof(ret->last_rotated), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	return 0;
}

/* Connects and negotiates; given a key, checks that keyd can use the current one. */
static int kmip_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct session s;
	struct chain c;
	int r;

	if (key_id && !kmip_uid_valid(key_id))
		return kms_fail(e, -EINVAL, false, "KMIP: not a Unique Identifier: the key id");
	r = session_open(kms, &s, e);
	if (r < 0)
		return r;
	if (key_id) {
		r = chain_resolve(&s, key_id, &c, e);
		if (r >= 0)
			r = require_active(&s, c.uid[c.current], &c.attrs[c.current], "wraps", e);
		if (r >= 0)
			r = check_key(&s, c.uid[c.current], &c.attrs[c.current], e);
	}
	session_close(&s);
	return r;
}

static void kmip_done(struct kms *kms)
{
	kmip_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_kmip = {
	.name = "kmip",
	.summary = "KMIP 1.4/1.2 key manager over mutual TLS (server-side crypto or Get)",
	.parse = kmip_parse,
	.open = kmip_open,
	.wrap = kmip_wrap,
	.unwrap = kmip_unwrap,
	.rewrap = kmip_rewrap,
	.key_info = kmip_key_info,
	.event_ack = NULL, /* KMIP has no event acknowledgement */
	.probe = kmip_probe,
	.done = kmip_done,
};
