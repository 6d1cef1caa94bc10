// SPDX-License-Identifier: GPL-2.0-or-later
/* Logging: under systemd each entry goes to journald's native socket with its fields (as
 * sd_journal_send does; libsystemd is not linked for this one datagram); on a terminal or a
 * plain pipe it is "ident: message" on stderr, and "<N>message" when stderr is the journal
 * stream but its socket cannot be used. Each message is one line with unsafe characters
 * escaped (text.c), wherever it goes. Never logs key material. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "text.h"
#include "util.h"

static const char *log_ident = "keyd";
static int log_max_level = LOG_INFO;
static bool log_stream; /* stderr is the journal stream */
static int log_journal_fd = -1;
/* Each thread's context: the pairs, pointing into its own copy of their text. */
static _Thread_local const char *log_context[2 * LOG_FIELDS_MAX + 1];
static _Thread_local char log_context_text[LOG_CONTEXT_MAX];

void log_setup(const char *ident, int max_level)
{
	const char *e = getenv("KEYD_LOG_LEVEL");

	log_ident = ident;
	log_max_level = max_level;
	if (e && strcmp(e, "debug") == 0)
		log_max_level = LOG_DEBUG;
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal. */
	log_stream = journal_stream_is_stderr();
	if (log_stream && log_journal_fd < 0)
		log_open_journal(JOURNAL_SOCKET);
}

void log_set_max_level(int level)
{
	log_max_level = level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

int log_open_journal(const char *path)
{
	int fd = journal_connect(path);

	if (fd < 0)
		return fd;
	log_close_journal();
	log_journal_fd = fd;
	return 0;
}

void log_close_journal(void)
{
	closep(&log_journal_fd);
	log_journal_fd = -1;
}

void log_context_set(const char *const *fields)
{
	size_t used = 0, n = 0;

	for (size_t i = 0; fields && fields[i] && n < 2 * LOG_FIELDS_MAX; i += 2) {
		size_t a = strlen(fields[i]) + 1, b = fields[i + 1] ? strlen(fields[i + 1]) + 1 : 0;

		if (!b || used + a + b > sizeof(log_context_text))
			continue;
		log_context[n++] = memcpy(log_context_text + used, fields[i], a);
		log_context[n++] = memcpy(log_context_text + used + a, fields[i + 1], b);
		used += a + b;
	}
	log_context[n] = NULL;
}

static bool fields_name(const char *const *fields, const char *name)
{
	for (size_t i = 0; fields && fields[i]; i += 2)
		if (strcmp(fields[i], name) == 0)
			return true;
	return false;
}

/* One journal entry: the message and its level first, then the caller's fields, then the
 * thread's context where the caller did not say otherwise. */
static int log_journal(int level, int error, const char *message_id, const char *const *fields,
		       const char *msg)
{
	struct journal_entry e;
	char num[16];

	e.len = 0;
	e.truncated = false;
	snprintf(num, sizeof(num), "%d", level);
	journal_field(&e, "PRIORITY", num);
	journal_field(&e, "SYSLOG_IDENTIFIER", log_ident);
	journal_field(&e, "MESSAGE", msg);
	journal_field(&e, "MESSAGE_ID", message_id);
	if (error) {
		snprintf(num, sizeof(num), "%d", abs(error));
		journal_field(&e, "ERRNO", num);
	}
	for (size_t i = 0; fields && fields[i]; i += 2)
		journal_field(&e, fields[i], fields[i + 1]);
	for (size_t i = 0; log_context[i]; i += 2)
		if (!fields_name(fields, log_context[i]))
			journal_field(&e, log_context[i], log_context[i + 1]);
	return journal_send(log_journal_fd, &e);
}

int log_structv(int level, int error, const char *message_id, const char *const *fields,
		const char *fmt, va_list ap)
{
	char buf[2048], safe[4 * sizeof(buf)];
	int saved = errno;

	if (level > log_max_level)
		return error < 0 ? error : -abs(error);

	/* %m means the error passed in, not whatever errno happens to be. */
	errno = abs(error);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* Messages quote disks and peers: one line per message, nothing a terminal acts on. */
	text_escape(buf, safe, sizeof(safe));

	if (log_journal_fd >= 0 && log_journal(level, error, message_id, fields, safe) >= 0)
		;
	else if (log_stream)
		fprintf(stderr, "<%d>%s\n", level, safe);
	else
		fprintf(stderr, "%s: %s\n", log_ident, safe);
	errno = saved;
	return error < 0 ? error : -abs(error);
}

int log_struct(int level, int error, const char *message_id, const char *const *fields,
	       const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = log_structv(level, error, message_id, fields, fmt, ap);
	va_end(ap);
	return r;
}

int log_internal(int level, int error, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = log_structv(level, error, NULL, NULL, fmt, ap);
	va_end(ap);
	return r;
}

bool log_ratelimit_pass(struct log_ratelimit *rl)
{
	uint64_t now = now_mono_us();
	unsigned dropped = 0;
	bool pass;

	pthread_mutex_lock(&rl->lock);
	if (rl->begin_us == 0 || now - rl->begin_us >= rl->interval_us) {
		dropped = rl->suppressed;
		rl->begin_us = now;
		rl->n = 0;
		rl->suppressed = 0;
	}
	pass = rl->n < rl->burst;
	if (pass)
		rl->n++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&rl->lock);
	if (dropped)
		log_warning("%s: %u messages suppressed (more than %u in %g s)", rl->what, dropped,
			    rl->burst, (double)rl->interval_us / 1e6);
	return pass;
}
