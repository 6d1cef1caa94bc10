/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The `keyd` LUKS2 token: the wrapped DEK and where it came from, stored in the header so a
 * disk describes itself. Reads are schema-checked; never holds key material or credentials. */
#pragma once

#include <libcryptsetup.h>

#include "jsonx.h"

#define TOKEN_TYPE	     "keyd"
#define TOKEN_JSON_MAX	     (16 * 1024)
#define TOKEN_FORMAT_VERSION 1
#define TOKENS_MAX	     32 /* LUKS2 tokens per header */

/* Enrollment and re-key write a token before its keyslot exists (state pending, no keyslot),
 * then make it active with its keyslot in one header write: a crash at any instant leaves a
 * state that token_converge() finishes or rolls back. */
enum token_state {
	TOKEN_ACTIVE,
	TOKEN_PENDING,
};

struct keyd_token {
	int id;	     /* LUKS2 token number */
	int keyslot; /* the keyslot whose passphrase is the DEK; -1 if none (see token_parse) */
	enum token_state state;
	unsigned generation; /* +1 at every re-key: the highest active one unlocks */
	char *name;	     /* volume name at enrollment */
	char *provider;
	char *kms;
	char *key_id;
	char *key_version; /* may be NULL */
	char *wdek;
	char *aad;
	char *created; /* RFC 3339 */
	char *updated;
};

/* Parses and checks a token's JSON (from a header, or a fuzzer). Errors as token_read. */
int token_from_json(const char *json, int id, struct keyd_token *t, struct error *e);
/* Reads and checks token @id. -ENOENT if absent, -EMEDIUMTYPE if not a keyd token,
 * -EINVAL (e names the field) if malformed. */
int token_read(struct crypt_device *cd, int id, struct keyd_token *t, struct error *e);
/* Every keyd token of the header into @out (TOKENS_MAX entries); returns how many. */
int token_list(struct crypt_device *cd, struct keyd_token *out, struct error *e);
void token_list_done(struct keyd_token *l, int n);
/* The token to unlock with: the active keyd token with a keyslot and the highest generation, in *t (id -1 if
 * there is none). Returns how many keyd tokens the header has, of any state. */
int token_find(struct crypt_device *cd, struct keyd_token *t, struct error *e);
/* Deep copy. */
int token_dup(const struct keyd_token *src, struct keyd_token *dst);
/* Writes @t as token t->id (CRYPT_ANY_TOKEN for a new one); returns the token id. */
int token_write(struct crypt_device *cd, const struct keyd_token *t);
void token_done(struct keyd_token *t);
