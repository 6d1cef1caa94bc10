/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Admission of connections to one of the daemon's listeners, decided at accept: a cap on the
 * connections open at once, in all and per source (an IP address, a uid), and a reserve of
 * descriptors no listener may take (the control socket's root callers, KMS connections and
 * device opens need them). And accept backoff: a listener that runs out of descriptors pauses
 * instead of spinning. Logs nothing but that backoff (rate-limited); never reads a byte. */
#pragma once

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONN_SOURCE_MAX 20 /* bytes of a source key: family + IPv6 address, or a uid */
#define CONN_FD_RESERVE 64 /* descriptors below the limit no listener takes */

struct conn_source {
	uint8_t len;
	uint8_t key[CONN_SOURCE_MAX];
};

enum conn_verdict {
	CONN_ADMITTED,
	CONN_TOO_MANY,		   /* the listener's cap */
	CONN_TOO_MANY_FROM_SOURCE, /* the per-source cap */
	CONN_NO_DESCRIPTORS,	   /* the descriptor would eat into the reserve */
};

struct conn_limit;

/* @max connections at once, @max_per_source from one source. -EINVAL (0), -ENOMEM. */
int conn_limit_new(unsigned max, unsigned max_per_source, struct conn_limit **ret);
void conn_limit_free(struct conn_limit *l);
/* Admits (and counts) or refuses the connection on @fd from @s. */
enum conn_verdict conn_limit_admit(struct conn_limit *l, const struct conn_source *s, int fd);
/* An admitted connection from @s ended. */
void conn_limit_release(struct conn_limit *l, const struct conn_source *s);
/* Connections admitted and still open. */
unsigned conn_limit_open(const struct conn_limit *l);
/* Whether a connection on @fd would eat into the descriptor reserve (conn_limit_admit checks
 * it too). */
bool conn_limit_fd_reserved(int fd);

/* Pauses @bound's listener on EMFILE/ENFILE/ENOBUFS/ENOMEM instead of letting libevent retry
 * (and log) in a busy loop; conn_limit_resume() takes it up again. */
void conn_limit_guard(struct evhttp_bound_socket *bound);
/* Re-enables a paused listener; harmless on one that runs. Call it from a periodic timer. */
void conn_limit_resume(struct evhttp_bound_socket *bound);
