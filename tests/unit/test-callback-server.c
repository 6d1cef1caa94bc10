// SPDX-License-Identifier: GPL-2.0-or-later
/* The event endpoint over real TLS on 127.0.0.1: the listener runs on this process's event
 * loop while tests/callback-send.py (a control plane's side) sends signed, forged, replayed,
 * expired, oversized and unsigned requests. Asserts what reached the handler and what the
 * audit log says. Certificates are made here with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "callback.h"
#include "secmem.h"

#define PY		"/usr/bin/python3"
#define EVENTS_MAX	16
#define OUT_MAX		8192
#define CHILD_TIMEOUT_S 15

static char dir[] = "/tmp/keyd-callback.XXXXXX";
static char script[4096];
static struct event_base *base;
static struct audit *audit;

/* What the handler saw, and what it answers next. */
static struct key_event got[EVENTS_MAX];
static size_t n_got;
static int handler_result;

static int on_event(void *userdata, const struct key_event *ev, char *msg, size_t msgsize)
{
	(void)userdata;
	if (n_got < EVENTS_MAX)
		got[n_got++] = *ev;
	if (handler_result < 0) {
		snprintf(msg, msgsize, "test handler fails with %d", handler_result);
		return handler_result;
	}
	snprintf(msg, msgsize, "rewrap started");
	return 0;
}

static void path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static FILE *open_private(const char *name)
{
	char p[512];
	int fd;

	path_in(p, sizeof(p), name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	return fdopen(fd, "w");
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A P-256 key and a certificate for it, signed by @issuer (self-signed when NULL). */
static X509 *make_cert(EVP_PKEY **key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       const char *san, const char *eku)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509V3_CTX ctx;

	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, *key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC,
				   (const unsigned char *)"keyd tests", -1, -1, 0);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &ctx, NID_subject_key_identifier, "hash");
	add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
	if (!issuer) {
		add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
		add_ext(x, &ctx, NID_ext_key_usage, eku);
		if (san)
			add_ext(x, &ctx, NID_subject_alt_name, san);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : *key, EVP_sha256()) > 0);
	return x;
}

static void write_pair(const char *name, X509 *x, EVP_PKEY *key)
{
	char n[64];
	FILE *f;

	snprintf(n, sizeof(n), "%s.pem", name);
	f = open_private(n);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	snprintf(n, sizeof(n), "%s.key", name);
	f = open_private(n);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate, all in dir. A second,
 * unrelated CA signs a client certificate keyd must not accept. */
static void make_pki(void)
{
	EVP_PKEY *ca_key, *other_key, *key;
	X509 *ca = make_cert(&ca_key, "keyd test CA", NULL, NULL, NULL, NULL);
	X509 *other = make_cert(&other_key, "some other CA", NULL, NULL, NULL, NULL);
	X509 *x;

	write_pair("ca", ca, ca_key);
	x = make_cert(&key, "keyd callback", ca, ca_key, "IP:127.0.0.1", "serverAuth");
	write_pair("server", x, key);
	X509_free(x);
	EVP_PKEY_free(key);
	x = make_cert(&key, "control-plane", ca, ca_key, NULL, "clientAuth");
	write_pair("client", x, key);
	X509_free(x);
	EVP_PKEY_free(key);
	x = make_cert(&key, "intruder", other, other_key, NULL, "clientAuth");
	write_pair("intruder", x, key);
	X509_free(x);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
}

/* ---- running the client while the loop serves ---- */

struct child {
	char out[OUT_MAX];
	size_t len;
	bool eof;
};

static void on_output(evutil_socket_t fd, short what, void *u)
{
	struct child *c = u;
	ssize_t n;

	(void)what;
	n = read(fd, c->out + c->len, sizeof(c->out) - 1 - c->len);
	if (n > 0) {
		c->len += (size_t)n;
		c->out[c->len] = 0;
		if (c->len < sizeof(c->out) - 1)
			return;
	}
	c->eof = true;
	event_base_loopbreak(base);
}

static void on_deadline(evutil_socket_t fd, short what, void *u)
{
	(void)fd;
	(void)what;
	*(bool *)u = true;
	event_base_loopbreak(base);
}

/* Serves until something breaks the loop or @tv has passed (*expired then). A timer of its
 * own, freed on return: event_base_loopexit's would stay behind after an early loopbreak and
 * end a later dispatch at its own deadline. */
static void dispatch_until(struct timeval tv, bool *expired)
{
	struct event *t = evtimer_new(base, on_deadline, expired);

	*expired = false;
	evtimer_add(t, &tv);
	event_base_dispatch(base);
	event_free(t);
}

/* Runs callback-send.py with @args against port @port, serving until it exits; its output
 * (one "STATUS BODY" line per request) goes to @out. */
static void run_client(uint16_t port, const char *args, char *out, size_t size)
{
	struct child c = {.len = 0};
	char cmd[8192];
	struct timeval tv = {CHILD_TIMEOUT_S, 0};
	struct event *ev;
	bool expired;
	int p[2], status;
	pid_t pid;

	snprintf(cmd, sizeof(cmd),
		 "exec %s -I %s --url https://127.0.0.1:%u/v1/events --ca %s/ca.pem "
		 "--secret-file %s/hmac.secret %s",
		 PY, script, port, dir, dir, args);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	ev = event_new(base, p[0], EV_READ | EV_PERSIST, on_output, &c);
	event_add(ev, NULL);
	dispatch_until(tv, &expired);
	event_free(ev);
	close(p[0]);
	if (!c.eof)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!c.eof)
		fail_msg("callback-send.py %s did not finish in %d s; it printed: %s", args,
			 CHILD_TIMEOUT_S, c.out);
	snprintf(out, size, "%s", c.out);
	printf("  callback-send.py %s\n    -> %s", args, c.out);
}

/* Lets the loop run for @ms (lockouts expire meanwhile). */
static void serve_for(unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	bool expired;

	dispatch_until(tv, &expired);
}

static void expect_prefix(const char *out, const char *want, const char *what)
{
	if (strncmp(out, want, strlen(want)) != 0)
		fail_msg("%s: expected a reply starting with \"%s\", got \"%s\"", what, want, out);
}

static void expect_contains(const char *out, const char *want, const char *what)
{
	if (!strstr(out, want))
		fail_msg("%s: expected \"%s\" in \"%s\"", what, want, out);
}

static struct callback *start(const char *extra, struct callback_config **cfg)
{
	char json[2048];
	json_auto_t *o = NULL;
	struct callback *cb = NULL;
	struct error e;

	snprintf(json, sizeof(json),
		 "{\"listen\": \"127.0.0.1:0\", \"cert_file\": \"%s/server.pem\", "
		 "\"key_file\": \"server.key\", \"hmac_secret_file\": \"hmac.secret\"%s}",
		 dir, extra);
	o = json_loads(json, 0, NULL);
	assert_non_null(o);
	if (callback_config_parse(o, "callback", cfg, &e) < 0)
		fail_msg("config %s: %s", json, e.msg);
	if (callback_start(base, *cfg, audit, on_event, NULL, &cb, &e) < 0)
		fail_msg("callback_start: %s", e.msg);
	n_got = 0;
	handler_result = 0;
	return cb;
}

static void stop(struct callback *cb, struct callback_config *cfg)
{
	callback_stop(cb);
	serve_for(50); /* libevent finalises the connections */
	callback_config_free(cfg);
}

/* Reads the audit log's callback.event records back. */
static json_t *audit_records(void)
{
	char p[512], line[16384];
	json_t *all = json_array();
	FILE *f;

	path_in(p, sizeof(p), "audit.jsonl");
	f = fopen(p, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_t *r = json_loads(line, 0, NULL);

		assert_non_null(r);
		if (strcmp(json_string_value(json_object_get(r, "type")), "callback.event") == 0)
			json_array_append(all, r);
		json_decref(r);
	}
	fclose(f);
	return all;
}

/* The audit record whose error (or, for NULL, result "success") matches. */
static json_t *audit_find(json_t *recs, const char *result, const char *error_part)
{
	size_t i;
	json_t *r;

	json_array_foreach (recs, i, r) {
		const char *res = json_string_value(json_object_get(r, "result"));
		const char *err = json_string_value(json_object_get(r, "error"));

		if (strcmp(res, result) == 0 &&
		    (!error_part ? !err : err && strstr(err, error_part)))
			return r;
	}
	fail_msg("no %s audit record with error \"%s\"", result, error_part ? error_part : "");
	return NULL;
}

/* ---- the tests ---- */

static void test_checks(void **state)
{
	struct callback_config *cfg;
	struct callback *cb =
		start(", \"max_body_bytes\": 1024, \"lockout\": {\"failures\": 50}", &cfg);
	uint16_t port = callback_port(cb);
	char out[OUT_MAX], args[512];

	(void)state;
	/* A valid event is delivered, once, as sent. */
	run_client(port,
		   "--id ev-1 --type suspend --kms kp --key-id key-1 --key-version 3 "
		   "--time 2025-03-04T09:12:44Z --count 2",
		   out, sizeof(out));
	expect_prefix(out, "202 ", "valid event");
	expect_contains(out, "\"result\":\"accepted\"", "valid event");
	expect_contains(out, "rewrap started", "valid event");
	expect_contains(strchr(out, '\n') + 1, "409 ", "the same event again (replay)");
	expect_contains(out, "replay", "replay");
	assert_int_equal(n_got, 1);
	assert_int_equal(got[0].type, KEY_EVENT_DISABLE);
	assert_int_equal(got[0].origin, KEY_EVENT_FROM_CALLBACK);
	assert_string_equal(got[0].id, "ev-1");
	assert_string_equal(got[0].kms, "kp");
	assert_string_equal(got[0].key_id, "key-1");
	assert_string_equal(got[0].key_version, "3");
	assert_true(got[0].time_us == 1741079564ULL * 1000000);
	assert_true(strncmp(got[0].source, "127.0.0.1:", 10) == 0);

	/* Refused, and never delivered. */
	run_client(port, "--id ev-2 --forge", out, sizeof(out));
	expect_prefix(out, "403 ", "forged signature");
	run_client(port, "--id ev-3 --unsigned", out, sizeof(out));
	expect_prefix(out, "401 ", "unsigned");
	run_client(port, "--id ev-4 --skew -1000", out, sizeof(out));
	expect_prefix(out, "400 ", "expired");
	expect_contains(out, "expired", "expired");
	run_client(port, "--id ev-6 --pad 2000", out, sizeof(out));
	if (strncmp(out, "413 ", 4) != 0 && strncmp(out, "error ", 6) != 0)
		fail_msg("oversized body: expected 413 or a closed connection, got %s", out);
	run_client(port, "--id ev-7 --extra colour=blue", out, sizeof(out));
	expect_prefix(out, "400 ", "unknown member");
	expect_contains(out, "event.colour: unknown key", "unknown member");
	run_client(port, "--body '[1,2]'", out, sizeof(out));
	expect_prefix(out, "400 ", "not an object");
	run_client(port, "--body '{\"id\": '", out, sizeof(out));
	expect_prefix(out, "400 ", "not JSON");
	run_client(port, "--id ev-9 --path /v1/other", out, sizeof(out));
	expect_prefix(out, "404 ", "wrong path");
	run_client(port, "--id ev-10 --method PUT", out, sizeof(out));
	expect_prefix(out, "405 ", "wrong method");
	assert_int_equal(n_got, 1);

	/* A handler failure is a 5xx, and the sender may retry the same event. */
	handler_result = -EIO;
	run_client(port, "--id ev-11", out, sizeof(out));
	expect_prefix(out, "500 ", "handler failed");
	handler_result = -EAGAIN;
	run_client(port, "--id ev-11", out, sizeof(out));
	expect_prefix(out, "503 ", "handler busy");
	handler_result = 0;
	run_client(port, "--id ev-11", out, sizeof(out));
	expect_prefix(out, "202 ", "retry after a failure");
	assert_int_equal(n_got, 4);

	/* A body just under the cap passes. */
	snprintf(args, sizeof(args), "--id ev-12 --pad %d", 1024 - 96);
	run_client(port, args, out, sizeof(out));
	if (strncmp(out, "202 ", 4) != 0)
		fail_msg("body under the cap refused: %s", out);
	stop(cb, cfg);
}

static void test_lockout(void **state)
{
	struct callback_config *cfg;
	struct callback *cb = start(", \"lockout\": {\"failures\": 3, \"window_s\": 60, "
				    "\"duration_s\": 2}",
				    &cfg);
	uint16_t port = callback_port(cb);
	char out[OUT_MAX];
	const char *last;

	(void)state;
	/* One client process for the failures and the try after them: the lockout's 2 s need
	 * not cover a Python start on a loaded machine, only four handshakes. */
	run_client(port, "--id lock-1 --forge-first 3 --count 4", out, sizeof(out));
	expect_prefix(out, "403 ", "forged");
	/* The fourth reply, to the valid event: locked out, it gets 429 and goes nowhere. */
	last = out;
	for (int i = 0; i < 3 && last; i++)
		last = strchr(last, '\n') ? strchr(last, '\n') + 1 : NULL;
	if (!last)
		fail_msg("expected four replies, got: %s", out);
	expect_prefix(last, "429 ", "locked out");
	expect_contains(last, "locked out", "locked out");
	assert_int_equal(n_got, 0);
	/* The lockout's duration and a wide margin: expiry can only come late, never early. */
	serve_for(2000 + 1000);
	run_client(port, "--id lock-2", out, sizeof(out));
	expect_prefix(out, "202 ", "after the lockout expired");
	assert_int_equal(n_got, 1);
	assert_string_equal(got[0].id, "lock-2");
	stop(cb, cfg);
}

static void test_allow_list(void **state)
{
	struct callback_config *cfg;
	struct callback *cb = start(", \"allow\": [\"10.0.0.0/8\", \"::1/128\"]", &cfg);
	char out[OUT_MAX];

	(void)state;
	/* 127.0.0.1 is not listed: the handshake is refused before any HTTP. */
	run_client(callback_port(cb), "--id allow-1", out, sizeof(out));
	expect_prefix(out, "error ", "peer outside the allow-list");
	assert_int_equal(n_got, 0);
	stop(cb, cfg);
}

static void test_client_cert(void **state)
{
	struct callback_config *cfg;
	struct callback *cb;
	char extra[512], out[OUT_MAX], args[512];

	(void)state;
	snprintf(extra, sizeof(extra), ", \"client_ca_file\": \"%s/ca.pem\"", dir);
	cb = start(extra, &cfg);
	run_client(callback_port(cb), "--id cert-1", out, sizeof(out));
	expect_prefix(out, "error ", "no client certificate");
	snprintf(args, sizeof(args), "--id cert-2 --cert %s/intruder.pem --key %s/intruder.key",
		 dir, dir);
	run_client(callback_port(cb), args, out, sizeof(out));
	expect_prefix(out, "error ", "client certificate from another CA");
	assert_int_equal(n_got, 0);
	snprintf(args, sizeof(args), "--id cert-3 --cert %s/client.pem --key %s/client.key", dir,
		 dir);
	run_client(callback_port(cb), args, out, sizeof(out));
	expect_prefix(out, "202 ", "with the client certificate");
	assert_int_equal(n_got, 1);
	stop(cb, cfg);
}

static void test_start_refusals(void **state)
{
	struct callback_config *cfg, *cfg2;
	struct callback *cb = NULL, *cb2 = NULL;
	json_auto_t *o = NULL;
	struct error e;
	char json[1024];
	FILE *f;

	(void)state;
	/* A short secret. */
	f = open_private("short.secret");
	fputs("0123456789abcdef0123456789abcde\n", f); /* 31 bytes */
	fclose(f);
	snprintf(json, sizeof(json),
		 "{\"listen\": \"127.0.0.1:0\", \"cert_file\": \"%s/server.pem\", "
		 "\"key_file\": \"server.key\", \"hmac_secret_file\": \"short.secret\"}",
		 dir);
	o = json_loads(json, 0, NULL);
	assert_int_equal(callback_config_parse(o, "callback", &cfg, &e), 0);
	assert_int_equal(callback_start(base, cfg, audit, on_event, NULL, &cb, &e), -EINVAL);
	callback_config_free(cfg);
	json_decref(o);

	/* A key that does not belong to the certificate. */
	snprintf(json, sizeof(json),
		 "{\"listen\": \"127.0.0.1:0\", \"cert_file\": \"%s/server.pem\", "
		 "\"key_file\": \"client.key\", \"hmac_secret_file\": \"hmac.secret\"}",
		 dir);
	o = json_loads(json, 0, NULL);
	assert_int_equal(callback_config_parse(o, "callback", &cfg, &e), 0);
	assert_int_equal(callback_start(base, cfg, audit, on_event, NULL, &cb, &e), -EINVAL);
	callback_config_free(cfg);
	json_decref(o);

	/* The port taken. */
	cb = start("", &cfg);
	snprintf(json, sizeof(json),
		 "{\"listen\": \"127.0.0.1:%u\", \"cert_file\": \"%s/server.pem\", "
		 "\"key_file\": \"server.key\", \"hmac_secret_file\": \"hmac.secret\"}",
		 callback_port(cb), dir);
	o = json_loads(json, 0, NULL);
	assert_int_equal(callback_config_parse(o, "callback", &cfg2, &e), 0);
	assert_int_equal(callback_start(base, cfg2, audit, on_event, NULL, &cb2, &e), -EADDRINUSE);
	callback_config_free(cfg2);
	stop(cb, cfg);
}

/* Runs last: what the earlier tests left in the audit log. */
static void test_audit(void **state)
{
	json_auto_t *recs = audit_records();
	char p[512], buf[1 << 16], secret[128];
	bool found_dn = false;
	size_t n, i;
	json_t *r;
	FILE *f;

	(void)state;
	r = audit_find(recs, "success", NULL);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "object"), "event_id")),
		"ev-1");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "object"), "type")),
		"disable");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "object"), "key_id")),
		"key-1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "object"), "kms")),
			    "kp");
	assert_true(
		strncmp(json_string_value(json_object_get(json_object_get(r, "subject"), "peer")),
			"127.0.0.1:", 10) == 0);
	audit_find(recs, "refused", "signature does not match");
	audit_find(recs, "refused", "unsigned");
	audit_find(recs, "refused", "expired");
	audit_find(recs, "refused", "replay: event ev-1");
	audit_find(recs, "refused", "event.colour: unknown key");
	audit_find(recs, "refused", "no such endpoint");
	audit_find(recs, "refused", "method not allowed");
	audit_find(recs, "refused", "locked out");
	audit_find(recs, "refused", "peer not in callback.allow");
	audit_find(recs, "refused", "TLS handshake failed");
	audit_find(recs, "refused", "connection closed without a complete request");
	audit_find(recs, "refused", "client certificate: unable to get local issuer");
	audit_find(recs, "failure", "test handler fails");
	/* The accepted event with a client certificate names it. */
	json_array_foreach (recs, i, r) {
		const char *dn = json_string_value(
			json_object_get(json_object_get(r, "subject"), "client_cert"));

		if (dn && strstr(dn, "CN=control-plane"))
			found_dn = true;
	}
	assert_true(found_dn);

	/* Never the secret, never a signature. */
	path_in(p, sizeof(p), "audit.jsonl");
	f = fopen(p, "re");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	path_in(p, sizeof(p), "hmac.secret");
	f = fopen(p, "re");
	assert_non_null(fgets(secret, sizeof(secret), f));
	fclose(f);
	secret[strcspn(secret, "\n")] = 0;
	assert_null(strstr(buf, secret));
	assert_null(strstr(buf, "sha256="));
	assert_null(strstr(buf, "X-Keyd-Signature:"));
}

static int setup(void **state)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	char p[512];
	FILE *f;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	make_pki();
	/* The secret as an operator makes it: openssl rand -hex 32 (64 characters + newline). */
	f = fopen("/dev/urandom", "re");
	if (!f || fread(raw, 1, sizeof(raw), f) != sizeof(raw))
		return -1;
	fclose(f);
	f = open_private("hmac.secret");
	for (size_t i = 0; i < sizeof(raw); i++)
		fprintf(f, "%c%c", hex[raw[i] >> 4], hex[raw[i] & 15]);
	fputc('\n', f);
	fclose(f);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	path_in(p, sizeof(p), "audit.jsonl");
	if (audit_open(p, NULL, &audit) < 0)
		return -1;
	base = event_base_new();
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	audit_close(audit);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checks),	       cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_allow_list),     cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_start_refusals), cmocka_unit_test(test_audit),
	};
	const char *top = getenv("TOP");

	snprintf(script, sizeof(script), "%s/tests/callback-send.py", top ? top : ".");
	if (access(PY, X_OK) < 0 || access(script, R_OK) < 0) {
		printf("SKIP: needs %s and %s (run from the source tree)\n", PY, script);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
