// SPDX-License-Identifier: GPL-2.0-or-later
/* libevent's log callback (evlog.h): a burst of EVLOG_BURST messages per EVLOG_INTERVAL_US,
 * then one line saying how many were dropped. Process-wide state, as libevent's log is. */
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>

#include "evlog.h"
#include "log.h"
#include "util.h"

#define EVLOG_INTERVAL_US (10ULL * 1000000)
#define EVLOG_BURST	  10

static pthread_mutex_t evlog_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t evlog_start_us;
static unsigned evlog_n, evlog_dropped;

static const int evlog_levels[] = {
	[EVENT_LOG_DEBUG] = LOG_DEBUG,
	[EVENT_LOG_MSG] = LOG_INFO,
	[EVENT_LOG_WARN] = LOG_WARNING,
	[EVENT_LOG_ERR] = LOG_ERR,
};

static void on_event_log(int severity, const char *msg)
{
	uint64_t now = now_mono_us();
	unsigned dropped = 0;
	bool print;

	pthread_mutex_lock(&evlog_lock);
	if (!evlog_start_us || now - evlog_start_us >= EVLOG_INTERVAL_US) {
		dropped = evlog_dropped;
		evlog_start_us = now;
		evlog_n = 0;
		evlog_dropped = 0;
	}
	print = evlog_n++ < EVLOG_BURST;
	evlog_dropped += !print;
	pthread_mutex_unlock(&evlog_lock);
	if (dropped)
		log_warning("libevent: %u more messages suppressed", dropped);
	if (print)
		log_internal(severity >= EVENT_LOG_DEBUG && severity <= EVENT_LOG_ERR
				     ? evlog_levels[severity]
				     : LOG_WARNING,
			     0, "libevent: %s", msg);
}

void evlog_setup(void)
{
	event_set_log_callback(on_event_log);
}
