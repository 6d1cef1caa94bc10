/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The event endpoint ("callback"): HTTPS listener for KMS lifecycle events sent by a platform
 * control plane. Hands the daemon only events that passed the allow-list, lockout, size cap,
 * HMAC signature, freshness, replay and schema checks; audits every attempt. Never logs or
 * audits the HMAC secret or a signature. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "audit.h"
#include "event.h"
#include "jsonx.h"

#define CALLBACK_PATH		  "/v1/events"
#define CALLBACK_HEADER_TIMESTAMP "X-Keyd-Timestamp"
#define CALLBACK_HEADER_SIGNATURE "X-Keyd-Signature"
#define CALLBACK_SECRET_MIN	  32		/* bytes of hmac_secret_file */
#define CALLBACK_BODY_MAX	  (1024 * 1024) /* highest allowed max_body_bytes */
#define CALLBACK_ALLOW_MAX	  64		/* CIDRs in "allow" */
#define CALLBACK_REPLAY_IDS_MAX	  4096		/* event ids remembered for replay detection */
#define CALLBACK_SOURCES_MAX	  256		/* peer addresses tracked for lockout */

struct callback_config;
struct callback;

/* Parses keyd.json's "callback" object at @path. Unknown keys and bad values are -EINVAL with
 * e->msg naming the JSON path; -ENOMEM. Reads no files: the secret and the TLS key are read by
 * callback_start(). */
int callback_config_parse(json_t *obj, const char *path, struct callback_config **ret,
			  struct jx_error *e);
void callback_config_free(struct callback_config *c);
/* Whether a peer at @sa may connect ("allow"; loopback only by default). */
bool callback_config_allows(const struct callback_config *c, const struct sockaddr *sa);

/* Called on the event loop thread for each authenticated, fresh, well-formed event. Returns
 * >= 0 when acted on (202), -EAGAIN/-EBUSY to ask the sender to retry (503), another -errno
 * when it failed (500). @msg (NUL-terminated, may stay empty) goes into the reply and the log;
 * it must not carry secrets. */
typedef int (*callback_event_fn)(void *userdata, const struct event *ev, char *msg, size_t msgsize);

/* Reads the HMAC secret and the TLS key, binds cfg's listen address and serves on @base.
 * @cfg must outlive the listener; @audit may be NULL. Logs why it failed.
 * -EINVAL (secret too short, bad certificate or key), -EPERM/-ENOENT (credential files),
 * -EADDRINUSE and other bind errors, -ENOMEM, -EIO. */
int callback_start(struct event_base *base, const struct callback_config *cfg, struct audit *audit,
		   callback_event_fn fn, void *userdata, struct callback **ret);
/* Stops listening and drops open connections; the handler is not called again. Not to be
 * called from inside the handler. */
void callback_stop(struct callback *cb);
/* The bound TCP port (useful when "listen" asked for port 0). */
uint16_t callback_port(const struct callback *cb);

/* Building blocks, public for the unit tests. */

struct callback_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};
/* "10.0.0.0/8", "2001:db8::/32", or a bare address (/32, /128). -EINVAL on a malformed
 * address or prefix, host bits set, or an IPv4-mapped IPv6 network (write the IPv4 form). */
int callback_cidr_parse(const char *s, struct callback_cidr *ret);
/* IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks. */
bool callback_cidr_match(const struct callback_cidr *c, const struct sockaddr *sa);

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

/* Per-source lockout after repeated failures; times are monotonic microseconds. */
struct callback_lockout_policy {
	unsigned failures; /* failures within window_us that lock a source out */
	uint64_t window_us;
	uint64_t duration_us; /* how long a lockout lasts */
};
struct callback_lockout;
int callback_lockout_new(const struct callback_lockout_policy *p, size_t max_sources,
			 struct callback_lockout **ret);
void callback_lockout_free(struct callback_lockout *l);
/* Microseconds left of @sa's lockout at @now_us; 0 when not locked out. */
uint64_t callback_lockout_remaining(const struct callback_lockout *l, const struct sockaddr *sa,
				    uint64_t now_us);
/* Counts a failure; true when it locked the source out. */
bool callback_lockout_fail(struct callback_lockout *l, const struct sockaddr *sa, uint64_t now_us);
/* An authenticated request: the source's failure count starts again. */
void callback_lockout_success(struct callback_lockout *l, const struct sockaddr *sa);

/* keyd.json's "callback" object, parsed (callback_config.c). */
struct callback_config {
	char *listen; /* as written, for messages */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *cert_file;
	char *key_file;
	char *client_ca_file; /* NULL: no client certificates asked for */
	char *hmac_secret_file;
	struct callback_cidr allow[CALLBACK_ALLOW_MAX];
	size_t n_allow;
	uint64_t max_body_bytes;
	uint64_t replay_window_s;
	struct callback_lockout_policy lockout;
};

/* The address bytes of @sa; IPv4-mapped IPv6 becomes IPv4. -EAFNOSUPPORT otherwise. */
int callback_addr_key(const struct sockaddr *sa, int *family, uint8_t addr[16]);
/* "192.0.2.1:443" or "[2001:db8::1]:443". */
void callback_addr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Checks an event object against the schema (unknown keys refused, lengths capped per
 * event.h) and fills @ev (origin and source are left to the caller). -EINVAL with e->msg
 * naming the path ("event.key_id: missing"). */
int callback_event_from_json(json_t *obj, struct event *ev, struct jx_error *e);
