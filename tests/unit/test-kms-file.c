// SPDX-License-Identifier: GPL-2.0-or-later
/* The file provider: wrap/unwrap round trip, and the bindings that make a WDEK useless
 * elsewhere (another volume's AAD, another key id, another root key, a flipped bit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms.h"
#include "secmem.h"

static char dir[] = "/tmp/test-kms-file.XXXXXX";
static char keypath[64];

static struct kms *make_kms(const char *path)
{
	struct kms *k = calloc(1, sizeof(*k));
	json_t *o = json_pack("{s:s, s:s}", "provider", "file", "root_key_file", path);
	struct error e;

	k->name = strdup("local");
	k->provider = kms_provider_find("file");
	k->retry = (struct kms_retry){1000, 10, 100, 1000};
	assert_int_equal(k->provider->parse(k, o, "kms.local", &e), 0);
	json_decref(o);
	return k;
}

static void write_key(const char *path, mode_t mode, size_t len)
{
	FILE *f = fopen(path, "w");
	uint8_t key[64];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + strlen(path)); /* differs per file name length */
	fwrite(key, 1, len, f);
	fclose(f);
	chmod(path, mode);
}

static int unwrap(struct kms *k, const char *key_id, const char *wdek, const char *aad,
		  uint8_t **dek, size_t *n, struct error *e)
{
	return kms_unwrap(k, key_id, wdek, aad, dek, n, NULL, e, NULL, NULL, NULL);
}

static void test_round_trip_and_bindings(void **state)
{
	struct kms *k = make_kms(keypath), *other;
	uint8_t dek[32], *out = NULL;
	struct kms_wrapped w = {0};
	struct error e;
	size_t n = 0;
	char *flipped, otherpath[80];

	(void)state;
	memset(dek, 0xa5, sizeof(dek));
	assert_int_equal(
		kms_wrap(k, "key-1", dek, sizeof(dek), "keyd:v1:uuid-a", &w, &e, NULL, NULL, NULL),
		0);
	assert_non_null(strstr(w.wdek, "file:v1:"));
	assert_int_equal(unwrap(k, "key-1", w.wdek, "keyd:v1:uuid-a", &out, &n, &e), 0);
	assert_int_equal(n, 32);
	assert_memory_equal(out, dek, 32);
	secmem_free(out);

	/* Another volume, another key id: nothing opens, and the message says why. */
	assert_int_equal(unwrap(k, "key-1", w.wdek, "keyd:v1:uuid-b", &out, &n, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "another volume"));
	assert_false(e.retryable);
	assert_int_equal(unwrap(k, "key-2", w.wdek, "keyd:v1:uuid-a", &out, &n, &e), -EBADMSG);

	flipped = strdup(w.wdek);
	flipped[20] = flipped[20] == 'A' ? 'B' : 'A';
	assert_int_equal(unwrap(k, "key-1", flipped, "keyd:v1:uuid-a", &out, &n, &e), -EBADMSG);
	assert_int_equal(unwrap(k, "key-1", "file:v1:@@@", "keyd:v1:uuid-a", &out, &n, &e),
			 -EBADMSG);
	assert_int_equal(unwrap(k, "key-1", "vault:v1:abc", "keyd:v1:uuid-a", &out, &n, &e),
			 -EBADMSG);
	free(flipped);

	snprintf(otherpath, sizeof(otherpath), "%s/other-root.key", dir);
	write_key(otherpath, 0600, 32);
	other = make_kms(otherpath);
	assert_int_equal(unwrap(other, "key-1", w.wdek, "keyd:v1:uuid-a", &out, &n, &e), -EBADMSG);
	kms_free(other);
	kms_wrapped_done(&w);
	kms_free(k);
}

static void test_root_key_file_checks(void **state)
{
	char path[80];
	struct kms *k;
	struct kms_wrapped w = {0};
	struct error e;
	uint8_t dek[32] = {0};

	(void)state;
	snprintf(path, sizeof(path), "%s/loose.key", dir);
	write_key(path, 0644, 32);
	k = make_kms(path);
	assert_int_equal(kms_wrap(k, "k", dek, 32, "a", &w, &e, NULL, NULL, NULL), -EPERM);
	assert_non_null(strstr(e.msg, "mode 0600"));
	kms_free(k);

	snprintf(path, sizeof(path), "%s/short.key", dir);
	write_key(path, 0600, 16);
	k = make_kms(path);
	assert_int_equal(kms_wrap(k, "k", dek, 32, "a", &w, &e, NULL, NULL, NULL), -EINVAL);
	assert_non_null(strstr(e.msg, "holds 16 bytes, expected 32"));
	kms_free(k);
}

/* Rewrap: same root key, a new nonce, the same DEK; key_info follows the root key file. */
static void test_rewrap_and_key_info(void **state)
{
	char path[80];
	struct kms *k;
	struct kms_wrapped w = {0}, w2 = {0};
	struct kms_key_info info;
	struct error e;
	uint8_t dek[32], *out = NULL;
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/rewrap.key", dir);
	write_key(path, 0600, 32);
	k = make_kms(path);
	memset(dek, 0x5c, sizeof(dek));
	assert_int_equal(kms_wrap(k, "key-1", dek, 32, "keyd:v1:uuid-a", &w, &e, NULL, NULL, NULL),
			 0);
	assert_int_equal(
		kms_rewrap(k, "key-1", w.wdek, "keyd:v1:uuid-a", &w2, &e, NULL, NULL, NULL), 0);
	assert_string_not_equal(w.wdek, w2.wdek);
	assert_null(w2.key_version);
	assert_int_equal(unwrap(k, "key-1", w2.wdek, "keyd:v1:uuid-a", &out, &n, &e), 0);
	assert_memory_equal(out, dek, 32);
	secmem_free(out);
	/* The old WDEK keeps working; a rewrap for another volume does not. */
	assert_int_equal(unwrap(k, "key-1", w.wdek, "keyd:v1:uuid-a", &out, &n, &e), 0);
	secmem_free(out);
	kms_wrapped_done(&w2);
	assert_int_equal(
		kms_rewrap(k, "key-1", w.wdek, "keyd:v1:uuid-b", &w2, &e, NULL, NULL, NULL),
		-EBADMSG);

	assert_int_equal(kms_key_info(k, "key-1", &info, &e), 0);
	assert_int_equal(info.state, KMS_KEY_ACTIVE);
	assert_string_equal(info.version, "");
	write_key(path, 0600, 16);
	assert_int_equal(kms_key_info(k, "key-1", &info, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "holds 16 bytes, expected 32"));
	unlink(path);
	assert_int_equal(kms_key_info(k, "key-1", &info, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "cannot read root key file"));
	/* Another key of the right size: WDEKs would not open, and the message says why. */
	write_key(path, 0600, 32);
	{
		FILE *f = fopen(path, "r+");

		fputc('X', f);
		fclose(f);
	}
	assert_int_equal(kms_key_info(k, "key-1", &info, &e), -EKEYREJECTED);
	assert_non_null(strstr(e.msg, "another key than the one keyd loaded"));
	unlink(path);
	kms_wrapped_done(&w);
	kms_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_bindings),
		cmocka_unit_test(test_root_key_file_checks),
		cmocka_unit_test(test_rewrap_and_key_info),
	};
	int r;

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	snprintf(keypath, sizeof(keypath), "%s/root.key", dir);
	write_key(keypath, 0600, 32);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(keypath);
	snprintf(keypath, sizeof(keypath), "%s/loose.key", dir);
	unlink(keypath);
	snprintf(keypath, sizeof(keypath), "%s/short.key", dir);
	unlink(keypath);
	snprintf(keypath, sizeof(keypath), "%s/other-root.key", dir);
	unlink(keypath);
	rmdir(dir);
	return r;
}
