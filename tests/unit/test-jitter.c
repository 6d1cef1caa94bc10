// SPDX-License-Identifier: GPL-2.0-or-later
/* Poll jitter: a fleet's polls (many draws of one interval) cover the whole window
 * interval × (1 ± pct) evenly, with the interval as their mean; 0 % keeps them in step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "jitter.h"

#define DRAWS 20000
#define BINS  10

/* 300 s, keyd's default poll interval, in µs. */
static const uint64_t interval = 300ULL * 1000000;

static void test_no_jitter_is_lockstep(void **state)
{
	(void)state;
	for (int i = 0; i < 100; i++)
		assert_true(jitter_spread(interval, 0) == interval);
	assert_true(jitter_spread(0, 20) == 0);
	assert_true(jitter_spread(1, 20) == 1); /* a span below one unit: nothing to spread */
}

static void test_spread_covers_window(void **state)
{
	const uint64_t lo = interval / 100 * 80, hi = interval / 100 * 120;
	const uint64_t width = hi - lo;
	uint64_t min = UINT64_MAX, max = 0;
	unsigned bins[BINS] = {0};
	double sum = 0;

	(void)state;
	for (int i = 0; i < DRAWS; i++) {
		uint64_t d = jitter_spread(interval, 20);

		if (d < lo || d > hi)
			fail_msg("draw %llu outside [%llu, %llu]", (unsigned long long)d,
				 (unsigned long long)lo, (unsigned long long)hi);
		min = d < min ? d : min;
		max = d > max ? d : max;
		sum += (double)d;
		bins[(d - lo) * BINS / (width + 1)]++;
	}
	/* The whole window is used (within 1 % of its edges) ... */
	if (min > lo + width / 100 || max < hi - width / 100)
		fail_msg("draws span only [%llu, %llu] of [%llu, %llu]", (unsigned long long)min,
			 (unsigned long long)max, (unsigned long long)lo, (unsigned long long)hi);
	/* ... the mean poll rate is unchanged ... */
	if (sum / DRAWS < (double)interval * 0.99 || sum / DRAWS > (double)interval * 1.01)
		fail_msg("mean delay %.0f µs, interval %llu µs", sum / DRAWS,
			 (unsigned long long)interval);
	/* ... and evenly: no tenth of the window holds more than 12 % of the polls, so the
	 * peak request rate of N hosts is about N / (0.4 × interval), not N in one instant. */
	for (int b = 0; b < BINS; b++)
		if (bins[b] < DRAWS * 8 / 100 || bins[b] > DRAWS * 12 / 100)
			fail_msg("bin %d of %d holds %u of %d draws", b, BINS, bins[b], DRAWS);
}

static void test_pct_capped(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		uint64_t d = jitter_spread(interval, 90);

		if (d < interval / 2 || d > interval / 2 * 3)
			fail_msg("90 %% must count as %d %%: draw %llu", JITTER_PCT_MAX,
				 (unsigned long long)d);
	}
	/* Near the top of the range the spread neither overflows nor wraps. */
	for (int i = 0; i < 1000; i++)
		assert_true(jitter_spread(UINT64_MAX / 2, 50) >= UINT64_MAX / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_jitter_is_lockstep),
		cmocka_unit_test(test_spread_covers_window),
		cmocka_unit_test(test_pct_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
