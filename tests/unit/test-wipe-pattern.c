// SPDX-License-Identifier: GPL-2.0-or-later
/* The keystream is addressed by offset (any block regenerates alone, which resume and sampled
 * verification rely on), differs with every key, and comparison counts differing blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "secmem.h"

#define N (1u << 20)

static void test_offset_addressed(void **state)
{
	struct pattern p = {0};
	struct pattern_gen g;
	uint8_t *all = malloc(N), *part = malloc(N);

	(void)state;
	assert_int_equal(pattern_new_keystream(&p), 0);
	assert_int_equal(pattern_gen_init(&g, &p), 0);
	assert_int_equal(pattern_fill(&g, all, N, 0), 0);
	/* Any aligned piece, generated on its own, equals that piece of the whole. */
	assert_int_equal(pattern_fill(&g, part, 4096, 512 * 1024), 0);
	assert_memory_equal(part, all + 512 * 1024, 4096);
	assert_int_equal(pattern_fill(&g, part, 16, N - 16), 0);
	assert_memory_equal(part, all + N - 16, 16);
	assert_int_equal(pattern_fill(&g, part, 16, 8), -EINVAL);
	/* It is not zeros, nor one block repeated. */
	assert_memory_not_equal(all, all + 65536, 65536);
	memset(part, 0, 4096);
	assert_memory_not_equal(all, part, 4096);
	pattern_gen_done(&g);
	pattern_done(&p);
	free(all);
	free(part);
}

static void test_fresh_key_each_time(void **state)
{
	struct pattern a = {0}, b = {0};
	struct pattern_gen ga, gb;
	uint8_t x[4096], y[4096];

	(void)state;
	assert_int_equal(pattern_new_keystream(&a), 0);
	assert_int_equal(pattern_new_keystream(&b), 0);
	assert_int_equal(pattern_gen_init(&ga, &a), 0);
	assert_int_equal(pattern_gen_init(&gb, &b), 0);
	assert_int_equal(pattern_fill(&ga, x, sizeof(x), 0), 0);
	assert_int_equal(pattern_fill(&gb, y, sizeof(y), 0), 0);
	assert_memory_not_equal(x, y, sizeof(x));
	pattern_gen_done(&ga);
	pattern_gen_done(&gb);
	/* A saved key (resume) gives the same stream. */
	assert_int_equal(pattern_set_keystream(&b, a.key, PATTERN_KEY_LEN), 0);
	assert_int_equal(pattern_gen_init(&gb, &b), 0);
	assert_int_equal(pattern_fill(&gb, y, sizeof(y), 0), 0);
	assert_memory_equal(x, y, sizeof(x));
	pattern_gen_done(&gb);
	pattern_done(&a);
	pattern_done(&b);
}

static void test_compare_counts_blocks(void **state)
{
	struct pattern p = {0};
	struct pattern_gen g;
	uint8_t *buf = malloc(N), *scratch = malloc(N);
	uint64_t first = 0;

	(void)state;
	assert_int_equal(pattern_new_keystream(&p), 0);
	assert_int_equal(pattern_gen_init(&g, &p), 0);
	assert_int_equal(pattern_fill(&g, buf, N, 1 << 30), 0);
	assert_int_equal(pattern_compare(&g, buf, N, 1 << 30, scratch, 512, &first), 0);
	buf[1000] ^= 0x40;
	buf[1001] ^= 0x40; /* same block */
	buf[N - 1] ^= 1;
	assert_int_equal(pattern_compare(&g, buf, N, 1 << 30, scratch, 512, &first), 2);
	assert_int_equal(first, (1ull << 30) + 1000);
	pattern_gen_done(&g);

	pattern_zero(&p);
	assert_int_equal(pattern_gen_init(&g, &p), 0);
	memset(buf, 0, N);
	assert_int_equal(pattern_compare(&g, buf, N, 0, scratch, 4096, &first), 0);
	buf[N / 2 + 3] = 7;
	assert_int_equal(pattern_compare(&g, buf, N, 0, scratch, 4096, &first), 1);
	assert_int_equal(first, N / 2 + 3);
	pattern_gen_done(&g);
	free(buf);
	free(scratch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offset_addressed),
		cmocka_unit_test(test_fresh_key_each_time),
		cmocka_unit_test(test_compare_counts_blocks),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
