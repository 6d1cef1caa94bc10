// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer targets, one per parser of outside input: the table below names each one and the
 * function that reads it. `make fuzz` builds build-fuzz/fuzz-NAME for each row, compiled with
 * -DFUZZ_TARGET='"NAME"', and that binary hands the whole input to that row alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cert.h"
#include "checkpoint.h"
#include "config.h"
#include "event.h"
#include "http_unix.h"
#include "kmip.h"
#include "kms_aws.h"
#include "kms_cloud.h"
#include "kms_rest.h"
#include "kms_tencent.h"
#include "managed.h"
#include "p11_wdek.h"
#include "secmem.h"
#include "text.h"
#include "token.h"
#include "util.h"

#ifndef FUZZ_TARGET
#error "build one target with -DFUZZ_TARGET='\"NAME\"' (make fuzz)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every parser gets the input twice: @data as bytes and @text, the same bytes NUL-terminated,
 * both in secure memory, as a real reply or token is. */
struct fuzz_target {
	const char *name;
	void (*run)(const uint8_t *data, size_t size, const char *text);
};

/* Parsers that read a file get the input in a real one, root's and private in a directory of
 * its own: checkpoint_load, like every credential reader, refuses a /proc/self/fd link and a
 * file anyone else could have written (so that target goes deep only when run as root). */
static char file_dir[] = "/dev/shm/fuzz-XXXXXX";
static char file_path[sizeof(file_dir) + 8];

static void file_remove(void)
{
	unlink(file_path);
	rmdir(file_dir);
}

static const char *as_file(const uint8_t *p, size_t n)
{
	int fd;

	if (!file_path[0]) {
		if (!mkdtemp(file_dir))
			abort();
		snprintf(file_path, sizeof(file_path), "%s/input", file_dir);
		atexit(file_remove);
	}
	fd = open(file_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (write(fd, p, n) != (ssize_t)n || close(fd) < 0)
		abort();
	return file_path;
}

static void fuzz_config(const uint8_t *data, size_t size, const char *text)
{
	struct keyd_config *cfg = NULL;
	struct error e;

	(void)text;
	if (config_load(as_file(data, size), &cfg, &e) == 0)
		config_free(cfg);
}

/* A LUKS2 token, read by keyd's validator and by wipe's own small reader: both read the same
 * bytes from the same disk, so one target holds both. */
static void fuzz_token(const uint8_t *data, size_t size, const char *text)
{
	struct keyd_token t;
	struct managed m = {0};
	struct error e;

	(void)data;
	(void)size;
	if (token_from_json(text, 0, &t, &e) == 0) {
		/* The validator's promise: nothing it accepts can drive a terminal. */
		const char *const f[] = {t.name, t.provider, t.kms,	t.key_id, t.key_version,
					 t.wdek, t.aad,	     t.created, t.updated};

		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (f[i] && text_find_unsafe(f[i], NULL) >= 0)
				__builtin_trap();
		token_done(&t);
	}
	managed_parse_token(text, &m);
}

static void fuzz_event(const uint8_t *data, size_t size, const char *text)
{
	json_t *o = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	struct key_event ev;
	struct error e;

	(void)data;
	if (o)
		key_event_from_json(o, &ev, &e);
	json_decref(o);
}

/* Every REST provider's reply body (Key Protect, Vault, the clouds) goes through this first. */
static void fuzz_kms_rest(const uint8_t *data, size_t size, const char *text)
{
	struct http_response resp = {.status = 200, .body = {.data = (uint8_t *)text, .len = size}};
	struct error e;
	json_t *o = NULL;

	(void)data;
	if (kms_rest_json(&resp, "fuzz", &o, &e) == 0)
		json_decref(o);
}

/* keyd's status as wipe reads it over the control socket. */
static void fuzz_keyd_status(const uint8_t *data, size_t size, const char *text)
{
	struct managed m = {0};

	(void)data;
	managed_parse_status(text, size, "u", 0, &m);
}

static void fuzz_b64(const uint8_t *data, size_t size, const char *text)
{
	uint8_t *out = NULL;
	size_t n;

	(void)data;
	(void)size;
	if (b64_decode(text, &out, &n) == 0)
		secmem_free(out);
}

static void fuzz_checkpoint(const uint8_t *data, size_t size, const char *text)
{
	struct checkpoint cp;
	struct error e;

	(void)text;
	if (checkpoint_load(as_file(data, size), &cp, &e) == 0)
		checkpoint_done(&cp);
}

/* A certificate given to `wipe cert verify`: read, then checked against its embedded key. */
static void fuzz_cert(const uint8_t *data, size_t size, const char *text)
{
	json_t *cert = NULL;
	struct error e;

	(void)text;
	if (cert_load(as_file(data, size), &cert) == 0) {
		cert_check(cert, NULL, &e);
		json_decref(cert);
	}
}

/* An AWS KMS reply: an error body, or DescribeKey's reply. */
static void fuzz_aws_kms(const uint8_t *data, size_t size, const char *text)
{
	json_t *o = json_loadb(text, size, 0, NULL);
	struct aws_meta m;
	struct error e;
	char a[64], b[256];

	(void)data;
	aws_parse_error(text, size, a, sizeof(a), b, sizeof(b));
	if (o)
		aws_parse_key_metadata(o, &m, &e);
	json_decref(o);
}

/* Role credentials from a cloud's metadata service, read by that cloud's parser. */
static void role_credentials(const char *text, size_t size,
			     int (*parse)(json_t *j, struct cloud_creds *ret, struct error *pe))
{
	json_t *o = json_loadb(text, size, 0, NULL);
	struct cloud_creds c;
	struct error e;

	if (o && parse(o, &c, &e) == 0)
		cloud_creds_done(&c);
	json_decref(o);
}

/* AWS's instance metadata service. */
static void fuzz_aws_imds(const uint8_t *data, size_t size, const char *text)
{
	(void)data;
	role_credentials(text, size, aws_parse_role_credentials);
}

/* A Tencent Cloud KMS reply: the API 3.0 envelope, and the KeyMetadata inside it. */
static void fuzz_tencent_kms(const uint8_t *data, size_t size, const char *text)
{
	struct tencent_meta m;
	json_t *resp = NULL;
	struct error e;
	char a[96], b[256];

	(void)data;
	if (tencent_parse_response(text, size, &resp, a, sizeof(a), b, sizeof(b)) == 0) {
		tencent_parse_key_metadata(resp, &m, &e);
		json_decref(resp);
	}
}

/* Tencent Cloud's metadata service (CAM roles). */
static void fuzz_tencent_cam(const uint8_t *data, size_t size, const char *text)
{
	(void)data;
	role_credentials(text, size, tencent_parse_role_credentials);
}

/* A credentials file, with either provider's key names. */
static void fuzz_cloud_creds(const uint8_t *data, size_t size, const char *text)
{
	static const struct cloud_file_keys keys[] = {
		{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"},
		{"secret_id", "secret_key", "token"},
	};
	struct cloud_creds c;
	struct error e;

	(void)data;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (cloud_creds_parse(text, size, &keys[i], &c, &e) == 0)
			cloud_creds_done(&c);
}

/* A pkcs11 WDEK from a token; one that parses must format again. */
static void fuzz_p11_wdek(const uint8_t *data, size_t size, const char *text)
{
	struct p11_wdek w;
	char *again = NULL;

	(void)data;
	(void)size;
	if (p11_wdek_parse(text, &w) == 0 && p11_wdek_format(&w, &again) == 0)
		free(again);
}

/* A pkcs11 key_id from the config. */
static void fuzz_p11_keyref(const uint8_t *data, size_t size, const char *text)
{
	struct p11_keyref ref;

	(void)data;
	(void)size;
	p11_keyref_parse(text, &ref);
}

/* A KMIP reply (TTLV), read as the answer to each operation keyd sends, then by every payload
 * reader keyd has. */
static void fuzz_kmip(const uint8_t *data, size_t size, const char *text)
{
	static const uint32_t ops[] = {KMIP_OP_DISCOVER_VERSIONS, KMIP_OP_GET_ATTRIBUTES,
				       KMIP_OP_GET, KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT};
	static struct kmip_response r;
	struct kmip_version versions[KMIP_VERSIONS_MAX];
	struct kmip_crypt_reply cr;
	struct kmip_attrs a;
	const uint8_t *key;
	struct error e;
	uint32_t alg;
	size_t n;

	(void)text;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (kmip_parse_response(data, size, ops[i], &r, &e) < 0)
			continue;
		kmip_resp_versions(&r, versions, KMIP_VERSIONS_MAX, &n, &e);
		kmip_resp_attributes(&r, NULL, &a, &e);
		kmip_resp_key(&r, "1", &key, &n, &alg, &e);
		kmip_resp_crypt(&r, NULL, &cr, &e);
	}
}

/* An HTTP reply on keyd's control socket, as keydctl and wipe read it. */
static void fuzz_ctl_reply(const uint8_t *data, size_t size, const char *text)
{
	struct http_response resp = {.retry_after_s = -1, .body.max = HTTP_RESPONSE_MAX};
	struct error e;

	(void)data;
	http_unix_parse(text, size, &resp, &e);
	http_response_done(&resp);
}

/* One row per target; the Makefile reads the names from the lines that start with {.name. */
static const struct fuzz_target targets[] = {
	{.name = "config", .run = fuzz_config},
	{.name = "token", .run = fuzz_token},
	{.name = "event", .run = fuzz_event},
	{.name = "kms-rest", .run = fuzz_kms_rest},
	{.name = "keyd-status", .run = fuzz_keyd_status},
	{.name = "b64", .run = fuzz_b64},
	{.name = "checkpoint", .run = fuzz_checkpoint},
	{.name = "cert", .run = fuzz_cert},
	{.name = "aws-kms", .run = fuzz_aws_kms},
	{.name = "aws-imds", .run = fuzz_aws_imds},
	{.name = "tencent-kms", .run = fuzz_tencent_kms},
	{.name = "tencent-cam", .run = fuzz_tencent_cam},
	{.name = "cloud-creds", .run = fuzz_cloud_creds},
	{.name = "p11-wdek", .run = fuzz_p11_wdek},
	{.name = "p11-keyref", .run = fuzz_p11_keyref},
	{.name = "kmip", .run = fuzz_kmip},
	{.name = "ctl-reply", .run = fuzz_ctl_reply},
};

static const struct fuzz_target *target_find(const char *name)
{
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strcmp(targets[i].name, name) == 0)
			return &targets[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_target *t;
	uint8_t *copy;

	if (!t) {
		t = target_find(FUZZ_TARGET);
		if (!t) {
			fprintf(stderr, "fuzz: no target named %s\n", FUZZ_TARGET);
			abort();
		}
		if (secmem_init(4 << 20) < 0)
			abort();
	}
	if (size > 65536)
		return 0;
	copy = secmem_alloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	t->run(copy, size, (const char *)copy);
	secmem_free(copy);
	return 0;
}
