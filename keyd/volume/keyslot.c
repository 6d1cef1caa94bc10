// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's own opening of the keyslots keyd makes. libcryptsetup 2.6 with OpenSSL 3.0 fetches the
 * digest afresh for each of the 4000 stripes of the anti-forensic merge, which is most of an
 * unlock's CPU (docs/performance.md); here each algorithm is fetched once, the area is read in
 * one piece and decrypted and merged a sector at a time, so that only one sector of split key
 * material and the running merge are ever in (secure) memory. The result is a candidate: the
 * caller has libcryptsetup check it against the header's digest before anything uses it.
 *
 * What it follows, from the LUKS2 on-disk format and libcryptsetup's LUKS1 AF:
 *   area key  = PBKDF2-HMAC(kdf.hash, passphrase, kdf.salt, kdf.iterations, area.key_size)
 *   split     = area sectors 0.., 512 bytes each, aes-xts-plain64 under the area key, IV the
 *               sector's number (little-endian 64 bit) from the area's start
 *   key       = AF merge of the split's af.stripes blocks of key_size bytes:
 *               b = 0; for each block but the last: b = diffuse(b ^ block); key = b ^ last
 *   diffuse   = each af.hash-sized piece i of b replaced by hash(be32(i) || piece), truncated
 *               to the piece's length. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonx.h"
#include "keyslot.h"
#include "secmem.h"
#include "util.h"

#define AREA_SECTOR   512
#define AREA_KEY_SIZE 64 /* AES-256-XTS */
#define KEY_SIZE_MAX  64
#define STRIPES_MAX   4000
#define KDF_ITER_MAX  100000000u

/* What opening one keyslot needs from its JSON. */
struct keyslot_params {
	uint64_t key_size, stripes, iterations;
	size_t split; /* the bytes of the area the split fills, in whole sectors */
	uint64_t offset, size;
	const char *kdf_hash, *af_hash, *salt;
};

static bool json_is(json_t *o, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && strcmp(s, want) == 0;
}

static int json_u64_string(json_t *o, const char *name, uint64_t *ret)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s ? parse_u64(s, ret) : -EINVAL;
}

/* @slot's parameters from the header JSON @hdr; -ENOTSUP unless it is the kind keyd makes. */
static int keyslot_params(json_t *hdr, int slot, struct keyslot_params *p)
{
	char id[16];
	json_t *ks, *kdf, *af, *area;
	struct error e;

	snprintf(id, sizeof(id), "%d", slot);
	ks = json_object_get(json_object_get(hdr, "keyslots"), id);
	kdf = json_object_get(ks, "kdf");
	af = json_object_get(ks, "af");
	area = json_object_get(ks, "area");
	if (!ks || !kdf || !af || !area)
		return -EINVAL;
	if (!json_is(ks, "type", "luks2") || !json_is(kdf, "type", "pbkdf2") ||
	    !json_is(af, "type", "luks1") || !json_is(area, "type", "raw") ||
	    !json_is(area, "encryption", "aes-xts-plain64") ||
	    json_integer_value(json_object_get(area, "key_size")) != AREA_KEY_SIZE ||
	    jx_uint(ks, "keyslot", "key_size", 1, KEY_SIZE_MAX, &p->key_size, &e) < 0 ||
	    jx_uint(af, "af", "stripes", 1, STRIPES_MAX, &p->stripes, &e) < 0 ||
	    jx_uint(kdf, "kdf", "iterations", 1, KDF_ITER_MAX, &p->iterations, &e) < 0 ||
	    jx_string(kdf, "kdf", "hash", true, 32, &p->kdf_hash, &e) < 0 ||
	    jx_string(af, "af", "hash", true, 32, &p->af_hash, &e) < 0 ||
	    jx_string(kdf, "kdf", "salt", true, 1024, &p->salt, &e) < 0)
		return -ENOTSUP;
	p->split = (p->key_size * p->stripes + AREA_SECTOR - 1) / AREA_SECTOR * AREA_SECTOR;
	if (json_u64_string(area, "offset", &p->offset) < 0 ||
	    json_u64_string(area, "size", &p->size) < 0 || p->size < p->split ||
	    p->offset % AREA_SECTOR || p->offset > INT64_MAX - p->split)
		return -EINVAL;
	return 0;
}

/* b = diffuse(b) with @md, over @len bytes of @b. */
static int diffuse(EVP_MD_CTX *ctx, const EVP_MD *md, uint8_t *b, size_t len)
{
	size_t dsize = (size_t)EVP_MD_get_size(md);
	uint8_t out[EVP_MAX_MD_SIZE];
	int r = 0;

	for (size_t i = 0, off = 0; off < len && r == 0; i++, off += dsize) {
		size_t n = len - off < dsize ? len - off : dsize;
		uint8_t be[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
				 (uint8_t)i};

		if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, be, 4) != 1 ||
		    EVP_DigestUpdate(ctx, b + off, n) != 1 ||
		    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
			r = -EIO;
		else
			memcpy(b + off, out, n);
	}
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

/* The merge of the split in @area (ciphertext, p->split bytes) under @area_key into @vk. */
static int merge(const struct keyslot_params *p, const uint8_t *area, const uint8_t *area_key,
		 uint8_t *vk)
{
	EVP_CIPHER *xts = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
	EVP_MD *md = EVP_MD_fetch(NULL, p->af_hash, NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	uint8_t *sector = secmem_alloc(AREA_SECTOR);
	size_t total = p->key_size * p->stripes, done = 0, fill = 0, stripe = 0;
	int r = -EIO, n;

	if (!sector) {
		r = -ENOMEM;
		goto out;
	}
	if (!xts || !md || !c || !h || EVP_MD_get_size(md) < 1 ||
	    EVP_DecryptInit_ex2(c, xts, area_key, NULL, NULL) != 1)
		goto out;
	EVP_CIPHER_CTX_set_padding(c, 0);
	memset(vk, 0, p->key_size);
	for (uint64_t s = 0; done < total; s++) {
		uint8_t iv[16] = {0};
		size_t take = total - done < AREA_SECTOR ? total - done : AREA_SECTOR;

		for (int i = 0; i < 8; i++)
			iv[i] = (uint8_t)(s >> (8 * i));
		if (EVP_DecryptInit_ex2(c, NULL, NULL, iv, NULL) != 1 ||
		    EVP_DecryptUpdate(c, sector, &n, area + s * AREA_SECTOR, AREA_SECTOR) != 1 ||
		    n != AREA_SECTOR)
			goto out;
		/* The sector's bytes, block by block: XORed into the running merge, which is
		 * diffused after each block but the last. */
		for (size_t i = 0; i < take; i++) {
			vk[fill] ^= sector[i];
			if (++fill < p->key_size)
				continue;
			fill = 0;
			if (++stripe < p->stripes && diffuse(h, md, vk, p->key_size) < 0)
				goto out;
		}
		done += take;
	}
	r = 0;
out:
	secmem_free(sector);
	EVP_MD_CTX_free(h);
	EVP_CIPHER_CTX_free(c);
	EVP_MD_free(md);
	EVP_CIPHER_free(xts);
	return r;
}

/* The ciphertext of the keyslot area's split, read from the header's device. */
static int read_area(struct crypt_device *cd, const struct keyslot_params *p, uint8_t **ret)
{
	const char *dev = crypt_get_metadata_device_name(cd);
	uint8_t *buf;
	ssize_t n;
	int fd, r = 0;

	if (!dev)
		dev = crypt_get_device_name(cd);
	if (!dev)
		return -ENODEV;
	buf = malloc(p->split);
	if (!buf)
		return -ENOMEM;
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return negative_errno();
	}
	n = pread(fd, buf, p->split, (off_t)p->offset);
	if (n < 0)
		r = negative_errno();
	else if ((size_t)n != p->split)
		r = -EIO;
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	return 0;
}

int keyslot_volume_key(struct crypt_device *cd, int slot, const uint8_t *pass, size_t pass_len,
		       uint8_t **ret_vk, size_t *ret_len)
{
	json_auto_t *hdr = NULL;
	const char *dump = NULL;
	struct keyslot_params p;
	_cleanup_secure_ uint8_t *salt = NULL, *area_key = NULL, *vk = NULL;
	_cleanup_free_ uint8_t *area = NULL;
	EVP_MD *kdf_md = NULL;
	size_t salt_len;
	int r;

	if (crypt_dump_json(cd, &dump, 0) < 0 || !dump || !(hdr = json_loads(dump, 0, NULL)))
		return -EINVAL;
	r = keyslot_params(hdr, slot, &p);
	if (r < 0)
		return r;
	if (b64_decode(p.salt, &salt, &salt_len) < 0)
		return -EINVAL;
	area_key = secmem_alloc(AREA_KEY_SIZE);
	vk = secmem_alloc(p.key_size);
	if (!area_key || !vk)
		return -ENOMEM;
	kdf_md = EVP_MD_fetch(NULL, p.kdf_hash, NULL);
	if (!kdf_md)
		return -ENOTSUP;
	r = PKCS5_PBKDF2_HMAC((const char *)pass, (int)pass_len, salt, (int)salt_len,
			      (int)p.iterations, kdf_md, AREA_KEY_SIZE, area_key) == 1
		    ? 0
		    : -EIO;
	EVP_MD_free(kdf_md);
	if (r >= 0)
		r = read_area(cd, &p, &area);
	if (r >= 0)
		r = merge(&p, area, area_key, vk);
	if (r < 0)
		return r;
	*ret_vk = TAKE_PTR(vk);
	*ret_len = p.key_size;
	return 0;
}
