// SPDX-License-Identifier: GPL-2.0-or-later
/* Random spreads for timers. Draws from OpenSSL's RAND_bytes (never rand(): forked daemons
 * must not share a sequence); owns no state. */
#include <openssl/rand.h>

#include "jitter.h"

/* @pct percent of @base, without overflow for any @base and @pct <= 100. */
static uint64_t jitter_part(uint64_t base, unsigned pct)
{
	return base / 100 * pct + base % 100 * pct / 100;
}

/* Uniform over 0 .. @n; 0 when there is no randomness (then timers are merely in step). */
static uint64_t jitter_upto(uint64_t n)
{
	uint64_t rnd = 0;

	if (n == 0 || RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		return 0;
	/* 64-bit modulo over a span far below 2^64: the bias is below 2^-30. */
	return n == UINT64_MAX ? rnd : rnd % (n + 1);
}

uint64_t jitter_spread(uint64_t base, unsigned pct)
{
	uint64_t span = jitter_part(base, pct > JITTER_PCT_MAX ? JITTER_PCT_MAX : pct);

	if (span == 0)
		return base;
	return base - span + jitter_upto(2 * span);
}

uint64_t jitter_above(uint64_t base, unsigned pct)
{
	return base + jitter_upto(jitter_part(base, pct > 100 ? 100 : pct));
}
