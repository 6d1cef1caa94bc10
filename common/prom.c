// SPDX-License-Identifier: GPL-2.0-or-later
/* The Prometheus text exposition format: families and samples appended to one buffer, label
 * values escaped, numbers as the format spells them (+Inf, NaN). Owns only its buffer. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void prom_append(struct prom *p, const char *s, size_t n)
{
	if (p->error)
		return;
	if (p->len + n + 1 > p->size) {
		size_t size = p->size ? p->size : 4096;
		char *b;

		while (size < p->len + n + 1)
			size *= 2;
		if (size > PROM_TEXT_MAX) {
			p->error = -E2BIG;
			return;
		}
		b = realloc(p->buf, size);
		if (!b) {
			p->error = -ENOMEM;
			return;
		}
		p->buf = b;
		p->size = size;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = 0;
}

static void prom_puts(struct prom *p, const char *s)
{
	prom_append(p, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also escape ". */
static void prom_escaped(struct prom *p, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			prom_puts(p, "\\\\");
		else if (*s == '\n')
			prom_puts(p, "\\n");
		else if (*s == '"' && quote)
			prom_puts(p, "\\\"");
		else
			prom_append(p, s, 1);
	}
}

void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
	prom_puts(p, "# HELP ");
	prom_puts(p, name);
	prom_puts(p, " ");
	prom_escaped(p, help, false);
	prom_puts(p, "\n# TYPE ");
	prom_puts(p, name);
	prom_puts(p, " ");
	prom_puts(p, type);
	prom_puts(p, "\n");
}

void prom_sample(struct prom *p, const char *name, const char *const *labels, double value)
{
	char num[64];

	prom_puts(p, name);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		prom_puts(p, i ? "," : "{");
		prom_puts(p, labels[i]);
		prom_puts(p, "=\"");
		prom_escaped(p, labels[i + 1] ? labels[i + 1] : "", true);
		prom_puts(p, "\"");
	}
	if (labels && labels[0])
		prom_puts(p, "}");
	if (isnan(value))
		snprintf(num, sizeof(num), " NaN\n");
	else if (isinf(value))
		snprintf(num, sizeof(num), " %sInf\n", value > 0 ? "+" : "-");
	else if (value > -1e15 && value < 1e15 && value == (double)(int64_t)value)
		snprintf(num, sizeof(num), " %lld\n", (long long)value);
	else {
		/* The shortest spelling that reads back as @value: %.9g alone turned a Unix time
		 * 1796183231.5 into 1.79618323e+09, a second early. */
		for (int prec = 9; prec <= 17; prec++) {
			snprintf(num, sizeof(num), " %.*g\n", prec, value);
			if (strtod(num, NULL) == value)
				break;
		}
	}
	prom_puts(p, num);
}

int prom_finish(struct prom *p, char **ret)
{
	int r = p->error;

	if (!r && !p->buf)
		prom_append(p, "", 0);
	r = p->error;
	if (r < 0) {
		prom_done(p);
		return r;
	}
	*ret = p->buf;
	*p = (struct prom){0};
	return 0;
}

void prom_done(struct prom *p)
{
	free(p->buf);
	*p = (struct prom){0};
}
