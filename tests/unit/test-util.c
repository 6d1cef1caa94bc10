// SPDX-License-Identifier: GPL-2.0-or-later
/* Checked number parsing and strict base64: the helpers every edge parser relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "secmem.h"
#include "util.h"

static void test_parse_u64(void **state)
{
	uint64_t v;
	uint32_t w;

	(void)state;
	assert_int_equal(parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_u64("-1", &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(parse_u64("1x", &v), -EINVAL);
	assert_int_equal(parse_u64("", &v), -EINVAL);
	assert_int_equal(parse_u32("4294967296", &w), -ERANGE);
	assert_int_equal(parse_u32("4294967295", &w), 0);
}

static void test_b64(void **state)
{
	static const struct {
		const char *plain, *enc;
	} vec[] = {
		{"", NULL}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
	(void)state;
	for (size_t i = 1; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *enc = NULL;
		uint8_t *dec = NULL;
		size_t n = 0;

		assert_int_equal(
			b64_encode((const uint8_t *)vec[i].plain, strlen(vec[i].plain), &enc), 0);
		assert_string_equal(enc, vec[i].enc);
		assert_int_equal(b64_decode(enc, &dec, &n), 0);
		assert_int_equal(n, strlen(vec[i].plain));
		assert_memory_equal(dec, vec[i].plain, n);
		secmem_free(enc);
		secmem_free(dec);
	}
}

static void test_b64_rejects(void **state)
{
	static const char *const bad[] = {"",	  "Zg",	      "Zg=",  "Z===", "Zm9v\n",
					  "Zm 9", "Zm9v=Zg=", "Zg=a", "!!!!"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *dec = NULL;
		size_t n;

		assert_int_equal(b64_decode(bad[i], &dec, &n), -EINVAL);
		assert_null(dec);
	}
}

static void test_rfc3339(void **state)
{
	char buf[40];

	(void)state;
	format_rfc3339_us(1700000000123456ULL, buf, sizeof(buf));
	assert_string_equal(buf, "2023-11-14T22:13:20.123456Z");
}

static void test_secbuf_cap(void **state)
{
	struct secbuf b = {.max = 10};

	(void)state;
	assert_int_equal(secbuf_append(&b, "0123456789", 10), 0);
	assert_int_equal(secbuf_append(&b, "x", 1), -E2BIG);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.data[10], 0);
	secbuf_done(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),   cmocka_unit_test(test_b64),
		cmocka_unit_test(test_b64_rejects), cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_secbuf_cap),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
