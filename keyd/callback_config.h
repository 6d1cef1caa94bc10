/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyd.json's "callback" object and the addresses it speaks of (listen address, CIDR
 * allow-list): the schema half of the event endpoint, kept apart from the listener so that
 * whatever loads the configuration (the token plugin too) needs no libevent. Reads no files. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "jsonx.h"

#define CALLBACK_PATH		  "/v1/events"
#define CALLBACK_HEADER_TIMESTAMP "X-Keyd-Timestamp"
#define CALLBACK_HEADER_SIGNATURE "X-Keyd-Signature"
#define CALLBACK_SECRET_MIN	  32		/* bytes of hmac_secret_file */
#define CALLBACK_BODY_MAX	  (1024 * 1024) /* highest allowed max_body_bytes */
#define CALLBACK_ALLOW_MAX	  64		/* CIDRs in "allow" */
#define CALLBACK_REPLAY_IDS_MAX	  4096		/* event ids remembered for replay detection */
#define CALLBACK_SOURCES_MAX	  256		/* peer addresses tracked for lockout */
#define CALLBACK_CONNECTIONS_MAX  1024		/* highest allowed max_connections */

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

/* Per-source lockout after repeated failures; times are monotonic microseconds. */
struct callback_lockout_policy {
	unsigned failures; /* failures within window_us that lock a source out */
	uint64_t window_us;
	uint64_t duration_us; /* how long a lockout lasts */
};

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
	uint64_t request_timeout_s; /* one connection: handshake, request and reply, in all */
	uint64_t max_connections;   /* open at once, and from one address */
	uint64_t max_connections_per_source;
	struct callback_lockout_policy lockout;
};

/* Parses keyd.json's "callback" object at @path. Unknown keys and bad values are -EINVAL with
 * e->msg naming the JSON path; -ENOMEM. Reads no files: the secret and the TLS key are read by
 * callback_start(). */
int callback_config_parse(json_t *obj, const char *path, struct callback_config **ret,
			  struct error *e);
void callback_config_free(struct callback_config *c);
/* Whether a peer at @sa may connect ("allow"; loopback only by default). */
bool callback_config_allows(const struct callback_config *c, const struct sockaddr *sa);

/* The address bytes of @sa; IPv4-mapped IPv6 becomes IPv4. -EAFNOSUPPORT otherwise. */
int callback_addr_key(const struct sockaddr *sa, int *family, uint8_t addr[16]);
/* "192.0.2.1:443" or "[2001:db8::1]:443". */
void callback_addr_format(const struct sockaddr *sa, char *buf, size_t size);
