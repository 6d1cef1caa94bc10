/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Prometheus text exposition format (version 0.0.4), writing side: metric families with
 * their HELP and TYPE lines, samples with escaped label values, into a growing buffer. Knows
 * no metric of its own; never sees key material (callers pass names and counts). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PROM_TEXT_MAX	  (4 * 1024 * 1024)

struct prom {
	char *buf;
	size_t len, size;
	int error; /* the first failure (-ENOMEM, -E2BIG past PROM_TEXT_MAX); sticky */
};

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram, untyped). */
void prom_family(struct prom *p, const char *name, const char *type, const char *help);
/* One sample "name{k1="v1",...} value": @labels is NULL-terminated key, value, key, value...
 * (NULL: no labels); values are escaped as the format says (\\, \", \n). */
void prom_sample(struct prom *p, const char *name, const char *const *labels, double value);
/* The text so far, NUL-terminated, handed to the caller (free()); -ENOMEM, -E2BIG when a
 * write failed. The buffer is emptied either way. */
int prom_finish(struct prom *p, char **ret);
void prom_done(struct prom *p);
