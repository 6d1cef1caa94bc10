/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Firmware sanitize: NVMe Sanitize and Format NVM with Secure Erase (admin passthrough), ATA
 * SANITIZE DEVICE (SG_IO, ATA PASS-THROUGH 16). Reports what a device offers and runs one
 * operation to completion. Never guesses: anything not advertised is -EOPNOTSUPP. Never logs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum sanitize_action {
	SANITIZE_BLOCK_ERASE,
	SANITIZE_CRYPTO_ERASE,
	SANITIZE_OVERWRITE,
	SANITIZE_FORMAT_ERASE,	/* NVMe Format NVM, Secure Erase Setting 1 (user data erase) */
	SANITIZE_FORMAT_CRYPTO, /* NVMe Format NVM, Secure Erase Setting 2 (cryptographic) */
	_SANITIZE_ACTION_MAX,
};

struct sanitize_caps {
	bool nvme, ata; /* which command set was asked (and answered) */
	bool action[_SANITIZE_ACTION_MAX];
};

/* Asks the device (fd open read-only) what it supports; @transport from device_probe. Leaves
 * @caps empty (and returns 0) for transports without firmware sanitize. */
int sanitize_probe(int fd, const char *transport, struct sanitize_caps *caps);

const char *sanitize_action_name(enum sanitize_action a);

/* Starts @action on the device (fd open read-write, exclusively) and polls until it ends,
 * calling @on_progress with a fraction in [0, 1] about once a second. 0 when the device reports
 * success; -EOPNOTSUPP not offered; -EIO the device reports failure; -errno from the ioctl.
 * When @resume, a sanitize already in progress is followed instead of started. */
int sanitize_run(int fd, const char *transport, enum sanitize_action action, bool resume,
		 void (*on_progress)(void *userdata, double fraction), void *userdata);
