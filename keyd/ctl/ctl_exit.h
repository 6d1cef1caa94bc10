/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl's exit codes: one table, the same for every subcommand, printed by --help and listed
 * in keydctl(8) (t-keydctl-help checks the two agree). Maps a -errno to its code; owns no
 * state and never prints. */
#pragma once

/* In the spirit of systemd's and LSB's (2 invalid argument, 4 no permission, 6 not
 * configured, 7 not running); the rest are keyd's own, above them. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILURE = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_NOT_OPEN = 3,
	CTL_EXIT_PERMISSION = 4,
	CTL_EXIT_NOT_FOUND = 5,
	CTL_EXIT_CONFIG = 6,
	CTL_EXIT_DAEMON_DOWN = 7,
	CTL_EXIT_KMS_UNREACHABLE = 8,
	CTL_EXIT_KEY_REVOKED = 9,
	CTL_EXIT_BUSY = 10,
	CTL_EXIT_NOTHING_TO_DO = 11,
	CTL_EXIT_UNSAFE = 12,
};

struct ctl_exit_row {
	enum ctl_exit code;
	const char *name;    /* the "code" of a JSON error document */
	const char *meaning; /* one line for --help and keydctl(8) */
};

extern const struct ctl_exit_row ctl_exit_table[];
extern const unsigned ctl_exit_table_len;

/* The exit code for a command that failed with @r (a negative errno). */
enum ctl_exit ctl_exit_from_errno(int r);
/* The table's row for @code (the FAILURE row for a code not in it). */
const struct ctl_exit_row *ctl_exit_row(enum ctl_exit code);
