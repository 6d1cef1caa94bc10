// SPDX-License-Identifier: GPL-2.0-or-later
/* Token selection, the session pool and the login. PKCS#11 logs in an application, not a
 * session: every session of this process on the token shares the login, and it ends when the
 * last one closes. So the pool keeps its sessions open, and a new session is checked
 * (C_GetSessionInfo) rather than assumed to need or not need C_Login. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11_error.h"
#include "p11_token.h"
#include "p11_wdek.h"
#include "secmem.h"
#include "util.h"

void p11_token_init(struct p11_token *t, const char *label, const char *serial,
		    const char *pin_file)
{
	*t = (struct p11_token){.label = label, .serial = serial, .pin_file = pin_file};
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->freed, NULL);
	if (label && serial)
		snprintf(t->name, sizeof(t->name), "PKCS#11 token '%s' (serial %s)", label, serial);
	else if (label)
		snprintf(t->name, sizeof(t->name), "PKCS#11 token '%s'", label);
	else
		snprintf(t->name, sizeof(t->name), "PKCS#11 token with serial %s", serial);
}

int p11_token_open(struct p11_token *t, const char *module_path, struct error *e)
{
	return t->mod ? 0 : p11_module_get(module_path, &t->mod, e);
}

/* "'label' (serial …)" of one token, for the list of those that did not match. */
static void describe(const CK_TOKEN_INFO *ti, char *buf, size_t size)
{
	int ln = (int)p11_field_len(ti->label, sizeof(ti->label));
	int sn = (int)p11_field_len(ti->serialNumber, sizeof(ti->serialNumber));

	snprintf(buf, size, "'%.*s' (serial %.*s)", ln, (const char *)ti->label, sn,
		 (const char *)ti->serialNumber);
}

static bool token_matches(const struct p11_token *t, const CK_TOKEN_INFO *ti)
{
	return (ti->flags & CKF_TOKEN_INITIALIZED) &&
	       (!t->label || p11_field_eq(ti->label, sizeof(ti->label), t->label)) &&
	       (!t->serial || p11_field_eq(ti->serialNumber, sizeof(ti->serialNumber), t->serial));
}

/* Finds the one slot whose token matches. Caller holds t->lock. */
static int slot_find(struct p11_token *t, struct error *e)
{
	CK_FUNCTION_LIST *f = t->mod->f;
	CK_SLOT_ID slots[P11_SLOTS_MAX];
	CK_ULONG n = P11_SLOTS_MAX;
	char others[320] = "", one[80];
	unsigned found = 0;
	CK_RV rv;

	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv == CKR_BUFFER_TOO_SMALL)
		return kms_fail(e, -E2BIG, false, "%s: module %s has more than %d tokens", t->name,
				t->mod->path, P11_SLOTS_MAX);
	if (rv != CKR_OK)
		return p11_fail(e, rv, NULL, "%s: C_GetSlotList", t->name);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue; /* removed in between */
		if (token_matches(t, &ti)) {
			if (found++ == 0)
				t->slot = slots[i];
			continue;
		}
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		describe(&ti, one, sizeof(one));
		if (strlen(others) + strlen(one) + 8 < sizeof(others))
			snprintf(others + strlen(others), sizeof(others) - strlen(others), "%s%s",
				 others[0] ? ", " : "", one);
	}
	if (found > 1)
		return kms_fail(e, -ENOTUNIQ, false,
				"%s: %u tokens of module %s match; name one by token_serial",
				t->name, found, t->mod->path);
	/* A USB token not plugged in yet, or a network HSM not reachable yet: keep trying. */
	if (!found)
		return kms_fail(e, -ENODEV, true, "%s: not present in module %s (tokens there: %s)",
				t->name, t->mod->path, others[0] ? others : "none");
	t->have_slot = true;
	return 0;
}

static int pin_read(const struct p11_token *t, uint8_t **pin, size_t *n, struct error *e)
{
	struct error ce;
	int r = read_credential(t->pin_file, true, pin, n, &ce);

	if (r == -EPERM)
		return kms_fail(e, r, false,
				"%s: pin_file refused: %s (it must be a regular file owned by root "
				"with mode 0600, or a systemd credential name)",
				t->name, ce.msg);
	if (r < 0)
		return kms_fail(e, r, false, "%s: cannot read pin_file %s: %s", t->name,
				t->pin_file, ce.msg);
	if (*n == 0 || *n > P11_PIN_MAX) {
		secmem_free(*pin);
		*pin = NULL;
		if (*n == 0)
			return kms_fail(e, -EINVAL, false, "%s: pin_file %s is empty", t->name,
					t->pin_file);
		return kms_fail(e, -EINVAL, false, "%s: pin_file %s holds more than %d bytes",
				t->name, t->pin_file, P11_PIN_MAX);
	}
	return 0;
}

/* Who pin_file is now: its inode and times (a credential name resolves as read_credential
 * does). 0 if it cannot be stat'ed; reading it then says why. */
static bool pin_stamp(const struct p11_token *t, struct p11_pin_stamp *ret)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX];
	struct stat st;

	if (t->pin_file[0] == '/')
		snprintf(path, sizeof(path), "%s", t->pin_file);
	else if (dir)
		snprintf(path, sizeof(path), "%s/%s", dir, t->pin_file);
	else
		return false;
	if (stat(path, &st) < 0)
		return false;
	*ret = (struct p11_pin_stamp){.dev = st.st_dev,
				      .ino = st.st_ino,
				      .size = st.st_size,
				      .mtime = st.st_mtim,
				      .ctime = st.st_ctim};
	return true;
}

static bool pin_stamp_eq(const struct p11_pin_stamp *a, const struct p11_pin_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* What the token says about the PIN after a failed login, in words. */
static const char *pin_flags(const struct p11_token *t)
{
	CK_TOKEN_INFO ti;

	if (t->mod->f->C_GetTokenInfo(t->slot, &ti) != CKR_OK)
		return "";
	if (ti.flags & CKF_USER_PIN_LOCKED)
		return " (the token now says the PIN is locked)";
	if (ti.flags & CKF_USER_PIN_FINAL_TRY)
		return " (the token says one more wrong PIN locks it)";
	if (ti.flags & CKF_USER_PIN_COUNT_LOW)
		return " (the token says few tries are left)";
	return "";
}

/* Logs the session's application in, unless it already is. Caller holds t->lock. */
static int login(struct p11_token *t, CK_SESSION_HANDLE h, struct error *e)
{
	CK_FUNCTION_LIST *f = t->mod->f;
	_cleanup_secure_ uint8_t *pin = NULL;
	struct p11_pin_stamp stamp = {0};
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	bool have_stamp;
	size_t n = 0;
	CK_RV rv;
	int r;

	rv = f->C_GetSessionInfo(h, &si);
	if (rv != CKR_OK)
		return p11_fail(e, rv, NULL, "%s: C_GetSessionInfo", t->name);
	if (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS)
		return 0;
	rv = f->C_GetTokenInfo(t->slot, &ti);
	if (rv != CKR_OK)
		return p11_fail(e, rv, NULL, "%s: C_GetTokenInfo", t->name);
	/* Do not spend one of the last tries on a PIN that is already locked. */
	if (ti.flags & CKF_USER_PIN_LOCKED)
		return p11_fail(e, CKR_PIN_LOCKED, NULL, "%s: the token reports", t->name);
	if (!(ti.flags & CKF_USER_PIN_INITIALIZED))
		return p11_fail(e, CKR_USER_PIN_NOT_INITIALIZED, NULL, "%s: the token reports",
				t->name);
	have_stamp = pin_stamp(t, &stamp);
	if (t->refused && have_stamp && pin_stamp_eq(&stamp, &t->refused_stamp))
		return kms_fail(e, -EACCES, false,
				"%s: the token refused the PIN in %s at %s; keyd will not offer it "
				"again until that file changes (each wrong PIN brings the token "
				"closer to locking it)",
				t->name, t->pin_file, t->refused_at);
	r = pin_read(t, &pin, &n, e);
	if (r < 0)
		return r;
	rv = f->C_Login(h, CKU_USER, pin, (CK_ULONG)n);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		t->refused = false;
		return 0;
	}
	r = p11_fail(e, rv, NULL, "%s: C_Login with the PIN in %s", t->name, t->pin_file);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
		size_t len = strlen(e->msg);

		snprintf(e->msg + len, sizeof(e->msg) - len, "%s", pin_flags(t));
		t->refused = have_stamp;
		t->refused_stamp = stamp;
		format_rfc3339_us(now_real_us(), t->refused_at, sizeof(t->refused_at));
	}
	return r;
}

/* Closes every idle session and forgets the slot; sessions lent out close on return. */
static void drop_all(struct p11_token *t)
{
	for (size_t i = 0; i < t->n_idle; i++)
		t->mod->f->C_CloseSession(t->idle[i]);
	t->n_idle = t->n_open = 0;
	t->have_slot = false;
	t->epoch++;
	pthread_cond_broadcast(&t->freed);
}

/* A new logged-in session. Caller holds t->lock (so one thread logs in at a time). */
static int session_open(struct p11_token *t, CK_SESSION_HANDLE *ret, struct error *e)
{
	CK_FUNCTION_LIST *f = t->mod->f;
	CK_SESSION_HANDLE h;
	CK_RV rv;
	int r;

	if (!t->have_slot) {
		r = slot_find(t, e);
		if (r < 0)
			return r;
	}
	/* Read-only: keyd never writes token objects (key-wrap's temporary keys are session
	 * objects, which a read-only session may create). */
	rv = f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
	if (rv != CKR_OK) {
		if (p11_rv_info(rv)->drop)
			drop_all(t);
		return p11_fail(e, rv, NULL, "%s: C_OpenSession", t->name);
	}
	r = login(t, h, e);
	if (r < 0) {
		f->C_CloseSession(h);
		return r;
	}
	*ret = h;
	return 0;
}

int p11_token_session(struct p11_token *t, struct p11_session *s, struct error *e)
{
	int r = 0;

	pthread_mutex_lock(&t->lock);
	while (!t->n_idle && t->n_open >= P11_SESSIONS_MAX)
		pthread_cond_wait(&t->freed, &t->lock);
	*s = (struct p11_session){.f = t->mod->f, .epoch = t->epoch, .slot = t->slot};
	if (t->n_idle) {
		s->h = t->idle[--t->n_idle];
	} else {
		r = session_open(t, &s->h, e);
		if (r >= 0) {
			t->n_open++;
			s->fresh = true;
			s->epoch = t->epoch;
			s->slot = t->slot;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void p11_token_release(struct p11_token *t, struct p11_session *s, CK_RV rv)
{
	pthread_mutex_lock(&t->lock);
	if (s->epoch != t->epoch) {
		t->mod->f->C_CloseSession(s->h); /* from before a drop_all */
	} else if (p11_rv_info(rv)->drop && rv != CKR_OK) {
		t->mod->f->C_CloseSession(s->h);
		drop_all(t);
	} else {
		t->idle[t->n_idle++] = s->h;
		pthread_cond_signal(&t->freed);
	}
	pthread_mutex_unlock(&t->lock);
	*s = (struct p11_session){0};
}

int p11_token_check_login(struct p11_token *t, struct p11_session *s, CK_RV *rv, struct error *e)
{
	CK_SESSION_INFO si;

	*rv = s->f->C_GetSessionInfo(s->h, &si);
	if (*rv != CKR_OK)
		return p11_fail(e, *rv, NULL, "%s: C_GetSessionInfo", t->name);
	if (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS)
		return 0;
	*rv = CKR_USER_NOT_LOGGED_IN;
	return p11_fail(e, *rv, NULL, "%s: the session is not logged in", t->name);
}

void p11_token_done(struct p11_token *t)
{
	if (t->mod) {
		for (size_t i = 0; i < t->n_idle; i++)
			t->mod->f->C_CloseSession(t->idle[i]);
		p11_module_put(t->mod);
	}
	t->mod = NULL;
	t->n_idle = t->n_open = 0;
	pthread_cond_destroy(&t->freed);
	pthread_mutex_destroy(&t->lock);
}
