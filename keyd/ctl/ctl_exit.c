// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl's exit-code table and the one mapping of -errno onto it. A code says what an
 * operator's script can act on (start keyd, fix permissions, wait for the KMS, ask the key's
 * owner); the message says the rest. Never prints. */
#include <errno.h>

#include "ctl_exit.h"
#include "macro.h"

const struct ctl_exit_row ctl_exit_table[] = {
	{CTL_EXIT_OK, "ok", "success"},
	{CTL_EXIT_FAILURE, "failed", "the operation failed (the message says why)"},
	{CTL_EXIT_USAGE, "usage", "bad usage: unknown command or option, wrong arguments"},
	{CTL_EXIT_NOT_OPEN, "not-open", "status: a required volume is not open"},
	{CTL_EXIT_PERMISSION, "permission", "permission denied (root or keyd's control group)"},
	{CTL_EXIT_NOT_FOUND, "not-found",
	 "no such volume or device, or the device is not enrolled"},
	{CTL_EXIT_CONFIG, "config", "the configuration cannot be read or is invalid"},
	{CTL_EXIT_DAEMON_DOWN, "daemon-down",
	 "keyd is not running (nothing listens on its socket)"},
	{CTL_EXIT_KMS_UNREACHABLE, "kms-unreachable", "the KMS could not be reached"},
	{CTL_EXIT_KEY_REVOKED, "key-revoked",
	 "the root key is disabled, deactivated, revoked or destroyed"},
	{CTL_EXIT_BUSY, "busy", "the volume is in use or another operation holds it"},
	{CTL_EXIT_NOTHING_TO_DO, "nothing-to-do",
	 "nothing to do (e.g. the key is already at its newest version)"},
	{CTL_EXIT_UNSAFE, "unsafe", "refused: it would leave the volume unopenable (see --force)"},
};
const unsigned ctl_exit_table_len = ELEMENTSOF(ctl_exit_table);

/* Which errno means what. Transport errors are the KMS's: the daemon's socket reports
 * -EHOSTDOWN (ctl_client.c), so the two cannot be mistaken for each other. */
static const struct {
	int errno_value;
	enum ctl_exit code;
} errno_map[] = {
	{EACCES, CTL_EXIT_PERMISSION},
	{EPERM, CTL_EXIT_PERMISSION},
	{ENOENT, CTL_EXIT_NOT_FOUND},
	{ENODEV, CTL_EXIT_NOT_FOUND},
	{ENXIO, CTL_EXIT_NOT_FOUND},
	{ENOTBLK, CTL_EXIT_NOT_FOUND},
	{ENOKEY, CTL_EXIT_NOT_FOUND},
	{EMEDIUMTYPE, CTL_EXIT_NOT_FOUND},
	{EHOSTDOWN, CTL_EXIT_DAEMON_DOWN},
	{ECONNREFUSED, CTL_EXIT_KMS_UNREACHABLE},
	{ETIMEDOUT, CTL_EXIT_KMS_UNREACHABLE},
	{ECONNRESET, CTL_EXIT_KMS_UNREACHABLE},
	{EHOSTUNREACH, CTL_EXIT_KMS_UNREACHABLE},
	{ENETUNREACH, CTL_EXIT_KMS_UNREACHABLE},
	{EKEYREVOKED, CTL_EXIT_KEY_REVOKED},
	{EKEYEXPIRED, CTL_EXIT_KEY_REVOKED},
	{EBUSY, CTL_EXIT_BUSY},
	{EALREADY, CTL_EXIT_NOTHING_TO_DO},
	{ENOTRECOVERABLE, CTL_EXIT_UNSAFE},
};

enum ctl_exit ctl_exit_from_errno(int r)
{
	if (r >= 0)
		return CTL_EXIT_OK;
	for (size_t i = 0; i < ELEMENTSOF(errno_map); i++)
		if (errno_map[i].errno_value == -r)
			return errno_map[i].code;
	return CTL_EXIT_FAILURE;
}

const struct ctl_exit_row *ctl_exit_row(enum ctl_exit code)
{
	for (size_t i = 0; i < ELEMENTSOF(ctl_exit_table); i++)
		if (ctl_exit_table[i].code == code)
			return &ctl_exit_table[i];
	return &ctl_exit_table[CTL_EXIT_FAILURE];
}
