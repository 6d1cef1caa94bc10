// SPDX-License-Identifier: GPL-2.0-or-later
/* The crypto one unlock of a keyd keyslot cannot do without, on this CPU, with OpenSSL's EVP
 * calls as keyd makes them (bench/unlock-bench prints it beside issue 17's 4 ms target):
 *   PBKDF2-HMAC-SHA512, 1000 iterations, 64 bytes  the keyslot's area key
 *   3999 SHA-512 digests of 4 + 64 bytes           the anti-forensic merge's diffusion
 *   AES-256-XTS over 500 sectors                   the split's decryption (256,000 bytes)
 *   PBKDF2-HMAC-SHA512 again                       libcryptsetup's digest check of the key
 * Each is timed on the thread's CPU clock, best of 20, after one warm-up. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static unsigned char area[500 * 512], sector[512], vk[64], key[64];

static void pbkdf2(EVP_MD *md)
{
	PKCS5_PBKDF2_HMAC("0123456789abcdef0123456789abcdef", 32,
			  (const unsigned char *)"salt-salt-salt-salt-salt-salt-sa", 32, 1000, md,
			  64, key);
}

static void diffuse(EVP_MD *md, EVP_MD_CTX *h)
{
	unsigned char out[64];

	for (unsigned i = 0; i < 3999; i++) {
		unsigned char be[4] = {(unsigned char)(i >> 24), (unsigned char)(i >> 16),
				       (unsigned char)(i >> 8), (unsigned char)i};

		EVP_DigestInit_ex2(h, md, NULL);
		EVP_DigestUpdate(h, be, 4);
		EVP_DigestUpdate(h, vk, 64);
		EVP_DigestFinal_ex(h, out, NULL);
		memcpy(vk, out, 64);
	}
}

static void xts(EVP_CIPHER_CTX *c)
{
	int n;

	for (unsigned s = 0; s < 500; s++) {
		unsigned char iv[16] = {(unsigned char)s, (unsigned char)(s >> 8)};

		EVP_DecryptInit_ex2(c, NULL, NULL, iv, NULL);
		EVP_DecryptUpdate(c, sector, &n, area + s * 512, 512);
	}
}

int main(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA512", NULL);
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	EVP_CIPHER *x = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	double best[3] = {1e9, 1e9, 1e9};

	if (!md || !h || !x || !c || EVP_DecryptInit_ex2(c, x, key, NULL, NULL) != 1)
		return 1;
	for (int round = 0; round <= 20; round++) {
		double t0 = cpu_ms(), t1, t2, t3;

		pbkdf2(md);
		t1 = cpu_ms();
		diffuse(md, h);
		t2 = cpu_ms();
		xts(c);
		t3 = cpu_ms();
		if (round == 0)
			continue;
		best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
		best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
		best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
	}
	printf("keyslot crypto floor on this CPU: %.2f ms (PBKDF2 %.2f ms twice, merge's 3999 "
	       "digests %.2f ms, XTS %.2f ms)\n",
	       2 * best[0] + best[1] + best[2], best[0], best[1], best[2]);
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(x);
	EVP_MD_CTX_free(h);
	EVP_MD_free(md);
	return 0;
}
