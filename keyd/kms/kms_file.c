// SPDX-License-Identifier: GPL-2.0-or-later
/* The `file` provider: a 32-byte root key in a local file wraps DEKs with AES-256-GCM, bound
 * to the volume's AAD and the key id. For demos and tests only: the root key sits on the same
 * host as the data it protects, so it gives no crypto-shredding and no BYOK. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "kms.h"
#include "secmem.h"
#include "util.h"

#define FILE_ROOT_KEY_LEN 32
#define FILE_NONCE_LEN	  12
#define FILE_TAG_LEN	  16
#define FILE_DEK_MAX	  64
#define FILE_BLOB_MAX	  (FILE_NONCE_LEN + FILE_DEK_MAX + FILE_TAG_LEN)
#define FILE_PREFIX	  "file:v1:"

struct file_kms {
	char *root_key_file;
	uint8_t *root_key; /* secure memory */
};

static int file_parse(struct kms *kms, json_t *obj, const char *path, struct error *e)
{
	static const char *const keys[] = {"provider", "root_key_file", NULL};
	struct file_kms *f;
	const char *p = NULL;
	int r;

	r = jx_only_keys(obj, path, keys, e);
	if (r < 0)
		return r;
	r = jx_string(obj, path, "root_key_file", true, 4096, &p, e);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->root_key_file = strdup(p))) {
		free(f);
		return -ENOMEM;
	}
	kms->data = f;
	return 0;
}

/* The root key from its file into secure memory, or an error that says what is wrong. */
static int file_read_key(const struct file_kms *f, uint8_t **ret, struct error *e)
{
	_cleanup_secure_ uint8_t *key = NULL;
	struct error ce;
	size_t n;
	int r;

	r = read_credential(f->root_key_file, false, &key, &n, &ce);
	if (r == -EPERM)
		return kms_fail(e, r, false,
				"root key file refused: %s (it must be a regular file owned by "
				"root with mode 0600)",
				ce.msg);
	if (r < 0)
		return kms_fail(e, r, false, "cannot read root key file: %s", ce.msg);
	if (n != FILE_ROOT_KEY_LEN)
		return kms_fail(e, -EINVAL, false, "root key file %s holds %zu bytes, expected %d",
				f->root_key_file, n, FILE_ROOT_KEY_LEN);
	*ret = TAKE_PTR(key);
	return 0;
}

static int file_open(struct kms *kms, struct error *e)
{
	struct file_kms *f = kms->data;

	return file_read_key(f, &f->root_key, e);
}

/* GCM with associated data "<aad>\0<key id>": a WDEK opens only for its volume and key id. */
static int file_gcm(const uint8_t *key, bool enc, const uint8_t *nonce, const char *aad,
		    const char *key_id, const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len, ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) &&
	     EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad) + 1) &&
	     EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)key_id, (int)strlen(key_id)) &&
	     EVP_CipherUpdate(ctx, out, &len, in, (int)n) &&
	     (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FILE_TAG_LEN, tag)) &&
	     EVP_CipherFinal_ex(ctx, out + len, &len) &&
	     (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FILE_TAG_LEN, tag));
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EBADMSG;
}

static int file_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		     const char *aad, struct kms_wrapped *ret, struct error *e)
{
	struct file_kms *f = kms->data;
	uint8_t blob[FILE_BLOB_MAX];
	_cleanup_secure_ char *b64 = NULL;
	size_t n = FILE_NONCE_LEN + dek_len + FILE_TAG_LEN;
	int r;

	if (dek_len == 0 || dek_len > FILE_DEK_MAX)
		return kms_fail(e, -EINVAL, false, "cannot wrap a %zu-byte key", dek_len);
	if (RAND_bytes(blob, FILE_NONCE_LEN) != 1)
		return kms_fail(e, -EIO, false, "no randomness for the nonce");
	r = file_gcm(f->root_key, true, blob, aad, key_id, dek, dek_len, blob + FILE_NONCE_LEN,
		     blob + FILE_NONCE_LEN + dek_len);
	if (r < 0)
		return kms_fail(e, r, false, "AES-GCM wrap failed");
	r = b64_encode(blob, n, &b64);
	if (r < 0)
		return kms_fail(e, r, false, "out of secure memory");
	ret->wdek = malloc(strlen(FILE_PREFIX) + strlen(b64) + 1);
	if (!ret->wdek)
		return kms_fail(e, -ENOMEM, false, "out of memory");
	strcpy(ret->wdek, FILE_PREFIX);
	strcat(ret->wdek, b64);
	ret->key_version = NULL;
	return 0;
}

static int file_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		       uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		       struct error *e)
{
	struct file_kms *f = kms->data;
	_cleanup_secure_ uint8_t *blob = NULL;
	_cleanup_secure_ uint8_t *dek = NULL;
	size_t n, dek_len;
	int r;

	(void)rewrapped;
	if (strncmp(wdek, FILE_PREFIX, strlen(FILE_PREFIX)) != 0)
		return kms_fail(e, -EBADMSG, false,
				"wrapped key is not in the file provider's format");
	r = b64_decode(wdek + strlen(FILE_PREFIX), &blob, &n);
	if (r < 0 || n <= FILE_NONCE_LEN + FILE_TAG_LEN || n > FILE_BLOB_MAX)
		return kms_fail(e, -EBADMSG, false, "wrapped key is malformed");
	dek_len = n - FILE_NONCE_LEN - FILE_TAG_LEN;
	dek = secmem_alloc(dek_len);
	if (!dek)
		return kms_fail(e, -ENOMEM, false, "out of secure memory");
	r = file_gcm(f->root_key, false, blob, aad, key_id, blob + FILE_NONCE_LEN, dek_len, dek,
		     blob + n - FILE_TAG_LEN);
	if (r < 0)
		return kms_fail(e, -EBADMSG, false,
				"wrapped key does not open with root key %s for key id '%s' and "
				"this volume (wrong root key, key id, or a token copied from "
				"another volume)",
				f->root_key_file, key_id);
	*ret_dek = TAKE_PTR(dek);
	*ret_len = dek_len;
	return 0;
}

/* The same root key, a fresh nonce: the old WDEK keeps working too, as after a KMS rewrap. */
static int file_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		       struct kms_wrapped *ret, struct error *e)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	size_t n = 0;
	int r;

	r = file_unwrap(kms, key_id, wdek, aad, &dek, &n, NULL, e);
	if (r < 0)
		return r;
	return file_wrap(kms, key_id, dek, n, aad, ret, e);
}

/* The root key is "active" while its file still holds the key keyd loaded; anything else is
 * an error that says what changed. There are no versions. */
static int file_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			 struct error *e)
{
	struct file_kms *f = kms->data;
	_cleanup_secure_ uint8_t *key = NULL;
	int r;

	(void)key_id;
	r = file_read_key(f, &key, e);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(key, f->root_key, FILE_ROOT_KEY_LEN) != 0)
		return kms_fail(e, -EKEYREJECTED, false,
				"root key file %s now holds another key than the one keyd loaded; "
				"WDEKs made with either may not open (restart keyd to load it)",
				f->root_key_file);
	*ret = (struct kms_key_info){.state = KMS_KEY_ACTIVE};
	return 0;
}

static void file_done(struct kms *kms)
{
	struct file_kms *f = kms->data;

	if (!f)
		return;
	secmem_free(f->root_key);
	free(f->root_key_file);
	free(f);
	kms->data = NULL;
}

const struct kms_provider kms_provider_file = {
	.name = "file",
	.summary = "local root-key file (demos and tests only, not for production)",
	.parse = file_parse,
	.open = file_open,
	.wrap = file_wrap,
	.unwrap = file_unwrap,
	.rewrap = file_rewrap,
	.key_info = file_key_info,
	.done = file_done,
};
