// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer harness for every parser of outside input: keyd.json, keyd tokens, callback
 * events, KMS replies, base64, wipe checkpoints and certificates. The first input byte picks
 * the parser, so one corpus and one binary cover them all. Built by `make fuzz`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "callback.h"
#include "cert.h"
#include "checkpoint.h"
#include "config.h"
#include "kms_rest.h"
#include "secmem.h"
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
	kind = data[0] % 6;
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

		if (token_from_json(text, 0, &t, &je) == 0)
			token_done(&t);
		break;
	}
	case 2: {
		json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		struct event ev;

		if (o)
			callback_event_from_json(o, &ev, &je);
		json_decref(o);
		break;
	}
	case 3: {
		struct http_response resp = {.status = 200,
					     .body = {.data = (uint8_t *)text, .len = size}};
		struct error e;
		json_t *o = NULL;

		if (kms_rest_json(&resp, "fuzz", &o, &e) == 0)
			json_decref(o);
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
	}
	secmem_free(text);
	return 0;
}
