/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libevent's own messages, routed into keyd's log at matching levels and rate-limited, so
 * that a library complaining in a loop (say, "Too many open files" on every accept) can
 * neither flood the journal nor write to an unredirected stderr. */
#pragma once

/* Installs the route for the whole process (libevent's log is process-wide). */
void evlog_setup(void);
