// SPDX-License-Identifier: GPL-2.0-or-later
/* TC3-HMAC-SHA256 against the example in Tencent Cloud's "Signature v3" documentation
 * (SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE, timestamp 1551113065, CVM
 * DescribeInstances), and what a change of any signed input does to the signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "secmem.h"
#include "tc3.h"

#define DOC_PAYLOAD                                                                                \
	"{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": "        \
	"\"instance-name\"}]}"
#define DOC_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

static struct tc3_request doc_request(uint8_t *key)
{
	memcpy(key, DOC_KEY, strlen(DOC_KEY));
	return (struct tc3_request){.secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
				    .secret_key = key,
				    .secret_key_len = strlen(DOC_KEY),
				    .service = "cvm",
				    .host = "cvm.tencentcloudapi.com",
				    .content_type = "application/json; charset=utf-8",
				    .timestamp = 1551113065,
				    .payload = DOC_PAYLOAD,
				    .payload_len = strlen(DOC_PAYLOAD)};
}

static void test_documented_example(void **state)
{
	uint8_t *key = secmem_alloc(64);
	struct tc3_request r = doc_request(key);
	char sts[512], auth[TC3_AUTH_MAX];

	(void)state;
	assert_int_equal(tc3_string_to_sign(&r, sts, sizeof(sts)), 0);
	assert_string_equal(sts,
			    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
			    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), 0);
	assert_string_equal(
		auth, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/"
		      "2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
		      "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
	secmem_free(key);
}

/* Header values are signed lower-cased and trimmed: the same signature as the example. */
static void test_header_canonical_form(void **state)
{
	uint8_t *key = secmem_alloc(64);
	struct tc3_request r = doc_request(key);
	char auth[TC3_AUTH_MAX];

	(void)state;
	r.host = " CVM.TencentCloudAPI.com ";
	r.content_type = "Application/JSON; charset=UTF-8";
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), 0);
	assert_non_null(strstr(auth, "Signature=72e494ea809ad7a8c8f7a4507b9bddcb"));
	secmem_free(key);
}

static void test_every_input_counts(void **state)
{
	uint8_t *key = secmem_alloc(64);
	struct tc3_request base = doc_request(key), r;
	char ref[TC3_AUTH_MAX], auth[TC3_AUTH_MAX];

	(void)state;
	assert_int_equal(tc3_authorization(&base, ref, sizeof(ref)), 0);
	for (int i = 0; i < 5; i++) {
		r = base;
		switch (i) {
		case 0:
			r.payload_len--;
			break;
		case 1:
			r.timestamp++;
			break;
		case 2:
			r.host = "kms.tencentcloudapi.com";
			break;
		case 3:
			r.service = "kms";
			break;
		case 4:
			r.secret_key_len--;
			break;
		}
		assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), 0);
		assert_string_not_equal(strstr(auth, "Signature="), strstr(ref, "Signature="));
	}
	/* A day boundary in UTC moves the credential scope: 2019-02-26 00:00:00Z. */
	r = base;
	r.timestamp = 1551139200;
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), 0);
	assert_non_null(strstr(auth, "/2019-02-26/cvm/tc3_request"));
	secmem_free(key);
}

static void test_refusals(void **state)
{
	uint8_t *key = secmem_alloc(64);
	struct tc3_request r = doc_request(key);
	char small[64], auth[TC3_AUTH_MAX];

	(void)state;
	assert_int_equal(tc3_authorization(&r, small, sizeof(small)), -ENAMETOOLONG);
	r.host = "bad\nhost";
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), -EINVAL);
	r = doc_request(key);
	r.secret_key_len = 0;
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), -EINVAL);
	r = doc_request(key);
	r.service = "";
	assert_int_equal(tc3_authorization(&r, auth, sizeof(auth)), -EINVAL);
	secmem_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented_example),
		cmocka_unit_test(test_header_canonical_form),
		cmocka_unit_test(test_every_input_counts),
		cmocka_unit_test(test_refusals),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
