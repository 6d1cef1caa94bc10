// SPDX-License-Identifier: GPL-2.0-or-later
/* The `pkcs11` provider: a root key that never leaves an HSM, used through the HSM's PKCS#11
 * module. Wrap is C_Encrypt with CKM_AES_GCM and the AAD (or C_WrapKey with AES key wrap for
 * tokens that only wrap); unwrap is the reverse. Key versions are the CKA_IDs of key objects
 * sharing one CKA_LABEL. The PIN and the DEK stay in secure memory and out of every message. */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "kms.h"
#include "p11_error.h"
#include "p11_token.h"
#include "p11_wdek.h"
#include "secmem.h"
#include "util.h"

#define P11_OBJECTS_MAX	    16 /* versions of one label */
#define P11_TOKEN_LABEL_MAX 32 /* CK_TOKEN_INFO.label */
#define P11_SERIAL_MAX	    16 /* CK_TOKEN_INFO.serialNumber */
#define P11_KEYDESC_MAX	    (P11_LABEL_MAX + 2 * P11_ID_MAX + 32)

struct pkcs11 {
	char *module;
	char *label;  /* token label, or NULL */
	char *serial; /* token serial, or NULL */
	char *pin_file;
	const struct p11_mech *mech; /* what wrap uses; unwrap follows the WDEK */
	struct p11_token tok;
};

/* A secret-key object and what keyd needs to know about it. */
struct p11_key {
	CK_OBJECT_HANDLE h;
	uint8_t id[P11_ID_MAX];
	size_t id_len;
	CK_KEY_TYPE type;
	bool protect, process; /* may wrap (CKA_ENCRYPT/CKA_WRAP), unwrap (…DECRYPT/…UNWRAP) */
};

/* One provider call, whichever it is; the op functions read what they need. */
struct p11_call {
	const char *key_id;
	struct p11_keyref ref;
	const uint8_t *dek;
	size_t dek_len;
	const char *aad;
	const struct p11_wdek *in;
	uint8_t **ret_dek;
	size_t *ret_len;
	struct kms_wrapped *wrapped;
	struct kms_key_info *info;
};

typedef int (*p11_op)(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		      struct error *e);

static void pkcs11_free(struct pkcs11 *p)
{
	if (!p)
		return;
	p11_token_done(&p->tok);
	free(p->module);
	free(p->label);
	free(p->serial);
	free(p->pin_file);
	free(p);
}

static void pkcs11_freep(struct pkcs11 **p)
{
	pkcs11_free(*p);
}

/* A token label or serial as the configuration gives it: printable, no trailing blank (the
 * token's field is blank-padded, so one could never match). */
static int parse_field(json_t *obj, const char *path, const char *key, size_t max, const char **ret,
		       struct error *e)
{
	int r = jx_string(obj, path, key, false, max, ret, e);
	size_t n;

	if (r < 0 || !*ret)
		return r;
	n = strlen(*ret);
	for (size_t i = 0; i < n; i++)
		if ((*ret)[i] < 0x20 || (*ret)[i] > 0x7e)
			return jx_fail(e, "%s.%s: must be printable ASCII", path, key);
	if (n == 0 || (*ret)[n - 1] == ' ')
		return jx_fail(e, "%s.%s: must not be empty or end in a blank", path, key);
	return 0;
}

static int pkcs11_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"provider", "module",    "token", "token_serial",
					   "pin_file", "mechanism", NULL};
	_cleanup_(pkcs11_freep) struct pkcs11 *p = NULL;
	const char *module = NULL, *label = NULL, *serial = NULL, *pin = NULL, *mech = "aes-gcm";
	int r;

	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "module", true, PATH_MAX - 1, &module, e)) < 0 ||
	    (r = parse_field(obj, path, "token", P11_TOKEN_LABEL_MAX, &label, e)) < 0 ||
	    (r = parse_field(obj, path, "token_serial", P11_SERIAL_MAX, &serial, e)) < 0 ||
	    (r = jx_string(obj, path, "pin_file", true, PATH_MAX - 1, &pin, e)) < 0 ||
	    (r = jx_string(obj, path, "mechanism", false, 32, &mech, e)) < 0)
		return r;
	if (module[0] != '/')
		return jx_fail(e, "%s.module: \"%s\" must be an absolute path", path, module);
	if (!label && !serial)
		return jx_fail(e, "%s: give token (the token's label) or token_serial, or both",
			       path);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->mech = p11_mech_by_config(mech);
	if (!p->mech)
		return jx_fail(e, "%s.mechanism: \"%s\" is not one of %s", path, mech,
			       p11_mech_config_names());
	p->module = strdup(module);
	p->label = label ? strdup(label) : NULL;
	p->serial = serial ? strdup(serial) : NULL;
	p->pin_file = strdup(pin);
	if (!p->module || !p->pin_file || (label && !p->label) || (serial && !p->serial))
		return -ENOMEM;
	p11_token_init(&p->tok, p->label, p->serial, p->pin_file);
	kms->data = TAKE_PTR(p);
	return 0;
}

static int pkcs11_open(struct kms *kms, struct error *e)
{
	struct pkcs11 *p = kms->data;

	return p11_token_open(&p->tok, p->module, e);
}

/* "key 'pg-root' (CKA_ID 01)", "key id:01" for messages. */
static const char *keydesc(char *buf, size_t size, const struct p11_keyref *ref, const uint8_t *id,
			   size_t id_len)
{
	char hex[2 * P11_ID_MAX + 1];

	if (ref->by_id)
		snprintf(buf, size, "key id:%s",
			 p11_id_hex(ref->id, ref->id_len, hex, sizeof(hex)));
	else if (id)
		snprintf(buf, size, "key '%s' (CKA_ID %s)", ref->label,
			 id_len ? p11_id_hex(id, id_len, hex, sizeof(hex)) : "empty");
	else
		snprintf(buf, size, "key '%s'", ref->label);
	return buf;
}

static int key_attributes(struct pkcs11 *p, struct p11_session *s, const struct p11_mech *mech,
			  struct p11_key *k, const char *what, CK_RV *rv, struct error *e)
{
	CK_BBOOL protect = CK_FALSE, process = CK_FALSE;
	CK_ATTRIBUTE a[] = {
		{CKA_ID, k->id, sizeof(k->id)},
		{CKA_KEY_TYPE, &k->type, sizeof(k->type)},
		{mech->protect, &protect, sizeof(protect)},
		{mech->process, &process, sizeof(process)},
	};

	*rv = s->f->C_GetAttributeValue(s->h, k->h, a, ELEMENTSOF(a));
	/* These three say "some attribute was not there", and mark it unavailable. */
	if (*rv != CKR_OK && *rv != CKR_ATTRIBUTE_TYPE_INVALID && *rv != CKR_BUFFER_TOO_SMALL &&
	    *rv != CKR_ATTRIBUTE_SENSITIVE)
		return p11_fail(e, *rv, NULL, "%s: C_GetAttributeValue of %s", p->tok.name, what);
	*rv = CKR_OK;
	if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return kms_fail(e, -E2BIG, false, "%s: %s has a CKA_ID longer than %d bytes",
				p->tok.name, what, P11_ID_MAX);
	k->id_len = a[0].ulValueLen;
	if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
		k->type = CKK_VENDOR_DEFINED;
	k->protect = a[2].ulValueLen != CK_UNAVAILABLE_INFORMATION && protect == CK_TRUE;
	k->process = a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION && process == CK_TRUE;
	return 0;
}

/* The secret-key objects @ref names (only the one with CKA_ID @id if @id), with the usage
 * attributes of @mech. *n = 0 means there are none, and the session is logged in, so they
 * are gone rather than hidden. */
static int keys_find(struct pkcs11 *p, struct p11_session *s, const struct p11_keyref *ref,
		     const uint8_t *id, size_t id_len, const struct p11_mech *mech,
		     struct p11_key *keys, size_t *n, CK_RV *rv, struct error *e)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE h[P11_OBJECTS_MAX + 1];
	CK_ULONG nt = 1, count = 0;
	char what[P11_KEYDESC_MAX];
	int r;

	*n = 0;
	keydesc(what, sizeof(what), ref, id, id_len);
	if (!ref->by_id)
		tpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)ref->label, strlen(ref->label)};
	if (ref->by_id || id)
		tpl[nt++] = ref->by_id ? (CK_ATTRIBUTE){CKA_ID, (void *)ref->id, ref->id_len}
				       : (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
	*rv = s->f->C_FindObjectsInit(s->h, tpl, nt);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_FindObjectsInit for %s", p->tok.name, what);
	*rv = s->f->C_FindObjects(s->h, h, ELEMENTSOF(h), &count);
	s->f->C_FindObjectsFinal(s->h);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_FindObjects for %s", p->tok.name, what);
	if (count > P11_OBJECTS_MAX)
		return kms_fail(e, -E2BIG, false, "%s: more than %d secret key objects for %s",
				p->tok.name, P11_OBJECTS_MAX, what);
	if (count == 0)
		return p11_token_check_login(&p->tok, s, rv, e);
	for (CK_ULONG i = 0; i < count; i++) {
		keys[i] = (struct p11_key){.h = h[i]};
		r = key_attributes(p, s, mech, &keys[i], what, rv, e);
		if (r < 0)
			return r;
	}
	*n = count;
	return 0;
}

/* The newest version: the largest CKA_ID. Two objects with one CKA_ID are ambiguous. */
static int key_newest(struct pkcs11 *p, const struct p11_keyref *ref, const struct p11_key *keys,
		      size_t n, const struct p11_key **ret, struct error *e)
{
	char what[P11_KEYDESC_MAX];

	*ret = NULL;
	for (size_t i = 0; i < n; i++) {
		int c = *ret ? p11_id_cmp(keys[i].id, keys[i].id_len, (*ret)->id, (*ret)->id_len)
			     : 1;

		for (size_t j = 0; j < i; j++)
			if (keys[j].id_len == keys[i].id_len &&
			    memcmp(keys[j].id, keys[i].id, keys[i].id_len) == 0)
				return kms_fail(e, -ENOTUNIQ, false,
						"%s: two secret key objects are %s: give each "
						"version of a label its own CKA_ID",
						p->tok.name,
						keydesc(what, sizeof(what), ref, keys[i].id,
							keys[i].id_len));
		if (c > 0)
			*ret = &keys[i];
	}
	return 0;
}

/* The key must be AES and allowed to do @use. */
static int key_usable(struct pkcs11 *p, const struct p11_keyref *ref, const struct p11_key *k,
		      const struct p11_mech *mech, bool protect, struct error *e)
{
	char what[P11_KEYDESC_MAX];

	keydesc(what, sizeof(what), ref, k->id, k->id_len);
	if (k->type != CKK_AES)
		return kms_fail(e, -EOPNOTSUPP, false, "%s: %s is not an AES key", p->tok.name,
				what);
	if (protect && !k->protect)
		return kms_fail(e, -EKEYREJECTED, false,
				"%s: %s may not wrap new keys (%s is false); give a key that may",
				p->tok.name, what, mech->protect_name);
	if (!protect && !k->process)
		return kms_fail(e, -EKEYREVOKED, false,
				"%s: %s is revoked at the token: %s is false", p->tok.name, what,
				mech->process_name);
	return 0;
}

/* The configured mechanism, or its fallback, if the token offers it for both directions. */
static int mech_pick(struct pkcs11 *p, struct p11_session *s, const struct p11_mech **ret,
		     CK_RV *rv, struct error *e)
{
	for (const struct p11_mech *m = p->mech; m; m = m->fallback) {
		CK_FLAGS want =
			m->kind == P11_WRAP_GCM ? CKF_ENCRYPT | CKF_DECRYPT : CKF_WRAP | CKF_UNWRAP;
		CK_MECHANISM_INFO mi;

		*rv = s->f->C_GetMechanismInfo(s->slot, m->type, &mi);
		if (*rv == CKR_OK && (mi.flags & want) == want) {
			*ret = m;
			return 0;
		}
		if (*rv != CKR_OK && *rv != CKR_MECHANISM_INVALID)
			return p11_fail(e, *rv, NULL, "%s: C_GetMechanismInfo(%s)", p->tok.name,
					m->name);
	}
	*rv = CKR_OK;
	return kms_fail(e, -EOPNOTSUPP, false,
			"%s: the token does not offer %s%s%s for both directions (mechanism "
			"\"%s\"); mechanisms keyd knows: %s",
			p->tok.name, p->mech->name, p->mech->fallback ? " or " : "",
			p->mech->fallback ? p->mech->fallback->name : "", p->mech->config,
			p11_mech_config_names());
}

static int aad_hash(const char *aad, uint8_t *out)
{
	return EVP_Digest(aad, strlen(aad), out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

/* Tokens differ in how a tag that does not verify comes back: SoftHSM2 says
 * CKR_GENERAL_ERROR, others CKR_FUNCTION_FAILED, the standard CKR_ENCRYPTED_DATA_INVALID or
 * CKR_AEAD_DECRYPT_FAILED (those have the table's hint already). */
static const char *decrypt_hint(CK_RV rv)
{
	if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED)
		return "the token would not decrypt; this is how SoftHSM2 and some HSMs report a "
		       "wrapped key that does not authenticate with this key object and this "
		       "volume's AAD (another key, a token copied from another volume, or a "
		       "damaged token)";
	return NULL;
}

/* GCM: blob = IV || C_Encrypt(DEK) (ciphertext || 16-byte tag), AAD "keyd:v1:<UUID>". */
static int wrap_gcm(struct pkcs11 *p, struct p11_session *s, const struct p11_key *k,
		    const struct p11_call *c, struct p11_wdek *w, CK_RV *rv, struct error *e)
{
	CK_GCM_PARAMS gp = {
		.iv_ptr = w->blob,
		.iv_len = P11_GCM_IV_LEN,
		.iv_bits = P11_GCM_IV_LEN * 8,
		.aad_ptr = (CK_BYTE_PTR)c->aad,
		.aad_len = strlen(c->aad),
		.tag_bits = P11_GCM_TAG_LEN * 8,
	};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG n = sizeof(w->blob) - P11_GCM_IV_LEN;

	if (RAND_bytes(w->blob, P11_GCM_IV_LEN) != 1)
		return kms_fail(e, -EIO, false, "no randomness for the IV");
	*rv = s->f->C_EncryptInit(s->h, &m, k->h);
	if (*rv == CKR_OK)
		*rv = s->f->C_Encrypt(s->h, (CK_BYTE_PTR)c->dek, c->dek_len,
				      w->blob + P11_GCM_IV_LEN, &n);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_Encrypt with CKM_AES_GCM", p->tok.name);
	if (n != c->dek_len + P11_GCM_TAG_LEN)
		return kms_fail(e, -EPROTO, false,
				"%s: C_Encrypt with CKM_AES_GCM returned %lu bytes for a %zu-byte "
				"key, expected %zu",
				p->tok.name, (unsigned long)n, c->dek_len,
				c->dek_len + P11_GCM_TAG_LEN);
	w->blob_len = P11_GCM_IV_LEN + n;
	return 0;
}

static int unwrap_gcm(struct pkcs11 *p, struct p11_session *s, const struct p11_key *k,
		      const struct p11_wdek *w, const char *aad, uint8_t *dek, size_t *n, CK_RV *rv,
		      struct error *e)
{
	CK_GCM_PARAMS gp = {
		.iv_ptr = (CK_BYTE_PTR)w->blob,
		.iv_len = P11_GCM_IV_LEN,
		.iv_bits = P11_GCM_IV_LEN * 8,
		.aad_ptr = (CK_BYTE_PTR)aad,
		.aad_len = strlen(aad),
		.tag_bits = P11_GCM_TAG_LEN * 8,
	};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG len = *n;

	*rv = s->f->C_DecryptInit(s->h, &m, k->h);
	if (*rv == CKR_OK)
		*rv = s->f->C_Decrypt(s->h, (CK_BYTE_PTR)w->blob + P11_GCM_IV_LEN,
				      w->blob_len - P11_GCM_IV_LEN, dek, &len);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, decrypt_hint(*rv), "%s: C_Decrypt with CKM_AES_GCM",
				p->tok.name);
	*n = len;
	return 0;
}

/* Key wrap has no associated data, so the AAD's SHA-256 travels inside the wrapped
 * plaintext (DEK || SHA-256(AAD)), which AES key wrap authenticates as a whole. The plaintext
 * becomes a short-lived session object, the only way C_WrapKey takes data. */
static int wrap_kw(struct pkcs11 *p, struct p11_session *s, const struct p11_mech *mech,
		   const struct p11_key *k, const struct p11_call *c, struct p11_wdek *w, CK_RV *rv,
		   struct error *e)
{
	_cleanup_secure_ uint8_t *plain = secmem_alloc(P11_DEK_MAX + P11_AAD_HASH_LEN);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	size_t n = c->dek_len + P11_AAD_HASH_LEN;
	CK_ATTRIBUTE tpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},	      {CKA_KEY_TYPE, &type, sizeof(type)},
		{CKA_TOKEN, &no, sizeof(no)},	      {CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE, plain, n},
	};
	CK_MECHANISM m = {mech->type, NULL, 0};
	CK_OBJECT_HANDLE h;
	CK_ULONG len = sizeof(w->blob);

	if (!plain)
		return kms_fail(e, -ENOMEM, false, "out of secure memory");
	memcpy(plain, c->dek, c->dek_len);
	if (aad_hash(c->aad, plain + c->dek_len) < 0)
		return kms_fail(e, -EIO, false, "SHA-256 of the AAD failed");
	*rv = s->f->C_CreateObject(s->h, tpl, ELEMENTSOF(tpl), &h);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_CreateObject (the key to wrap)", p->tok.name);
	*rv = s->f->C_WrapKey(s->h, &m, k->h, h, w->blob, &len);
	s->f->C_DestroyObject(s->h, h);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_WrapKey with %s", p->tok.name, mech->name);
	w->blob_len = len;
	return 0;
}

static int unwrap_kw(struct pkcs11 *p, struct p11_session *s, const struct p11_key *k,
		     const struct p11_wdek *w, const char *aad, uint8_t *dek, size_t *n, CK_RV *rv,
		     struct error *e)
{
	_cleanup_secure_ uint8_t *plain = secmem_alloc(P11_BLOB_MAX);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},	      {CKA_KEY_TYPE, &type, sizeof(type)},
		{CKA_TOKEN, &no, sizeof(no)},	      {CKA_SENSITIVE, &no, sizeof(no)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)},
	};
	CK_ATTRIBUTE value = {CKA_VALUE, plain, P11_BLOB_MAX};
	CK_MECHANISM m = {w->mech->type, NULL, 0};
	uint8_t hash[P11_AAD_HASH_LEN];
	CK_OBJECT_HANDLE h;

	if (!plain)
		return kms_fail(e, -ENOMEM, false, "out of secure memory");
	*rv = s->f->C_UnwrapKey(s->h, &m, k->h, (CK_BYTE_PTR)w->blob, w->blob_len, tpl,
				ELEMENTSOF(tpl), &h);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, decrypt_hint(*rv), "%s: C_UnwrapKey with %s", p->tok.name,
				w->mech->name);
	*rv = s->f->C_GetAttributeValue(s->h, h, &value, 1);
	s->f->C_DestroyObject(s->h, h);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: reading the unwrapped key", p->tok.name);
	if (value.ulValueLen < P11_DEK_MIN + P11_AAD_HASH_LEN ||
	    value.ulValueLen > P11_DEK_MAX + P11_AAD_HASH_LEN || value.ulValueLen > *n)
		return kms_fail(e, -EBADMSG, false, "%s: the unwrapped key has %lu bytes",
				p->tok.name, (unsigned long)value.ulValueLen);
	if (aad_hash(aad, hash) < 0)
		return kms_fail(e, -EIO, false, "SHA-256 of the AAD failed");
	if (CRYPTO_memcmp(plain + value.ulValueLen - P11_AAD_HASH_LEN, hash, sizeof(hash)) != 0)
		return kms_fail(e, -EBADMSG, false,
				"%s: the wrapped key is bound to another volume (a token copied "
				"from another volume?)",
				p->tok.name);
	*n = value.ulValueLen - P11_AAD_HASH_LEN;
	memcpy(dek, plain, *n);
	return 0;
}

/* Wraps c->dek with the newest version of c->ref into c->wrapped. */
static int wrap_with(struct pkcs11 *p, struct p11_session *s, const struct p11_key *k,
		     struct p11_call *c, CK_RV *rv, struct error *e)
{
	const struct p11_mech *mech = NULL;
	struct p11_wdek w = {0};
	char hex[2 * P11_ID_MAX + 1];
	int r;

	r = key_usable(p, &c->ref, k, p->mech, true, e);
	if (r >= 0)
		r = mech_pick(p, s, &mech, rv, e);
	if (r < 0)
		return r;
	w.mech = mech;
	memcpy(w.id, k->id, k->id_len);
	w.id_len = k->id_len;
	r = mech->kind == P11_WRAP_GCM ? wrap_gcm(p, s, k, c, &w, rv, e)
				       : wrap_kw(p, s, mech, k, c, &w, rv, e);
	if (r < 0)
		return r;
	r = p11_wdek_format(&w, &c->wrapped->wdek);
	if (r < 0)
		return kms_fail(e, r, false, "out of memory");
	c->wrapped->key_version =
		k->id_len ? strdup(p11_id_hex(k->id, k->id_len, hex, sizeof(hex))) : NULL;
	if (k->id_len && !c->wrapped->key_version) {
		kms_wrapped_done(c->wrapped);
		return kms_fail(e, -ENOMEM, false, "out of memory");
	}
	return 0;
}

static int op_wrap(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		   struct error *e)
{
	struct p11_key keys[P11_OBJECTS_MAX];
	const struct p11_key *k;
	char what[P11_KEYDESC_MAX];
	size_t n;
	int r;

	r = keys_find(p, s, &c->ref, NULL, 0, p->mech, keys, &n, rv, e);
	if (r < 0)
		return r;
	if (n == 0)
		return kms_fail(e, -ENOENT, false,
				"%s: no secret key object for %s (keyd never creates keys: "
				"generate it on the token first)",
				p->tok.name, keydesc(what, sizeof(what), &c->ref, NULL, 0));
	r = key_newest(p, &c->ref, keys, n, &k, e);
	return r < 0 ? r : wrap_with(p, s, k, c, rv, e);
}

/* Unwraps c->in with the key object that made it. */
static int unwrap_in(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		     struct error *e)
{
	const struct p11_wdek *w = c->in;
	_cleanup_secure_ uint8_t *dek = secmem_alloc(P11_BLOB_MAX);
	struct p11_key keys[P11_OBJECTS_MAX];
	char what[P11_KEYDESC_MAX];
	size_t n, len = P11_BLOB_MAX;
	int r;

	if (!dek)
		return kms_fail(e, -ENOMEM, false, "out of secure memory");
	if (c->ref.by_id &&
	    (c->ref.id_len != w->id_len || memcmp(c->ref.id, w->id, w->id_len) != 0))
		return kms_fail(e, -EBADMSG, false,
				"%s: the wrapped key was made by another key object than %s",
				p->tok.name, keydesc(what, sizeof(what), &c->ref, NULL, 0));
	r = keys_find(p, s, &c->ref, w->id, w->id_len, w->mech, keys, &n, rv, e);
	if (r < 0)
		return r;
	keydesc(what, sizeof(what), &c->ref, w->id, w->id_len);
	if (n == 0)
		return kms_fail(e, -ENOENT, false,
				"%s: no secret key object for %s, which wrapped this volume's key "
				"(destroyed at the token, or another token?)",
				p->tok.name, what);
	if (n > 1)
		return kms_fail(e, -ENOTUNIQ, false, "%s: %zu secret key objects are %s",
				p->tok.name, n, what);
	r = key_usable(p, &c->ref, &keys[0], w->mech, false, e);
	if (r < 0)
		return r;
	r = w->mech->kind == P11_WRAP_GCM ? unwrap_gcm(p, s, &keys[0], w, c->aad, dek, &len, rv, e)
					  : unwrap_kw(p, s, &keys[0], w, c->aad, dek, &len, rv, e);
	if (r < 0)
		return r;
	if (len < P11_DEK_MIN || len > P11_DEK_MAX)
		return kms_fail(e, -EPROTO, false, "%s: %s unwrapped a %zu-byte key", p->tok.name,
				what, len);
	*c->ret_dek = TAKE_PTR(dek);
	*c->ret_len = len;
	return 0;
}

static int op_unwrap(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		     struct error *e)
{
	return unwrap_in(p, s, c, rv, e);
}

/* Rewrap: C_Decrypt with the version that made the WDEK, C_Encrypt with the newest, in one
 * session; the DEK is in keyd's secure memory for the moment between, as at every unlock.
 * A WDEK already made by the newest version with the configured mechanism stays as it is. */
static int op_rewrap(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		     struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct p11_key keys[P11_OBJECTS_MAX];
	const struct p11_key *k;
	const struct p11_mech *mech = NULL;
	char what[P11_KEYDESC_MAX], hex[2 * P11_ID_MAX + 1];
	size_t n, len = 0;
	int r;

	r = keys_find(p, s, &c->ref, NULL, 0, p->mech, keys, &n, rv, e);
	if (r < 0)
		return r;
	if (n == 0)
		return kms_fail(e, -ENOENT, false, "%s: no secret key object for %s", p->tok.name,
				keydesc(what, sizeof(what), &c->ref, NULL, 0));
	r = key_newest(p, &c->ref, keys, n, &k, e);
	if (r >= 0)
		r = mech_pick(p, s, &mech, rv, e);
	if (r < 0)
		return r;
	if (k->id_len == c->in->id_len && memcmp(k->id, c->in->id, k->id_len) == 0 &&
	    mech == c->in->mech) {
		c->wrapped->wdek = NULL;
		r = p11_wdek_format(c->in, &c->wrapped->wdek);
		c->wrapped->key_version =
			k->id_len ? strdup(p11_id_hex(k->id, k->id_len, hex, sizeof(hex))) : NULL;
		if (r < 0 || (k->id_len && !c->wrapped->key_version)) {
			kms_wrapped_done(c->wrapped);
			return kms_fail(e, -ENOMEM, false, "out of memory");
		}
		return 0;
	}
	c->ret_dek = &dek;
	c->ret_len = &len;
	r = unwrap_in(p, s, c, rv, e);
	if (r < 0)
		return r;
	c->dek = dek;
	c->dek_len = len;
	r = wrap_with(p, s, k, c, rv, e);
	c->dek = NULL;
	return r;
}

/* The newest version's state: it may unwrap (active), may not (suspended: CKA_DECRYPT or
 * CKA_UNWRAP set to false, reversible), or no object is left (destroyed). */
static int op_key_info(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		       struct error *e)
{
	struct p11_key keys[P11_OBJECTS_MAX];
	const struct p11_key *k;
	char hex[2 * P11_ID_MAX + 1];
	size_t n;
	int r;

	r = keys_find(p, s, &c->ref, NULL, 0, p->mech, keys, &n, rv, e);
	if (r < 0)
		return r;
	*c->info = (struct kms_key_info){.state = KMS_KEY_DESTROYED};
	if (n == 0)
		return 0;
	r = key_newest(p, &c->ref, keys, n, &k, e);
	if (r < 0)
		return r;
	c->info->state = k->process ? KMS_KEY_ACTIVE : KMS_KEY_SUSPENDED;
	p11_id_hex(k->id, k->id_len, hex, sizeof(hex));
	snprintf(c->info->version, sizeof(c->info->version), "%s", hex);
	return 0;
}

/* Logged in; with a key: its newest version can wrap and unwrap with the mechanism. */
static int op_probe(struct pkcs11 *p, struct p11_session *s, struct p11_call *c, CK_RV *rv,
		    struct error *e)
{
	struct p11_key keys[P11_OBJECTS_MAX];
	const struct p11_key *k;
	const struct p11_mech *mech;
	char what[P11_KEYDESC_MAX];
	size_t n;
	int r;

	if (!c->key_id)
		return 0;
	r = keys_find(p, s, &c->ref, NULL, 0, p->mech, keys, &n, rv, e);
	if (r < 0)
		return r;
	if (n == 0)
		return kms_fail(e, -ENOENT, false, "%s: no secret key object for %s", p->tok.name,
				keydesc(what, sizeof(what), &c->ref, NULL, 0));
	r = key_newest(p, &c->ref, keys, n, &k, e);
	if (r >= 0)
		r = key_usable(p, &c->ref, k, p->mech, true, e);
	if (r >= 0)
		r = key_usable(p, &c->ref, k, p->mech, false, e);
	if (r >= 0)
		r = mech_pick(p, s, &mech, rv, e);
	return r;
}

/* Runs @op on a lent session. A session that had sat idle and turns out dead (the token was
 * reset, an HSM connection dropped) buys one more try on a new one at once. */
static int pkcs11_run(struct kms *kms, p11_op op, struct p11_call *c, struct error *e)
{
	struct pkcs11 *p = kms->data;
	int r = 0;

	if (c->key_id && p11_keyref_parse(c->key_id, &c->ref) < 0)
		return kms_fail(
			e, -EINVAL, false,
			"%s: key id \"%s\" is not a key object label (1 to %d printable "
			"characters, optionally after \"label:\") or \"id:\" and hex digits",
			p->tok.name, c->key_id, P11_LABEL_MAX);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct p11_session s;
		CK_RV rv = CKR_OK;
		bool fresh;

		r = p11_token_session(&p->tok, &s, e);
		if (r < 0)
			return r;
		fresh = s.fresh;
		r = op(p, &s, c, &rv, e);
		p11_token_release(&p->tok, &s, rv);
		if (r >= 0 || fresh || !p11_rv_info(rv)->drop || rv == CKR_OK)
			break;
	}
	return r;
}

static int pkcs11_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		       const char *aad, struct kms_wrapped *ret, struct error *e)
{
	struct p11_call c = {.key_id = key_id, .dek = dek, .dek_len = dek_len, .aad = aad};
	struct pkcs11 *p = kms->data;

	if (dek_len < P11_DEK_MIN || dek_len > P11_DEK_MAX)
		return kms_fail(e, -EINVAL, false, "%s: cannot wrap a %zu-byte key", p->tok.name,
				dek_len);
	*ret = (struct kms_wrapped){0};
	c.wrapped = ret;
	return pkcs11_run(kms, op_wrap, &c, e);
}

static int parse_wdek(struct pkcs11 *p, const char *wdek, struct p11_wdek *w, struct error *e)
{
	if (p11_wdek_parse(wdek, w) < 0)
		return kms_fail(e, -EBADMSG, false,
				"%s: the wrapped key is not in the pkcs11 provider's format "
				"(pkcs11:v1:<mechanism>:<hex CKA_ID>:<base64>)",
				p->tok.name);
	return 0;
}

static int pkcs11_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
			 uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
			 struct error *e)
{
	struct p11_call c = {.key_id = key_id, .aad = aad, .ret_dek = ret_dek, .ret_len = ret_len};
	struct pkcs11 *p = kms->data;
	struct p11_wdek w;
	int r;

	(void)rewrapped; /* a token never rewraps on its own */
	r = parse_wdek(p, wdek, &w, e);
	if (r < 0)
		return r;
	c.in = &w;
	return pkcs11_run(kms, op_unwrap, &c, e);
}

static int pkcs11_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
			 struct kms_wrapped *ret, struct error *e)
{
	struct p11_call c = {.key_id = key_id, .aad = aad};
	struct pkcs11 *p = kms->data;
	struct p11_wdek w;
	int r;

	r = parse_wdek(p, wdek, &w, e);
	if (r < 0)
		return r;
	*ret = (struct kms_wrapped){0};
	c.in = &w;
	c.wrapped = ret;
	return pkcs11_run(kms, op_rewrap, &c, e);
}

static int pkcs11_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			   struct error *e)
{
	struct p11_call c = {.key_id = key_id, .info = ret};

	return pkcs11_run(kms, op_key_info, &c, e);
}

static int pkcs11_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct p11_call c = {.key_id = key_id};

	return pkcs11_run(kms, op_probe, &c, e);
}

static void pkcs11_done(struct kms *kms)
{
	pkcs11_free(TAKE_PTR(kms->data));
}

const struct kms_provider kms_provider_pkcs11 = {
	.name = "pkcs11",
	.summary = "an HSM's root key through its PKCS#11 module (AES-GCM or AES key wrap)",
	.parse = pkcs11_parse,
	.open = pkcs11_open,
	.wrap = pkcs11_wrap,
	.unwrap = pkcs11_unwrap,
	.rewrap = pkcs11_rewrap,
	.key_info = pkcs11_key_info,
	.event_ack = NULL, /* tokens send no events */
	.probe = pkcs11_probe,
	.done = pkcs11_done,
};
