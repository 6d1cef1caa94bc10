// SPDX-License-Identifier: GPL-2.0-or-later
/* The Prometheus text writer: HELP and TYPE lines, label values escaped as the exposition
 * format says (backslash, double quote, newline), numbers as it spells them (+Inf, -Inf, NaN,
 * integers without a fraction), and an empty page that is still a page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void test_page(void **state)
{
	struct prom p = {0};
	char *text = NULL;

	(void)state;
	prom_family(&p, "keyd_x_total", "counter", "Help with a \\ and a\nnewline.");
	prom_sample(&p, "keyd_x_total",
		    (const char *const[]){"volume", "a\"b\\c\nd", "kms", "kp", NULL}, 3);
	prom_sample(&p, "keyd_y", NULL, 0.25);
	prom_sample(&p, "keyd_y", (const char *const[]){"le", "+Inf", NULL}, INFINITY);
	prom_sample(&p, "keyd_y", NULL, -INFINITY);
	prom_sample(&p, "keyd_y", NULL, NAN);
	prom_sample(&p, "keyd_y", NULL, 1e20);
	prom_sample(&p, "keyd_y", NULL, 1796183231.5); /* a Unix time: to the second and beyond */
	prom_sample(&p, "keyd_y", (const char *const[]){NULL}, -7);
	assert_int_equal(prom_finish(&p, &text), 0);
	assert_string_equal(text, "# HELP keyd_x_total Help with a \\\\ and a\\nnewline.\n"
				  "# TYPE keyd_x_total counter\n"
				  "keyd_x_total{volume=\"a\\\"b\\\\c\\nd\",kms=\"kp\"} 3\n"
				  "keyd_y 0.25\n"
				  "keyd_y{le=\"+Inf\"} +Inf\n"
				  "keyd_y -Inf\n"
				  "keyd_y NaN\n"
				  "keyd_y 1e+20\n"
				  "keyd_y 1796183231.5\n"
				  "keyd_y -7\n");
	free(text);
	assert_null(p.buf);
}

static void test_empty(void **state)
{
	struct prom p = {0};
	char *text = NULL;

	(void)state;
	assert_int_equal(prom_finish(&p, &text), 0);
	assert_string_equal(text, "");
	free(text);
}

/* A page past PROM_TEXT_MAX is refused whole, never cut off mid-line. */
static void test_too_big(void **state)
{
	static char help[64 * 1024];
	struct prom p = {0};
	char *text = NULL;

	(void)state;
	memset(help, 'h', sizeof(help) - 1);
	for (int i = 0; i < (PROM_TEXT_MAX / (int)sizeof(help)) + 2; i++)
		prom_family(&p, "keyd_z", "gauge", help);
	assert_int_equal(prom_finish(&p, &text), -E2BIG);
	assert_null(text);
	assert_null(p.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_too_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
