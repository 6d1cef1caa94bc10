// SPDX-License-Identifier: GPL-2.0-or-later
/* Loading PKCS#11 modules. C_Initialize and C_Finalize act on the whole process, so a module
 * named by two KMS entries must be loaded once: this file keeps the one list of loaded
 * modules (a process-wide fact, hence the one static). */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "p11_error.h"
#include "p11_module.h"
#include "p11_wdek.h"

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *modules;

/* keyd runs the module as root, so only root may have written it. */
static int module_file_check(const char *path, struct error *e)
{
	struct stat st;

	if (path[0] != '/')
		return kms_fail(e, -EINVAL, false, "PKCS#11 module %s: must be an absolute path",
				path);
	if (stat(path, &st) < 0) {
		int r = negative_errno();

		return kms_fail(e, r, false, "PKCS#11 module %s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return kms_fail(e, -EPERM, false,
				"PKCS#11 module %s: must be a regular file owned by root that "
				"group and others cannot write",
				path);
	return 0;
}

/* dlsym also searches the library's dependencies: a library that is no module but links one
 * (libp11-kit, say, through GnuTLS) would hand out that one's C_GetFunctionList. */
static bool symbol_is_own(void *dl, void *sym)
{
	struct link_map *own = NULL, *found = NULL;
	Dl_info info;

	return dlinfo(dl, RTLD_DI_LINKMAP, &own) == 0 &&
	       dladdr1(sym, &info, (void **)&found, RTLD_DL_LINKMAP) != 0 && own == found;
}

static void module_free(struct p11_module *m)
{
	if (!m)
		return;
	if (m->finalize && m->f)
		m->f->C_Finalize(NULL);
	if (m->dl)
		dlclose(m->dl);
	free(m->path);
	free(m);
}

static int module_load(const char *path, struct p11_module **ret, struct error *e)
{
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_C_GetFunctionList get;
	struct p11_module *m;
	CK_INFO info;
	CK_RV rv;
	int r;

	r = module_file_check(path, e);
	if (r < 0)
		return r;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return kms_fail(e, -ENOMEM, false, "out of memory");
	}
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		r = kms_fail(e, -ENOEXEC, false, "PKCS#11 module %s: cannot load it: %s", path,
			     dlerror());
		goto fail;
	}
	get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
	if (!get || !symbol_is_own(m->dl, (void *)get)) {
		r = kms_fail(e, -ENOEXEC, false,
			     "PKCS#11 module %s: no C_GetFunctionList, so not a PKCS#11 module",
			     path);
		goto fail;
	}
	rv = get(&m->f);
	if (rv != CKR_OK || !m->f) {
		r = p11_fail(e, rv, NULL, "PKCS#11 module %s: C_GetFunctionList", path);
		m->f = NULL;
		goto fail;
	}
	if (m->f->version.major < 2) {
		r = kms_fail(e, -EOPNOTSUPP, false,
			     "PKCS#11 module %s: speaks Cryptoki %u.%u; keyd needs 2.20 or later",
			     path, m->f->version.major, m->f->version.minor);
		goto fail;
	}
	/* keyd's workers call the module from several threads at once. */
	rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = p11_fail(e, rv, NULL, "PKCS#11 module %s: C_Initialize", path);
		goto fail;
	}
	/* Someone else in this process (the host of the token plugin) owns its lifetime. */
	m->finalize = rv == CKR_OK;
	if (m->f->C_GetInfo(&info) == CKR_OK) {
		size_t n = p11_field_len(info.libraryDescription, sizeof(info.libraryDescription));

		memcpy(m->description, info.libraryDescription, n);
		m->description[n] = 0;
	}
	*ret = m;
	return 0;
fail:
	module_free(m);
	return r;
}

int p11_module_get(const char *path, struct p11_module **ret, struct error *e)
{
	struct p11_module *m;
	int r = 0;

	pthread_mutex_lock(&modules_lock);
	for (m = modules; m && strcmp(m->path, path) != 0; m = m->next)
		;
	if (!m) {
		r = module_load(path, &m, e);
		if (r >= 0) {
			m->next = modules;
			modules = m;
		}
	}
	if (r >= 0) {
		m->refs++;
		*ret = m;
	}
	pthread_mutex_unlock(&modules_lock);
	return r;
}

void p11_module_put(struct p11_module *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&modules_lock);
	if (--m->refs == 0) {
		for (struct p11_module **p = &modules; *p; p = &(*p)->next)
			if (*p == m) {
				*p = m->next;
				break;
			}
		module_free(m);
	}
	pthread_mutex_unlock(&modules_lock);
}
