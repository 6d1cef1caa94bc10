// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer harness for every parser of outside input: keyd.json, keyd tokens (keyd's and
 * wipe's reader), callback events, KMS replies (AWS and Tencent Cloud ones included) and keyd's
 * status as wipe reads it, cloud credentials files and metadata-service replies, KMIP TTLV
 * replies, base64, wipe checkpoints and certificates, pkcs11 WDEKs and key ids, HTTP replies on
 * the control socket. The first input
 * byte picks the parser, so one corpus and one binary cover them all. Built by `make fuzz`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parsers that read a file get the input through a memfd. */
static int as_file(const uint8_t *p, size_t n, char *path, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0 || write(fd, p, n) != (ssize_t)n) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(path, size, "/proc/self/fd/%d", fd);
	return fd;
}

/* A KMIP reply (TTLV): the next byte picks the operation it answers, the rest is the message,
 * read by every payload reader keyd has. It sits in secure memory, as a real reply does. */
static void kmip_reply(const uint8_t *data, size_t size)
{
	static const uint32_t ops[] = {KMIP_OP_DISCOVER_VERSIONS, KMIP_OP_GET_ATTRIBUTES,
				       KMIP_OP_GET, KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT};
	static struct kmip_response r;
	struct kmip_version versions[KMIP_VERSIONS_MAX];
	struct kmip_crypt_reply cr;
	struct kmip_attrs a;
	const uint8_t *key;
	struct error err;
	uint8_t *msg;
	uint32_t op, alg;
	size_t n;

	if (size < 1)
		return;
	op = ops[data[0] % (sizeof(ops) / sizeof(ops[0]))];
	msg = secmem_dup(data + 1, size - 1);
	if (!msg)
		return;
	if (kmip_parse_response(msg, size - 1, op, &r, &err) == 0) {
		kmip_resp_versions(&r, versions, KMIP_VERSIONS_MAX, &n, &err);
		kmip_resp_attributes(&r, NULL, &a, &err);
		kmip_resp_key(&r, "1", &key, &n, &alg, &err);
		kmip_resp_crypt(&r, NULL, &cr, &err);
	}
	secmem_free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char path[64], *text;
	struct error je;
	uint8_t kind;
	int fd;

	if (!ready) {
		ready = 1;
		if (secmem_init(4 << 20) < 0)
			return 0;
	}
	if (size < 1 || size > 65536)
		return 0;
	kind = data[0] % 12;
	data++;
	size--;
	text = secmem_alloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);

	switch (kind) {
	case 0: {
		struct keyd_config *cfg = NULL;

		fd = as_file(data, size, path, sizeof(path));
		if (fd >= 0 && config_load(path, &cfg, &je) == 0)
			config_free(cfg);
		if (fd >= 0)
			close(fd);
		break;
	}
	case 1: {
		struct keyd_token t;
		struct managed m = {0};

		if (token_from_json(text, 0, &t, &je) == 0) {
			/* The validator's promise: nothing it accepts can drive a terminal. */
			const char *const f[] = {t.name,   t.provider,	  t.kms,
						 t.key_id, t.key_version, t.wdek,
						 t.aad,	   t.created,	  t.updated};

			for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
				if (f[i] && text_find_unsafe(f[i], NULL) >= 0)
					__builtin_trap();
			token_done(&t);
		}
		/* wipe reads the same tokens, with its own small reader. */
		managed_parse_token(text, &m);
		break;
	}
	case 2: {
		json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		struct key_event ev;

		if (o)
			key_event_from_json(o, &ev, &je);
		json_decref(o);
		break;
	}
	case 3: {
		struct http_response resp = {.status = 200,
					     .body = {.data = (uint8_t *)text, .len = size}};
		struct error e;
		json_t *o = NULL;
		struct managed m = {0};

		if (kms_rest_json(&resp, "fuzz", &o, &e) == 0)
			json_decref(o);
		/* keyd's status as wipe reads it over the control socket. */
		managed_parse_status(text, size, "u", 0, &m);
		break;
	}
	case 4: {
		uint8_t *out = NULL;
		size_t n;

		if (b64_decode(text, &out, &n) == 0)
			secmem_free(out);
		break;
	}
	case 5: {
		struct checkpoint cp;
		json_t *cert = NULL;
		struct error err;

		fd = as_file(data, size, path, sizeof(path));
		if (fd < 0)
			break;
		if (checkpoint_load(path, &cp, &je) == 0)
			checkpoint_done(&cp);
		if (cert_load(path, &cert) == 0) {
			cert_check(cert, NULL, &err);
			json_decref(cert);
		}
		close(fd);
		break;
	}
	case 6: { /* AWS KMS: an error reply, DescribeKey's reply, IMDS role credentials */
		json_t *o = json_loadb(text, size, 0, NULL);
		struct cloud_creds c;
		struct aws_meta m;
		struct error pe;
		char a[64], b[256];

		aws_parse_error(text, size, a, sizeof(a), b, sizeof(b));
		if (o) {
			aws_parse_key_metadata(o, &m, &pe);
			if (aws_parse_role_credentials(o, &c, &pe) == 0)
				cloud_creds_done(&c);
		}
		json_decref(o);
		break;
	}
	case 7: { /* Tencent Cloud: the API 3.0 envelope, KeyMetadata, CAM role credentials */
		json_t *o = NULL, *resp = NULL;
		struct tencent_meta m;
		struct cloud_creds c;
		struct error pe;
		char a[96], b[256];

		if (tencent_parse_response(text, size, &resp, a, sizeof(a), b, sizeof(b)) == 0) {
			tencent_parse_key_metadata(resp, &m, &pe);
			json_decref(resp);
		}
		o = json_loadb(text, size, 0, NULL);
		if (o && tencent_parse_role_credentials(o, &c, &pe) == 0)
			cloud_creds_done(&c);
		json_decref(o);
		break;
	}
	case 8: { /* a credentials file, with either provider's key names */
		static const struct cloud_file_keys keys[] = {
			{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"},
			{"secret_id", "secret_key", "token"},
		};
		struct cloud_creds c;
		struct error pe;

		for (size_t i = 0; i < 2; i++)
			if (cloud_creds_parse(text, size, &keys[i], &c, &pe) == 0)
				cloud_creds_done(&c);
		break;
	}
	case 9: { /* pkcs11: a WDEK from a token, a key_id from the config */
		struct p11_wdek w;
		struct p11_keyref ref;
		char *again = NULL;

		if (p11_wdek_parse(text, &w) == 0 && p11_wdek_format(&w, &again) == 0)
			free(again);
		p11_keyref_parse(text, &ref);
		break;
	}
	case 10: /* KMIP: a TTLV reply from a server */
		kmip_reply(data, size);
		break;
	case 11: { /* an HTTP reply on keyd's control socket, as keydctl and wipe read it */
		struct http_response resp = {.retry_after_s = -1, .body.max = HTTP_RESPONSE_MAX};

		http_unix_parse(text, size, &resp, &je);
		http_response_done(&resp);
		break;
	}
	}
	secmem_free(text);
	return 0;
}
