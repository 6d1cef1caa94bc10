// SPDX-License-Identifier: GPL-2.0-or-later
/* The node key file (created private, refused when not) and signatures over canonical JSON:
 * what `wipe cert verify` and the audit log's checkpoints rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "secmem.h"
#include "sign.h"

static char dir[] = "/tmp/test-sign.XXXXXX";

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	assert_non_null(k);
	return k;
}

static json_t *new_record(void)
{
	json_t *r = json_pack("{s:s, s:s, s:i, s:{s:s, s:b}}", "device", "/dev/sdx", "method",
			      "crypto", "passes", 1, "verify", "mode", "sample", "ok", 1);

	assert_non_null(r);
	return r;
}

static void test_key_created_private(void **state)
{
	char path[PATH_MAX], fp1[65], fp2[65];
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct stat st;

	(void)state;
	if (geteuid() != 0)
		skip();
	/* The parent directory does not exist yet either. */
	snprintf(path, sizeof(path), "%s/keyd/node.key", dir);
	assert_int_equal(sign_key_load(path, &k1), 0);
	assert_int_equal(stat(path, &st), 0);
	printf("key file mode %o uid %u\n", st.st_mode & 07777, st.st_uid);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	snprintf(path, sizeof(path), "%s/keyd", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* Loaded again, it is the same key. */
	snprintf(path, sizeof(path), "%s/keyd/node.key", dir);
	assert_int_equal(sign_key_load(path, &k2), 0);
	assert_int_equal(sign_key_fingerprint(k1, fp1), 0);
	assert_int_equal(sign_key_fingerprint(k2, fp2), 0);
	assert_string_equal(fp1, fp2);
	assert_int_equal(strlen(fp1), 64);
	assert_int_equal(strspn(fp1, "0123456789abcdef"), 64);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void test_key_group_readable_refused(void **state)
{
	char path[PATH_MAX];
	EVP_PKEY *k = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(path, sizeof(path), "%s/loose.key", dir);
	assert_int_equal(sign_key_load(path, &k), 0);
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sign_key_load(path, &k), -EPERM);
	assert_null(k);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(sign_key_load(path, &k), -EPERM);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(sign_key_load(path, &k), 0);
	EVP_PKEY_free(k);
}

static void test_key_not_ed25519_refused(void **state)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *k = NULL;
	char path[PATH_MAX];
	FILE *f;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(ec);
	snprintf(path, sizeof(path), "%s/ec.key", dir);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	assert_true(PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	EVP_PKEY_free(ec);
	assert_int_equal(sign_key_load(path, &k), -EBADMSG);
	assert_null(k);
}

static void test_round_trip(void **state)
{
	EVP_PKEY *key = new_key();
	json_t *rec = new_record(), *copy;
	const char *alg, *kid, *pub, *value;
	char fp[65];
	struct error err = {.msg = ""};
	char *text;

	(void)state;
	assert_int_equal(sign_json(key, rec), 0);
	assert_int_equal(json_unpack(json_object_get(rec, "signature"), "{s:s, s:s, s:s, s:s}",
				     "alg", &alg, "key", &kid, "public_key", &pub, "value", &value),
			 0);
	assert_string_equal(alg, "ed25519");
	assert_int_equal(sign_key_fingerprint(key, fp), 0);
	assert_string_equal(kid, fp);
	assert_int_equal(strlen(pub), 44);
	assert_int_equal(strlen(value), 88);
	assert_int_equal(sign_json_verify(rec, NULL, &err), 0);
	assert_int_equal(sign_json_verify(rec, key, &err), 0);

	/* Through text and back, with members in another order: the canonical form is sorted. */
	text = json_dumps(rec, JSON_INDENT(2));
	assert_non_null(text);
	copy = json_loads(text, 0, NULL);
	secmem_free(text);
	assert_non_null(copy);
	json_object_del(copy, "device");
	json_object_set_new(copy, "device", json_string("/dev/sdx"));
	if (sign_json_verify(copy, key, &err) != 0)
		fail_msg("re-ordered record did not verify: %s", err.msg);
	json_decref(copy);
	json_decref(rec);
	EVP_PKEY_free(key);
}

static void test_tampered(void **state)
{
	static const struct {
		const char *what, *member;
		int expect;
	} cases[] = {
		{"device changed", "device", -EBADMSG},
		{"member added", "operator", -EBADMSG},
		{"signature removed", "signature", -ENOKEY},
	};
	EVP_PKEY *key = new_key();
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *rec = new_record();
		int r;

		assert_int_equal(sign_json(key, rec), 0);
		if (cases[i].expect == -ENOKEY)
			json_object_del(rec, cases[i].member);
		else
			json_object_set_new(rec, cases[i].member, json_string("/dev/sdy"));
		err.msg[0] = 0;
		r = sign_json_verify(rec, NULL, &err);
		printf("%s: %d %s\n", cases[i].what, r, err.msg);
		assert_int_equal(r, cases[i].expect);
		assert_true(err.msg[0] != 0);
		json_decref(rec);
	}
	EVP_PKEY_free(key);
}

/* Swapping in another key's public key and signature passes the integrity check, which is why
 * the caller must show the fingerprint or pass the trusted key. */
static void test_wrong_trusted_key(void **state)
{
	EVP_PKEY *key = new_key(), *other = new_key();
	json_t *rec = new_record();
	struct error err = {.msg = ""};
	char fp[65];

	(void)state;
	assert_int_equal(sign_json(other, rec), 0);
	assert_int_equal(sign_json_verify(rec, NULL, &err), 0);
	assert_int_equal(sign_json_verify(rec, key, &err), -EBADMSG);
	printf("%s\n", err.msg);
	assert_int_equal(sign_key_fingerprint(key, fp), 0);
	assert_non_null(strstr(err.msg, fp));
	assert_non_null(strstr(err.msg, "not by the trusted key"));

	/* A signature block whose key id does not match its public key. */
	json_object_set_new(json_object_get(rec, "signature"), "key", json_string(fp));
	assert_int_equal(sign_json_verify(rec, NULL, &err), -EBADMSG);
	printf("%s\n", err.msg);
	json_decref(rec);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void test_malformed_signature(void **state)
{
	static const char *const bad[] = {
		"{\"x\":1,\"signature\":\"abc\"}",
		"{\"x\":1,\"signature\":{\"alg\":\"rsa\",\"key\":\"a\",\"public_key\":\"AAAA\","
		"\"value\":\"AAAA\"}}",
		"{\"x\":1,\"signature\":{\"alg\":\"ed25519\",\"key\":\"a\",\"public_key\":\"!!\","
		"\"value\":\"AAAA\"}}",
		"{\"x\":1,\"signature\":{\"alg\":\"ed25519\",\"key\":\"a\",\"public_key\":\"AAAA\","
		"\"value\":\"AAAA\",\"extra\":1}}",
	};
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *rec = json_loads(bad[i], 0, NULL);
		int r;

		assert_non_null(rec);
		r = sign_json_verify(rec, NULL, &err);
		printf("%s -> %d %s\n", bad[i], r, err.msg);
		assert_int_equal(r, -EBADMSG);
		json_decref(rec);
	}
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_created_private),
		cmocka_unit_test(test_key_group_readable_refused),
		cmocka_unit_test(test_key_not_ed25519_refused),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_trusted_key),
		cmocka_unit_test(test_malformed_signature),
	};

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	return cmocka_run_group_tests(tests, NULL, teardown);
}
