/* SPDX-License-Identifier: GPL-2.0-or-later */
/* systemd's notification protocol (READY=1, STATUS=...), spoken directly: one datagram to
 * $NOTIFY_SOCKET. A no-op outside systemd. */
#pragma once

/* Sends @state ("READY=1\nSTATUS=..."); 0 when not under systemd, -errno on failure. */
int notify_send(const char *state);
