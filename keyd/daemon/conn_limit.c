// SPDX-License-Identifier: GPL-2.0-or-later
/* Connection caps per listener and per source, the descriptor reserve, and accept backoff
 * (conn_limit.h). As nginx's worker_connections and limit_conn, systemd's MaxConnections= and
 * MaxConnectionsPerSource=, and nginx's pause of accept() on EMFILE. */
#include <errno.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "conn_limit.h"
#include "log.h"
#include "util.h"

#define CONN_BACKOFF_LOG_US (10ULL * 1000000) /* one "paused" message per 10 s at most */

struct conn_count {
	struct conn_source s;
	unsigned n;
};

struct conn_limit {
	unsigned max, max_per_source, open;
	struct conn_count c[]; /* one per source with open connections: at most max */
};

int conn_limit_new(unsigned max, unsigned max_per_source, struct conn_limit **ret)
{
	struct conn_limit *l;

	if (max == 0 || max_per_source == 0)
		return -EINVAL;
	l = calloc(1, sizeof(*l) + max * sizeof(l->c[0]));
	if (!l)
		return -ENOMEM;
	l->max = max;
	l->max_per_source = max_per_source;
	*ret = l;
	return 0;
}

void conn_limit_free(struct conn_limit *l)
{
	free(l);
}

static struct conn_count *count_find(struct conn_limit *l, const struct conn_source *s)
{
	for (unsigned i = 0; i < l->max; i++)
		if (l->c[i].n && l->c[i].s.len == s->len &&
		    memcmp(l->c[i].s.key, s->key, s->len) == 0)
			return &l->c[i];
	return NULL;
}

/* Descriptors are handed out lowest first: @fd that high means all below it are taken. */
bool conn_limit_fd_reserved(int fd)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	return rl.rlim_cur <= CONN_FD_RESERVE || (rlim_t)fd >= rl.rlim_cur - CONN_FD_RESERVE;
}

enum conn_verdict conn_limit_admit(struct conn_limit *l, const struct conn_source *s, int fd)
{
	struct conn_count *c = count_find(l, s);

	if (conn_limit_fd_reserved(fd))
		return CONN_NO_DESCRIPTORS;
	if (l->open >= l->max)
		return CONN_TOO_MANY;
	if (c && c->n >= l->max_per_source)
		return CONN_TOO_MANY_FROM_SOURCE;
	if (!c) {
		for (unsigned i = 0; i < l->max && !c; i++)
			if (!l->c[i].n)
				c = &l->c[i];
		c->s = *s; /* open < max, so a slot is free */
	}
	c->n++;
	l->open++;
	return CONN_ADMITTED;
}

void conn_limit_release(struct conn_limit *l, const struct conn_source *s)
{
	struct conn_count *c = count_find(l, s);

	if (!c)
		return;
	c->n--;
	l->open--;
}

unsigned conn_limit_open(const struct conn_limit *l)
{
	return l->open;
}

/* libevent calls this for accept errors it does not retry itself. Its argument is evhttp's,
 * not ours, so the rate limit of the message is this file's. */
static void on_accept_error(struct evconnlistener *lev, void *u)
{
	static uint64_t last_log_us;
	static unsigned pauses;
	int e = errno;
	uint64_t now = now_mono_us();

	(void)u;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_debug("accept() failed: %s", strerror(e));
		return;
	}
	evconnlistener_disable(lev);
	pauses++;
	if (!last_log_us || now - last_log_us >= CONN_BACKOFF_LOG_US) {
		log_warning(
			"accept() failed: %s; listener paused (%u pauses since the last message)",
			strerror(e), pauses);
		last_log_us = now;
		pauses = 0;
	}
}

void conn_limit_guard(struct evhttp_bound_socket *bound)
{
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), on_accept_error);
}

void conn_limit_resume(struct evhttp_bound_socket *bound)
{
	evconnlistener_enable(evhttp_bound_socket_get_listener(bound));
}
