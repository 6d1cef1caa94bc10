// SPDX-License-Identifier: GPL-2.0-or-later
/* Repeated refusals in the audit log (keyd/daemon/noise.c) and connection admission
 * (keyd/daemon/conn_limit.c), with the clock as a parameter: the first refusal of a kind is
 * written, repeats are counted into one summary per interval with the exact count, the table
 * is bounded; caps per source and in all hold and free up again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "conn_limit.h"
#include "noise.h"
#include "secmem.h"

#define S 1000000ULL

static char dir[] = "/tmp/keyd-noise.XXXXXX";
static char path[512];

/* The records of the log, as an array. */
static json_t *records(void)
{
	json_t *all = json_array();
	char line[16384];
	FILE *f = fopen(path, "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_t *r = json_loads(line, 0, NULL);

		assert_non_null(r);
		if (strcmp(json_string_value(json_object_get(r, "type")), "audit.checkpoint"))
			json_array_append(all, r);
		json_decref(r);
	}
	fclose(f);
	return all;
}

static void test_summaries(void **state)
{
	struct audit *audit;
	struct noise *n;
	json_auto_t *subject = json_pack("{s:s}", "peer", "10.9.9.9:1234");
	json_auto_t *recs = NULL;
	const uint64_t t0 = 1000 * S;
	json_t *sum;

	(void)state;
	unlink(path);
	assert_int_equal(audit_open(path, NULL, &audit), 0);
	assert_int_equal(noise_new(audit, 60 * S, 2, &n), 0);

	/* The first of a kind is the caller's to write; 99 repeats are only counted. */
	assert_true(noise_note(n, "10.9.9.9 forged", "callback.event", subject, "bad", t0));
	for (int i = 1; i < 100; i++)
		assert_false(noise_note(n, "10.9.9.9 forged", "callback.event", subject, "bad",
					t0 + (uint64_t)i * 1000));
	/* Another kind is news of its own. */
	assert_true(noise_note(n, "10.9.9.9 timeout", "callback.event", subject, "slow", t0));
	/* Within the interval, no summary yet; after it, one with the exact count. */
	assert_int_equal(noise_tick(n, t0 + 59 * S), 0);
	assert_int_equal(noise_tick(n, t0 + 60 * S), 1);
	assert_int_equal(noise_tick(n, t0 + 61 * S), 0);
	recs = records();
	assert_int_equal(json_array_size(recs), 1);
	sum = json_array_get(recs, 0);
	assert_string_equal(json_string_value(json_object_get(sum, "result")), "refused");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(sum, "object"), "count")), 99);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(sum, "subject"), "peer")),
		"10.9.9.9:1234");

	/* The table holds 2 kinds: a third shares the overflow entry, whose first is news too. */
	assert_true(noise_note(n, "10.0.0.1 forged", "callback.event", subject, "x", t0 + 62 * S));
	assert_false(noise_note(n, "10.0.0.2 forged", "callback.event", subject, "x", t0 + 62 * S));
	/* An attack that goes on is counted into the next interval's summary; at shutdown every
	 * pending count is written. */
	assert_false(
		noise_note(n, "10.9.9.9 forged", "callback.event", subject, "bad", t0 + 62 * S));
	assert_false(
		noise_note(n, "10.9.9.9 forged", "callback.event", subject, "bad", t0 + 63 * S));
	/* A kind quiet for a whole interval is news again. */
	assert_true(
		noise_note(n, "10.9.9.9 timeout", "callback.event", subject, "slow", t0 + 200 * S));
	noise_free(n);
	json_decref(recs);
	recs = records();
	/* Two more summaries: one repeat of 10.9.9.9 forged, one of the overflow. */
	assert_int_equal(json_array_size(recs), 3);
	audit_close(audit);
}

static void test_conn_limit(void **state)
{
	struct conn_limit *l;
	struct conn_source a = {.len = 1, .key = {1}}, b = {.len = 1, .key = {2}};

	(void)state;
	assert_int_equal(conn_limit_new(3, 2, &l), 0);
	assert_int_equal(conn_limit_admit(l, &a, 3), CONN_ADMITTED);
	assert_int_equal(conn_limit_admit(l, &a, 3), CONN_ADMITTED);
	assert_int_equal(conn_limit_admit(l, &a, 3), CONN_TOO_MANY_FROM_SOURCE);
	assert_int_equal(conn_limit_admit(l, &b, 3), CONN_ADMITTED);
	assert_int_equal(conn_limit_admit(l, &b, 3), CONN_TOO_MANY);
	assert_int_equal(conn_limit_open(l), 3);
	conn_limit_release(l, &a);
	assert_int_equal(conn_limit_admit(l, &b, 3), CONN_ADMITTED);
	conn_limit_release(l, &b);
	conn_limit_release(l, &b);
	conn_limit_release(l, &a);
	assert_int_equal(conn_limit_open(l), 0);
	/* A descriptor that high would eat into the reserve. */
	assert_int_equal(conn_limit_admit(l, &a, 1 << 30), CONN_NO_DESCRIPTORS);
	conn_limit_free(l);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	return secmem_init(1 << 20) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summaries),
		cmocka_unit_test(test_conn_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
