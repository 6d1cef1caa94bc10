// SPDX-License-Identifier: GPL-2.0-or-later
/* struct error: formatting and prefixing messages. Logs nothing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

int error_setv(struct error *e, int r, const char *fmt, va_list ap)
{
	if (e) {
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		e->retryable = false;
		e->retry_after_s = -1;
		e->http_status = 0;
	}
	return r < 0 ? r : -EIO;
}

int error_set(struct error *e, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = error_setv(e, r, fmt, ap);
	va_end(ap);
	return r;
}

int error_prefix(struct error *e, int r, const char *fmt, ...)
{
	char what[ERROR_MAX], inner[ERROR_MAX];
	struct error hints;
	va_list ap;

	if (!e)
		return r < 0 ? r : -EIO;
	hints = *e;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(inner, sizeof(inner), "%s", e->msg);
	error_set(e, r, "%s: %s", what, inner);
	e->retryable = hints.retryable;
	e->retry_after_s = hints.retry_after_s;
	e->http_status = hints.http_status;
	return r < 0 ? r : -EIO;
}
