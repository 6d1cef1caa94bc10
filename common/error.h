/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one shape of an error message: what failed, in words an operator can act on, and
 * whether trying again may help. Functions return -errno and fill a struct error; the caller
 * that decides what to do logs it, once. Never holds key material. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "macro.h"

#define ERROR_MAX 768

struct error {
	char msg[ERROR_MAX];
	bool retryable; /* a later attempt may succeed (a KMS's 429 or 5xx, a lost connection) */
	long retry_after_s; /* the peer's Retry-After; -1: none given */
	long http_status;   /* the peer's HTTP status when a reply said why; 0: none (metrics) */
};

/* Formats e->msg (not retryable) and returns r (a negative errno; -EIO if r >= 0). @e may be
 * NULL: only r is returned. */
int error_set(struct error *e, int r, const char *fmt, ...) _printf_(3, 4);
int error_setv(struct error *e, int r, const char *fmt, va_list ap) _printf_(3, 0);
/* Puts "<fmt>: " before e->msg, keeping its retry hints; returns r as error_set does. */
int error_prefix(struct error *e, int r, const char *fmt, ...) _printf_(3, 4);
