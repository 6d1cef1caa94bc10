// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's own keyslot opening (keyslot.c) against libcryptsetup's on real LUKS2 headers in temp
 * files: the same volume key from every keyslot of keyd's kind (both hashes, so a key longer
 * than the digest too), -ENOTSUP for any other kind, and luks_activate's answer unchanged
 * whichever opened the keyslot: the keyslot number for the right passphrase, -EPERM for a
 * wrong one, and a keyslot keyd cannot open still opened (by libcryptsetup); re-key's new
 * keyslot added from the old one's key only under the right DEK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cryptsetup_util.h"
#include "keyslot.h"
#include "luks.h"
#include "secmem.h"
#include "temp-luks.h"

static char dir[] = "/tmp/test-keyslot.XXXXXX";

/* A keyslot under a random @pass added to @cd with @pbkdf (NULL: keyd's); returns its number. */
static int add_keyslot(struct crypt_device *cd, const struct crypt_pbkdf_type *pbkdf,
		       uint8_t pass[LUKS_DEK_LEN])
{
	int slot;

	assert_int_equal(RAND_bytes(pass, LUKS_DEK_LEN), 1);
	if (pbkdf)
		assert_int_equal(crypt_set_pbkdf_type(cd, pbkdf), 0);
	slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)pass,
					       LUKS_DEK_LEN);
	assert_true(slot >= 0);
	return slot;
}

/* keyd's volume key of @slot equals libcryptsetup's. */
static void assert_same_key(struct crypt_device *cd, int slot, const uint8_t *pass)
{
	char want[64];
	size_t want_len = sizeof(want), len = 0;
	uint8_t *vk = NULL;

	assert_int_equal(
		crypt_volume_key_get(cd, slot, want, &want_len, (const char *)pass, LUKS_DEK_LEN),
		slot);
	assert_int_equal(keyslot_volume_key(cd, slot, pass, LUKS_DEK_LEN, &vk, &len), 0);
	assert_int_equal(len, want_len);
	assert_memory_equal(vk, want, len);
	secmem_free(vk);
}

static void test_keyd_keyslot_gives_libcryptsetups_key(void **state)
{
	const struct crypt_pbkdf_type sha256 = {.type = CRYPT_KDF_PBKDF2,
						.hash = "sha256",
						.iterations = LUKS_PBKDF_ITERATIONS,
						.flags = CRYPT_PBKDF_NO_BENCHMARK};
	char path[128];
	struct crypt_device *cd = temp_luks_header(dir, "same", path, sizeof(path));
	uint8_t a[LUKS_DEK_LEN], b[LUKS_DEK_LEN];
	int sa, sb;

	(void)state;
	sa = add_keyslot(cd, NULL, a);
	/* SHA-256 is shorter than the 64-byte key: the diffusion hashes it in two pieces. */
	sb = add_keyslot(cd, &sha256, b);
	assert_same_key(cd, sa, a);
	assert_same_key(cd, sb, b);
	/* A header loaded afresh, as keyd does at unlock. */
	crypt_free(cd);
	assert_int_equal(cryptsetup_load(path, &cd), 0);
	assert_same_key(cd, sa, a);
	assert_same_key(cd, sb, b);
	assert_int_equal(luks_activate(cd, NULL, sa, a, LUKS_DEK_LEN, 0), sa);
	assert_int_equal(luks_activate(cd, NULL, sb, b, LUKS_DEK_LEN, 0), sb);
	crypt_free(cd);
}

static void test_wrong_passphrase_is_refused(void **state)
{
	char path[128];
	struct crypt_device *cd = temp_luks_header(dir, "wrong", path, sizeof(path));
	uint8_t a[LUKS_DEK_LEN], other[LUKS_DEK_LEN];
	char want[64];
	size_t want_len = sizeof(want), len = 0;
	uint8_t *vk = NULL;
	int slot;

	(void)state;
	slot = add_keyslot(cd, NULL, a);
	assert_int_equal(
		crypt_volume_key_get(cd, slot, want, &want_len, (const char *)a, LUKS_DEK_LEN),
		slot);
	memcpy(other, a, sizeof(other));
	other[0] ^= 1;
	/* A candidate, not a verdict: the key differs and the digest check refuses it. */
	assert_int_equal(keyslot_volume_key(cd, slot, other, LUKS_DEK_LEN, &vk, &len), 0);
	assert_true(memcmp(vk, want, len) != 0);
	secmem_free(vk);
	assert_int_equal(luks_activate(cd, NULL, slot, other, LUKS_DEK_LEN, 0), -EPERM);
	crypt_free(cd);
}

/* Re-key's new keyslot: for the volume key the old one holds, and only under the right DEK. */
static void test_keyslot_add_from_a_keyslot(void **state)
{
	char path[128];
	struct crypt_device *cd = temp_luks_header(dir, "add", path, sizeof(path));
	uint8_t a[LUKS_DEK_LEN], b[LUKS_DEK_LEN], wrong[LUKS_DEK_LEN];
	int sa, sb;

	(void)state;
	sa = add_keyslot(cd, NULL, a);
	crypt_free(cd);
	assert_int_equal(cryptsetup_load(path, &cd), 0);
	assert_int_equal(luks_set_keyd_pbkdf(cd), 0);
	assert_int_equal(RAND_bytes(b, sizeof(b)), 1);
	memcpy(wrong, a, sizeof(wrong));
	wrong[5] ^= 0x80;
	assert_int_equal(luks_keyslot_add(cd, sa, wrong, b, LUKS_DEK_LEN), -EPERM);
	sb = luks_keyslot_add(cd, sa, a, b, LUKS_DEK_LEN);
	assert_true(sb >= 0 && sb != sa);
	assert_int_equal(luks_activate(cd, NULL, sb, b, LUKS_DEK_LEN, 0), sb);
	assert_same_key(cd, sb, b);
	crypt_free(cd);
}

static void test_other_kinds_are_left_to_libcryptsetup(void **state)
{
	const struct crypt_pbkdf_type argon = {.type = CRYPT_KDF_ARGON2ID,
					       .hash = "sha256",
					       .iterations = 4,
					       .max_memory_kb = 32,
					       .parallel_threads = 1,
					       .flags = CRYPT_PBKDF_NO_BENCHMARK};
	char path[128];
	struct crypt_device *cd = temp_luks_header(dir, "argon", path, sizeof(path));
	uint8_t a[LUKS_DEK_LEN];
	size_t len = 0;
	uint8_t *vk = NULL;
	int slot;

	(void)state;
	slot = add_keyslot(cd, &argon, a);
	assert_int_equal(keyslot_volume_key(cd, slot, a, LUKS_DEK_LEN, &vk, &len), -ENOTSUP);
	assert_null(vk);
	assert_int_equal(luks_activate(cd, NULL, slot, a, LUKS_DEK_LEN, 0), slot);
	/* No such keyslot: nothing to open. */
	assert_int_equal(keyslot_volume_key(cd, 9, a, LUKS_DEK_LEN, &vk, &len), -EINVAL);
	crypt_free(cd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyd_keyslot_gives_libcryptsetups_key),
		cmocka_unit_test(test_wrong_passphrase_is_refused),
		cmocka_unit_test(test_keyslot_add_from_a_keyslot),
		cmocka_unit_test(test_other_kinds_are_left_to_libcryptsetup),
	};
	return temp_luks_main(dir, tests);
}
