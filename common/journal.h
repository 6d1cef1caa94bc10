/* SPDX-License-Identifier: GPL-2.0-or-later */
/* systemd's native journal protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL), writing side: one
 * entry of FIELD=value lines per datagram on journald's socket, values with a newline in the
 * length-prefixed binary form. Formats and sends only; never logs, never holds key material. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define JOURNAL_SOCKET	       "/run/systemd/journal/socket"
#define JOURNAL_ENTRY_MAX      (16 * 1024)
#define JOURNAL_FIELD_NAME_MAX 64

struct journal_entry {
	char buf[JOURNAL_ENTRY_MAX];
	size_t len;
	bool truncated; /* a field did not fit and was left out */
};

/* journald's rule for field names: 1..64 of [A-Z0-9_], not starting with a digit; names
 * starting with '_' are journald's own (trusted) and refused too. */
bool journal_field_name_valid(const char *name);
/* Appends NAME=value (@value NULL: nothing). -EINVAL for a bad name, -E2BIG when the entry
 * is full (the field is left out, e->truncated set). */
int journal_field(struct journal_entry *e, const char *name, const char *value);
/* A datagram socket connected to @path (SOCK_CLOEXEC, non-blocking). -errno. */
int journal_connect(const char *path);
/* Sends the entry as one datagram. -errno (-EAGAIN when journald is behind: dropped). */
int journal_send(int fd, const struct journal_entry *e);
/* Whether standard error is the journal stream systemd set up ($JOURNAL_STREAM names its
 * device and inode), as sd_journal's users decide where to log. */
bool journal_stream_is_stderr(void);
