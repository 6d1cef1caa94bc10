// SPDX-License-Identifier: GPL-2.0-or-later
/* The event endpoint's checks one by one: signature, freshness, CIDR allow-list, replay cache,
 * lockout timing (the clock is a parameter), config and event schema refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "callback_auth.h"
#include "callback_config.h"
#include "event.h"
#include "secmem.h"

#define S 1000000ULL /* one second in µs */

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET_LEN 32

static struct sockaddr_storage sa4(const char *ip)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage sa6(const char *ip)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

	a->sin6_family = AF_INET6;
	a->sin6_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_signature(void **state)
{
	/* Computed independently: python3 hmac.new(secret, b"1700000000." + body, sha256). */
	static const char *const want =
		"sha256=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c19";
	const char *body = "{\"id\":\"e1\"}";
	size_t n = strlen(body);
	char sig[80], bad[80];

	(void)state;
	assert_int_equal(callback_signature_make(secret, SECRET_LEN, "1700000000", body, n, sig,
						 sizeof(sig)),
			 0);
	assert_string_equal(sig, want);
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n, sig),
			 0);

	/* Upper-case hex is the same MAC. */
	strcpy(bad, want);
	for (char *p = bad + 7; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n, bad),
			 0);

	/* A difference in the first or only in the last byte is refused alike: the compare runs
	 * over the whole MAC (CRYPTO_memcmp), not up to the first difference. */
	strcpy(bad, want);
	bad[7] = bad[7] == '0' ? '1' : '0';
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n, bad),
			 -EBADMSG);
	strcpy(bad, want);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n, bad),
			 -EBADMSG);

	/* What the MAC covers: timestamp, body, secret. */
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000001", body, n, want),
			 -EBADMSG);
	assert_int_equal(
		callback_signature_check(secret, SECRET_LEN, "1700000000", body, n - 1, want),
		-EBADMSG);
	assert_int_equal(
		callback_signature_check((const uint8_t *)"another secret, 32 bytes long..",
					 SECRET_LEN, "1700000000", body, n, want),
		-EBADMSG);

	/* Malformed values. */
	static const char *const malformed[] = {
		"",
		"sha256=",
		"sha1=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c19",
		"SHA256=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c19",
		"sha256=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c1",
		"sha256=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c190",
		"sha256=fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c1g",
		"sha256= fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c1",
		"fcadad38dca12940650f9081af7453dbfe592646a13009e74c1041db9ecc7c19",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n,
							  malformed[i]),
				 -EBADMSG);

	/* Unsigned. */
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, NULL, body, n, want),
			 -ENOKEY);
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1700000000", body, n, NULL),
			 -ENOKEY);

	/* An empty body is signed too. */
	assert_int_equal(callback_signature_make(secret, SECRET_LEN, "1", "", 0, sig, sizeof(sig)),
			 0);
	assert_int_equal(callback_signature_check(secret, SECRET_LEN, "1", "", 0, sig), 0);
	assert_int_equal(callback_signature_make(secret, SECRET_LEN, "1", "", 0, sig, 71),
			 -ENOBUFS);
}

static void test_timestamp(void **state)
{
	uint64_t t = 0;

	(void)state;
	assert_int_equal(callback_timestamp_check("1000", 1000, 300, &t), 0);
	assert_int_equal(t, 1000);
	assert_int_equal(callback_timestamp_check("700", 1000, 300, &t), 0);
	assert_int_equal(callback_timestamp_check("1300", 1000, 300, &t), 0);
	assert_int_equal(callback_timestamp_check("699", 1000, 300, &t), -ETIME);
	assert_int_equal(callback_timestamp_check("1301", 1000, 300, &t), -ETIME);
	assert_int_equal(callback_timestamp_check("0", 1000, 300, &t), -ETIME);
	assert_int_equal(callback_timestamp_check("18446744073709551615", 1000, 300, &t), -ETIME);

	static const char *const bad[] = {"",
					  "-5",
					  "+5",
					  " 1000",
					  "1000 ",
					  "10a0",
					  "1e3",
					  "1000.0",
					  "184467440737095516150",
					  "18446744073709551616"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (callback_timestamp_check(bad[i], 1000, 300, &t) != -EINVAL)
			fail_msg("timestamp \"%s\" was not refused as malformed", bad[i]);
	}
	assert_int_equal(callback_timestamp_check(NULL, 1000, 300, &t), -EINVAL);
}

static void test_cidr_parse(void **state)
{
	static const struct {
		const char *s;
		int family;
		unsigned prefix;
	} good[] = {
		{"10.0.0.0/8", AF_INET, 8},	    {"0.0.0.0/0", AF_INET, 0},
		{"192.0.2.1/32", AF_INET, 32},	    {"192.0.2.1", AF_INET, 32},
		{"192.0.2.0/31", AF_INET, 31},	    {"::/0", AF_INET6, 0},
		{"::1/128", AF_INET6, 128},	    {"::1", AF_INET6, 128},
		{"2001:db8::/32", AF_INET6, 32},    {"fe80::/10", AF_INET6, 10},
		{"2001:db8::1/128", AF_INET6, 128},
	};
	static const char *const bad[] = {
		"",
		"/8",
		"10.0.0.0/",
		"10.0.0.0/33",
		"10.0.0.1/8",
		"::1/129",
		"::1/127",
		"10.0.0.0/+8",
		"10.0.0.0/-1",
		"10.0.0.0/8/8",
		"10.0.0.0 /8",
		"10.0.0.0/ 8",
		"10.0.0.0/8x",
		"10.0.0/8",
		"256.0.0.0/8",
		"fe80::1%eth0",
		"localhost",
		"::ffff:10.0.0.0/104",
		"::ffff:10.1.2.3",
		"0.0.0.1/0",
		"2001:db8::1/32",
	};
	struct callback_cidr c;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (callback_cidr_parse(good[i].s, &c) != 0)
			fail_msg("\"%s\" refused", good[i].s);
		assert_int_equal(c.family, good[i].family);
		assert_int_equal(c.prefix, good[i].prefix);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (callback_cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("\"%s\" accepted as a CIDR", bad[i]);
}

static bool match(const char *cidr, struct sockaddr_storage ss)
{
	struct callback_cidr c;

	assert_int_equal(callback_cidr_parse(cidr, &c), 0);
	return callback_cidr_match(&c, SA(ss));
}

static void test_cidr_match(void **state)
{
	(void)state;
	assert_true(match("10.0.0.0/8", sa4("10.1.2.3")));
	assert_true(match("10.0.0.0/8", sa4("10.255.255.255")));
	assert_false(match("10.0.0.0/8", sa4("11.0.0.0")));
	assert_false(match("10.0.0.0/8", sa4("9.255.255.255")));
	/* /0 takes every address of its family, and only of its family. */
	assert_true(match("0.0.0.0/0", sa4("203.0.113.9")));
	assert_false(match("0.0.0.0/0", sa6("2001:db8::1")));
	assert_true(match("::/0", sa6("2001:db8::1")));
	assert_false(match("::/0", sa4("127.0.0.1")));
	/* Host routes. */
	assert_true(match("192.0.2.1/32", sa4("192.0.2.1")));
	assert_false(match("192.0.2.1/32", sa4("192.0.2.0")));
	assert_true(match("::1/128", sa6("::1")));
	assert_false(match("::1/128", sa6("::2")));
	/* Prefixes that end inside a byte. */
	assert_true(match("192.0.2.0/31", sa4("192.0.2.1")));
	assert_false(match("192.0.2.0/31", sa4("192.0.2.2")));
	assert_true(match("fe80::/10", sa6("febf::1")));
	assert_false(match("fe80::/10", sa6("fec0::1")));
	assert_true(match("172.16.0.0/12", sa4("172.31.255.255")));
	assert_false(match("172.16.0.0/12", sa4("172.32.0.0")));
	/* An IPv4 peer on a dual-stack socket looks like ::ffff:a.b.c.d. */
	assert_true(match("10.0.0.0/8", sa6("::ffff:10.1.2.3")));
	assert_false(match("10.0.0.0/8", sa6("::ffff:11.1.2.3")));
	assert_false(match("::/0", sa6("::ffff:10.1.2.3")));
}

static int parse(const char *json, struct callback_config **c, struct error *e)
{
	json_auto_t *o = json_loads(json, 0, NULL);

	assert_non_null(o);
	return callback_config_parse(o, "callback", c, e);
}

#define BASE                                                                                       \
	"\"listen\": \"127.0.0.1:8443\", \"cert_file\": \"/etc/keyd/cb.pem\", "                    \
	"\"key_file\": \"/etc/keyd/cb.key\", \"hmac_secret_file\": \"callback.secret\""

static void test_config(void **state)
{
	static const struct {
		const char *json, *err;
	} bad[] = {
		{"{" BASE ", \"colour\": 1}", "callback.colour: unknown key"},
		{"{\"cert_file\": \"/a\", \"key_file\": \"/b\", \"hmac_secret_file\": \"/c\"}",
		 "callback.listen: missing"},
		{"{\"listen\": \"127.0.0.1:8443\", \"cert_file\": \"/a\", \"key_file\": \"/b\"}",
		 "callback.hmac_secret_file: missing"},
		{"{" BASE ", \"allow\": [\"10.0.0.0/8\", \"10.0.0.1/8\"]}", "callback.allow[1]: "},
		{"{" BASE ", \"allow\": [\"::1/129\"]}", "callback.allow[0]: "},
		{"{" BASE ", \"allow\": [\"example.com\"]}", "callback.allow[0]: "},
		{"{" BASE ", \"allow\": [8]}", "callback.allow[0]: "},
		{"{" BASE ", \"allow\": []}", "callback.allow: must not be empty"},
		{"{" BASE ", \"allow\": \"10.0.0.0/8\"}", "callback.allow: must be an array"},
		{"{" BASE ", \"lockout\": {\"failures\": 5, \"forever\": true}}",
		 "callback.lockout.forever: unknown key"},
		{"{" BASE ", \"lockout\": {\"failures\": 0}}",
		 "callback.lockout.failures: must be"},
		{"{" BASE ", \"max_body_bytes\": 2000000}", "callback.max_body_bytes: must be"},
		{"{" BASE ", \"replay_window_s\": 0}", "callback.replay_window_s: must be"},
		{"{" BASE ", \"request_timeout_s\": 0}", "callback.request_timeout_s: must be"},
		{"{" BASE ", \"request_timeout_s\": 301}", "callback.request_timeout_s: must be"},
		{"{" BASE ", \"max_connections\": 0}", "callback.max_connections: must be"},
		{"{" BASE ", \"max_connections\": 1025}", "callback.max_connections: must be"},
		{"{" BASE ", \"max_connections\": 4, \"max_connections_per_source\": 5}",
		 "callback.max_connections_per_source: must not exceed max_connections (4)"},
		{"{" BASE ", \"client_ca_file\": \"ca.pem\"}",
		 "callback.client_ca_file: must be an absolute path"},
		{"{\"listen\": \"localhost:8443\", \"cert_file\": \"/a\", \"key_file\": \"/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.listen: \"localhost:8443\" must be"},
		{"{\"listen\": \"::1:8443\", \"cert_file\": \"/a\", \"key_file\": \"/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.listen:"},
		{"{\"listen\": \"127.0.0.1:65536\", \"cert_file\": \"/a\", \"key_file\": \"/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.listen:"},
		{"{\"listen\": \"127.0.0.1\", \"cert_file\": \"/a\", \"key_file\": \"/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.listen:"},
		{"{\"listen\": \"127.0.0.1:8443\", \"cert_file\": \"a.pem\", \"key_file\": \"/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.cert_file: must be an absolute path"},
		{"{\"listen\": \"127.0.0.1:8443\", \"cert_file\": \"/a\", \"key_file\": \"x/b\", "
		 "\"hmac_secret_file\": \"/c\"}",
		 "callback.key_file: must be an absolute path or a systemd credential name"},
		{"[]", "callback: must be an object"},
	};
	struct callback_config *c = NULL;
	struct sockaddr_storage lo4 = sa4("127.0.0.1"), lo4b = sa4("127.8.9.10"), lo6 = sa6("::1"),
				ext = sa4("10.1.2.3"), ext6 = sa6("2001:db8::1"),
				mapped = sa6("::ffff:127.0.0.1");
	struct error e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		if (parse(bad[i].json, &c, &e) != -EINVAL || !strstr(e.msg, bad[i].err))
			fail_msg("config %s: expected error \"%s\", got \"%s\"", bad[i].json,
				 bad[i].err, e.msg);
	}

	/* Loopback only by default; the connection limits of docs/callback.md. */
	assert_int_equal(parse("{" BASE "}", &c, &e), 0);
	assert_int_equal(c->request_timeout_s, 10);
	assert_int_equal(c->max_connections, 64);
	assert_int_equal(c->max_connections_per_source, 8);
	assert_true(callback_config_allows(c, SA(lo4)));
	assert_true(callback_config_allows(c, SA(lo4b)));
	assert_true(callback_config_allows(c, SA(lo6)));
	assert_true(callback_config_allows(c, SA(mapped)));
	assert_false(callback_config_allows(c, SA(ext)));
	assert_false(callback_config_allows(c, SA(ext6)));
	callback_config_free(c);

	/* Everything given. */
	assert_int_equal(
		parse("{\"listen\": \"[::1]:0\", \"cert_file\": \"/a\", \"key_file\": "
		      "\"/b\", \"client_ca_file\": \"/ca\", \"hmac_secret_file\": \"/c\", "
		      "\"allow\": [\"10.0.0.0/8\", \"2001:db8::/32\"], \"max_body_bytes\": "
		      "4096, \"replay_window_s\": 60, \"lockout\": {\"failures\": 3, "
		      "\"window_s\": 10, \"duration_s\": 20}, \"request_timeout_s\": 5, "
		      "\"max_connections\": 100, \"max_connections_per_source\": 100}",
		      &c, &e),
		0);
	assert_int_equal(c->request_timeout_s, 5);
	assert_int_equal(c->max_connections, 100);
	assert_int_equal(c->max_connections_per_source, 100);
	assert_true(callback_config_allows(c, SA(ext)));
	assert_true(callback_config_allows(c, SA(ext6)));
	assert_false(callback_config_allows(c, SA(lo4)));
	callback_config_free(c);
}

static void test_replay(void **state)
{
	struct callback_replay *r;

	(void)state;
	assert_int_equal(callback_replay_new(0, &r), -EINVAL);
	assert_int_equal(callback_replay_new(3, &r), 0);
	assert_false(callback_replay_seen(r, "a", 100));
	assert_int_equal(callback_replay_add(r, "a", 400), 0);
	assert_int_equal(callback_replay_add(r, "b", 401), 0);
	assert_int_equal(callback_replay_add(r, "c", 402), 0);
	assert_true(callback_replay_seen(r, "a", 100));
	assert_true(callback_replay_seen(r, "c", 402));
	/* Its validity over, an id may come again. */
	assert_false(callback_replay_seen(r, "c", 403));

	/* Full: the oldest goes first. */
	assert_int_equal(callback_replay_add(r, "d", 403), 0);
	assert_false(callback_replay_seen(r, "a", 100));
	assert_true(callback_replay_seen(r, "b", 100));
	assert_true(callback_replay_seen(r, "d", 100));
	assert_int_equal(callback_replay_add(r, "e", 404), 0);
	assert_false(callback_replay_seen(r, "b", 100));
	assert_true(callback_replay_seen(r, "c", 100));

	/* Recording an id again extends it and takes no new slot. */
	assert_int_equal(callback_replay_add(r, "c", 900), 0);
	assert_true(callback_replay_seen(r, "c", 800));
	assert_true(callback_replay_seen(r, "d", 100));
	assert_true(callback_replay_seen(r, "e", 100));

	char longid[KEY_EVENT_ID_MAX + 2];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	assert_int_equal(callback_replay_add(r, longid, 1), -EINVAL);
	assert_int_equal(callback_replay_add(r, "", 1), -EINVAL);
	longid[KEY_EVENT_ID_MAX] = 0;
	assert_int_equal(callback_replay_add(r, longid, 1000), 0);
	assert_true(callback_replay_seen(r, longid, 999));
	callback_replay_free(r);
}

static void test_lockout(void **state)
{
	const struct callback_lockout_policy p = {
		.failures = 3, .window_us = 60 * S, .duration_us = 300 * S};
	struct sockaddr_storage a = sa4("192.0.2.1"), a6 = sa6("::ffff:192.0.2.1"),
				b = sa4("192.0.2.2"), c = sa6("2001:db8::3");
	const uint64_t t0 = 1000 * S;
	struct callback_lockout *l;

	(void)state;
	assert_int_equal(callback_lockout_new(&p, 8, &l), 0);

	/* N failures within the window lock the source out for the duration, to the µs. */
	assert_false(callback_lockout_fail(l, SA(a), NULL, t0));
	assert_false(callback_lockout_fail(l, SA(a), NULL, t0 + 1 * S));
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 1 * S), 0);
	assert_true(callback_lockout_fail(l, SA(a), NULL, t0 + 2 * S));
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 2 * S), 300 * S);
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 301 * S), 1 * S);
	/* The same host through a dual-stack socket. */
	assert_int_equal(callback_lockout_remaining(l, SA(a6), NULL, t0 + 301 * S), 1 * S);
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 302 * S), 0);
	/* Others are not affected. */
	assert_int_equal(callback_lockout_remaining(l, SA(b), NULL, t0 + 2 * S), 0);

	/* After expiry the count starts from zero. */
	assert_false(callback_lockout_fail(l, SA(a), NULL, t0 + 400 * S));
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 400 * S), 0);

	/* Failures spread wider than the window do not add up. */
	assert_false(callback_lockout_fail(l, SA(b), NULL, t0));
	assert_false(callback_lockout_fail(l, SA(b), NULL, t0 + 30 * S));
	assert_false(callback_lockout_fail(l, SA(b), NULL, t0 + 61 * S)); /* new window: 1 */
	assert_false(callback_lockout_fail(l, SA(b), NULL, t0 + 62 * S)); /* 2 */
	assert_true(callback_lockout_fail(l, SA(b), NULL, t0 + 63 * S));  /* 3 */

	/* An authenticated request clears the count. */
	assert_false(callback_lockout_fail(l, SA(c), NULL, t0));
	assert_false(callback_lockout_fail(l, SA(c), NULL, t0 + 1));
	callback_lockout_success(l, SA(c), NULL);
	assert_false(callback_lockout_fail(l, SA(c), NULL, t0 + 2));
	assert_false(callback_lockout_fail(l, SA(c), NULL, t0 + 3));
	assert_true(callback_lockout_fail(l, SA(c), NULL, t0 + 4));

	/* Failures without a verified certificate never lock out the same address's client that
	 * proved one, and the other way round. */
	{
		struct sockaddr_storage d = sa4("192.0.2.9");
		uint8_t cert[CALLBACK_LOCKOUT_ID_LEN];

		memset(cert, 0xc5, sizeof(cert));
		assert_true(callback_lockout_remaining(l, SA(c), NULL, t0 + 4) > 0);
		assert_int_equal(callback_lockout_remaining(l, SA(c), cert, t0 + 4), 0);
		for (int i = 0; i < 2; i++)
			assert_false(callback_lockout_fail(l, SA(d), cert, t0 + 100 * S));
		assert_true(callback_lockout_fail(l, SA(d), cert, t0 + 100 * S));
		assert_true(callback_lockout_remaining(l, SA(d), cert, t0 + 100 * S) > 0);
		assert_int_equal(callback_lockout_remaining(l, SA(d), NULL, t0 + 100 * S), 0);
	}
	callback_lockout_free(l);

	/* A full table gives up an idle source, never one that is locked out. */
	const struct callback_lockout_policy p1 = {
		.failures = 1, .window_us = 60 * S, .duration_us = 300 * S};
	const struct callback_lockout_policy p2 = {
		.failures = 2, .window_us = 60 * S, .duration_us = 300 * S};
	assert_int_equal(callback_lockout_new(&p1, 2, &l), 0);
	assert_true(callback_lockout_fail(l, SA(a), NULL, t0));
	assert_true(callback_lockout_fail(l, SA(b), NULL, t0 + 1));
	/* All locked out: the lockout that ends first is given up. */
	assert_true(callback_lockout_fail(l, SA(c), NULL, t0 + 2));
	assert_int_equal(callback_lockout_remaining(l, SA(a), NULL, t0 + 3), 0);
	assert_true(callback_lockout_remaining(l, SA(b), NULL, t0 + 3) > 0);
	assert_true(callback_lockout_remaining(l, SA(c), NULL, t0 + 3) > 0);
	callback_lockout_free(l);
	assert_int_equal(callback_lockout_new(&p2, 2, &l), 0);
	assert_false(callback_lockout_fail(l, SA(a), NULL, t0));
	assert_true(callback_lockout_fail(l, SA(a), NULL, t0 + 1)); /* a locked */
	assert_false(callback_lockout_fail(l, SA(b), NULL, t0 + 2));
	assert_false(callback_lockout_fail(l, SA(c), NULL, t0 + 3)); /* evicts b, not a */
	assert_true(callback_lockout_remaining(l, SA(a), NULL, t0 + 4) > 0);
	callback_lockout_free(l);
}

static int event_parse(const char *json, struct key_event *ev, struct error *e)
{
	json_auto_t *o = json_loads(json, 0, NULL);

	assert_non_null(o);
	return key_event_from_json(o, ev, e);
}

static void test_schema(void **state)
{
	static const struct {
		const char *json, *err;
	} bad[] = {
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\","
		 "\"extra\":1}",
		 "event.extra: unknown key"},
		{"{\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.id: missing"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.key_id: missing"},
		{"{\"id\":\"e\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.type: missing"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\"}", "event.time: missing"},
		{"{\"id\":\"e\",\"type\":\"revoke\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.type: must be one of"},
		{"{\"id\":\"e\",\"type\":\"Rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.type: must be one of"},
		{"{\"id\":\"e f\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.id: must be visible ASCII"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\\n\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.key_id: must be visible ASCII"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":7,\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.key_id: must be a string"},
		{"{\"id\":\"\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.id: must not be empty"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"kms\":\"a/b\",\"key_id\":\"k\","
		 "\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.kms: must be"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"key_version\":\"1 2\","
		 "\"time\":\"2025-03-04T09:12:44Z\"}",
		 "event.key_version: must be visible ASCII"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04 09:12:44Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-13-04T09:12:44Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-02-29T09:12:44Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T24:00:00Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44.Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Zx\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"1969-12-31T23:59:59Z\"}",
		 "event.time: must be an RFC 3339"},
		{"{\"id\":\"e\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":1741079564}",
		 "event.time: must be a string"},
	};
	struct key_event ev;
	struct error e;
	char json[1024], longid[KEY_EVENT_ID_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		if (event_parse(bad[i].json, &ev, &e) != -EINVAL || !strstr(e.msg, bad[i].err))
			fail_msg("event %s: expected error \"%s\", got \"%s\"", bad[i].json,
				 bad[i].err, e.msg);
	}

	/* Lengths capped per event.h. */
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	snprintf(
		json, sizeof(json),
		"{\"id\":\"%s\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		longid);
	assert_int_equal(event_parse(json, &ev, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "event.id: longer than 128"));
	longid[KEY_EVENT_ID_MAX] = 0;
	snprintf(
		json, sizeof(json),
		"{\"id\":\"%s\",\"type\":\"rotate\",\"key_id\":\"k\",\"time\":\"2025-03-04T09:12:44Z\"}",
		longid);
	assert_int_equal(event_parse(json, &ev, &e), 0);
	assert_string_equal(ev.id, longid);

	/* All members. */
	assert_int_equal(
		event_parse("{\"id\":\"ev-1\",\"type\":\"suspend\",\"kms\":\"kp-us-south\","
			    "\"key_id\":\"8a1e-22\",\"key_version\":\"v3\","
			    "\"time\":\"2025-03-04T10:12:44.5+01:00\"}",
			    &ev, &e),
		0);
	assert_int_equal(ev.type, KEY_EVENT_DISABLE);
	assert_string_equal(ev.id, "ev-1");
	assert_string_equal(ev.kms, "kp-us-south");
	assert_string_equal(ev.key_id, "8a1e-22");
	assert_string_equal(ev.key_version, "v3");
	assert_true(ev.time_us == 1741079564ULL * S + 500000);

	/* Optional members left out; a leap day; lower-case t and z. */
	assert_int_equal(event_parse("{\"id\":\"e\",\"type\":\"destroy\",\"key_id\":\"k\","
				     "\"time\":\"2024-02-29t00:00:00.123456789z\"}",
				     &ev, &e),
			 0);
	assert_int_equal(ev.type, KEY_EVENT_DELETE);
	assert_string_equal(ev.kms, "");
	assert_string_equal(ev.key_version, "");
	assert_true(ev.time_us == 1709164800ULL * S + 123456);
}

static void test_event_types(void **state)
{
	static const struct {
		const char *s;
		enum key_event_type t;
	} words[] = {
		{"rotate", KEY_EVENT_ROTATE},	{"disable", KEY_EVENT_DISABLE},
		{"suspend", KEY_EVENT_DISABLE}, {"enable", KEY_EVENT_ENABLE},
		{"delete", KEY_EVENT_DELETE},	{"destroy", KEY_EVENT_DELETE},
		{"restore", KEY_EVENT_RESTORE},
	};
	enum key_event_type t;

	(void)state;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		assert_int_equal(key_event_type_from_string(words[i].s, &t), 0);
		assert_int_equal(t, words[i].t);
	}
	assert_int_equal(key_event_type_from_string("revoke", &t), -EINVAL);
	assert_int_equal(key_event_type_from_string("", &t), -EINVAL);
	assert_int_equal(key_event_type_from_string(NULL, &t), -EINVAL);
	for (int i = 0; i < _KEY_EVENT_TYPE_MAX; i++) {
		assert_non_null(key_event_type_names[i]);
		assert_int_equal(key_event_type_from_string(key_event_type_names[i], &t), 0);
		assert_int_equal(t, i);
	}
	assert_null(key_event_type_names[_KEY_EVENT_TYPE_MAX]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature),   cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_cidr_parse),  cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_config),	    cmocka_unit_test(test_replay),
		cmocka_unit_test(test_lockout),	    cmocka_unit_test(test_schema),
		cmocka_unit_test(test_event_types),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
