/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What an overwrite writes and what verification expects: zeros, or an AES-128-CTR keystream
 * whose counter is the byte offset / 16, so any block can be regenerated alone. The key lives in
 * secure memory; this module never writes it anywhere. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* AES-128: the key hides nothing, it only makes the stream unpredictable. */
#define PATTERN_KEY_LEN 16

enum pattern_kind {
	PATTERN_ZERO,
	PATTERN_KEYSTREAM,
};

struct pattern {
	enum pattern_kind kind;
	uint8_t *key; /* secure memory; PATTERN_KEYSTREAM only */
};

/* A fresh keystream key from RAND_priv_bytes. -ENOMEM (secure heap), -EIO (RNG). */
int pattern_new_keystream(struct pattern *p);
/* A keystream with a saved key (resume). -EINVAL for a wrong length, -ENOMEM. */
int pattern_set_keystream(struct pattern *p, const uint8_t *key, size_t n);
void pattern_zero(struct pattern *p);
void pattern_done(struct pattern *p);

/* One generator per thread (an EVP context is not shared). */
struct pattern_gen {
	const struct pattern *p;
	EVP_CIPHER_CTX *ctx;
};
int pattern_gen_init(struct pattern_gen *g, const struct pattern *p);
void pattern_gen_done(struct pattern_gen *g);

/* Fills @buf with the pattern bytes of device offsets [off, off + n); off % 16 == 0. */
int pattern_fill(struct pattern_gen *g, uint8_t *buf, size_t n, uint64_t off);

/* Checks @buf against the pattern at @off in units of @unit bytes, using @scratch (n bytes) to
 * regenerate a keystream. Returns the number of units that differ (0: all match); the offset of
 * the first differing byte goes to *first_bad. -errno if the generator fails. */
int64_t pattern_compare(struct pattern_gen *g, const uint8_t *buf, size_t n, uint64_t off,
			uint8_t *scratch, size_t unit, uint64_t *first_bad);

/* "zero" or "aes-128-ctr": the name used in checkpoints and certificates. */
const char *pattern_name(enum pattern_kind k);
