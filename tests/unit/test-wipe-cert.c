// SPDX-License-Identifier: GPL-2.0-or-later
/* Certificates: Appendix G fields filled from the device and the operator's --field values; a
 * signed record verifies; any edit breaks it; a record that says success with failed blocks is
 * rejected even when properly signed; an interrupted wipe claims no NIST level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "secmem.h"
#include "sign.h"

static EVP_PKEY *key;

/* One wipe's facts as the job module would state them. */
struct facts {
	struct cert_facts f;
	struct device_info dev;
	char summary[128];
};

static void make_facts(struct facts *x, const char *result)
{
	bool ok = strcmp(result, "success") == 0;

	*x = (struct facts){0};
	snprintf(x->dev.path, sizeof(x->dev.path), "/dev/sdz");
	snprintf(x->dev.id, sizeof(x->dev.id), "wwn-0x5000c500a1b2c3d4");
	snprintf(x->dev.vendor, sizeof(x->dev.vendor), "ATA");
	snprintf(x->dev.model, sizeof(x->dev.model), "ST4000NM0035");
	snprintf(x->dev.serial, sizeof(x->dev.serial), "ZC18ABCD");
	snprintf(x->dev.transport, sizeof(x->dev.transport), "ata");
	snprintf(x->summary, sizeof(x->summary), "/dev/sdz: %s", result);
	x->dev.rotational = true;
	x->dev.size = 1 << 30;
	x->f = (struct cert_facts){
		.result = result,
		.summary = x->summary,
		.dev = &x->dev,
		.before =
			json_pack("{s:s, s:[{s:s}]}", "luks_uuid", "", "signatures", "type", "xfs"),
		.sigs_after = json_array(),
		.notes = json_array(),
		.method = method_find("zero"),
		.pattern = PATTERN_ZERO,
		.end = 1 << 30,
		.level = NIST_CLEAR,
		.level_note = "",
		.verify = PASS_VERIFY_FULL,
		.verified = ok ? "passed" : "not-run",
		.started_us = 1700000000000000ull,
		.ended_us = 1700000012345678ull,
		.performed_by = json_pack("{s:s, s:i}", "name", "Dana Operator", "uid", 0),
		.fields = json_pack("{s:s, s:s}", "organization", "DBaaS Ops", "destination",
				    "Internal Reuse"),
	};
	pass_stats_init(&x->f.write);
	pass_stats_init(&x->f.check);
	x->f.write.bytes = ok ? 1 << 30 : 1 << 20;
	x->f.check.bytes = ok ? 1 << 30 : 0;
}

static void drop_facts(struct facts *x)
{
	json_decref(x->f.before);
	json_decref(x->f.sigs_after);
	json_decref(x->f.notes);
	json_decref(x->f.performed_by);
	json_decref(x->f.fields);
}

static json_t *signed_cert(const char *result)
{
	struct facts x;
	json_t *c;

	make_facts(&x, result);
	c = cert_build(&x.f);
	assert_non_null(c);
	json_object_set_new(c, "id", json_string("00000000-0000-4000-8000-000000000000"));
	assert_int_equal(sign_json(key, c), 0);
	drop_facts(&x);
	return c;
}

static void test_fields(void **state)
{
	json_t *c = signed_cert("success"), *g = json_object_get(c, "sp800_88_rev1_appendix_g");

	(void)state;
	assert_string_equal(json_string_value(json_object_get(g, "name")), "Dana Operator");
	assert_string_equal(json_string_value(json_object_get(g, "organization")), "DBaaS Ops");
	assert_string_equal(json_string_value(json_object_get(g, "serial")), "ZC18ABCD");
	assert_string_equal(json_string_value(json_object_get(g, "model")), "ST4000NM0035");
	assert_string_equal(json_string_value(json_object_get(g, "media_type")),
			    "Magnetic (ata, magnetic)");
	assert_string_equal(json_string_value(json_object_get(g, "method_type")), "Clear");
	assert_string_equal(json_string_value(json_object_get(g, "method_used")), "Overwrite");
	assert_string_equal(json_string_value(json_object_get(g, "verification_method")), "Full");
	assert_string_equal(json_string_value(json_object_get(g, "data_backed_up")), "Unknown");
	assert_string_equal(json_string_value(json_object_get(g, "destination")), "Internal Reuse");
	assert_string_equal(json_string_value(json_object_get(g, "date")),
			    "2023-11-14T22:13:32.345678Z");
	assert_int_equal(json_integer_value(json_object_get(c, "duration_ms")), 12345);
	assert_true(cert_field_settable("phone"));
	assert_false(cert_field_settable("method_type")); /* never the operator's to say */
	json_decref(c);
}

static void test_verify_and_tamper(void **state)
{
	json_t *c = signed_cert("success");
	struct error err;

	(void)state;
	assert_int_equal(cert_check(c, key, &err), 0);
	assert_int_equal(cert_check(c, NULL, &err), 0);
	json_object_set_new(json_object_get(c, "device"), "serial", json_string("OTHER"));
	assert_int_equal(cert_check(c, key, &err), -EBADMSG);
	printf("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "altered"));
	json_object_del(c, "signature");
	assert_int_equal(cert_check(c, key, &err), -ENOKEY);
	json_decref(c);
}

static void test_other_key(void **state)
{
	json_t *c = signed_cert("success");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct error err;

	(void)state;
	assert_int_equal(cert_check(c, other, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not by the trusted key"));
	EVP_PKEY_free(other);
	json_decref(c);
}

static void test_success_must_be_consistent(void **state)
{
	json_t *c = signed_cert("success");
	struct error err;

	(void)state;
	/* Even signed by the right key, "success" with failed blocks is not a valid record. */
	json_object_del(c, "signature");
	json_object_set_new(json_object_get(c, "errors"), "write_failed_blocks", json_integer(3));
	assert_int_equal(sign_json(key, c), 0);
	assert_int_equal(cert_check(c, key, &err), -EBADMSG);
	printf("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "says success"));
	json_decref(c);

	c = signed_cert("success");
	json_object_del(c, "signature");
	json_object_set_new(json_object_get(c, "verification"), "result", json_string("failed"));
	assert_int_equal(sign_json(key, c), 0);
	assert_int_equal(cert_check(c, key, &err), -EBADMSG);
	json_decref(c);
}

static void test_interrupted_claims_nothing(void **state)
{
	json_t *c = signed_cert("interrupted");
	struct error err;

	(void)state;
	assert_int_equal(cert_check(c, key, &err), 0);
	assert_string_equal(json_string_value(json_object_get(c, "result")), "interrupted");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "nist"), "level")),
			    "none");
	assert_non_null(
		strstr(json_string_value(json_object_get(
			       json_object_get(c, "sp800_88_rev1_appendix_g"), "method_type")),
		       "None"));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(c, "verification"), "result")),
		"not-run");
	/* Relabelled as a success by someone with the key: the record check still refuses. */
	json_object_del(c, "signature");
	json_object_set_new(c, "result", json_string("success"));
	assert_int_equal(sign_json(key, c), 0);
	assert_int_equal(cert_check(c, key, &err), -EBADMSG);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_verify_and_tamper),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_success_must_be_consistent),
		cmocka_unit_test(test_interrupted_claims_nothing),
	};
	int r;

	if (secmem_init(1 << 20) < 0)
		return 1;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(key);
	return r;
}
