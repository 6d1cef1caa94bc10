// SPDX-License-Identifier: GPL-2.0-or-later
/* Patterns: zeros, or AES-128-CTR keystream addressed by offset (counter = offset / 16, so a
 * block is regenerated without the blocks before it). OpenSSL does the cipher; the key is
 * created and kept in secure memory and never leaves this module but through the caller. */
#include <errno.h>
#include <openssl/rand.h>
#include <string.h>

#include "pattern.h"
#include "secmem.h"

const char *pattern_name(enum pattern_kind k)
{
	return k == PATTERN_KEYSTREAM ? "aes-128-ctr" : "zero";
}

void pattern_zero(struct pattern *p)
{
	*p = (struct pattern){.kind = PATTERN_ZERO};
}

int pattern_set_keystream(struct pattern *p, const uint8_t *key, size_t n)
{
	if (n != PATTERN_KEY_LEN)
		return -EINVAL;
	pattern_done(p);
	p->key = secmem_dup(key, n);
	if (!p->key)
		return -ENOMEM;
	p->kind = PATTERN_KEYSTREAM;
	return 0;
}

int pattern_new_keystream(struct pattern *p)
{
	pattern_done(p);
	p->key = secmem_alloc(PATTERN_KEY_LEN);
	if (!p->key)
		return -ENOMEM;
	if (RAND_priv_bytes(p->key, PATTERN_KEY_LEN) != 1) {
		pattern_done(p);
		return -EIO;
	}
	p->kind = PATTERN_KEYSTREAM;
	return 0;
}

void pattern_done(struct pattern *p)
{
	secmem_free(p->key);
	pattern_zero(p);
}

int pattern_gen_init(struct pattern_gen *g, const struct pattern *p)
{
	*g = (struct pattern_gen){.p = p};
	if (p->kind != PATTERN_KEYSTREAM)
		return 0;
	g->ctx = EVP_CIPHER_CTX_new();
	if (!g->ctx)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(g->ctx, EVP_aes_128_ctr(), NULL, p->key, NULL) != 1) {
		pattern_gen_done(g);
		return -EIO;
	}
	return 0;
}

void pattern_gen_done(struct pattern_gen *g)
{
	/* EVP_CIPHER_CTX_free wipes the key schedule before freeing it. */
	EVP_CIPHER_CTX_free(g->ctx);
	g->ctx = NULL;
}

static int keystream_generate(struct pattern_gen *g, uint8_t *buf, size_t n, uint64_t off)
{
	static const uint8_t zeros[64 * 1024];
	uint8_t iv[16] = {0};
	uint64_t ctr = off / 16;

	if (off % 16)
		return -EINVAL;
	/* The low 64 bits count 16-byte blocks; no device is big enough to carry into the high
	 * half, so the counter never wraps onto another offset's keystream. */
	for (int i = 0; i < 8; i++)
		iv[15 - i] = (uint8_t)(ctr >> (8 * i));
	if (EVP_EncryptInit_ex(g->ctx, NULL, NULL, NULL, iv) != 1)
		return -EIO;
	/* Encrypting a small zero block over and over keeps the input in cache: the keystream
	 * costs one pass over the output, not two. */
	while (n > 0) {
		int chunk = n > sizeof(zeros) ? (int)sizeof(zeros) : (int)n, out = 0;

		if (EVP_EncryptUpdate(g->ctx, buf, &out, zeros, chunk) != 1 || out != chunk)
			return -EIO;
		buf += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

int pattern_fill(struct pattern_gen *g, uint8_t *buf, size_t n, uint64_t off)
{
	if (g->p->kind == PATTERN_ZERO) {
		memset(buf, 0, n);
		return 0;
	}
	return keystream_generate(g, buf, n, off);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	/* Compares the buffer with itself shifted by one byte: zero iff every byte equals the
	 * first and the first is zero. memcmp runs at memory speed. */
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static size_t first_difference(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	if (b)
		while (i < n && a[i] == b[i])
			i++;
	else
		while (i < n && a[i] == 0)
			i++;
	return i;
}

int64_t pattern_compare(struct pattern_gen *g, const uint8_t *buf, size_t n, uint64_t off,
			uint8_t *scratch, size_t unit, uint64_t *first_bad)
{
	const uint8_t *want = NULL;
	int64_t bad = 0;
	int r;

	if (g->p->kind == PATTERN_KEYSTREAM) {
		r = keystream_generate(g, scratch, n, off);
		if (r < 0)
			return r;
		want = scratch;
		if (memcmp(buf, want, n) == 0)
			return 0;
	} else if (all_zero(buf, n)) {
		return 0;
	}
	/* The slow path runs only when something differs: count the units that do. */
	for (size_t u = 0; u < n; u += unit) {
		size_t len = n - u < unit ? n - u : unit;
		bool same = want ? memcmp(buf + u, want + u, len) == 0 : all_zero(buf + u, len);

		if (same)
			continue;
		if (bad++ == 0)
			*first_bad =
				off + u + first_difference(buf + u, want ? want + u : NULL, len);
	}
	return bad;
}
