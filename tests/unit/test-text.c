// SPDX-License-Identifier: GPL-2.0-or-later
/* common/text.c: which characters are unsafe in a log line or on a terminal, and their escape.
 * What a disk or a peer sends may hold anything; what keyd prints must stay one inert line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "text.h"

static void test_find_unsafe(void **state)
{
	static const struct {
		const char *s;
		long at;
		uint32_t cp;
	} cases[] = {
		{"pgdata", -1, 0},
		{"", -1, 0},
		{"Schlüssel 鍵 🔑", -1, 0}, /* letters of any script are text */
		{"a\nb", 1, 0x0a},
		{"\x1b[2J", 0, 0x1b},
		{"x\x7f", 1, 0x7f},
		{"x\xc2\x9b", 1, 0x9b},		      /* C1 CSI */
		{"ok\xc2\xa0ok", -1, 0},	      /* no-break space is text */
		{"ab\xe2\x80\xae", 2, 0x202e},	      /* RLO */
		{"\xe2\x80\x8f", 0, 0x200f},	      /* RLM */
		{"ab\xe2\x81\xa9", 2, 0x2069},	      /* PDI */
		{"a\xe2\x80\xa9", 1, 0x2029},	      /* paragraph separator */
		{"bad\xff", 3, 0x110000 + 0xff},      /* not UTF-8 */
		{"\xc0\x8a", 0, 0x110000 + 0xc0},     /* overlong newline */
		{"\xed\xa0\x80", 0, 0x110000 + 0xed}, /* a surrogate */
		{"cut\xe2\x80", 3, 0x110000 + 0xe2},  /* truncated sequence */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cp = 0;
		long at = text_find_unsafe(cases[i].s, &cp);

		if (at != cases[i].at || (at >= 0 && cp != cases[i].cp))
			fail_msg("case %zu: expected offset %ld U+%04X, got %ld U+%04X", i,
				 cases[i].at, (unsigned)cases[i].cp, at, (unsigned)cp);
	}
}

static void test_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain text", "plain text"},
		{"two\nlines\r\tx", "two\\nlines\\r\\tx"},
		{"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
		{"c1\xc2\x9b"
		 "2J",
		 "c1\\xc2\\x9b2J"},
		{"rlo\xe2\x80\xae", "rlo\\xe2\\x80\\xae"},
		{"bad\xff!", "bad\\xff!"},
		{"ü鍵", "ü鍵"},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(text_escape(cases[i].in, out, sizeof(out)), cases[i].out);
}

/* A full buffer cuts at a character boundary: never half an escape or half a UTF-8 letter. */
static void test_escape_truncates_whole(void **state)
{
	char out[6];

	(void)state;
	assert_string_equal(text_escape("ab\ncd", out, sizeof(out)), "ab\\nc");
	assert_string_equal(text_escape("abcd\x1b", out, sizeof(out)), "abcd");
	assert_string_equal(text_escape("abcü", out, sizeof(out)), "abcü");
	assert_string_equal(text_escape("abcdü", out, sizeof(out)), "abcd");
	assert_string_equal(text_escape("x", out, 1), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_unsafe),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_truncates_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
