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
