/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The event endpoint ("callback"): HTTPS listener for KMS lifecycle events sent by a platform
 * control plane. Hands the daemon only events that passed the allow-list, lockout, size cap,
 * HMAC signature, freshness, replay and schema checks; audits every attempt. Never logs or
 * audits the HMAC secret or a signature. */
#pragma once

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "callback_config.h"
#include "error.h"
#include "event.h"
#include "metrics.h"

struct callback;

/* What became of one connection or request: every outcome is one of these (metrics count
 * them, the audit log names them). callback.c's table says, for each, its HTTP status (0: the
 * connection is closed without one) and whether it counts towards the lockout. */
enum callback_outcome {
	CALLBACK_ACCEPTED,	   /* 202: the handler acted */
	CALLBACK_FAILED,	   /* 500/503: the handler failed */
	CALLBACK_NOT_ALLOWED,	   /* peer outside "allow": closed at accept */
	CALLBACK_TOO_MANY,	   /* max_connections(_per_source), descriptors: at accept */
	CALLBACK_HANDSHAKE_FAILED, /* no usable TLS handshake (no certificate, cipher, EOF) */
	CALLBACK_BAD_CLIENT_CERT,  /* a client certificate that does not verify */
	CALLBACK_TIMEOUT,	   /* request_timeout_s passed before the request was complete */
	CALLBACK_INCOMPLETE,	   /* closed without a complete request (malformed, too big) */
	CALLBACK_LOCKED_OUT,	   /* 429 */
	CALLBACK_NOT_FOUND,	   /* 404 */
	CALLBACK_METHOD,	   /* 405 */
	CALLBACK_TOO_BIG,	   /* 413 */
	CALLBACK_HEADER,	   /* 400: a signature header given twice */
	CALLBACK_UNSIGNED,	   /* 401 */
	CALLBACK_FORGED,	   /* 403: the signature does not match */
	CALLBACK_TIMESTAMP,	   /* 400 */
	CALLBACK_EXPIRED,	   /* 400 */
	CALLBACK_MALFORMED,	   /* 400: not an event */
	CALLBACK_REPLAY,	   /* 409 */
	CALLBACK_INTERNAL,	   /* 500 before the handler */
	_CALLBACK_OUTCOME_MAX,
};
/* "accepted", "not_allowed", ...: the outcome's name in audit summaries and metrics. */
const char *callback_outcome_name(enum callback_outcome o);

/* Called on the event loop thread for each authenticated, fresh, well-formed event. Returns
 * >= 0 when acted on (202), -EAGAIN/-EBUSY to ask the sender to retry (503), another -errno
 * when it failed (500). @msg (NUL-terminated, may stay empty) goes into the reply and the log;
 * it must not carry secrets. */
typedef int (*callback_event_fn)(void *userdata, const struct key_event *ev, char *msg,
				 size_t msgsize);

/* Reads the HMAC secret and the TLS key, binds cfg's listen address and serves on @base.
 * @cfg must outlive the listener; @audit may be NULL. err says why it failed (the caller logs):
 * -EINVAL (secret too short, bad certificate or key), -EPERM/-ENOENT (credential files),
 * -EADDRINUSE and other bind errors, -ENOMEM, -EIO. */
int callback_start(struct event_base *base, const struct callback_config *cfg, struct audit *audit,
		   callback_event_fn fn, void *userdata, struct callback **ret, struct error *err);
/* Stops listening and drops open connections; the handler is not called again. Not to be
 * called from inside the handler. */
void callback_stop(struct callback *cb);
/* Counts every request's outcome in @m from now on (NULL: stop counting). */
void callback_set_metrics(struct callback *cb, struct metrics *m);
/* The bound TCP port (useful when "listen" asked for port 0). */
uint16_t callback_port(const struct callback *cb);
