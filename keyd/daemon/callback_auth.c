// SPDX-License-Identifier: GPL-2.0-or-later
/* What the event endpoint decides about a request before it reads the event: the HMAC
 * signature and its timestamp, the replay cache of event ids, and the per-source lockout.
 * Pure state and arithmetic: no I/O, no logging; never keeps or prints the secret. */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_auth.h"
#include "event.h"
#include "util.h"

#define CALLBACK_TIMESTAMP_MAX 20 /* digits of a uint64 */
#define CALLBACK_MAC_LEN       32
#define CALLBACK_SIG_PREFIX    "sha256="

/* ---- signature and freshness ---- */

static int hmac_sha256(const uint8_t *key, size_t key_len, const char *timestamp, const void *body,
		       size_t body_len, uint8_t out[CALLBACK_MAC_LEN])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t n = 0;
	int r = -EIO;

	if (ctx && EVP_MAC_init(ctx, key, key_len, params) &&
	    EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) &&
	    EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
	    (body_len == 0 || EVP_MAC_update(ctx, body, body_len)) &&
	    EVP_MAC_final(ctx, out, &n, CALLBACK_MAC_LEN) && n == CALLBACK_MAC_LEN)
		r = 0;
	EVP_MAC_CTX_free(ctx); /* wipes the keyed state */
	EVP_MAC_free(mac);
	return r;
}

int callback_signature_make(const uint8_t *secret, size_t secret_len, const char *timestamp,
			    const void *body, size_t body_len, char *buf, size_t size)
{
	uint8_t mac[CALLBACK_MAC_LEN];
	size_t off = strlen(CALLBACK_SIG_PREFIX);
	int r;

	if (size < off + 2 * CALLBACK_MAC_LEN + 1)
		return -ENOBUFS;
	r = hmac_sha256(secret, secret_len, timestamp, body, body_len, mac);
	if (r < 0)
		return r;
	memcpy(buf, CALLBACK_SIG_PREFIX, off);
	for (size_t i = 0; i < CALLBACK_MAC_LEN; i++, off += 2)
		snprintf(buf + off, 3, "%02x", mac[i]);
	return 0;
}

int callback_signature_check(const uint8_t *secret, size_t secret_len, const char *timestamp,
			     const void *body, size_t body_len, const char *signature)
{
	size_t pl = strlen(CALLBACK_SIG_PREFIX);
	uint8_t want[CALLBACK_MAC_LEN], got[CALLBACK_MAC_LEN];
	int r;

	if (!timestamp || !signature)
		return -ENOKEY;
	if (strncmp(signature, CALLBACK_SIG_PREFIX, pl) != 0 ||
	    strlen(signature) != pl + 2 * CALLBACK_MAC_LEN ||
	    hex_decode(signature + pl, 2 * CALLBACK_MAC_LEN, got) < 0)
		return -EBADMSG;
	r = hmac_sha256(secret, secret_len, timestamp, body, body_len, want);
	if (r < 0)
		return r;
	/* Constant time: how many leading bytes matched must not show in the timing. */
	r = CRYPTO_memcmp(want, got, CALLBACK_MAC_LEN) == 0 ? 0 : -EBADMSG;
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}

int callback_timestamp_check(const char *timestamp, uint64_t now_s, uint64_t window_s,
			     uint64_t *ret)
{
	uint64_t t;

	if (!timestamp || timestamp[0] < '0' || timestamp[0] > '9' ||
	    strlen(timestamp) > CALLBACK_TIMESTAMP_MAX || parse_u64(timestamp, &t) < 0)
		return -EINVAL;
	if ((t > now_s ? t - now_s : now_s - t) > window_s)
		return -ETIME;
	*ret = t;
	return 0;
}

/* ---- replay cache ---- */

struct replay_entry {
	char id[KEY_EVENT_ID_MAX + 1];
	uint64_t until_s;
};

struct callback_replay {
	size_t max, head, n; /* a ring: e[head] is the oldest */
	struct replay_entry e[];
};

int callback_replay_new(size_t max, struct callback_replay **ret)
{
	struct callback_replay *r;

	if (max == 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r) + max * sizeof(r->e[0]));
	if (!r)
		return -ENOMEM;
	r->max = max;
	*ret = r;
	return 0;
}

void callback_replay_free(struct callback_replay *r)
{
	free(r);
}

static struct replay_entry *replay_find(const struct callback_replay *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct replay_entry *e = &r->e[(r->head + i) % r->max];

		if (strcmp(e->id, id) == 0)
			return (struct replay_entry *)e;
	}
	return NULL;
}

bool callback_replay_seen(const struct callback_replay *r, const char *id, uint64_t now_s)
{
	const struct replay_entry *e = replay_find(r, id);

	return e && e->until_s >= now_s;
}

int callback_replay_add(struct callback_replay *r, const char *id, uint64_t until_s)
{
	struct replay_entry *e;
	size_t n = strlen(id);

	if (n == 0 || n > KEY_EVENT_ID_MAX)
		return -EINVAL;
	e = replay_find(r, id);
	if (e) {
		if (until_s > e->until_s)
			e->until_s = until_s;
		return 0;
	}
	if (r->n == r->max) {
		r->head = (r->head + 1) % r->max;
		r->n--;
	}
	e = &r->e[(r->head + r->n) % r->max];
	memcpy(e->id, id, n + 1);
	e->until_s = until_s;
	r->n++;
	return 0;
}

/* ---- lockout ---- */

struct lockout_source {
	int family;
	uint8_t addr[16];
	uint8_t id[CALLBACK_LOCKOUT_ID_LEN]; /* zeros: no verified certificate */
	unsigned count;			     /* failures since first_us */
	uint64_t first_us;		     /* first failure of the current window */
	uint64_t last_us;
	uint64_t until_us; /* locked out until then */
};

struct callback_lockout {
	struct callback_lockout_policy p;
	size_t n, max;
	struct lockout_source s[];
};

int callback_lockout_new(const struct callback_lockout_policy *p, size_t max_sources,
			 struct callback_lockout **ret)
{
	struct callback_lockout *l;

	if (max_sources == 0 || p->failures == 0)
		return -EINVAL;
	l = calloc(1, sizeof(*l) + max_sources * sizeof(l->s[0]));
	if (!l)
		return -ENOMEM;
	l->p = *p;
	l->max = max_sources;
	*ret = l;
	return 0;
}

void callback_lockout_free(struct callback_lockout *l)
{
	free(l);
}

static void lockout_id(const uint8_t *id, uint8_t out[CALLBACK_LOCKOUT_ID_LEN])
{
	memset(out, 0, CALLBACK_LOCKOUT_ID_LEN);
	if (id)
		memcpy(out, id, CALLBACK_LOCKOUT_ID_LEN);
}

static struct lockout_source *lockout_find(const struct callback_lockout *l,
					   const struct sockaddr *sa, const uint8_t *id)
{
	uint8_t a[16] = {0}, want[CALLBACK_LOCKOUT_ID_LEN];
	int family;

	if (callback_addr_key(sa, &family, a) < 0)
		return NULL;
	lockout_id(id, want);
	for (size_t i = 0; i < l->n; i++)
		if (l->s[i].family == family && memcmp(l->s[i].addr, a, 16) == 0 &&
		    memcmp(l->s[i].id, want, sizeof(want)) == 0)
			return (struct lockout_source *)&l->s[i];
	return NULL;
}

uint64_t callback_lockout_remaining(const struct callback_lockout *l, const struct sockaddr *sa,
				    const uint8_t *id, uint64_t now_us)
{
	const struct lockout_source *s = lockout_find(l, sa, id);

	return s && s->until_us > now_us ? s->until_us - now_us : 0;
}

/* A full table gives up the source idle longest among those not locked out; if all are,
 * the one whose lockout ends first. */
static struct lockout_source *lockout_evict(struct callback_lockout *l, uint64_t now_us)
{
	struct lockout_source *best = NULL;

	for (size_t i = 0; i < l->n; i++) {
		struct lockout_source *s = &l->s[i];
		bool free_s = s->until_us <= now_us;

		if (!best)
			best = s;
		else if (free_s && (best->until_us > now_us || s->last_us < best->last_us))
			best = s;
		else if (!free_s && best->until_us > now_us && s->until_us < best->until_us)
			best = s;
	}
	return best;
}

bool callback_lockout_fail(struct callback_lockout *l, const struct sockaddr *sa, const uint8_t *id,
			   uint64_t now_us)
{
	struct lockout_source *s = lockout_find(l, sa, id);

	if (!s) {
		uint8_t a[16] = {0};
		int family;

		if (callback_addr_key(sa, &family, a) < 0)
			return false;
		s = l->n < l->max ? &l->s[l->n++] : lockout_evict(l, now_us);
		*s = (struct lockout_source){.family = family};
		memcpy(s->addr, a, 16);
		lockout_id(id, s->id);
	}
	if (s->count == 0 || now_us - s->first_us > l->p.window_us) {
		s->count = 0;
		s->first_us = now_us;
	}
	s->last_us = now_us;
	if (++s->count < l->p.failures)
		return false;
	s->count = 0;
	s->until_us = now_us + l->p.duration_us;
	return true;
}

void callback_lockout_success(struct callback_lockout *l, const struct sockaddr *sa,
			      const uint8_t *id)
{
	struct lockout_source *s = lockout_find(l, sa, id);

	if (s)
		s->count = 0;
}
