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
	uint64_t us;
	char buf[40];

	(void)state;
	format_rfc3339_us(1700000000123456ULL, buf, sizeof(buf));
	assert_string_equal(buf, "2023-11-14T22:13:20.123456Z");
	/* What the writer writes, the parser reads back to the microsecond. */
	assert_int_equal(parse_rfc3339_us(buf, &us), 0);
	assert_true(us == 1700000000123456ULL);
}

/* One parser for event times (callback senders), token times (our own writer) and cloud
 * credential expirations (AWS): what either of the two parsers it replaced
 * accepted or refused, and the RFC 3339 forms a sender may use. */
static void test_rfc3339_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t us;
	} good[] = {
		{"1970-01-01T00:00:00Z", 0},
		{"2025-03-04T09:12:44Z", 1741079564000000ULL},
		{"2025-03-04T09:12:44.318207Z", 1741079564318207ULL},
		{"2023-11-14T22:13:20.123456Z", 1700000000123456ULL},
		/* a fraction of any length up to nanoseconds, kept to the microsecond */
		{"2025-03-04T09:12:44.5Z", 1741079564500000ULL},
		{"2024-02-29t00:00:00.123456789z", 1709164800123456ULL},
		/* offsets east and west of UTC */
		{"2025-03-04T10:12:44.5+01:00", 1741079564500000ULL},
		{"2025-03-04T03:42:44-05:30", 1741079564000000ULL},
		{"2025-03-04T09:12:44+00:00", 1741079564000000ULL},
		{"2025-03-04T09:12:44-00:00", 1741079564000000ULL},
		/* a leap second is the next minute's first */
		{"2016-12-31T23:59:60Z", 1483228800000000ULL},
		{"2000-02-29T00:00:00Z", 951782400000000ULL},
	};
	static const char *const bad[] = {
		"",
		"2025-03-04",
		"2025-03-04 09:12:44Z",		   /* a space for the T */
		"2025-03-04T09:12:44",		   /* no zone */
		"2025-03-04T09:12:44z ",	   /* trailing junk */
		"2025-03-04T09:12:44Zx",	   /* trailing junk */
		"2025-03-04T09:12:44.Z",	   /* a point without digits */
		"2025-03-04T09:12:44.1234567890Z", /* past nanoseconds */
		"2025-13-04T09:12:44Z",		   /* month 13 */
		"2025-00-04T09:12:44Z",		   /* month 0 */
		"2025-02-29T09:12:44Z",		   /* not a leap year */
		"2100-02-29T09:12:44Z",		   /* nor is 2100 */
		"2025-04-31T09:12:44Z",		   /* April has 30 days */
		"2025-03-00T09:12:44Z",		   /* day 0 */
		"2025-03-04T24:00:00Z",		   /* hour 24 */
		"2025-03-04T09:60:00Z",		   /* minute 60 */
		"2025-03-04T09:12:61Z",		   /* second 61 */
		"2025-3-04T09:12:44Z",		   /* one-digit month */
		" 2025-03-04T09:12:44Z",	   /* leading space */
		"2025-03-04T09:12:44+0100",	   /* offset without a colon */
		"2025-03-04T09:12:44+24:00",	   /* offset hour 24 */
		"2025-03-04T09:12:44+01:60",	   /* offset minute 60 */
		"2025-03-04T09:12:44+01",	   /* offset without minutes */
		"1969-12-31T23:59:59Z",		   /* before the epoch */
		"1970-01-01T00:30:00+01:00",	   /* before the epoch once in UTC */
		"2025-03-04T09:12:44.318207",	   /* the fraction, but no zone */
		"2025/03/04T09:12:44Z",
		"20250304T091244Z", /* ISO 8601 basic format is not RFC 3339 */
	};
	uint64_t us;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		us = 0;
		if (parse_rfc3339_us(good[i].s, &us) != 0)
			fail_msg("\"%s\" was refused", good[i].s);
		if (us != good[i].us)
			fail_msg("\"%s\": %llu us, expected %llu", good[i].s,
				 (unsigned long long)us, (unsigned long long)good[i].us);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		us = 42;
		if (parse_rfc3339_us(bad[i], &us) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		if (us != 42)
			fail_msg("\"%s\" was refused, but the result was written", bad[i]);
	}
}

static void test_hex_decode(void **state)
{
	static const char *const bad[] = {"0", "abc", "0g", "g0", " 0", "0x", "+1"};
	uint8_t out[8];

	(void)state;
	assert_int_equal(hex_decode("00ff7Fa0", 8, out), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0x7f);
	assert_int_equal(out[3], 0xa0);
	/* Only @n digits are read: what follows does not matter. */
	assert_int_equal(hex_decode("12zz", 2, out), 0);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(hex_decode("", 0, out), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hex_decode(bad[i], strlen(bad[i]), out) != -EINVAL)
			fail_msg("\"%s\" was accepted as hex", bad[i]);
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
		cmocka_unit_test(test_parse_u64),     cmocka_unit_test(test_b64),
		cmocka_unit_test(test_b64_rejects),   cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_parse), cmocka_unit_test(test_hex_decode),
		cmocka_unit_test(test_secbuf_cap),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
