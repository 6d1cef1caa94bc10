// SPDX-License-Identifier: GPL-2.0-or-later
/* libevent's log callback (evlog.h), through log.c's one rate limiter: 10 messages per 10 s
 * (tighter than libcryptsetup's: a peer can make libevent complain on every accept), then one
 * line saying how many were dropped. */
#include <event2/event.h>

#include "evlog.h"
#include "log.h"

static struct log_ratelimit evlog_rl = LOG_RATELIMIT_INIT("libevent", 10 * 1000000ULL, 10);

static const int evlog_levels[] = {
	[EVENT_LOG_DEBUG] = LOG_DEBUG,
	[EVENT_LOG_MSG] = LOG_INFO,
	[EVENT_LOG_WARN] = LOG_WARNING,
	[EVENT_LOG_ERR] = LOG_ERR,
};

static void on_event_log(int severity, const char *msg)
{
	int level = severity >= EVENT_LOG_DEBUG && severity <= EVENT_LOG_ERR
			    ? evlog_levels[severity]
			    : LOG_WARNING;

	if (level <= log_get_max_level() && log_ratelimit_pass(&evlog_rl))
		log_internal(level, 0, "libevent: %s", msg);
}

void evlog_setup(void)
{
	event_set_log_callback(on_event_log);
}
