// SPDX-License-Identifier: GPL-2.0-or-later
/* The keyd token as read from a header: every field's limit, missing and extra fields, states,
 * generation and keyslots; and the write/read round trip on a real LUKS2 header in a temp file
 * (libcryptsetup formats and reads regular files without root or a loop device). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "luks.h"
#include "secmem.h"
#include "temp-luks.h"
#include "token.h"

static char dir[] = "/tmp/test-token.XXXXXX";

/* A token with every field set, as enroll and re-key write them. */
static json_t *full_token(void)
{
	return json_pack("{s:s, s:[s], s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			 "type", "keyd", "keyslots", "1", "keyd_version", 1, "state", "active",
			 "generation", 2, "name", "pgdata", "provider", "file", "kms", "local",
			 "key_id", "key-1", "key_version", "3", "wdek", "file:v1:AAAA", "aad",
			 "keyd:v1:0d5c", "created", "2026-01-01T00:00:00Z", "updated",
			 "2026-01-02T00:00:00Z");
}

/* Parses @o as token 3; the message (if any) in e->msg. */
static int parse(json_t *o, struct keyd_token *t, struct error *e)
{
	char *s = json_dumps(o, JSON_COMPACT);
	int r;

	assert_non_null(s);
	e->msg[0] = 0;
	r = token_from_json(s, 3, t, e);
	secmem_free(s);
	return r;
}

/* Expects @o to be refused with a message containing @want. */
static void refused(json_t *o, const char *want)
{
	struct keyd_token t;
	struct error e;
	int r = parse(o, &t, &e);

	if (r != -EINVAL || !strstr(e.msg, want))
		fail_msg("expected -EINVAL with \"%s\", got %d: \"%s\"", want, r, e.msg);
	assert_null(t.name); /* nothing half-parsed is left behind */
	json_decref(o);
}

static void accepted(json_t *o, struct keyd_token *t)
{
	struct error e;
	int r = parse(o, t, &e);

	if (r != 0)
		fail_msg("expected the token to parse, got %d: \"%s\"", r, e.msg);
	json_decref(o);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = 0;
	return s;
}

static void test_full_token(void **state)
{
	struct keyd_token t;

	(void)state;
	accepted(full_token(), &t);
	assert_int_equal(t.id, 3);
	assert_int_equal(t.keyslot, 1);
	assert_int_equal(t.state, TOKEN_ACTIVE);
	assert_int_equal(t.generation, 2);
	assert_string_equal(t.name, "pgdata");
	assert_string_equal(t.provider, "file");
	assert_string_equal(t.kms, "local");
	assert_string_equal(t.key_id, "key-1");
	assert_string_equal(t.key_version, "3");
	assert_string_equal(t.wdek, "file:v1:AAAA");
	assert_string_equal(t.aad, "keyd:v1:0d5c");
	assert_string_equal(t.created, "2026-01-01T00:00:00Z");
	assert_string_equal(t.updated, "2026-01-02T00:00:00Z");
	token_done(&t);
}

/* Every string field: empty refused, at its limit accepted, one past it refused. */
static void test_string_limits(void **state)
{
	static const struct {
		const char *key;
		size_t max;
	} fields[] = {
		{"name", 64},
		{"provider", 32},
		{"kms", KMS_NAME_MAX},
		{"key_id", KMS_KEY_ID_MAX},
		{"key_version", KMS_VERSION_MAX},
		{"wdek", KMS_WDEK_MAX},
		{"aad", KMS_AAD_MAX},
		{"created", 40},
		{"updated", 40},
	};
	char want[96];

	(void)state;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct keyd_token t;
		json_t *o = full_token();
		char *at = repeat('a', fields[i].max), *past = repeat('a', fields[i].max + 1);

		json_object_set_new(o, fields[i].key, json_string(at));
		accepted(o, &t);
		token_done(&t);

		o = full_token();
		json_object_set_new(o, fields[i].key, json_string(past));
		snprintf(want, sizeof(want), "token 3.%s: longer than %zu characters",
			 fields[i].key, fields[i].max);
		refused(o, want);

		o = full_token();
		json_object_set_new(o, fields[i].key, json_string(""));
		snprintf(want, sizeof(want), "token 3.%s: must not be empty", fields[i].key);
		refused(o, want);

		o = full_token();
		json_object_set_new(o, fields[i].key, json_integer(7));
		snprintf(want, sizeof(want), "token 3.%s: must be a string", fields[i].key);
		refused(o, want);
		free(at);
		free(past);
	}
}

static void test_missing_and_extra_fields(void **state)
{
	static const char *const required[] = {"name", "provider", "kms",    "key_id",
					       "wdek", "aad",	   "created"};
	static const char *const optional[] = {"key_version", "updated", "generation", "state"};
	struct keyd_token t;
	char want[64];
	json_t *o;

	(void)state;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		o = full_token();
		json_object_del(o, required[i]);
		snprintf(want, sizeof(want), "token 3.%s: missing", required[i]);
		refused(o, want);
	}
	o = full_token();
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		json_object_del(o, optional[i]);
	accepted(o, &t);
	assert_null(t.key_version);
	assert_null(t.updated);
	assert_int_equal(t.generation, 1); /* tokens before re-key existed */
	assert_int_equal(t.state, TOKEN_ACTIVE);
	token_done(&t);

	o = full_token();
	json_object_set_new(o, "passphrase", json_string("x"));
	refused(o, "token 3.passphrase: unknown key");

	o = full_token();
	json_object_del(o, "keyslots");
	refused(o, "token 3.keyslots: must name one keyslot");
}

static void test_versions_states_generations(void **state)
{
	struct keyd_token t;
	json_t *o;

	(void)state;
	o = full_token();
	json_object_set_new(o, "keyd_version", json_integer(3));
	refused(o, "token 3.keyd_version: 3 is not supported (this keyd reads 1 and 2)");
	o = full_token();
	json_object_del(o, "keyd_version");
	refused(o, "token 3.keyd_version: 0 is not supported");
	o = full_token();
	json_object_set_new(o, "keyd_version", json_string("1"));
	refused(o, "token 3.keyd_version: must be an integer");

	o = full_token();
	json_object_set_new(o, "state", json_string("pending"));
	accepted(o, &t);
	assert_int_equal(t.state, TOKEN_PENDING);
	token_done(&t);
	o = full_token();
	json_object_set_new(o, "state", json_string("retired"));
	refused(o, "token 3.state: \"retired\" is not one of: active, pending");

	o = full_token();
	json_object_set_new(o, "generation", json_integer(UINT32_MAX));
	accepted(o, &t);
	assert_int_equal(t.generation, UINT32_MAX);
	token_done(&t);
	o = full_token();
	json_object_set_new(o, "generation", json_integer(0));
	refused(o, "token 3.generation: must be between 1 and 4294967295");
	o = full_token();
	json_object_set_new(o, "generation", json_integer((json_int_t)UINT32_MAX + 1));
	refused(o, "token 3.generation: must be between 1 and 4294967295");
	o = full_token();
	json_object_set_new(o, "generation", json_integer(-1));
	refused(o, "token 3.generation: must be between 1 and 4294967295");
}

static void test_keyslots(void **state)
{
	static const char *const bad[] = {
		"[\"32\"]", "[\"1\", \"2\"]", "[1]", "\"1\"", "[\"-1\"]", "[\"x\"]", "[\"\"]",
	};
	struct keyd_token t;
	json_t *o;

	(void)state;
	o = full_token();
	json_object_set_new(o, "keyslots", json_pack("[s]", "31"));
	accepted(o, &t);
	assert_int_equal(t.keyslot, 31);
	token_done(&t);
	/* No keyslot: a pending token, or one whose keyslot was destroyed before a crash. */
	o = full_token();
	json_object_set_new(o, "keyslots", json_array());
	accepted(o, &t);
	assert_int_equal(t.keyslot, -1);
	token_done(&t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = full_token();
		json_object_set_new(o, "keyslots", json_loads(bad[i], JSON_DECODE_ANY, NULL));
		refused(o, "token 3.keyslots: must name one keyslot");
	}
}

static void test_not_json_not_keyd(void **state)
{
	struct keyd_token t;
	struct error e;
	char *big;
	json_t *o;

	(void)state;
	assert_int_equal(token_from_json("{\"type\": \"keyd\",", 3, &t, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "token 3: "));
	assert_int_equal(token_from_json("{\"type\": \"keyd\", \"type\": \"keyd\"}", 3, &t, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "duplicate"));
	assert_int_equal(token_from_json("{\"type\": \"systemd-tpm2\"}", 3, &t, &e), -EMEDIUMTYPE);
	assert_int_equal(token_from_json("{\"keyslots\": []}", 3, &t, &e), -EMEDIUMTYPE);

	big = repeat(' ', TOKEN_JSON_MAX + 1);
	big[0] = '{';
	big[TOKEN_JSON_MAX] = '}';
	assert_int_equal(token_from_json(big, 3, &t, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "larger than 16384 bytes"));
	free(big);

	o = full_token();
	json_object_set_new(o, "type", json_string("luks2-keyring"));
	assert_int_equal(parse(o, &t, &e), -EMEDIUMTYPE);
	json_decref(o);
}

/* Issue 10 item 3: a token field that reaches a log line, luksDump or a terminal must not
 * carry a newline (forged log lines), an ANSI sequence (a rewritten terminal) or a bidi
 * override. Every string field, the keyslot strings and the keys themselves are refused by
 * name, and the message never repeats the hostile value. */
static void test_hostile_text(void **state)
{
	static const char *const fields[] = {"name",	    "provider", "kms", "key_id",
					     "key_version", "wdek",	"aad", "created",
					     "updated",	    "state"};
	static const struct {
		const char *text;
		const char *code;
		int offset;
	} hostile[] = {
		{"pg\nkeyd: volume pgdata unlocked", "U+000A", 2},
		{"pg\r", "U+000D", 2},
		{"\x1b[2J\x1b[1;1Hok", "U+001B", 0},
		{"a\x07", "U+0007", 1},
		{"a\tb", "U+0009", 1},
		{"del\x7f", "U+007F", 3},
		{"csi\xc2\x9b"
		 "31m",
		 "U+009B", 3}, /* C1 CSI: an ANSI sequence in one character */
		{"ab\xe2\x80\xae"
		 "cba",
		 "U+202E", 2}, /* right-to-left override */
		{"line\xe2\x80\xa8"
		 "two",
		 "U+2028", 4},
		{"iso\xe2\x81\xa6", "U+2066", 3},
	};
	char want[128];

	(void)state;
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
			struct keyd_token t;
			struct error e;
			json_t *o = full_token();
			int r;

			json_object_set_new(o, fields[f], json_string(hostile[h].text));
			r = parse(o, &t, &e);
			json_decref(o);
			snprintf(want, sizeof(want),
				 "token 3.%s: holds the control character %s at offset %d",
				 fields[f], hostile[h].code, hostile[h].offset);
			if (r != -EINVAL || !strstr(e.msg, want))
				fail_msg("%s = hostile[%zu]: expected -EINVAL with \"%s\", got %d: "
					 "\"%s\"",
					 fields[f], h, want, r, e.msg);
			if (strstr(e.msg, hostile[h].text) || strchr(e.msg, '\n') ||
			    strchr(e.msg, '\x1b'))
				fail_msg("the message repeats the hostile value: \"%s\"", e.msg);
			assert_null(t.name);
		}

	/* In a keyslot string, and in a key (which "unknown key" would otherwise quote). */
	{
		json_t *o = full_token();

		json_object_set_new(o, "keyslots", json_pack("[s]", "1\n"));
		refused(o, "token 3.keyslots[0]: holds the control character U+000A at offset 1");
		o = full_token();
		json_object_set_new(o, "x\x1b[31m", json_string("y"));
		refused(o, "token 3: a key holds the control character U+001B at offset 1");
	}

	/* Text that is only unusual stays accepted: UTF-8 letters, spaces, punctuation. */
	{
		struct keyd_token t;
		json_t *o = full_token();

		json_object_set_new(o, "key_id", json_string("Schlüssel – 鍵 / key 1"));
		accepted(o, &t);
		assert_string_equal(t.key_id, "Schlüssel – 鍵 / key 1");
		token_done(&t);
	}
}

/* Issue 10 item 1: every field of a token read from a disk may hold any JSON value. Each is
 * refused with the field named, never crashes, and leaves nothing half-parsed. */
static void test_wrong_types(void **state)
{
	static const char *const fields[] = {
		"keyslots", "keyd_version", "name",  "provider", "kms",
		"key_id",   "key_version",  "wdek",  "aad",	 "created",
		"updated",  "generation",   "state",
	};
	static const char *const values[] = {
		"null",
		"true",
		"-1",
		"1.5",
		"\"\"",
		"[]",
		"{}",
		"[[\"1\"]]",
		"{\"a\": {\"b\": []}}",
		"1e300",
		"9223372036854775807",
	};

	(void)state;
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			struct keyd_token t;
			struct error e;
			json_t *o = full_token(),
			       *val = json_loads(values[v], JSON_DECODE_ANY, NULL);
			char want[48];
			int r;

			/* An empty keyslot list is a pending token's, and valid. */
			if (strcmp(fields[f], "keyslots") == 0 && strcmp(values[v], "[]") == 0) {
				json_decref(val);
				json_decref(o);
				continue;
			}
			assert_non_null(val);
			json_object_set_new(o, fields[f], val);
			r = parse(o, &t, &e);
			json_decref(o);
			snprintf(want, sizeof(want), "token 3.%s", fields[f]);
			if (r == 0 && strcmp(fields[f], "generation") != 0) {
				token_done(&t);
				fail_msg("%s = %s was accepted", fields[f], values[v]);
			}
			if (r == 0) /* generation may only be a number in its range */
				fail_msg("generation = %s was accepted", values[v]);
			if (r != -EINVAL || !strstr(e.msg, want))
				fail_msg(
					"%s = %s: expected -EINVAL naming the field, got %d: \"%s\"",
					fields[f], values[v], r, e.msg);
			assert_null(t.name);
		}
}

/* A LUKS2 header in a temp file with one passphrase keyslot (slot 0). */
static struct crypt_device *temp_header(const char *name, char *path, size_t size)
{
	struct crypt_device *cd = temp_luks_header(dir, name, path, size);

	assert_int_equal(crypt_keyslot_add_by_volume_key(cd, 0, NULL, 0, "pass", 4), 0);
	return cd;
}

static void test_write_read_round_trip(void **state)
{
	struct crypt_device *cd, *again = NULL;
	struct keyd_token t = {.id = CRYPT_ANY_TOKEN,
			       .keyslot = 0,
			       .state = TOKEN_ACTIVE,
			       .generation = 7,
			       .name = "pgdata",
			       .provider = "file",
			       .kms = "local",
			       .key_id = "key-1",
			       .wdek = "file:v1:AAAA",
			       .aad = "keyd:v1:x",
			       .created = "2026-01-01T00:00:00.000001Z"},
			  got, copy, list[TOKENS_MAX];
	struct error e;
	char path[96];
	int id, id2;

	(void)state;
	cd = temp_header("round-trip", path, sizeof(path));
	id = token_write(cd, &t);
	assert_true(id >= 0);
	/* A second token, pending and without keyslot, of the next generation. */
	t.keyslot = -1;
	t.state = TOKEN_PENDING;
	t.generation = 8;
	t.key_version = "9";
	t.updated = "2026-02-01T00:00:00Z";
	id2 = token_write(cd, &t);
	assert_true(id2 >= 0 && id2 != id);
	crypt_free(cd);

	/* From the file again, as another process would read it. */
	assert_int_equal(cryptsetup_load(path, &again), 0);
	assert_int_equal(token_read(again, id, &got, &e), 0);
	assert_int_equal(got.id, id);
	assert_int_equal(got.keyslot, 0);
	assert_int_equal(got.state, TOKEN_ACTIVE);
	assert_int_equal(got.generation, 7);
	assert_string_equal(got.name, "pgdata");
	assert_string_equal(got.provider, "file");
	assert_string_equal(got.kms, "local");
	assert_string_equal(got.key_id, "key-1");
	assert_null(got.key_version);
	assert_string_equal(got.wdek, "file:v1:AAAA");
	assert_string_equal(got.aad, "keyd:v1:x");
	assert_string_equal(got.created, "2026-01-01T00:00:00.000001Z");
	assert_null(got.updated);
	assert_int_equal(token_dup(&got, &copy), 0);
	assert_ptr_not_equal(copy.wdek, got.wdek);
	assert_string_equal(copy.wdek, got.wdek);
	token_done(&copy);
	token_done(&got);

	assert_int_equal(token_read(again, id2, &got, &e), 0);
	assert_int_equal(got.keyslot, -1);
	assert_int_equal(got.state, TOKEN_PENDING);
	assert_int_equal(got.generation, 8);
	assert_string_equal(got.key_version, "9");
	assert_string_equal(got.updated, "2026-02-01T00:00:00Z");
	token_done(&got);

	assert_int_equal(token_list(again, list, &e), 2);
	token_list_done(list, 2);
	/* The pending one has the higher generation but no keyslot: the active one unlocks. */
	assert_int_equal(token_find(again, &got, &e), 2);
	assert_int_equal(got.id, id);
	token_done(&got);
	assert_int_equal(token_read(again, 30, &got, &e), -ENOENT);
	crypt_free(again);
}

/* A token of two KMS (version 2) as enroll writes it: one wrap per KMS under "wraps". */
static json_t *multi_token(void)
{
	return json_pack("{s:s, s:[s], s:i, s:s, s:i, s:s, s:[{s:s, s:s, s:s, s:s, s:s}, "
			 "{s:s, s:s, s:s, s:s}], s:s, s:s}",
			 "type", "keyd", "keyslots", "1", "keyd_version", 2, "state", "active",
			 "generation", 1, "name", "pgdata", "wraps", "provider", "keyprotect",
			 "kms", "kp-us-south", "key_id", "k-south", "key_version", "1", "wdek",
			 "AAAA", "provider", "file", "kms", "local", "key_id", "k-local", "wdek",
			 "file:v1:BBBB", "aad", "keyd:v1:0d5c", "created", "2026-01-01T00:00:00Z");
}

static void test_multi_kms_token(void **state)
{
	struct keyd_token t;
	json_t *o;

	(void)state;
	accepted(multi_token(), &t);
	assert_int_equal(t.n_wraps, 2);
	assert_string_equal(t.wrap[0].kms, "kp-us-south");
	assert_string_equal(t.wrap[0].key_version, "1");
	assert_string_equal(t.wrap[1].provider, "file");
	assert_string_equal(t.wrap[1].key_id, "k-local");
	assert_null(t.wrap[1].key_version);
	assert_string_equal(t.wrap[1].wdek, "file:v1:BBBB");
	/* The first wrap is the token's KMS for callers that name one. */
	assert_string_equal(t.kms, "kp-us-south");
	assert_int_equal(token_wrap_index(&t, "local"), 1);
	assert_int_equal(token_wrap_index(&t, "elsewhere"), -1);
	token_done(&t);

	o = multi_token();
	json_object_set_new(o, "wraps", json_array());
	refused(o, "token 3.wraps: must be an array of 1 to 4 wrapped keys");
	o = multi_token();
	for (int i = 0; i < 3; i++)
		json_array_append(json_object_get(o, "wraps"),
				  json_array_get(json_object_get(o, "wraps"), 0));
	refused(o, "token 3.wraps: must be an array of 1 to 4 wrapped keys");
	o = multi_token();
	json_array_append(json_object_get(o, "wraps"),
			  json_array_get(json_object_get(o, "wraps"), 0));
	refused(o, "token 3.wraps[2].kms: \"kp-us-south\" is also wraps[0].kms");
	o = multi_token();
	json_object_del(json_array_get(json_object_get(o, "wraps"), 1), "wdek");
	refused(o, "token 3.wraps[1].wdek: missing");
	o = multi_token();
	json_object_set_new(json_array_get(json_object_get(o, "wraps"), 0), "aad",
			    json_string("x"));
	refused(o, "token 3.wraps[0].aad: unknown key");
	o = multi_token();
	json_array_set_new(json_object_get(o, "wraps"), 1, json_string("x"));
	refused(o, "token 3.wraps[1]: must be an object");
	/* Version 2 keeps the wraps in "wraps" only, version 1 has none. */
	o = multi_token();
	json_object_set_new(o, "kms", json_string("local"));
	refused(o, "token 3.kms: unknown key");
	o = full_token();
	json_object_set(o, "wraps", json_object_get(multi_token(), "wraps"));
	refused(o, "token 3.wraps: unknown key");
}

/* Two wraps go to disk as version 2 and come back; one stays version 1, which keyd before
 * multi-KMS reads. */
static void test_multi_kms_round_trip(void **state)
{
	struct crypt_device *cd, *again = NULL;
	struct keyd_token t = {.id = CRYPT_ANY_TOKEN, .n_wraps = 2, .name = "pgdata"}, got, copy;
	const char *json;
	json_auto_t *raw = NULL;
	struct error e;
	char path[96];
	int id, one;

	(void)state;
	t.aad = "keyd:v1:x";
	t.created = "2026-01-01T00:00:00Z";
	t.wrap[0] = (struct token_wrap){
		.provider = "keyprotect", .kms = "kp-a", .key_id = "ka", .wdek = "W1"};
	t.wrap[1] = (struct token_wrap){.provider = "file",
					.kms = "local",
					.key_id = "kb",
					.key_version = "3",
					.wdek = "file:v1:W2"};
	cd = temp_header("multi-round-trip", path, sizeof(path));
	id = token_write(cd, &t);
	assert_true(id >= 0);
	t.n_wraps = 1;
	t.keyslot = -1;
	t.state = TOKEN_PENDING;
	one = token_write(cd, &t);
	assert_true(one >= 0);
	crypt_free(cd);

	assert_int_equal(cryptsetup_load(path, &again), 0);
	assert_true(crypt_token_json_get(again, id, &json) >= 0);
	raw = json_loads(json, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(raw, "keyd_version")), 2);
	assert_null(json_object_get(raw, "kms"));
	json_decref(raw);
	assert_true(crypt_token_json_get(again, one, &json) >= 0);
	raw = json_loads(json, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(raw, "keyd_version")), 1);
	assert_string_equal(json_string_value(json_object_get(raw, "kms")), "kp-a");
	assert_null(json_object_get(raw, "wraps"));

	assert_int_equal(token_read(again, id, &got, &e), 0);
	assert_int_equal(got.n_wraps, 2);
	assert_string_equal(got.wrap[0].wdek, "W1");
	assert_string_equal(got.wrap[1].kms, "local");
	assert_string_equal(got.wrap[1].key_version, "3");
	assert_int_equal(token_dup(&got, &copy), 0);
	assert_int_equal(copy.n_wraps, 2);
	assert_ptr_not_equal(copy.wrap[1].wdek, got.wrap[1].wdek);
	assert_string_equal(copy.wrap[1].wdek, "file:v1:W2");
	token_done(&copy);
	token_done(&got);
	assert_int_equal(token_read(again, one, &got, &e), 0);
	assert_int_equal(got.n_wraps, 1);
	assert_string_equal(got.kms, "kp-a");
	token_done(&got);
	crypt_free(again);
}

/* Other tokens are not ours, and a malformed keyd token is named, not skipped. */
static void test_foreign_and_broken_tokens(void **state)
{
	struct crypt_device *cd;
	struct keyd_token got;
	struct error e;
	char path[96];
	int foreign, broken;

	(void)state;
	cd = temp_header("foreign", path, sizeof(path));
	foreign = crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
				       "{\"type\": \"systemd-fido2\", \"keyslots\": [\"0\"]}");
	assert_true(foreign >= 0);
	assert_int_equal(token_read(cd, foreign, &got, &e), -EMEDIUMTYPE);
	assert_int_equal(token_find(cd, &got, &e), 0);
	assert_int_equal(got.id, -1);

	broken = crypt_token_json_set(
		cd, CRYPT_ANY_TOKEN, "{\"type\": \"keyd\", \"keyslots\": [], \"keyd_version\": 1}");
	assert_true(broken >= 0);
	e.msg[0] = 0;
	assert_int_equal(token_find(cd, &got, &e), -EINVAL);
	if (!strstr(e.msg, "missing"))
		fail_msg("expected the broken token's missing field named, got \"%s\"", e.msg);
	crypt_free(cd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_token),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_missing_and_extra_fields),
		cmocka_unit_test(test_versions_states_generations),
		cmocka_unit_test(test_keyslots),
		cmocka_unit_test(test_not_json_not_keyd),
		cmocka_unit_test(test_hostile_text),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_write_read_round_trip),
		cmocka_unit_test(test_foreign_and_broken_tokens),
		cmocka_unit_test(test_multi_kms_token),
		cmocka_unit_test(test_multi_kms_round_trip),
	};
	return temp_luks_main(dir, tests);
}
