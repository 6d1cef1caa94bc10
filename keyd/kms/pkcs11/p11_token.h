/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One PKCS#11 token as a KMS sees it: the slot whose token has the configured label and/or
 * serial, a small pool of sessions shared by keyd's threads, and the user login (the PIN is
 * read from pin_file into secure memory for C_Login and wiped at once; never kept, never in a
 * message). Never logs. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "kms.h"
#include "p11_module.h"
#include "p11_pkcs11.h"

#define P11_SESSIONS_MAX   4   /* per KMS entry; more threads wait for one */
#define P11_SLOTS_MAX	   256 /* slots with a token that keyd looks at */
#define P11_PIN_MAX	   256
#define P11_TOKEN_NAME_MAX 128

struct p11_token {
	struct p11_module *mod;
	const char *label;    /* CK_TOKEN_INFO.label to match, or NULL */
	const char *serial;   /* CK_TOKEN_INFO.serialNumber to match, or NULL */
	const char *pin_file; /* a credential: root 0600 file or $CREDENTIALS_DIRECTORY name */
	char name[P11_TOKEN_NAME_MAX]; /* "PKCS#11 token 'keyd-test'", for messages */

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t freed;
	bool have_slot;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE idle[P11_SESSIONS_MAX];
	size_t n_idle, n_open;
	unsigned epoch; /* bumped whenever every session is dropped */
	/* The pin_file whose PIN the token refused: never offered again until it changes, so
	 * polling cannot count down the token's retry counter and lock the PIN. */
	bool refused;
	struct p11_pin_stamp {
		dev_t dev;
		ino_t ino;
		off_t size;
		struct timespec mtime, ctime;
	} refused_stamp;
	char refused_at[40]; /* RFC 3339 */
};

/* A session lent to one thread for one operation. */
struct p11_session {
	CK_SESSION_HANDLE h;
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	unsigned epoch;
	bool fresh; /* opened for this call: a failure on it is not a stale session's */
};

/* The strings stay the caller's and must outlive the token. */
void p11_token_init(struct p11_token *t, const char *label, const char *serial,
		    const char *pin_file);
/* Loads the module (see p11_module_get). */
int p11_token_open(struct p11_token *t, const char *module_path, struct error *e);
/* Lends a logged-in session: an idle one, or a new one (finding the token and logging in if
 * needed). -ENODEV (token absent: retryable), -ENOTUNIQ, -EACCES (PIN), -EPERM (pin_file),
 * and what p11_fail maps. */
int p11_token_session(struct p11_token *t, struct p11_session *s, struct error *e);
/* Gives the session back. @rv is the last CK_RV the call saw: one that means the sessions or
 * the token are gone closes them all, so the next call starts afresh. */
void p11_token_release(struct p11_token *t, struct p11_session *s, CK_RV rv);
/* -EACCES with the CKR_USER_NOT_LOGGED_IN class unless the session is logged in as user; so
 * that a key object missing from a search means missing, not invisible. */
int p11_token_check_login(struct p11_token *t, struct p11_session *s, CK_RV *rv, struct error *e);
void p11_token_done(struct p11_token *t);
