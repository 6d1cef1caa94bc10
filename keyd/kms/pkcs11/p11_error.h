/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CK_RV, PKCS#11's return value, in keyd's terms: its name, a negative errno, whether a retry
 * (kms.c's backoff) may help, whether the sessions are gone, and what it means to an operator.
 * The one mapping of CK_RV; never sees a secret. */
#pragma once

#include <stdbool.h>

#include "kms.h"
#include "p11_pkcs11.h"

struct p11_rv_info {
	CK_RV rv;
	const char *name; /* "CKR_PIN_INCORRECT" */
	int error;	  /* -EACCES */
	bool retryable;
	bool drop; /* the sessions (or the slot) are no longer usable: open them anew */
	const char *hint;
};

/* The row for @rv; an unknown or vendor-defined value gets a generic final -EIO row. */
const struct p11_rv_info *p11_rv_info(CK_RV rv);

/* Formats "<fmt>: CKR_NAME (0x…): <hint>" into @e with the row's retry class; @hint (may be
 * NULL) says more than the table in this context. Returns the row's negative errno. */
int p11_fail(struct error *e, CK_RV rv, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
