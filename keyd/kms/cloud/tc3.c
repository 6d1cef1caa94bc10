// SPDX-License-Identifier: GPL-2.0-or-later
/* TC3-HMAC-SHA256 as Tencent Cloud documents it: canonical request, string to sign, the key
 * derived from "TC3" + SecretKey through date, service and "tc3_request", hex signature. The
 * derived keys are cleansed before return; the secret is never copied out of secure memory. */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "secmem.h"
#include "tc3.h"
#include "util.h"

#define TC3_DATE_LEN 10 /* YYYY-MM-DD */

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

static int sha256_hex(const void *p, size_t n, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	uint8_t d[SHA256_DIGEST_LENGTH];

	if (!SHA256(p, n, d))
		return -EIO;
	hex(d, sizeof(d), out);
	return 0;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const char *msg, size_t msg_len,
		       uint8_t out[SHA256_DIGEST_LENGTH])
{
	unsigned int n = SHA256_DIGEST_LENGTH;

	return HMAC(EVP_sha256(), key, (int)key_len, (const uint8_t *)msg, msg_len, out, &n) &&
			       n == SHA256_DIGEST_LENGTH
		       ? 0
		       : -EIO;
}

/* Header values are signed lower-cased, with leading and trailing spaces removed. */
static int lower_trimmed(const char *s, char *buf, size_t size)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= size)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[n] = 0;
	return 0;
}

static bool field_ok(const char *s)
{
	if (!s || !s[0] || strlen(s) > TC3_FIELD_MAX)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/* The UTC date of the timestamp and the string to sign. */
static int string_to_sign(const struct tc3_request *r, char date[TC3_DATE_LEN + 1], char *buf,
			  size_t size)
{
	char ct[TC3_FIELD_MAX + 1], host[TC3_FIELD_MAX + 1], body[2 * SHA256_DIGEST_LENGTH + 1],
		canon[2 * SHA256_DIGEST_LENGTH + 1], creq[2 * TC3_FIELD_MAX + 256];
	time_t t = (time_t)r->timestamp;
	struct tm tm;
	int n, k;

	if (!field_ok(r->service) || !field_ok(r->host) || !field_ok(r->content_type) ||
	    (!r->payload && r->payload_len) || !gmtime_r(&t, &tm) ||
	    strftime(date, TC3_DATE_LEN + 1, "%Y-%m-%d", &tm) != TC3_DATE_LEN)
		return -EINVAL;
	if (lower_trimmed(r->content_type, ct, sizeof(ct)) < 0 ||
	    lower_trimmed(r->host, host, sizeof(host)) < 0)
		return -ENAMETOOLONG;
	if (sha256_hex(r->payload ? r->payload : "", r->payload_len, body) < 0)
		return -EIO;
	/* POST to "/", no query string; content-type and host are the signed headers. */
	n = snprintf(creq, sizeof(creq),
		     "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s", ct, host,
		     body);
	if (n < 0 || (size_t)n >= sizeof(creq))
		return -ENAMETOOLONG;
	if (sha256_hex(creq, (size_t)n, canon) < 0)
		return -EIO;
	k = snprintf(buf, size, TC3_ALGORITHM "\n%llu\n%s/%s/tc3_request\n%s",
		     (unsigned long long)r->timestamp, date, r->service, canon);
	return k < 0 || (size_t)k >= size ? -ENAMETOOLONG : k;
}

int tc3_string_to_sign(const struct tc3_request *r, char *buf, size_t size)
{
	char date[TC3_DATE_LEN + 1];
	int n = string_to_sign(r, date, buf, size);

	return n < 0 ? n : 0;
}

int tc3_authorization(const struct tc3_request *r, char *buf, size_t size)
{
	_cleanup_secure_ uint8_t *k0 = NULL;
	uint8_t k1[SHA256_DIGEST_LENGTH], k2[SHA256_DIGEST_LENGTH], k3[SHA256_DIGEST_LENGTH],
		sig[SHA256_DIGEST_LENGTH];
	char date[TC3_DATE_LEN + 1], sts[3 * TC3_FIELD_MAX + 128], sig_hex[2 * sizeof(sig) + 1];
	int n, rr;

	if (!field_ok(r->secret_id) || !r->secret_key || r->secret_key_len == 0 ||
	    r->secret_key_len > CREDENTIAL_MAX)
		return -EINVAL;
	n = string_to_sign(r, date, sts, sizeof(sts));
	if (n < 0)
		return n;
	k0 = secmem_alloc(3 + r->secret_key_len);
	if (!k0)
		return -ENOMEM;
	memcpy(k0, "TC3", 3);
	memcpy(k0 + 3, r->secret_key, r->secret_key_len);
	rr = hmac_sha256(k0, 3 + r->secret_key_len, date, strlen(date), k1);
	if (rr >= 0)
		rr = hmac_sha256(k1, sizeof(k1), r->service, strlen(r->service), k2);
	if (rr >= 0)
		rr = hmac_sha256(k2, sizeof(k2), "tc3_request", strlen("tc3_request"), k3);
	if (rr >= 0)
		rr = hmac_sha256(k3, sizeof(k3), sts, (size_t)n, sig);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	if (rr < 0)
		return rr;
	hex(sig, sizeof(sig), sig_hex);
	n = snprintf(buf, size,
		     TC3_ALGORITHM
		     " Credential=%s/%s/%s/tc3_request, SignedHeaders=content-type;host, "
		     "Signature=%s",
		     r->secret_id, date, r->service, sig_hex);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
