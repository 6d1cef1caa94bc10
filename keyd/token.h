/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The `keyd` LUKS2 token: the wrapped DEK and where it came from, stored in the header so a
 * disk describes itself. Reads are schema-checked; never holds key material or credentials. */
#pragma once

#include <libcryptsetup.h>

#include "jsonx.h"

#define TOKEN_TYPE "keyd"
#define TOKEN_JSON_MAX (16 * 1024)
#define TOKEN_FORMAT_VERSION 1

struct keyd_token {
	int id;      /* LUKS2 token number */
	int keyslot; /* the keyslot whose passphrase is the DEK */
	char *name;  /* volume name at enrollment */
	char *provider;
	char *kms;
	char *key_id;
	char *key_version; /* may be NULL */
	char *wdek;
	char *aad;
	char *created; /* RFC 3339 */
	char *updated;
};

/* Reads and checks token @id. -ENOENT if absent, -EMEDIUMTYPE if not a keyd token,
 * -EINVAL (e names the field) if malformed. */
int token_read(struct crypt_device *cd, int id, struct keyd_token *t, struct jx_error *e);
/* Finds the keyd tokens of the header: count returned, the first one in *t (if any). */
int token_find(struct crypt_device *cd, struct keyd_token *t, struct jx_error *e);
/* Writes @t as token t->id (CRYPT_ANY_TOKEN for a new one); returns the token id. */
int token_write(struct crypt_device *cd, const struct keyd_token *t);
void token_done(struct keyd_token *t);
