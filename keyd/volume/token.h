/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The `keyd` LUKS2 token: the wrapped DEK and where it came from, stored in the header so a
 * disk describes itself. Reads are schema-checked, unwraps bound to the header's UUID, and an
 * interrupted enrollment or re-key converges here. Never logs; holds a DEK only for the caller. */
#pragma once

#include <libcryptsetup.h>
#include <stdint.h>

#include "jsonx.h"
#include "kms.h"

#define TOKEN_TYPE	     "keyd"
#define TOKEN_JSON_MAX	     (16 * 1024)
#define TOKEN_FORMAT_VERSION 1		  /* one KMS: the wrap's fields at the top level */
#define TOKEN_FORMAT_MULTI   2		  /* several KMS: "wraps", an array of them */
#define TOKENS_MAX	     32		  /* LUKS2 tokens per header */
#define TOKEN_WRAPS_MAX	     KMS_KEYS_MAX /* KMS per volume */

/* Enrollment and re-key write a token before its keyslot exists (state pending, no keyslot),
 * then make it active with its keyslot in one header write: a crash at any instant leaves a
 * state that token_converge() finishes or rolls back. */
/* What a header with keyd tokens but none to unlock with is: said the same way everywhere. */
#define TOKEN_UNFINISHED                                                                           \
	"only an unfinished keyd token (state pending, or no keyslot: an enrollment or re-key "    \
	"was interrupted; keyd finishes or rolls it back before it unlocks a volume configured "   \
	"for the device)"

enum token_state {
	TOKEN_ACTIVE,
	TOKEN_PENDING,
};

/* The DEK wrapped by one KMS's root key. */
struct token_wrap {
	char *provider;
	char *kms;
	char *key_id;
	char *key_version; /* may be NULL */
	char *wdek;
};

struct keyd_token {
	int id;	     /* LUKS2 token number */
	int keyslot; /* the keyslot whose passphrase is the DEK; -1 if none (see token_parse) */
	enum token_state state;
	unsigned generation; /* +1 at every re-key: the highest active one unlocks */
	char *name;	     /* volume name at enrollment */
	/* One wrap per KMS, any of which unwraps the same DEK (any-of). provider .. wdek name
	 * wrap[0]: the only one of a single-KMS token, and the first-listed KMS of others. */
	union {
		struct token_wrap wrap[TOKEN_WRAPS_MAX];
		struct {
			char *provider;
			char *kms;
			char *key_id;
			char *key_version;
			char *wdek;
		};
	};
	unsigned n_wraps; /* >= 1 in a token read or written */
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
/* Removes token @t from the header, its keyslot first (unless @keep_keyslot, or it is gone
 * already): the order token_converge repairs after a crash in between. */
int token_remove(struct crypt_device *cd, const struct keyd_token *t, bool keep_keyslot,
		 struct error *err);
/* The token to unlock with: the active keyd token with a keyslot and the highest generation, in *t (id -1 if
 * there is none). Returns how many keyd tokens the header has, of any state. */
int token_find(struct crypt_device *cd, struct keyd_token *t, struct error *e);
/* Deep copy. */
int token_dup(const struct keyd_token *src, struct keyd_token *dst);
/* Writes @t as token t->id (CRYPT_ANY_TOKEN for a new one); returns the token id. */
int token_write(struct crypt_device *cd, const struct keyd_token *t);
void token_done(struct keyd_token *t);

/* Sets @t's wraps to one per key of @keys with what its KMS returned in @w (@n_keys of each):
 * pointers borrowed, for a token about to be written (never token_done it). */
void token_set_wraps(struct keyd_token *t, const struct kms_key *keys, size_t n_keys,
		     const struct kms_wrapped *w);
/* The index of @t's wrap for the KMS named @kms, or -1. */
int token_wrap_index(const struct keyd_token *t, const char *kms);

/* Unwraps @t's WDEK of KMS @kms (-EXDEV if the token has none for it), bound to the header UUID @uuid: the AAD is recomputed from it,
 * never taken from the token's "aad", so a token copied onto another volume opens nothing.
 * *ret_dek (LUKS_DEK_LEN bytes) is secure memory for the caller to free. @rewrapped (may be
 * NULL), @wait, @userdata and @stop as for kms_unwrap. -EBADMSG if the KMS returns a key of
 * another length; the KMS's -errno otherwise; @e names the KMS and the key. */
int token_unwrap(struct kms *kms, const struct keyd_token *t, const char *uuid, uint8_t **ret_dek,
		 struct kms_wrapped *rewrapped, kms_wait_fn wait, void *userdata,
		 const volatile bool *stop, struct error *e);

/* What convergence did that an operator is told of (removing a superseded token is routine). */
enum token_change_kind {
	TOKEN_FINISHED,	   /* a pending token whose keyslot exists, made active */
	TOKEN_ROLLED_BACK, /* a pending token whose keyslot was never written, removed */
};
struct token_change {
	enum token_change_kind kind;
	int token;
	int keyslot; /* TOKEN_FINISHED: the keyslot it now names */
};
struct token_changes {
	int n;
	struct token_change c[TOKENS_MAX];
};
/* "finishing token 3 (keyslot 1), an interrupted enrollment or re-key": for the caller's log. */
const char *token_change_describe(const struct token_change *c, char *buf, size_t size);

/* Finishes or rolls back an interrupted enrollment or re-key on the open header @cd: pending
 * tokens get their keyslot (found by trying the unwrapped DEK on keyslots no token claims) and
 * become active, or are removed; of several active tokens the highest generation with a keyslot
 * stays and the others go, keyslot first. Needs one of the @n_keys KMS of @keys only when a
 * pending token has no keyslot yet (tried in order until one unwraps). Returns the number of
 * header changes made and, in @changes (may be NULL), the ones to tell the operator about.
 * -ENOKEY if a pending token needs a KMS none of @keys is. */
int token_converge(struct crypt_device *cd, const struct kms_key *keys, size_t n_keys,
		   struct token_changes *changes, struct error *err);
