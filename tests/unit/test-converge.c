// SPDX-License-Identifier: GPL-2.0-or-later
/* token_converge() on real LUKS2 headers in temp files, with the file provider unwrapping:
 * every state an interrupted enrollment or re-key can leave (a pending token with or without
 * its keyslot, two active generations, an active token whose keyslot is gone) ends as one
 * active token with its keyslot, and the report says what was finished or rolled back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "luks.h"
#include "secmem.h"
#include "temp-luks.h"
#include "token.h"

static char dir[] = "/tmp/test-converge.XXXXXX";
static char keypath[80];
static struct kms *kms;

static struct kms *make_kms(const char *name, const char *path)
{
	struct kms *k = calloc(1, sizeof(*k));
	json_t *o = json_pack("{s:s, s:s}", "provider", "file", "root_key_file", path);
	struct error e;

	k->name = strdup(name);
	k->provider = kms_provider_find("file");
	k->retry = (struct kms_retry){1000, 10, 100, 1000};
	assert_int_equal(k->provider->parse(k, o, "kms.local", &e), 0);
	json_decref(o);
	return k;
}

/* A freshly formatted LUKS2 header in a temp file; @cd keeps the volume key for new keyslots. */
static struct crypt_device *temp_header(const char *name)
{
	char path[128];

	return temp_luks_header(dir, name, path, sizeof(path));
}

/* One enrollment's material: a DEK, its WDEK bound to this header, maybe its keyslot. */
struct enrolled {
	uint8_t dek[LUKS_DEK_LEN];
	struct kms_wrapped w;
	int keyslot;
};

static void make_dek(struct crypt_device *cd, bool with_keyslot, struct enrolled *x)
{
	char aad[KMS_AAD_MAX];
	struct error e;

	assert_int_equal(RAND_bytes(x->dek, sizeof(x->dek)), 1);
	assert_int_equal(kms_aad_for_uuid(crypt_get_uuid(cd), aad, sizeof(aad)), 0);
	x->w = (struct kms_wrapped){0};
	if (kms_wrap(kms, "key-1", x->dek, sizeof(x->dek), aad, &x->w, &e, NULL, NULL, NULL) < 0)
		fail_msg("wrap: %s", e.msg);
	x->keyslot = with_keyslot
			     ? crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0,
							       (const char *)x->dek, sizeof(x->dek))
			     : -1;
	if (with_keyslot)
		assert_true(x->keyslot >= 0);
}

/* Writes a token for @x; @keyslot is what the token names (-1: none). Returns its id. */
static int write_token(struct crypt_device *cd, const struct enrolled *x, const char *kms_name,
		       enum token_state state, unsigned generation, int keyslot)
{
	struct keyd_token t = {.id = CRYPT_ANY_TOKEN,
			       .keyslot = keyslot,
			       .state = state,
			       .generation = generation,
			       .name = "pgdata",
			       .provider = "file",
			       .kms = (char *)kms_name,
			       .key_id = "key-1",
			       .wdek = x->w.wdek,
			       .aad = "keyd:v1:for-people-only",
			       .created = "2026-01-01T00:00:00Z"};
	int id = token_write(cd, &t);

	assert_true(id >= 0);
	return id;
}

static int converge(struct crypt_device *cd, struct token_changes *ch)
{
	struct error e = {.msg = ""};
	int r = token_converge(cd, &(struct kms_key){.kms = kms}, 1, ch, &e);

	if (r < 0)
		fail_msg("token_converge: %d: %s", r, e.msg);
	return r;
}

/* The header holds exactly the keyd tokens @ids (in that order), and @want is the one found. */
static void expect_tokens(struct crypt_device *cd, int n, const int *ids, int want_id,
			  int want_slot)
{
	struct keyd_token all[TOKENS_MAX], best;
	struct error e;
	int got = token_list(cd, all, &e);

	if (got != n)
		fail_msg("expected %d keyd tokens, found %d", n, got);
	for (int i = 0; i < n; i++)
		if (all[i].id != ids[i])
			fail_msg("token %d: expected id %d, found %d", i, ids[i], all[i].id);
	token_list_done(all, got);
	assert_int_equal(token_find(cd, &best, &e), n);
	if (best.id != want_id || best.keyslot != want_slot)
		fail_msg("expected token %d on keyslot %d to unlock, found %d on %d", want_id,
			 want_slot, best.id, best.keyslot);
	assert_int_equal(best.state, TOKEN_ACTIVE);
	token_done(&best);
}

static bool keyslot_active(struct crypt_device *cd, int slot)
{
	crypt_keyslot_info st = crypt_keyslot_status(cd, slot);

	return st == CRYPT_SLOT_ACTIVE || st == CRYPT_SLOT_ACTIVE_LAST;
}

static void test_clean_header_is_left_alone(void **state)
{
	struct crypt_device *cd = temp_header("clean");
	struct token_changes ch = {.n = 99};
	struct enrolled a;
	int id;

	(void)state;
	make_dek(cd, true, &a);
	id = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	assert_int_equal(converge(cd, &ch), 0);
	assert_int_equal(ch.n, 0);
	expect_tokens(cd, 1, &id, id, a.keyslot);
	kms_wrapped_done(&a.w);
	crypt_free(cd);
}

/* Killed after the keyslot was added and the token names it, before the token went active. */
static void test_pending_with_keyslot_is_finished(void **state)
{
	struct crypt_device *cd = temp_header("pending-slot");
	struct token_changes ch;
	struct enrolled a;
	char what[128];
	int id;

	(void)state;
	make_dek(cd, true, &a);
	id = write_token(cd, &a, "local", TOKEN_PENDING, 1, a.keyslot);
	assert_int_equal(converge(cd, &ch), 1);
	assert_int_equal(ch.n, 1);
	assert_int_equal(ch.c[0].kind, TOKEN_FINISHED);
	assert_int_equal(ch.c[0].token, id);
	assert_int_equal(ch.c[0].keyslot, a.keyslot);
	token_change_describe(&ch.c[0], what, sizeof(what));
	assert_non_null(strstr(what, "finishing token"));
	expect_tokens(cd, 1, &id, id, a.keyslot);
	kms_wrapped_done(&a.w);
	crypt_free(cd);
}

/* Killed after the keyslot was written but before the token was rewritten to name it: the
 * keyslot is found by the DEK the token's WDEK unwraps to. */
static void test_pending_finds_its_keyslot(void **state)
{
	struct crypt_device *cd = temp_header("pending-find");
	struct token_changes ch;
	struct enrolled a, b;
	int ids[2];

	(void)state;
	make_dek(cd, true, &a);
	ids[0] = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	make_dek(cd, true, &b); /* re-key: the new keyslot exists, the token does not name it */
	ids[1] = write_token(cd, &b, "local", TOKEN_PENDING, 2, -1);
	/* Finishing the new token supersedes the old one, which goes: two header changes. */
	assert_int_equal(converge(cd, &ch), 2);
	assert_int_equal(ch.n, 1);
	assert_int_equal(ch.c[0].kind, TOKEN_FINISHED);
	assert_int_equal(ch.c[0].keyslot, b.keyslot);
	expect_tokens(cd, 1, &ids[1], ids[1], b.keyslot);
	assert_false(keyslot_active(cd, a.keyslot));
	assert_true(keyslot_active(cd, b.keyslot));
	kms_wrapped_done(&a.w);
	kms_wrapped_done(&b.w);
	crypt_free(cd);
}

/* Killed after the pending token, before its keyslot: rolled back, the old token stays. */
static void test_pending_without_keyslot_is_rolled_back(void **state)
{
	struct crypt_device *cd = temp_header("pending-none");
	struct token_changes ch;
	struct enrolled a, b;
	char what[128];
	int old, pending;

	(void)state;
	make_dek(cd, true, &a);
	old = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	make_dek(cd, false, &b);
	pending = write_token(cd, &b, "local", TOKEN_PENDING, 2, -1);
	assert_int_equal(converge(cd, &ch), 1);
	assert_int_equal(ch.n, 1);
	assert_int_equal(ch.c[0].kind, TOKEN_ROLLED_BACK);
	assert_int_equal(ch.c[0].token, pending);
	token_change_describe(&ch.c[0], what, sizeof(what));
	assert_non_null(strstr(what, "removing token"));
	expect_tokens(cd, 1, &old, old, a.keyslot);
	assert_true(keyslot_active(cd, a.keyslot));
	kms_wrapped_done(&a.w);
	kms_wrapped_done(&b.w);
	crypt_free(cd);
}

/* A keyslot another token claims is never taken over by a pending token. */
static void test_pending_never_takes_a_claimed_keyslot(void **state)
{
	struct crypt_device *cd = temp_header("pending-claimed");
	struct token_changes ch;
	struct enrolled a;
	int old;

	(void)state;
	make_dek(cd, true, &a);
	old = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	/* A copy of the same WDEK as a pending token: its DEK opens only the claimed keyslot. */
	write_token(cd, &a, "local", TOKEN_PENDING, 2, -1);
	assert_int_equal(converge(cd, &ch), 1);
	assert_int_equal(ch.n, 1);
	assert_int_equal(ch.c[0].kind, TOKEN_ROLLED_BACK);
	expect_tokens(cd, 1, &old, old, a.keyslot);
	kms_wrapped_done(&a.w);
	crypt_free(cd);
}

/* A pending token of another KMS cannot be decided here, and nothing is changed. */
static void test_pending_of_another_kms_is_refused(void **state)
{
	struct crypt_device *cd = temp_header("pending-other");
	struct token_changes ch;
	struct enrolled a, b;
	struct error e = {.msg = ""};
	int ids[2];

	(void)state;
	make_dek(cd, true, &a);
	ids[0] = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	make_dek(cd, false, &b);
	ids[1] = write_token(cd, &b, "elsewhere", TOKEN_PENDING, 2, -1);
	assert_int_equal(token_converge(cd, &(struct kms_key){.kms = kms}, 1, &ch, &e), -ENOKEY);
	if (!strstr(e.msg, "for KMS 'elsewhere'; it needs that KMS to finish"))
		fail_msg("unexpected message: \"%s\"", e.msg);
	assert_int_equal(token_converge(cd, NULL, 0, &ch, &e), -ENOKEY);
	expect_tokens(cd, 2, ids, ids[0], a.keyslot);
	kms_wrapped_done(&a.w);
	kms_wrapped_done(&b.w);
	crypt_free(cd);
}

/* Killed after the new token went active, before the old one went: the older generation goes,
 * keyslot first; that is routine, so the report tells nothing. */
static void test_two_active_generations(void **state)
{
	struct crypt_device *cd = temp_header("two-active");
	struct token_changes ch;
	struct enrolled a, b;
	int old, new;

	(void)state;
	make_dek(cd, true, &a);
	make_dek(cd, true, &b);
	/* The newer generation written first, so that order in the header decides nothing. */
	new = write_token(cd, &b, "local", TOKEN_ACTIVE, 5, b.keyslot);
	old = write_token(cd, &a, "local", TOKEN_ACTIVE, 4, a.keyslot);
	assert_true(old != new);
	assert_int_equal(converge(cd, &ch), 1);
	assert_int_equal(ch.n, 0);
	expect_tokens(cd, 1, &new, new, b.keyslot);
	assert_false(keyslot_active(cd, a.keyslot));
	assert_true(keyslot_active(cd, b.keyslot));
	assert_int_equal(converge(cd, &ch), 0); /* converged stays converged */
	kms_wrapped_done(&a.w);
	kms_wrapped_done(&b.w);
	crypt_free(cd);
}

/* Killed after the old keyslot was destroyed (which unassigns it from its token), before the
 * old token went: an active token without keyslot goes, whatever its generation. */
static void test_keyslotless_active_tokens_go(void **state)
{
	struct crypt_device *cd = temp_header("keyslotless");
	struct token_changes ch;
	struct enrolled a, b;
	int good;

	(void)state;
	make_dek(cd, true, &a);
	make_dek(cd, false, &b);
	good = write_token(cd, &a, "local", TOKEN_ACTIVE, 1, a.keyslot);
	write_token(cd, &b, "local", TOKEN_ACTIVE, 9, -1);
	assert_int_equal(converge(cd, &ch), 1);
	assert_int_equal(ch.n, 0);
	expect_tokens(cd, 1, &good, good, a.keyslot);
	assert_true(keyslot_active(cd, a.keyslot));
	kms_wrapped_done(&a.w);
	kms_wrapped_done(&b.w);
	crypt_free(cd);
}

/* The one unwrap: bound to the header's UUID, never to the token's "aad". */
static void test_unwrap_is_bound_to_the_header(void **state)
{
	struct crypt_device *cd = temp_header("unwrap"), *other = temp_header("unwrap-other");
	struct keyd_token t = {.kms = "local", .key_id = "key-1"};
	struct enrolled a;
	struct error e;
	uint8_t *dek = NULL;

	(void)state;
	make_dek(cd, false, &a);
	t.wdek = a.w.wdek;
	t.aad = "keyd:v1:not-this";
	assert_int_equal(
		token_unwrap(kms, &t, crypt_get_uuid(cd), &dek, NULL, NULL, NULL, NULL, &e), 0);
	assert_memory_equal(dek, a.dek, LUKS_DEK_LEN);
	secmem_free(dek);
	/* The same token on another header opens nothing, and says which KMS and key refused. */
	assert_int_equal(
		token_unwrap(kms, &t, crypt_get_uuid(other), &dek, NULL, NULL, NULL, NULL, &e),
		-EBADMSG);
	assert_null(dek);
	if (!strstr(e.msg, "unwrap with KMS 'local' (key key-1): "))
		fail_msg("unexpected message: \"%s\"", e.msg);
	kms_wrapped_done(&a.w);
	crypt_free(cd);
	crypt_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_header_is_left_alone),
		cmocka_unit_test(test_pending_with_keyslot_is_finished),
		cmocka_unit_test(test_pending_finds_its_keyslot),
		cmocka_unit_test(test_pending_without_keyslot_is_rolled_back),
		cmocka_unit_test(test_pending_never_takes_a_claimed_keyslot),
		cmocka_unit_test(test_pending_of_another_kms_is_refused),
		cmocka_unit_test(test_two_active_generations),
		cmocka_unit_test(test_keyslotless_active_tokens_go),
		cmocka_unit_test(test_unwrap_is_bound_to_the_header),
	};
	uint8_t key[32];
	char cmd[64];
	FILE *f;
	int r;

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	cryptsetup_setup();
	snprintf(keypath, sizeof(keypath), "%s/root.key", dir);
	f = fopen(keypath, "w");
	if (!f || RAND_bytes(key, sizeof(key)) != 1 || fwrite(key, 1, sizeof(key), f) != 32)
		return 1;
	fclose(f);
	chmod(keypath, 0600);
	kms = make_kms("local", keypath);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	kms_free(kms);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
