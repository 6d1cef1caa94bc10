// SPDX-License-Identifier: GPL-2.0-or-later
/* The node's Ed25519 key and signatures over canonical JSON. The private key goes from its
 * root-only file into OpenSSL and nowhere else: never logged, never copied out. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "secmem.h"
#include "sign.h"
#include "util.h"

#define SIGN_ALG	    "ed25519"
#define SIGN_PUBLIC_KEY_LEN 32
#define SIGN_SIGNATURE_LEN  64
/* Base64 of a public key or signature; longer input is refused before it is decoded. */
#define SIGN_B64_MAX	     128
#define SIGN_FINGERPRINT_LEN 64

static void pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}

int sign_sha256_hex(const void *p, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * sizeof(md)] = 0;
	return 0;
}

int sign_key_fingerprint(EVP_PKEY *key, char out[65])
{
	uint8_t raw[SIGN_PUBLIC_KEY_LEN];
	size_t n = sizeof(raw);

	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != sizeof(raw))
		return -EINVAL;
	return sign_sha256_hex(raw, n, out);
}

/* Opens the directory of absolute @path, creating it 0700 if missing (its parent must exist). */
static int sign_open_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	char dir[PATH_MAX];
	int fd;

	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? negative_errno() : fd;
}

/* A new key in a temp file, fsync'd, then linked into place: a reader never sees half a key,
 * and when two processes race, link() lets exactly one key win (-EEXIST for the other). */
static int sign_key_create(const char *path)
{
	_cleanup_(pkey_freep) EVP_PKEY *key = NULL;
	_cleanup_close_ int dfd = -1, fd = -1;
	char tmp[PATH_MAX], *pem;
	long len;
	BIO *bio;
	int r;

	/* A key created by anyone else would be refused when read back. */
	if (geteuid() != 0)
		return -EPERM;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!key)
		return -ENOMEM;
	dfd = sign_open_dir(path);
	if (dfd < 0)
		return dfd;
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return negative_errno();
	bio = BIO_new(BIO_s_secmem());
	if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) &&
	    (len = BIO_get_mem_data(bio, &pem)) > 0)
		r = write_full(fd, pem, (size_t)len);
	else
		r = -ENOMEM;
	BIO_free(bio);
	if (r >= 0 && fsync(fd) < 0)
		r = negative_errno();
	if (r >= 0 && close(TAKE_FD(fd)) < 0)
		r = negative_errno();
	if (r >= 0 && link(tmp, path) < 0)
		r = negative_errno();
	unlink(tmp);
	if (r >= 0 && fsync(dfd) < 0)
		r = negative_errno();
	return r;
}

/* The node key is never encrypted: fail instead of prompting on a terminal. */
static int sign_no_passphrase(_unused_ char *buf, _unused_ int size, _unused_ int rwflag,
			      _unused_ void *u)
{
	return -1;
}

int sign_key_load(const char *path, EVP_PKEY **ret)
{
	_cleanup_secure_ uint8_t *pem = NULL;
	EVP_PKEY *key;
	size_t n;
	BIO *bio;
	int r;

	/* read_credential checks owner root, no group/other access, regular file, size cap; a
	 * relative name is a systemd credential, which is never created here. */
	r = read_credential(path, false, &pem, &n, NULL);
	if (r == -ENOENT && path[0] == '/') {
		r = sign_key_create(path);
		if (r < 0 && r != -EEXIST)
			return r;
		r = read_credential(path, false, &pem, &n, NULL);
	}
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(pem, (int)n);
	if (!bio)
		return -ENOMEM;
	key = PEM_read_bio_PrivateKey(bio, NULL, sign_no_passphrase, NULL);
	BIO_free(bio);
	if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = key;
	return 0;
}

/* Compact, sorted keys, without "signature": what is signed. Secure memory (jansson's). */
static char *sign_canonical(json_t *record)
{
	json_t *copy = json_copy(record); /* shallow: only the top level changes */
	char *s;

	if (!copy)
		return NULL;
	json_object_del(copy, "signature");
	s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return s;
}

int sign_json(EVP_PKEY *key, json_t *record)
{
	_cleanup_secure_ char *tbs = NULL, *pub_b64 = NULL, *sig_b64 = NULL;
	uint8_t pub[SIGN_PUBLIC_KEY_LEN], sig[SIGN_SIGNATURE_LEN];
	size_t pub_n = sizeof(pub), sig_n = sizeof(sig);
	char fp[SIGN_FINGERPRINT_LEN + 1];
	EVP_MD_CTX *ctx;
	json_t *s;
	int ok, r;

	if (!key || !json_is_object(record))
		return -EINVAL;
	r = sign_key_fingerprint(key, fp);
	if (r < 0)
		return r;
	tbs = sign_canonical(record);
	ctx = EVP_MD_CTX_new();
	if (!tbs || !ctx) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	/* Ed25519 is one-shot: no digest, the whole message at once. */
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestSign(ctx, sig, &sig_n, (const uint8_t *)tbs, strlen(tbs)) == 1 &&
	     EVP_PKEY_get_raw_public_key(key, pub, &pub_n) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return -EIO;
	}
	r = b64_encode(pub, pub_n, &pub_b64);
	if (r >= 0)
		r = b64_encode(sig, sig_n, &sig_b64);
	if (r < 0)
		return r;
	s = json_pack("{s:s, s:s, s:s, s:s}", "alg", SIGN_ALG, "key", fp, "public_key", pub_b64,
		      "value", sig_b64);
	if (!s || json_object_set_new(record, "signature", s) < 0)
		return -ENOMEM;
	return 0;
}

int sign_json_verify(json_t *record, EVP_PKEY *trusted, struct error *err)
{
	const char *alg, *kid, *pub_b64, *sig_b64;
	_cleanup_secure_ uint8_t *pub = NULL, *sig = NULL;
	_cleanup_secure_ char *tbs = NULL;
	_cleanup_(pkey_freep) EVP_PKEY *embedded = NULL;
	char fp[SIGN_FINGERPRINT_LEN + 1], tfp[SIGN_FINGERPRINT_LEN + 1];
	size_t pub_n, sig_n;
	EVP_MD_CTX *ctx;
	json_t *s;
	int ok, r;

	if (!json_is_object(record))
		return error_set(err, -EINVAL, "not a JSON object");
	if (trusted && sign_key_fingerprint(trusted, tfp) < 0)
		return error_set(err, -EINVAL, "the trusted key is not an Ed25519 key");
	s = json_object_get(record, "signature");
	if (!s)
		return error_set(err, -ENOKEY, "not signed");
	if (json_unpack(s, "{s:s, s:s, s:s, s:s !}", "alg", &alg, "key", &kid, "public_key",
			&pub_b64, "value", &sig_b64) < 0 ||
	    strlen(pub_b64) > SIGN_B64_MAX || strlen(sig_b64) > SIGN_B64_MAX)
		return error_set(err, -EBADMSG,
				 "signature: malformed (needs alg, key, public_key, value)");
	if (strcmp(alg, SIGN_ALG) != 0)
		return error_set(err, -EBADMSG, "signature: alg is not %s", SIGN_ALG);
	if (b64_decode(pub_b64, &pub, &pub_n) < 0 || pub_n != SIGN_PUBLIC_KEY_LEN ||
	    !(embedded = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, pub_n)) ||
	    sign_key_fingerprint(embedded, fp) < 0)
		return error_set(err, -EBADMSG,
				 "signature: public_key is not a raw Ed25519 key in base64");
	if (strcmp(kid, fp) != 0)
		return error_set(err, -EBADMSG, "signature: key is not public_key's fingerprint %s",
				 fp);
	/* Equal fingerprints (SHA-256 of the raw keys) mean the same key. */
	if (trusted && strcmp(fp, tfp) != 0)
		return error_set(err, -EBADMSG, "signed by key %s, not by the trusted key %s", fp,
				 tfp);
	if (b64_decode(sig_b64, &sig, &sig_n) < 0 || sig_n != SIGN_SIGNATURE_LEN)
		return error_set(err, -EBADMSG,
				 "signature: value is not an Ed25519 signature in base64");
	tbs = sign_canonical(record);
	ctx = EVP_MD_CTX_new();
	if (!tbs || !ctx) {
		EVP_MD_CTX_free(ctx);
		return error_set(err, -ENOMEM, "out of memory");
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, embedded) == 1;
	r = ok ? EVP_DigestVerify(ctx, sig, sig_n, (const uint8_t *)tbs, strlen(tbs)) : -1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (r != 1)
		return error_set(err, -EBADMSG,
				 "signature by key %s does not match: the record was altered after "
				 "signing",
				 fp);
	return 0;
}
