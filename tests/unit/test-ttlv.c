// SPDX-License-Identifier: GPL-2.0-or-later
/* TTLV and KMIP messages against the bytes of the OASIS documents: the encoding examples of
 * KMIP 1.4 section 9.1.2, the Discover Versions test case of the KMIP 1.1 Test Cases (3.1.1),
 * and the Get Attributes exchange of use case 4.1 of the KMIP 1.0 Use Cases; then every check
 * of the parser (lengths, types, padding, depth, item count, trailing bytes) on broken input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmip.h"
#include "ttlv.h"

/* Hex as the documents print it ("42 00 20 | 02 | ..."): anything but hex digits is skipped. */
static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v = *s >= '0' && *s <= '9'	 ? *s - '0'
			: *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
			: *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
						 : -1;

		if (v < 0)
			continue;
		if (hi < 0) {
			hi = v;
			continue;
		}
		assert_true(n < max);
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	assert_int_equal(hi, -1);
	return n;
}

static void assert_bytes(const uint8_t *got, size_t got_n, const char *want_hex)
{
	uint8_t want[2048];
	size_t n = unhex(want_hex, want, sizeof(want));

	if (got_n != n || memcmp(got, want, n) != 0) {
		fprintf(stderr, "got  %zu bytes: ", got_n);
		for (size_t i = 0; i < got_n; i++)
			fprintf(stderr, "%02X", got[i]);
		fprintf(stderr, "\nwant %zu bytes: %s\n", n, want_hex);
	}
	assert_int_equal(got_n, n);
	assert_memory_equal(got, want, n);
}

/* KMIP 1.4 section 9.1.2, the examples (tag 42 00 20 is Compromise Date, as there). */
static const struct {
	const char *what, *hex;
} spec_examples[] = {
	{"Integer 8", "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00"},
	{"Long Integer 123456789000000000",
	 "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00"},
	{"Big Integer 1234567890000000000000000000",
	 "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"},
	{"Enumeration 255", "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"},
	{"Boolean True", "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01"},
	{"Text String Hello World",
	 "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00"},
	{"Byte String 01 02 03", "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00"},
	{"Date-Time Fri, 14 Mar 2008 11:56:40 GMT",
	 "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8"},
	{"Interval 10 days", "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00"},
	{"Structure of an Enumeration 254 (420004) and an Integer 255 (420005)",
	 "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 |"
	 " 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"},
};

static void encode_example(struct ttlv_enc *e, size_t i)
{
	static const uint8_t bytes[] = {1, 2, 3};

	switch (i) {
	case 0:
		ttlv_int(e, 0x420020, 8);
		break;
	case 1:
		ttlv_long(e, 0x420020, 123456789000000000LL);
		break;
	case 2: /* no Big Integer writer: keyd never sends one */
		break;
	case 3:
		ttlv_enum(e, 0x420020, 255);
		break;
	case 4:
		ttlv_bool(e, 0x420020, true);
		break;
	case 5:
		ttlv_text(e, 0x420020, "Hello World");
		break;
	case 6:
		ttlv_bytes(e, 0x420020, bytes, sizeof(bytes));
		break;
	case 7:
		ttlv_datetime(e, 0x420020, 0x47DA67F8); /* 2008-03-14T11:56:40Z */
		break;
	case 8:
		ttlv_interval(e, 0x420020, 10 * 86400);
		break;
	case 9:
		ttlv_begin(e, 0x420020);
		ttlv_enum(e, 0x420004, 254);
		ttlv_int(e, 0x420005, 255);
		ttlv_end(e);
		break;
	}
}

static void test_spec_examples(void **state)
{
	static struct ttlv_doc doc;
	(void)state;

	for (size_t i = 0; i < sizeof(spec_examples) / sizeof(spec_examples[0]); i++) {
		uint8_t buf[64], want[64];
		struct ttlv_enc e;
		size_t n = 0, wn = unhex(spec_examples[i].hex, want, sizeof(want));
		struct error err;

		/* Encoding, byte for byte. */
		if (i != 2) {
			ttlv_enc_init(&e, buf, sizeof(buf));
			encode_example(&e, i);
			assert_int_equal(ttlv_finish(&e, &n), 0);
			assert_bytes(buf, n, spec_examples[i].hex);
		}
		/* Parsing: the value the document names. */
		if (ttlv_parse(want, wn, &doc, &err) < 0)
			fail_msg("%s: %s", spec_examples[i].what, err.msg);
		assert_int_equal(doc.items[0].tag, 0x420020);
		switch (i) {
		case 0:
		case 3:
			assert_int_equal(doc.items[0].num, i == 0 ? 8 : 255);
			break;
		case 1:
			assert_true(doc.items[0].num == 123456789000000000LL);
			break;
		case 2:
			assert_int_equal(doc.items[0].type, TTLV_BIG_INTEGER);
			assert_int_equal(doc.items[0].len, 16);
			break;
		case 4:
			assert_int_equal(doc.items[0].num, 1);
			break;
		case 5:
			assert_int_equal(doc.items[0].len, 11);
			assert_memory_equal(doc.items[0].value, "Hello World", 11);
			break;
		case 6:
			assert_int_equal(doc.items[0].len, 3);
			break;
		case 7:
			assert_int_equal(doc.items[0].num, 1205495800);
			break;
		case 8:
			assert_int_equal(doc.items[0].num, 864000);
			break;
		case 9: {
			const struct ttlv_item *a = ttlv_child(&doc, &doc.items[0], 0x420004),
					       *b = ttlv_child(&doc, &doc.items[0], 0x420005);

			assert_non_null(a);
			assert_non_null(b);
			assert_int_equal(a->type, TTLV_ENUM);
			assert_int_equal(a->num, 254);
			assert_int_equal(b->num, 255);
			assert_ptr_equal(ttlv_children(&doc, &doc.items[0], NULL), a);
			assert_ptr_equal(ttlv_children(&doc, &doc.items[0], a), b);
			assert_null(ttlv_children(&doc, &doc.items[0], b));
			break;
		}
		}
	}
}

/* KMIP 1.1 Test Cases, 3.1.1 "Discover Versions, no versions provided" and the variants that
 * offer versions, and the server's answer listing 1.1 and 1.0. */
static const char dv_request_none[] =
	"42007801000000604200770100000038420069010000002042006A0200000004000000010000000042006B02000000040"
	"00000010000000042000D0200000004000000010000000042000F010000001842005C05000000040000001E0000000042"
	"00790100000000";
static const char dv_request_v10[] =
	"42007801000000884200770100000038420069010000002042006A0200000004000000010000000042006B02000000040"
	"00000010000000042000D0200000004000000010000000042000F010000004042005C05000000040000001E0000000042"
	"00790100000028420069010000002042006A0200000004000000010000000042006B02000000040000000000000000";
static const char dv_response_v11_v10[] =
	"42007B01000000D042007A0100000048420069010000002042006A0200000004000000010000000042006B02000000040"
	"0000001000000004200920900000008000000004ED73ED742000D0200000004000000010000000042000F010000007842"
	"005C05000000040000001E0000000042007F0500000004000000000000000042007C01000000504200690100000020420"
	"06A0200000004000000010000000042006B02000000040000000100000000420069010000002042006A02000000040000"
	"00010000000042006B02000000040000000000000000";

static void test_discover_versions(void **state)
{
	static struct kmip_response r;
	struct kmip_header h = {.version = {1, 1}};
	struct kmip_version v10 = {1, 0}, got[KMIP_VERSIONS_MAX];
	uint8_t buf[512], reply[512];
	struct ttlv_enc e;
	struct error err;
	size_t n = 0;
	(void)state;

	ttlv_enc_init(&e, buf, sizeof(buf));
	kmip_req_discover_versions(&e, &h, NULL, 0);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	assert_bytes(buf, n, dv_request_none);

	ttlv_enc_init(&e, buf, sizeof(buf));
	kmip_req_discover_versions(&e, &h, &v10, 1);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	assert_bytes(buf, n, dv_request_v10);

	n = unhex(dv_response_v11_v10, reply, sizeof(reply));
	if (kmip_parse_response(reply, n, KMIP_OP_DISCOVER_VERSIONS, &r, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(r.version.major, 1);
	assert_int_equal(r.version.minor, 1);
	assert_int_equal(r.time_stamp, 0x4ED73ED7);
	assert_int_equal(r.operation, KMIP_OP_DISCOVER_VERSIONS);
	assert_int_equal(r.status, KMIP_STATUS_SUCCESS);
	assert_int_equal(kmip_resp_versions(&r, got, KMIP_VERSIONS_MAX, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].minor, 1);
	assert_int_equal(got[1].minor, 0);
	/* A reply to another operation is refused. */
	n = unhex(dv_response_v11_v10, reply, sizeof(reply));
	assert_int_equal(kmip_parse_response(reply, n, KMIP_OP_GET, &r, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "a reply to Discover Versions, not to Get"));
}

/* KMIP 1.0 Use Cases, 4.1 "Revoke scenario", step 2: Get Attributes (State) of a new key. */
#define UC41_UID "21d28b8a-06df-43c0-b72f-2a161633ada9"
static const char ga_request[] =
	"42007801000000A04200770100000038420069010000002042006A0200000004000000010000000042006B02000000040"
	"00000000000000042000D0200000004000000010000000042000F010000005842005C05000000040000000B0000000042"
	"00790100000040420094070000002432316432386238612D303664662D343363302D623732662D3261313631363333616"
	"461390000000042000A07000000055374617465000000";
static const char ga_response[] =
	"42007B01000000D842007A0100000048420069010000002042006A0200000004000000010000000042006B02000000040"
	"0000000000000004200920900000008000000004AFBED2B42000D0200000004000000010000000042000F010000008042"
	"005C05000000040000000B0000000042007F0500000004000000000000000042007C01000000584200940700000024323"
	"16432386238612D303664662D343363302D623732662D3261313631363333616461390000000042000801000000204200"
	"0A0700000005537461746500000042000B05000000040000000100000000";

static void test_get_attributes(void **state)
{
	static struct kmip_response r;
	static const char *const names[] = {"State", NULL};
	struct kmip_header h = {.version = {1, 0}};
	struct kmip_attrs a;
	uint8_t buf[512], reply[512];
	struct ttlv_enc e;
	struct error err;
	size_t n = 0;
	(void)state;

	ttlv_enc_init(&e, buf, sizeof(buf));
	kmip_req_get_attributes(&e, &h, UC41_UID, names);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	assert_bytes(buf, n, ga_request);

	n = unhex(ga_response, reply, sizeof(reply));
	if (kmip_parse_response(reply, n, KMIP_OP_GET_ATTRIBUTES, &r, &err) < 0)
		fail_msg("%s", err.msg);
	if (kmip_resp_attributes(&r, UC41_UID, &a, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(a.uid, UC41_UID);
	assert_true(a.has_state);
	assert_int_equal(a.state, KMIP_STATE_PRE_ACTIVE);
	assert_string_equal(kmip_state_name(a.state), "Pre-Active");
	assert_false(a.has_algorithm);
	assert_string_equal(a.replacement, "");
	/* About another object: refused. */
	assert_int_equal(kmip_resp_attributes(&r, "another-key", &a, &err), -EBADMSG);
}

/* A reply as a server writes it, for the checks below. */
static size_t reply_of(uint8_t *buf, size_t cap, uint32_t op, uint32_t status, uint32_t reason,
		       void (*payload)(struct ttlv_enc *e))
{
	struct ttlv_enc e;
	size_t n = 0;

	ttlv_enc_init(&e, buf, cap);
	ttlv_begin(&e, KMIP_TAG_RESPONSE_MESSAGE);
	ttlv_begin(&e, KMIP_TAG_RESPONSE_HEADER);
	ttlv_begin(&e, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_int(&e, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	ttlv_int(&e, KMIP_TAG_PROTOCOL_VERSION_MINOR, 4);
	ttlv_end(&e);
	ttlv_datetime(&e, KMIP_TAG_TIME_STAMP, 1700000000);
	ttlv_int(&e, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&e);
	ttlv_begin(&e, KMIP_TAG_BATCH_ITEM);
	ttlv_enum(&e, KMIP_TAG_OPERATION, op);
	ttlv_enum(&e, KMIP_TAG_RESULT_STATUS, status);
	if (reason) {
		ttlv_enum(&e, KMIP_TAG_RESULT_REASON, reason);
		ttlv_text(&e, KMIP_TAG_RESULT_MESSAGE, "Could not locate object: 7\n");
	}
	if (payload) {
		ttlv_begin(&e, KMIP_TAG_RESPONSE_PAYLOAD);
		payload(&e);
		ttlv_end(&e);
	}
	ttlv_end(&e);
	ttlv_end(&e);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	return n;
}

static const uint8_t key_bytes[32] = {0xAA, 0xBB, 0xCC};

static void get_payload(struct ttlv_enc *e)
{
	ttlv_enum(e, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
	ttlv_text(e, KMIP_TAG_UNIQUE_IDENTIFIER, "7");
	ttlv_begin(e, KMIP_TAG_SYMMETRIC_KEY);
	ttlv_begin(e, KMIP_TAG_KEY_BLOCK);
	ttlv_enum(e, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_FORMAT_RAW);
	ttlv_begin(e, KMIP_TAG_KEY_VALUE);
	ttlv_bytes(e, KMIP_TAG_KEY_MATERIAL, key_bytes, sizeof(key_bytes));
	ttlv_end(e);
	ttlv_enum(e, KMIP_TAG_CRYPTO_ALGORITHM, KMIP_ALGORITHM_AES);
	ttlv_int(e, KMIP_TAG_CRYPTO_LENGTH, 256);
	ttlv_end(e);
	ttlv_end(e);
}

static void attrs_payload(struct ttlv_enc *e)
{
	ttlv_text(e, KMIP_TAG_UNIQUE_IDENTIFIER, "7");
	ttlv_begin(e, KMIP_TAG_ATTRIBUTE);
	ttlv_text(e, KMIP_TAG_ATTRIBUTE_NAME, "State");
	ttlv_enum(e, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_STATE_DEACTIVATED);
	ttlv_end(e);
	ttlv_begin(e, KMIP_TAG_ATTRIBUTE);
	ttlv_text(e, KMIP_TAG_ATTRIBUTE_NAME, "Link");
	ttlv_begin(e, KMIP_TAG_ATTRIBUTE_VALUE);
	ttlv_enum(e, KMIP_TAG_LINK_TYPE, KMIP_LINK_REPLACEMENT);
	ttlv_text(e, KMIP_TAG_LINKED_OBJECT_ID, "8");
	ttlv_end(e);
	ttlv_end(e);
	ttlv_begin(e, KMIP_TAG_ATTRIBUTE);
	ttlv_text(e, KMIP_TAG_ATTRIBUTE_NAME, "x-something-else");
	ttlv_text(e, KMIP_TAG_ATTRIBUTE_VALUE, "ignored");
	ttlv_end(e);
}

static void test_replies(void **state)
{
	static struct kmip_response r;
	struct kmip_attrs a;
	uint8_t buf[1024];
	const uint8_t *key;
	struct error err;
	uint32_t alg;
	size_t n, len;
	(void)state;

	n = reply_of(buf, sizeof(buf), KMIP_OP_GET, KMIP_STATUS_SUCCESS, 0, get_payload);
	assert_int_equal(kmip_parse_response(buf, n, KMIP_OP_GET, &r, &err), 0);
	assert_int_equal(kmip_resp_key(&r, "7", &key, &len, &alg, &err), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(key, key_bytes, 32);
	assert_true(key >= buf && key < buf + n); /* in the caller's (secure) buffer */
	assert_int_equal(alg, KMIP_ALGORITHM_AES);
	assert_int_equal(kmip_resp_key(&r, "8", &key, &len, &alg, &err), -EBADMSG);

	n = reply_of(buf, sizeof(buf), KMIP_OP_GET_ATTRIBUTES, KMIP_STATUS_SUCCESS, 0,
		     attrs_payload);
	assert_int_equal(kmip_parse_response(buf, n, KMIP_OP_GET_ATTRIBUTES, &r, &err), 0);
	assert_int_equal(kmip_resp_attributes(&r, "7", &a, &err), 0);
	assert_int_equal(a.state, KMIP_STATE_DEACTIVATED);
	assert_string_equal(a.replacement, "8");

	/* A failure: status, reason and the server's words (made printable). */
	n = reply_of(buf, sizeof(buf), KMIP_OP_GET, KMIP_STATUS_FAILED, KMIP_REASON_ITEM_NOT_FOUND,
		     NULL);
	assert_int_equal(kmip_parse_response(buf, n, KMIP_OP_GET, &r, &err), 0);
	assert_int_equal(r.status, KMIP_STATUS_FAILED);
	assert_int_equal(r.reason, KMIP_REASON_ITEM_NOT_FOUND);
	assert_string_equal(r.message, "Could not locate object: 7?");
	assert_string_equal(kmip_reason_name(r.reason), "Item Not Found");
	/* Success without a payload is malformed. */
	n = reply_of(buf, sizeof(buf), KMIP_OP_GET, KMIP_STATUS_SUCCESS, 0, NULL);
	assert_int_equal(kmip_parse_response(buf, n, KMIP_OP_GET, &r, &err), -EBADMSG);
}

/* ttlv_parse on SRC with one byte (at OFFSET) replaced: must fail with WANT and a reason. */
static void expect_broken(const char *hex, size_t offset, int byte, int want, const char *why)
{
	static struct ttlv_doc doc;
	uint8_t buf[256];
	size_t n = unhex(hex, buf, sizeof(buf));
	struct error err;

	if (byte >= 0)
		buf[offset] = (uint8_t)byte;
	else
		n = offset; /* truncate */
	assert_int_equal(ttlv_parse(buf, n, &doc, &err), want);
	if (!strstr(err.msg, why))
		fail_msg("error '%s' lacks '%s'", err.msg, why);
}

static void test_parser_checks(void **state)
{
	const char *integer = spec_examples[0].hex, *text = spec_examples[5].hex,
		   *boolean = spec_examples[4].hex, *structure = spec_examples[9].hex;
	(void)state;

	expect_broken(integer, 7, 0x05, -EBADMSG, "Integer of 5 bytes, not 4");
	expect_broken(integer, 3, 0x0B, -EBADMSG, "unknown item type 0x0B");
	expect_broken(integer, 3, 0x00, -EBADMSG, "unknown item type 0x00");
	expect_broken(integer, 0, 0x43, -EBADMSG, "outside KMIP's ranges");
	expect_broken(integer, 15, 0x01, -EBADMSG, "padding bytes are not zero");
	expect_broken(integer, 12, -1, -EBADMSG, "runs past its enclosing item");
	expect_broken(integer, 5, -1, -EBADMSG, "shorter than one item");
	expect_broken(text, 7, 0x20, -EBADMSG, "runs past its enclosing item");
	expect_broken(text, 9, 0x00, -EBADMSG, "Text String with a NUL byte");
	expect_broken(boolean, 15, 0x02, -EBADMSG, "Boolean neither 0 nor 1");
	/* A structure whose length does not match its children. */
	expect_broken(structure, 7, 0x18, -EBADMSG, "runs past its enclosing item");
	expect_broken(structure, 7, 0x1C, -EBADMSG, "structure length 28 not a multiple of 8");
	/* A known tag of the wrong type: Unique Identifier (420094) as an Integer. */
	expect_broken("42 00 94 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00", 0, 0x42, -EBADMSG,
		      "Unique Identifier (0x420094): type Integer, expected Text String");
}

static void test_limits(void **state)
{
	static struct ttlv_doc doc;
	static uint8_t buf[TTLV_MSG_MAX + 16];
	struct ttlv_enc e;
	struct error err;
	size_t n = 0;
	(void)state;

	/* Nesting: TTLV_DEPTH_MAX structures in each other is one too many to parse. */
	memset(buf, 0, sizeof(buf));
	ttlv_enc_init(&e, buf, sizeof(buf));
	for (int i = 0; i < TTLV_DEPTH_MAX; i++)
		ttlv_begin(&e, 0x420020);
	for (int i = 0; i < TTLV_DEPTH_MAX; i++)
		ttlv_end(&e);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	assert_int_equal(ttlv_parse(buf, n, &doc, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "TTLV_DEPTH_MAX"));
	/* ... and the encoder refuses to nest deeper than it can. */
	ttlv_enc_init(&e, buf, sizeof(buf));
	for (int i = 0; i <= TTLV_DEPTH_MAX; i++)
		ttlv_begin(&e, 0x420020);
	assert_int_equal(ttlv_finish(&e, &n), -E2BIG);

	/* More items than TTLV_ITEMS_MAX. */
	ttlv_enc_init(&e, buf, sizeof(buf));
	ttlv_begin(&e, 0x420020);
	for (int i = 0; i < TTLV_ITEMS_MAX; i++)
		ttlv_int(&e, 0x420005, i);
	ttlv_end(&e);
	assert_int_equal(ttlv_finish(&e, &n), 0);
	assert_int_equal(ttlv_parse(buf, n, &doc, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "TTLV_ITEMS_MAX"));

	/* A value longer than TTLV_VALUE_MAX is neither written nor read. */
	ttlv_enc_init(&e, buf, sizeof(buf));
	ttlv_bytes(&e, 0x420020, buf, TTLV_VALUE_MAX + 1);
	assert_int_equal(ttlv_finish(&e, &n), -EINVAL);
	unhex("42 00 20 | 08 | 00 00 40 08", buf, 8);
	assert_int_equal(ttlv_parse(buf, 8 + TTLV_VALUE_MAX + 8, &doc, &err), -E2BIG);
	/* A message larger than TTLV_MSG_MAX, bytes after the message, a buffer too small. */
	assert_int_equal(ttlv_parse(buf, TTLV_MSG_MAX + 8, &doc, &err), -E2BIG);
	n = unhex(spec_examples[0].hex, buf, sizeof(buf));
	assert_int_equal(ttlv_parse(buf, n + 8, &doc, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "bytes after the message"));
	ttlv_enc_init(&e, buf, 20);
	ttlv_text(&e, 0x420020, "Hello World");
	assert_int_equal(ttlv_finish(&e, &n), -E2BIG);
	/* A structure left open, or closed twice. */
	ttlv_enc_init(&e, buf, 64);
	ttlv_begin(&e, 0x420020);
	assert_int_equal(ttlv_finish(&e, &n), -EINVAL);
	ttlv_end(&e);
	ttlv_end(&e);
	assert_int_equal(ttlv_finish(&e, &n), -EINVAL);
}

static void test_uid(void **state)
{
	char longer[KMIP_UID_MAX + 2];
	(void)state;

	assert_true(kmip_uid_valid("1"));
	assert_true(kmip_uid_valid(UC41_UID));
	assert_false(kmip_uid_valid(""));
	assert_false(kmip_uid_valid("a b"));
	assert_false(kmip_uid_valid("a\nb"));
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	assert_false(kmip_uid_valid(longer));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_examples),
		cmocka_unit_test(test_discover_versions),
		cmocka_unit_test(test_get_attributes),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_parser_checks),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_uid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
