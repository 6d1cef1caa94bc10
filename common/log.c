// SPDX-License-Identifier: GPL-2.0-or-later
/* Logging to stderr with "<N>" priority prefixes when stderr is the journal, so journald
 * keeps levels; plain "ident: message" on a terminal. Each message is one line with unsafe
 * characters escaped (text.c). Never logs key material. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text.h"

static const char *log_ident = "keyd";
static int log_max_level = LOG_INFO;
static int log_journal = -1;

void log_setup(const char *ident, int max_level)
{
	const char *e = getenv("KEYD_LOG_LEVEL");

	log_ident = ident;
	log_max_level = max_level;
	if (e && strcmp(e, "debug") == 0)
		log_max_level = LOG_DEBUG;
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_max_level(int level)
{
	log_max_level = level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

int log_internal(int level, int error, const char *fmt, ...)
{
	char buf[2048], safe[4 * sizeof(buf)];
	va_list ap;
	int saved = errno;

	if (level > log_max_level)
		return error < 0 ? error : -abs(error);

	/* %m means the error passed in, not whatever errno happens to be. */
	errno = abs(error);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* Messages quote disks and peers: one line per message, nothing a terminal acts on. */
	text_escape(buf, safe, sizeof(safe));

	if (log_journal > 0)
		fprintf(stderr, "<%d>%s\n", level, safe);
	else
		fprintf(stderr, "%s: %s\n", log_ident, safe);
	errno = saved;
	return error < 0 ? error : -abs(error);
}
