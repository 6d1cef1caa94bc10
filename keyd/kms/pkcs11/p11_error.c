// SPDX-License-Identifier: GPL-2.0-or-later
/* The CK_RV table (PKCS#11 v2.40 section 5.1, v3.0 section 5.1): one row per return value a
 * module may give keyd's calls. Retryable: the token, its session or its device may come
 * back (removed, not present, busy). Final: the PIN, the key, the mechanism, the data. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "p11_error.h"

#define ROW(rv, err, retry, drop, hint)                                                            \
	{                                                                                          \
		rv, #rv, err, retry, drop, hint                                                    \
	}

static const char hint_wdek[] =
	"the wrapped key does not open with this key object and this volume's AAD (another key, "
	"a token copied from another volume, or a damaged token)";
static const char hint_gone[] = "the token is not there (removed, or its HSM unreachable); keyd "
				"opens a new session when it is back";

static const struct p11_rv_info rvs[] = {
	ROW(CKR_HOST_MEMORY, -ENOMEM, true, false, "the module ran out of memory"),
	ROW(CKR_SLOT_ID_INVALID, -ENODEV, true, true, "the token's slot is gone"),
	ROW(CKR_GENERAL_ERROR, -EIO, false, false,
	    "the module reports an unrecoverable error (SoftHSM2 also says this when AES-GCM or "
	    "key-wrap authentication fails)"),
	ROW(CKR_FUNCTION_FAILED, -EIO, false, false, "the module could not do it and says no more"),
	ROW(CKR_ARGUMENTS_BAD, -EINVAL, false, false,
	    "the module rejected keyd's arguments (a bug in keyd or the module)"),
	ROW(CKR_CANT_LOCK, -EOPNOTSUPP, false, false,
	    "the module cannot use the operating system's locking, which keyd's threads need"),
	ROW(CKR_ATTRIBUTE_SENSITIVE, -EPERM, false, false, "the token will not reveal it"),
	ROW(CKR_ATTRIBUTE_TYPE_INVALID, -EINVAL, false, false,
	    "the token does not know an attribute"),
	ROW(CKR_ATTRIBUTE_VALUE_INVALID, -EINVAL, false, false,
	    "the token refuses an attribute value"),
	ROW(CKR_ACTION_PROHIBITED, -EPERM, false, false, "the token's policy forbids it"),
	ROW(CKR_DATA_INVALID, -EINVAL, false, false, "the token refuses the data"),
	ROW(CKR_DATA_LEN_RANGE, -EINVAL, false, false, "the token refuses the data's length"),
	ROW(CKR_DEVICE_ERROR, -EIO, true, true, "the token reports a device error"),
	ROW(CKR_DEVICE_MEMORY, -ENOSPC, true, false, "the token is out of memory"),
	ROW(CKR_DEVICE_REMOVED, -ENODEV, true, true, hint_gone),
	ROW(CKR_ENCRYPTED_DATA_INVALID, -EBADMSG, false, false, hint_wdek),
	ROW(CKR_ENCRYPTED_DATA_LEN_RANGE, -EBADMSG, false, false, hint_wdek),
	ROW(CKR_AEAD_DECRYPT_FAILED, -EBADMSG, false, false, hint_wdek),
	ROW(CKR_FUNCTION_CANCELED, -ECANCELED, true, false, "the call was cancelled"),
	ROW(CKR_FUNCTION_NOT_SUPPORTED, -EOPNOTSUPP, false, false,
	    "the module does not implement this function"),
	ROW(CKR_KEY_HANDLE_INVALID, -ENOENT, true, false,
	    "the key object went away while keyd used it"),
	ROW(CKR_KEY_SIZE_RANGE, -EINVAL, false, false, "the key's size does not fit the mechanism"),
	ROW(CKR_KEY_TYPE_INCONSISTENT, -EOPNOTSUPP, false, false,
	    "the key object is not an AES key"),
	ROW(CKR_KEY_FUNCTION_NOT_PERMITTED, -EKEYREVOKED, false, false,
	    "the key object may not do this (its usage attribute is false): revoked at the "
	    "token, or a key made for another use"),
	ROW(CKR_KEY_NOT_WRAPPABLE, -EPERM, false, false, "the token will not wrap that key"),
	ROW(CKR_KEY_UNEXTRACTABLE, -EPERM, false, false, "the token will not let that key out"),
	ROW(CKR_MECHANISM_INVALID, -EOPNOTSUPP, false, false,
	    "the token does not offer this mechanism for this key"),
	ROW(CKR_MECHANISM_PARAM_INVALID, -EOPNOTSUPP, false, false,
	    "the token refuses the mechanism's parameters"),
	ROW(CKR_OBJECT_HANDLE_INVALID, -ENOENT, true, false,
	    "the object went away while keyd used it"),
	ROW(CKR_OPERATION_ACTIVE, -EBUSY, true, true, "the session is busy with another operation"),
	ROW(CKR_OPERATION_NOT_INITIALIZED, -EIO, true, true, "the session lost its operation"),
	ROW(CKR_PIN_INCORRECT, -EACCES, false, false,
	    "the PIN in pin_file is wrong; keyd does not try it again, so that the token does not "
	    "lock it"),
	ROW(CKR_PIN_INVALID, -EINVAL, false, false,
	    "the PIN in pin_file has characters the token does not accept"),
	ROW(CKR_PIN_LEN_RANGE, -EINVAL, false, false,
	    "the PIN in pin_file is too long or too short for the token"),
	ROW(CKR_PIN_EXPIRED, -EKEYEXPIRED, false, false,
	    "the user PIN has expired: set a new one on the token and in pin_file"),
	ROW(CKR_PIN_LOCKED, -EACCES, false, false,
	    "the user PIN is locked after too many wrong tries: the token's security officer must "
	    "unblock it"),
	ROW(CKR_SESSION_CLOSED, -ENOTCONN, true, true, "the session was closed"),
	ROW(CKR_SESSION_COUNT, -EBUSY, true, false, "the token has no more sessions to give"),
	ROW(CKR_SESSION_HANDLE_INVALID, -ENOTCONN, true, true, "the session is gone"),
	ROW(CKR_SESSION_PARALLEL_NOT_SUPPORTED, -EOPNOTSUPP, false, false,
	    "the module supports no parallel sessions"),
	ROW(CKR_TEMPLATE_INCOMPLETE, -EINVAL, false, false, "the token wants more attributes"),
	ROW(CKR_TEMPLATE_INCONSISTENT, -EINVAL, false, false,
	    "the token refuses the attributes keyd gave"),
	ROW(CKR_TOKEN_NOT_PRESENT, -ENODEV, true, true, hint_gone),
	ROW(CKR_TOKEN_NOT_RECOGNIZED, -ENODEV, false, false,
	    "the module does not recognise the token"),
	ROW(CKR_UNWRAPPING_KEY_HANDLE_INVALID, -ENOENT, true, false,
	    "the key object went away while keyd used it"),
	ROW(CKR_UNWRAPPING_KEY_SIZE_RANGE, -EOPNOTSUPP, false, false,
	    "the key's size does not fit the key-wrap mechanism"),
	ROW(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, -EOPNOTSUPP, false, false,
	    "the key object is not an AES key"),
	ROW(CKR_USER_NOT_LOGGED_IN, -EACCES, true, true,
	    "the token forgot keyd's login; keyd logs in again"),
	ROW(CKR_USER_PIN_NOT_INITIALIZED, -EACCES, false, false,
	    "the token's user PIN was never set: initialise it with the security officer's PIN"),
	ROW(CKR_USER_TYPE_INVALID, -EINVAL, false, false, "the token knows no normal user"),
	ROW(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, -EBUSY, false, false,
	    "another user is logged in to the token in this process"),
	ROW(CKR_USER_TOO_MANY_TYPES, -EBUSY, true, false, "the token has too many users logged in"),
	ROW(CKR_WRAPPED_KEY_INVALID, -EBADMSG, false, false, hint_wdek),
	ROW(CKR_WRAPPED_KEY_LEN_RANGE, -EBADMSG, false, false, hint_wdek),
	ROW(CKR_WRAPPING_KEY_HANDLE_INVALID, -ENOENT, true, false,
	    "the key object went away while keyd used it"),
	ROW(CKR_WRAPPING_KEY_SIZE_RANGE, -EOPNOTSUPP, false, false,
	    "the key's size does not fit the key-wrap mechanism"),
	ROW(CKR_WRAPPING_KEY_TYPE_INCONSISTENT, -EOPNOTSUPP, false, false,
	    "the key object is not an AES key"),
	ROW(CKR_BUFFER_TOO_SMALL, -EPROTO, false, false,
	    "the token answered with more bytes than keyd expects"),
	ROW(CKR_CRYPTOKI_NOT_INITIALIZED, -EIO, false, false,
	    "the module was finalised by another part of this process"),
	ROW(CKR_FIPS_SELF_TEST_FAILED, -EIO, false, false, "the token failed its FIPS self-test"),
	ROW(CKR_LIBRARY_LOAD_FAILED, -EIO, false, false, "the module could not load a library"),
	ROW(CKR_FUNCTION_REJECTED, -EPERM, false, false, "the token rejected the call"),
};

static const struct p11_rv_info unknown = {
	.name = "unknown CK_RV",
	.error = -EIO,
	.hint = "a return value keyd does not know (see the module's documentation)",
};
static const struct p11_rv_info vendor = {
	.name = "vendor-defined CK_RV",
	.error = -EIO,
	.hint = "the module's own error code (see its documentation)",
};

const struct p11_rv_info *p11_rv_info(CK_RV rv)
{
	for (size_t i = 0; i < ELEMENTSOF(rvs); i++)
		if (rvs[i].rv == rv)
			return &rvs[i];
	return rv >= CKR_VENDOR_DEFINED ? &vendor : &unknown;
}

int p11_fail(struct error *e, CK_RV rv, const char *hint, const char *fmt, ...)
{
	const struct p11_rv_info *i = p11_rv_info(rv);
	va_list ap;
	size_t n;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s (0x%lx): %s", i->name,
			 (unsigned long)rv, hint ? hint : i->hint);
		e->retryable = i->retryable;
		e->retry_after_s = -1;
	}
	return i->error;
}
