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

static void make_job(struct wipe_job *j, struct wipe_options *o, enum job_result result)
{
	*o = (struct wipe_options){
		.operator= json_pack("{s:s, s:i}", "name", "Dana Operator", "uid", 0),
		.fields = json_pack("{s:s, s:s}", "organization", "DBaaS Ops", "destination",
				    "Internal Reuse"),
		.key = key,
	};
	*j = (struct wipe_job){
		.opt = o,
		.method = method_find("zero"),
		.level = NIST_CLEAR,
		.verify = PASS_VERIFY_FULL,
		.verified = result == JOB_SUCCESS ? JOB_VERIFY_PASSED : JOB_VERIFY_NOT_RUN,
		.end = 1 << 30,
		.result = result,
		.started_us = 1700000000000000ull,
		.ended_us = 1700000012345678ull,
		.notes = json_array(),
	};
	snprintf(j->dev.path, sizeof(j->dev.path), "/dev/sdz");
	snprintf(j->dev.id, sizeof(j->dev.id), "wwn-0x5000c500a1b2c3d4");
	snprintf(j->dev.vendor, sizeof(j->dev.vendor), "ATA");
	snprintf(j->dev.model, sizeof(j->dev.model), "ST4000NM0035");
	snprintf(j->dev.serial, sizeof(j->dev.serial), "ZC18ABCD");
	snprintf(j->dev.transport, sizeof(j->dev.transport), "ata");
	snprintf(j->message, sizeof(j->message), "/dev/sdz: %s", job_result_name(result));
	j->dev.rotational = true;
	j->dev.size = 1 << 30;
	pass_stats_init(&j->write);
	pass_stats_init(&j->check);
	j->write.bytes = result == JOB_SUCCESS ? 1 << 30 : 1 << 20;
	j->check.bytes = result == JOB_SUCCESS ? 1 << 30 : 0;
	j->before = json_pack("{s:s, s:[{s:s}]}", "luks_uuid", "", "signatures", "type", "xfs");
	j->sigs_after = json_array();
}

static void drop_job(struct wipe_job *j, struct wipe_options *o)
{
	json_decref(o->operator);
	json_decref(o->fields);
	job_done(j);
}

static json_t *signed_cert(enum job_result result)
{
	struct wipe_job j;
	struct wipe_options o;
	json_t *c;

	make_job(&j, &o, result);
	c = cert_build(&j);
	assert_non_null(c);
	json_object_set_new(c, "id", json_string("00000000-0000-4000-8000-000000000000"));
	assert_int_equal(sign_json(key, c), 0);
	drop_job(&j, &o);
	return c;
}

static void test_fields(void **state)
{
	json_t *c = signed_cert(JOB_SUCCESS), *g = json_object_get(c, "sp800_88_rev1_appendix_g");

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
	json_t *c = signed_cert(JOB_SUCCESS);
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
	json_t *c = signed_cert(JOB_SUCCESS);
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
	json_t *c = signed_cert(JOB_SUCCESS);
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

	c = signed_cert(JOB_SUCCESS);
	json_object_del(c, "signature");
	json_object_set_new(json_object_get(c, "verification"), "result", json_string("failed"));
	assert_int_equal(sign_json(key, c), 0);
	assert_int_equal(cert_check(c, key, &err), -EBADMSG);
	json_decref(c);
}

static void test_interrupted_claims_nothing(void **state)
{
	json_t *c = signed_cert(JOB_INTERRUPTED);
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
