// SPDX-License-Identifier: GPL-2.0-or-later
/* Unsafe characters found and escaped: input from disks and peers (token fields, names, error
 * texts that quote them) must never forge a log line or drive a terminal. Owns no state and
 * never allocates. */
#include <stdbool.h>
#include <stdio.h>

#include "text.h"

#define NOT_UTF8 0x110000u

/* Decodes one UTF-8 character of @p (RFC 3629: no overlong forms, surrogates or values past
 * U+10FFFF); returns its length, with NOT_UTF8 + byte in *cp for a byte that begins none. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
	static const struct {
		unsigned char lead_min, lead_max, mask, len;
	} forms[] = {
		{0xc2, 0xdf, 0x1f, 2},
		{0xe0, 0xef, 0x0f, 3},
		{0xf0, 0xf4, 0x07, 4},
	};
	static const uint32_t min_of_len[] = {[2] = 0x80, [3] = 0x800, [4] = 0x10000};

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		uint32_t v;
		size_t n = forms[f].len;

		if (p[0] < forms[f].lead_min || p[0] > forms[f].lead_max)
			continue;
		v = p[0] & forms[f].mask;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
			v = v << 6 | (p[i] & 0x3f);
		}
		if (v < min_of_len[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			goto bad;
		*cp = v;
		return n;
	}
bad:
	*cp = NOT_UTF8 + p[0];
	return 1;
}

/* Characters a terminal or a log reader acts on instead of showing. */
static bool cp_unsafe(uint32_t cp)
{
	static const struct {
		uint32_t lo, hi;
	} unsafe[] = {
		{0x00, 0x1f},	  /* C0 controls: newline, ESC (ANSI sequences), BEL, ... */
		{0x7f, 0x9f},	  /* DEL and the C1 controls (CSI U+009B among them) */
		{0x200e, 0x200f}, /* left-to-right and right-to-left marks */
		{0x2028, 0x202e}, /* line and paragraph separators, bidi embeddings */
		{0x2066, 0x2069}, /* bidi isolates */
		{NOT_UTF8, NOT_UTF8 + 0xff}, /* not UTF-8 at all */
	};

	for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++)
		if (cp >= unsafe[i].lo && cp <= unsafe[i].hi)
			return true;
	return false;
}

long text_find_unsafe(const char *s, uint32_t *ret_cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0; p[i];) {
		size_t n = utf8_next(p + i, &cp);

		if (cp_unsafe(cp)) {
			if (ret_cp)
				*ret_cp = cp;
			return (long)i;
		}
		i += n;
	}
	return -1;
}

char *text_escape(const char *s, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	uint32_t cp;

	for (size_t i = 0; p[i];) {
		size_t n = utf8_next(p + i, &cp);
		char esc[4 * 4 + 1];
		size_t m = 0;

		if (!cp_unsafe(cp)) {
			if (o + n >= size)
				break;
			for (size_t k = 0; k < n; k++)
				out[o++] = (char)p[i + k];
			i += n;
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			unsigned char c = p[i + k];

			if (c == '\n' || c == '\r' || c == '\t')
				m += (size_t)snprintf(esc + m, sizeof(esc) - m, "\\%c",
						      c == '\n'	  ? 'n'
						      : c == '\r' ? 'r'
								  : 't');
			else
				m += (size_t)snprintf(esc + m, sizeof(esc) - m, "\\x%02x", c);
		}
		if (o + m >= size)
			break;
		for (size_t k = 0; k < m; k++)
			out[o++] = esc[k];
		i += n;
	}
	out[o] = 0;
	return out;
}
