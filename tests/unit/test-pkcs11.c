// SPDX-License-Identifier: GPL-2.0-or-later
/* The pkcs11 provider's logic that needs no token: key references, the WDEK format, version
 * order, padded token fields, the CK_RV table, the config schema, and refusing module files
 * (t-pkcs11.sh runs the rest against SoftHSM2 and p11-kit's proxy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms.h"
#include "p11_error.h"
#include "p11_module.h"
#include "p11_wdek.h"
#include "secmem.h"

static char dir[] = "/tmp/test-pkcs11.XXXXXX";

static void test_keyref(void **state)
{
	static const char *const bad[] = {"",	   "label:", "id:",  "id:0",	  "id:zz",
					  "id:0g", "a\tb",   "\x7f", "tab\tlabel"};
	char long_label[P11_LABEL_MAX + 2];
	struct p11_keyref r;

	(void)state;
	assert_int_equal(p11_keyref_parse("pg-root", &r), 0);
	assert_false(r.by_id);
	assert_string_equal(r.label, "pg-root");
	assert_int_equal(p11_keyref_parse("label:id:x", &r), 0);
	assert_false(r.by_id);
	assert_string_equal(r.label, "id:x");
	assert_int_equal(p11_keyref_parse("id:0a1B", &r), 0);
	assert_true(r.by_id);
	assert_int_equal(r.id_len, 2);
	assert_int_equal(r.id[0], 0x0a);
	assert_int_equal(r.id[1], 0x1b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("key id \"%s\"\n", bad[i]);
		assert_int_equal(p11_keyref_parse(bad[i], &r), -EINVAL);
	}
	memset(long_label, 'k', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = 0;
	assert_int_equal(p11_keyref_parse(long_label, &r), -EINVAL);
	long_label[P11_LABEL_MAX] = 0;
	assert_int_equal(p11_keyref_parse(long_label, &r), 0);
}

static struct p11_wdek sample(const char *tag, size_t blob_len, size_t id_len)
{
	struct p11_wdek w = {.mech = p11_mech_by_tag(tag), .blob_len = blob_len, .id_len = id_len};

	for (size_t i = 0; i < blob_len; i++)
		w.blob[i] = (uint8_t)(i * 13 + 1);
	for (size_t i = 0; i < id_len; i++)
		w.id[i] = (uint8_t)(i + 1);
	return w;
}

static void test_wdek_round_trip(void **state)
{
	/* GCM: 12-byte IV, 32-byte DEK, 16-byte tag. Key wrap of DEK || SHA-256: 64 + 8. */
	struct p11_wdek in[] = {sample("gcm", 60, 1), sample("kwpad", 72, 2), sample("kwp", 72, 0),
				sample("gcm", 44, P11_ID_MAX)};
	struct p11_wdek out;
	char *s = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_non_null(in[i].mech);
		assert_int_equal(p11_wdek_format(&in[i], &s), 0);
		print_message("%s\n", s);
		assert_int_equal(p11_wdek_parse(s, &out), 0);
		assert_ptr_equal(out.mech, in[i].mech);
		assert_int_equal(out.id_len, in[i].id_len);
		assert_memory_equal(out.id, in[i].id, in[i].id_len);
		assert_int_equal(out.blob_len, in[i].blob_len);
		assert_memory_equal(out.blob, in[i].blob, in[i].blob_len);
		free(s);
	}
	in[0] = sample("gcm", 60, 1);
	assert_int_equal(p11_wdek_format(&in[0], &s), 0);
	assert_true(strncmp(s, "pkcs11:v1:gcm:01:", 17) == 0);
	free(s);
	/* A payload no mechanism makes from a 16..64-byte key is not formatted either. */
	in[0] = sample("gcm", 43, 1);
	assert_int_equal(p11_wdek_format(&in[0], &s), -EINVAL);
	in[0] = sample("kwpad", 70, 1);
	assert_int_equal(p11_wdek_format(&in[0], &s), -EINVAL);
}

static void test_wdek_rejects(void **state)
{
	/* 60 bytes of base64 payload for a GCM WDEK, in valid base64. */
	static const char b64_60[] =
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	static const char *const bad[] = {
		"",
		"pkcs11:v1:",
		"pkcs11:v2:gcm:01:AAAA",
		"vault:v1:gcm:01:AAAA",
		"pkcs11:v1:cbc:01:AAAA",
		"pkcs11:v1:gcm:0:AAAA",
		"pkcs11:v1:gcm:zz:AAAA",
		"pkcs11:v1:gcm:01",
		"pkcs11:v1:gcm:01:",
		"pkcs11:v1:gcm:01:A===",
		"pkcs11:v1:gcm:01:AAAA", /* 3 bytes: too short for GCM */
		"pkcs11:v1::01:AAAA",
	};
	struct p11_wdek w;
	char s[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("WDEK \"%s\"\n", bad[i]);
		assert_int_equal(p11_wdek_parse(bad[i], &w), -EBADMSG);
	}
	snprintf(s, sizeof(s), "pkcs11:v1:gcm:01:%s", b64_60);
	assert_int_equal(p11_wdek_parse(s, &w), 0);
	assert_int_equal(w.blob_len, 60);
	/* 60 bytes is not a key-wrap length (a multiple of 8). */
	snprintf(s, sizeof(s), "pkcs11:v1:kwpad:01:%s", b64_60);
	assert_int_equal(p11_wdek_parse(s, &w), -EBADMSG);
	/* A CKA_ID longer than P11_ID_MAX. */
	snprintf(s, sizeof(s), "pkcs11:v1:gcm:%0*d:%s", 2 * P11_ID_MAX + 2, 0, b64_60);
	assert_int_equal(p11_wdek_parse(s, &w), -EBADMSG);
}

static void test_id_order(void **state)
{
	static const uint8_t one[] = {1}, two[] = {2}, o01[] = {0, 1}, x0100[] = {1, 0},
			     ff[] = {0xff}, zero[] = {0};

	(void)state;
	assert_true(p11_id_cmp(one, 1, two, 1) < 0);
	assert_true(p11_id_cmp(two, 1, one, 1) > 0);
	assert_true(p11_id_cmp(x0100, 2, ff, 1) > 0);
	assert_int_equal(p11_id_cmp(o01, 2, one, 1), 0);
	assert_int_equal(p11_id_cmp(zero, 1, NULL, 0), 0);
	assert_true(p11_id_cmp(NULL, 0, one, 1) < 0);
}

static void test_fields(void **state)
{
	unsigned char label[32], serial[16];
	char hex[2 * P11_ID_MAX + 1];
	static const uint8_t id[] = {0x0a, 0xff};

	(void)state;
	memset(label, ' ', sizeof(label));
	memcpy(label, "keyd-test", 9);
	assert_int_equal(p11_field_len(label, sizeof(label)), 9);
	assert_true(p11_field_eq(label, sizeof(label), "keyd-test"));
	assert_false(p11_field_eq(label, sizeof(label), "keyd"));
	assert_false(p11_field_eq(label, sizeof(label), "keyd-test2"));
	memset(serial, 0, sizeof(serial));
	memcpy(serial, "abc", 3);
	assert_true(p11_field_eq(serial, sizeof(serial), "abc"));
	assert_string_equal(p11_id_hex(id, sizeof(id), hex, sizeof(hex)), "0aff");
	assert_string_equal(p11_id_hex(id, 0, hex, sizeof(hex)), "");
}

static void test_rv_table(void **state)
{
	static const struct {
		CK_RV rv;
		int error;
		bool retryable, drop;
	} want[] = {
		{CKR_PIN_INCORRECT, -EACCES, false, false},
		{CKR_PIN_LOCKED, -EACCES, false, false},
		{CKR_PIN_EXPIRED, -EKEYEXPIRED, false, false},
		{CKR_TOKEN_NOT_PRESENT, -ENODEV, true, true},
		{CKR_DEVICE_REMOVED, -ENODEV, true, true},
		{CKR_DEVICE_ERROR, -EIO, true, true},
		{CKR_SESSION_HANDLE_INVALID, -ENOTCONN, true, true},
		{CKR_USER_NOT_LOGGED_IN, -EACCES, true, true},
		{CKR_KEY_FUNCTION_NOT_PERMITTED, -EKEYREVOKED, false, false},
		{CKR_MECHANISM_INVALID, -EOPNOTSUPP, false, false},
		{CKR_KEY_TYPE_INCONSISTENT, -EOPNOTSUPP, false, false},
		{CKR_ENCRYPTED_DATA_INVALID, -EBADMSG, false, false},
		{CKR_AEAD_DECRYPT_FAILED, -EBADMSG, false, false},
		{CKR_GENERAL_ERROR, -EIO, false, false},
		{CKR_SESSION_COUNT, -EBUSY, true, false},
	};
	struct error e = {0};
	int r;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct p11_rv_info *info = p11_rv_info(want[i].rv);

		print_message("%s\n", info->name);
		assert_int_equal(info->rv, want[i].rv);
		assert_int_equal(info->error, want[i].error);
		assert_int_equal(info->retryable, want[i].retryable);
		assert_int_equal(info->drop, want[i].drop);
		assert_non_null(info->hint);
	}
	r = p11_fail(&e, CKR_PIN_LOCKED, NULL, "token '%s': C_Login", "t");
	assert_int_equal(r, -EACCES);
	assert_false(e.retryable);
	assert_string_equal(e.msg,
			    "token 't': C_Login: CKR_PIN_LOCKED (0xa4): the user PIN is "
			    "locked after too many wrong tries: the token's security officer "
			    "must unblock it");
	r = p11_fail(&e, CKR_DEVICE_REMOVED, "gone", "x");
	assert_int_equal(r, -ENODEV);
	assert_true(e.retryable);
	assert_string_equal(e.msg, "x: CKR_DEVICE_REMOVED (0x32): gone");
	r = p11_fail(&e, CKR_VENDOR_DEFINED | 7, NULL, "x");
	assert_int_equal(r, -EIO);
	assert_false(e.retryable);
	assert_non_null(strstr(e.msg, "vendor-defined CK_RV (0x80000007)"));
	assert_string_equal(p11_rv_info(0x7777)->name, "unknown CK_RV");
}

/* kms.NAME parsed by the provider; returns its error, message in @msg. */
static int parse(const char *json, char *msg, size_t size)
{
	struct kms k = {.name = "hsm", .provider = kms_provider_find("pkcs11")};
	json_t *o = json_loads(json, 0, NULL);
	struct error e = {0};
	int r;

	assert_non_null(k.provider);
	assert_non_null(o);
	r = k.provider->parse(&k, o, "kms.hsm", &e);
	json_decref(o);
	snprintf(msg, size, "%s", e.msg);
	if (r >= 0)
		k.provider->done(&k);
	return r;
}

static void test_config(void **state)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"pin_file\": \"/p\"}",
		 "kms.hsm: give token (the token's label) or token_serial, or both"},
		{"{\"provider\": \"pkcs11\", \"module\": \"m.so\", \"token\": \"t\", \"pin_file\": "
		 "\"/p\"}",
		 "kms.hsm.module: \"m.so\" must be an absolute path"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token\": \"t\", \"pin_file\": "
		 "\"/p\", \"mechanism\": \"aes-cbc\"}",
		 "kms.hsm.mechanism: \"aes-cbc\" is not one of aes-gcm, aes-key-wrap-kwp"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token\": \"t \", \"pin_file\": "
		 "\"/p\"}",
		 "kms.hsm.token: must not be empty or end in a blank"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token\": "
		 "\"0123456789abcdef0123456789abcdefX\", \"pin_file\": \"/p\"}",
		 "kms.hsm.token"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token_serial\": "
		 "\"0123456789abcdefX\", \"pin_file\": \"/p\"}",
		 "kms.hsm.token_serial"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token\": \"t\"}", "pin_file"},
		{"{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token\": \"t\", \"pin_file\": "
		 "\"/p\", \"pin\": \"1234\"}",
		 "kms.hsm.pin: unknown key"},
	};
	char msg[ERROR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(parse(bad[i].json, msg, sizeof(msg)) < 0);
		print_message("%s\n", msg);
		assert_non_null(strstr(msg, bad[i].msg));
	}
	assert_int_equal(
		parse("{\"provider\": \"pkcs11\", \"module\": \"/m.so\", \"token_serial\": "
		      "\"abc\", \"pin_file\": \"hsm.pin\", \"mechanism\": "
		      "\"aes-key-wrap-kwp\"}",
		      msg, sizeof(msg)),
		0);
}

static void test_module_files(void **state)
{
	struct p11_module *m = NULL;
	struct error e = {0};
	char path[64];
	Dl_info info;
	FILE *f;

	(void)state;
	assert_int_equal(p11_module_get("/nonexistent/lib.so", &m, &e), -ENOENT);
	assert_string_equal(e.msg, "PKCS#11 module /nonexistent/lib.so: No such file or directory");
	assert_int_equal(p11_module_get("lib.so", &m, &e), -EINVAL);
	snprintf(path, sizeof(path), "%s/open.so", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	chmod(path, 0666);
	assert_int_equal(p11_module_get(path, &m, &e), -EPERM);
	assert_non_null(strstr(e.msg, "that group and others cannot write"));
	unlink(path);
	/* A real shared library that is no PKCS#11 module: cmocka's own. */
	assert_int_not_equal(dladdr((void *)_cmocka_run_group_tests, &info), 0);
	if (geteuid() == 0 && info.dli_fname && info.dli_fname[0] == '/') {
		assert_int_equal(p11_module_get(info.dli_fname, &m, &e), -ENOEXEC);
		print_message("%s\n", e.msg);
		assert_non_null(strstr(e.msg, "no C_GetFunctionList, so not a PKCS#11 module"));
	}
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyref),	     cmocka_unit_test(test_wdek_round_trip),
		cmocka_unit_test(test_wdek_rejects), cmocka_unit_test(test_id_order),
		cmocka_unit_test(test_fields),	     cmocka_unit_test(test_rv_table),
		cmocka_unit_test(test_config),	     cmocka_unit_test(test_module_files),
	};
	int r;

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
