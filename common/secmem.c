// SPDX-License-Identifier: GPL-2.0-or-later
/* Secure memory: OpenSSL's secure heap is the only allocator for key material and for every
 * JSON document (which may carry wrapped or plain keys). Must never fall back to malloc. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "secmem.h"

static void *json_secure_malloc(size_t n)
{
	return secmem_alloc(n);
}

int secmem_init(size_t size)
{
	struct rlimit no_core = {0, 0};

	if (CRYPTO_secure_malloc_initialized())
		return 0;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return negative_errno();
	if (setrlimit(RLIMIT_CORE, &no_core) < 0)
		return negative_errno();
	/* 1 = heap mapped and locked; 2 = mapped but mlock failed (not acceptable here). */
	switch (CRYPTO_secure_malloc_init(size, 32)) {
	case 1:
		break;
	case 2:
		CRYPTO_secure_malloc_done();
		return -ENOMEM;
	default:
		return -ENOMEM;
	}
	json_set_alloc_funcs(json_secure_malloc, secmem_free);
	return 0;
}

void *secmem_alloc(size_t n)
{
	/* Before init OpenSSL would silently hand out normal heap: refuse instead. */
	if (!CRYPTO_secure_malloc_initialized())
		return NULL;
	return OPENSSL_secure_zalloc(n ? n : 1);
}

void secmem_free(void *p)
{
	/* CRYPTO_secure_free wipes the whole block before releasing it. */
	OPENSSL_secure_free(p);
}

void *secmem_dup(const void *p, size_t n)
{
	void *d = secmem_alloc(n);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

char *secmem_strdup(const char *s)
{
	return secmem_dup(s, strlen(s) + 1);
}

size_t secmem_used(void)
{
	return CRYPTO_secure_used();
}

int secbuf_append(struct secbuf *buf, const void *p, size_t n)
{
	if (n > buf->max || buf->len > buf->max - n)
		return -E2BIG;
	if (buf->len + n + 1 > buf->cap) {
		size_t cap = buf->cap ? buf->cap : 1024;
		uint8_t *d;

		while (cap < buf->len + n + 1)
			cap *= 2;
		d = secmem_alloc(cap);
		if (!d)
			return -ENOMEM;
		if (buf->len)
			memcpy(d, buf->data, buf->len);
		secmem_free(buf->data);
		buf->data = d;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, p, n);
	buf->len += n;
	buf->data[buf->len] = 0;
	return 0;
}

void secbuf_done(struct secbuf *buf)
{
	secmem_free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}
