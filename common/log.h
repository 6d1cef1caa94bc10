/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging to stderr (the journal under systemd) with syslog-style levels. Owns no state
 * beyond the level and prefix; never receives key material (callers must not pass any). */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

void log_setup(const char *ident, int max_level);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Logs at @level; %m expands to strerror(-error). Returns error (negative), so a caller
 * can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...)		  log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)		  log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)		  log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)	  log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)		  log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...)	  log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)	  log_internal(LOG_ERR, (e), __VA_ARGS__)
