/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The event endpoint's checks of a request before its event is read: HMAC-SHA256 signature
 * over timestamp and body, freshness of the timestamp, replay of event ids, lockout of sources
 * that keep failing. No I/O; the secret and signatures are never kept or printed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "callback_config.h"

/* Checks "sha256=<hex HMAC-SHA256(secret, timestamp "." body)>" in constant time.
 * -ENOKEY when @timestamp or @signature is NULL (unsigned), -EBADMSG when malformed or wrong. */
int callback_signature_check(const uint8_t *secret, size_t secret_len, const char *timestamp,
			     const void *body, size_t body_len, const char *signature);
/* The signature header value for @timestamp and @body, into @buf (at least 72 bytes). */
int callback_signature_make(const uint8_t *secret, size_t secret_len, const char *timestamp,
			    const void *body, size_t body_len, char *buf, size_t size);
/* Unix seconds of the timestamp header; -EINVAL if malformed, -ETIME if more than @window_s
 * away from @now_s (either way). */
int callback_timestamp_check(const char *timestamp, uint64_t now_s, uint64_t window_s,
			     uint64_t *ret);

/* Event ids seen recently: a bounded FIFO; the oldest id is forgotten when full. */
struct callback_replay;
int callback_replay_new(size_t max, struct callback_replay **ret);
void callback_replay_free(struct callback_replay *r);
/* Whether @id was recorded and its validity has not passed by @now_s. */
bool callback_replay_seen(const struct callback_replay *r, const char *id, uint64_t now_s);
/* Records @id as used until @until_s. -EINVAL on an empty or over-long id. */
int callback_replay_add(struct callback_replay *r, const char *id, uint64_t until_s);

/* Per-source lockout after repeated failures (policy: callback_config.h); monotonic µs. A
 * source is the peer's address together with the identity it proved: @id is the SHA-256 of a
 * verified client certificate, or NULL for none, so that failures made without a valid
 * certificate never lock out a client that has one. */
#define CALLBACK_LOCKOUT_ID_LEN 32
struct callback_lockout;
int callback_lockout_new(const struct callback_lockout_policy *p, size_t max_sources,
			 struct callback_lockout **ret);
void callback_lockout_free(struct callback_lockout *l);
/* Microseconds left of the source's lockout at @now_us; 0 when not locked out. */
uint64_t callback_lockout_remaining(const struct callback_lockout *l, const struct sockaddr *sa,
				    const uint8_t *id, uint64_t now_us);
/* Counts a failure; true when it locked the source out. */
bool callback_lockout_fail(struct callback_lockout *l, const struct sockaddr *sa, const uint8_t *id,
			   uint64_t now_us);
/* An authenticated request: the source's failure count starts again. */
void callback_lockout_success(struct callback_lockout *l, const struct sockaddr *sa,
			      const uint8_t *id);
