/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging with syslog-style levels: to the journal with structured fields (MESSAGE_ID,
 * VOLUME=, DEVICE=, KMS=, KEY_ID=, KEY_VERSION=, ERRNO=) under systemd, plain stderr otherwise;
 * rate limits for other libraries' chatter. Owns the level, the identity, the journal socket
 * and each thread's context; never receives key material (callers must not pass any). */
#pragma once

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/* Fields of one entry beyond the message: NULL-terminated "NAME", "value" pairs. */
#define LOG_FIELDS_MAX 16

void log_setup(const char *ident, int max_level);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Sends entries to the native journal socket at @path from now on (log_setup does this with
 * journald's socket when stderr is the journal stream). -errno: stderr stays. */
int log_open_journal(const char *path);
void log_close_journal(void);

/* Fields every entry this thread logs carries until changed (@fields NULL: none), such as the
 * VOLUME= of the volume a worker unlocks: NULL-terminated name, value pairs (NULL values left
 * out), copied (at most LOG_FIELDS_MAX pairs, LOG_CONTEXT_MAX bytes; the rest is dropped). */
#define LOG_CONTEXT_MAX 2048
void log_context_set(const char *const *fields);

/* Logs at @level; %m expands to strerror(-error). Returns error (negative), so a caller
 * can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);
/* The same with a MESSAGE_ID (32 hex digits, NULL: none) and @fields (NULL-terminated name,
 * value pairs; NULL values are left out); ERRNO= is added when @error is not 0. On stderr only
 * the message appears. */
int log_struct(int level, int error, const char *message_id, const char *const *fields,
	       const char *fmt, ...) _printf_(5, 6);
int log_structv(int level, int error, const char *message_id, const char *const *fields,
		const char *fmt, va_list ap) _printf_(5, 0);

/* At most @burst messages per @interval_us from one source (another library); what is dropped
 * is counted and said once the interval is over, as journald's RateLimitBurst does. */
struct log_ratelimit {
	pthread_mutex_t lock;
	uint64_t interval_us;
	unsigned burst;
	uint64_t begin_us;
	unsigned n, suppressed;
	const char *what; /* "libcryptsetup" */
};
#define LOG_RATELIMIT_INIT(w, i, b)                                                                \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER, .interval_us = (i), .burst = (b), .what = (w)   \
	}
/* Whether one more message may go out now; says how many were suppressed when a new interval
 * begins. */
bool log_ratelimit_pass(struct log_ratelimit *rl);

#define log_debug(...)		  log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)		  log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)		  log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)	  log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)		  log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...)	  log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)	  log_internal(LOG_ERR, (e), __VA_ARGS__)
