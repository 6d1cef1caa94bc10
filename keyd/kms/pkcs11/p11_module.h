/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A PKCS#11 module loaded the standard way (dlopen, C_GetFunctionList, C_Initialize with
 * CKF_OS_LOCKING_OK), once per path and process, shared by every KMS that names it and
 * finalised with its last user. Never logs; never sees a PIN. */
#pragma once

#include "kms.h"
#include "p11_pkcs11.h"

struct p11_module {
	char *path;
	CK_FUNCTION_LIST *f;
	char description[33]; /* CK_INFO.libraryDescription, unpadded */
	/* Private to p11_module.c. */
	void *dl;
	unsigned refs;
	bool finalize; /* we initialised it, so we finalise it */
	struct p11_module *next;
};

/* Loads and initialises the module at @path (absolute; a regular file owned by root that no
 * one else may write), or takes another reference to it. The error says what is wrong with
 * the file or what the module answered. -EPERM, -ENOENT, -ENOEXEC, -EOPNOTSUPP, -EIO. */
int p11_module_get(const char *path, struct p11_module **ret, struct error *e);
/* Drops a reference; the last one calls C_Finalize (if keyd initialised it) and dlclose. */
void p11_module_put(struct p11_module *m);
