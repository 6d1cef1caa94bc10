/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Firmware sanitize: NVMe Sanitize and Format NVM with Secure Erase (admin passthrough), ATA
 * SANITIZE DEVICE (SG_IO, ATA PASS-THROUGH 16). Reports what a device offers and runs one
 * operation to completion. Never guesses: anything not advertised is -EOPNOTSUPP. Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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
	/* The device's own answer, quoted when an action is not offered. NVMe: Identify
	 * Controller SANICAP, OACS and FNA, the number of active namespaces and the namespace's
	 * DLFEAT; ATA: IDENTIFY DEVICE word 59. */
	uint32_t sanicap;
	uint16_t oacs, ata_word59;
	uint8_t fna, dlfeat;
	int namespaces;
	/* NVMe DLFEAT bits 2:0 = 001b: blocks the drive has erased (deallocated) read as zeros,
	 * so reading back after a firmware erase can check something. */
	bool reads_zero;
};

/* How the device answered a sanitize or format that ran: the command and its completion
 * status, for the certificate and for an error message. */
struct sanitize_outcome {
	char command[48];   /* "Format NVM (SES 1)", "Sanitize (block erase)", ... */
	int status;	    /* NVMe: the command's status field (0 success), -1 none */
	int sanitize_sstat; /* NVMe Sanitize Status log SSTAT bits 2:0 at the end, -1 not read */
	char text[160];	    /* the status in words */
};

/* Asks the device (fd open read-only) what it supports; @transport from device_probe. Leaves
 * @caps empty (and returns 0) for transports without firmware sanitize. */
int sanitize_probe(int fd, const char *transport, struct sanitize_caps *caps);

const char *sanitize_action_name(enum sanitize_action a);

/* Why @caps does not offer @action, quoting the device's answer ("SANICAP 0x00000000: no
 * block erase"); "" when it does. */
void sanitize_explain(const struct sanitize_caps *caps, enum sanitize_action action, char *buf,
		      size_t size);

/* Starts @action on the device (fd open read-write, exclusively) and polls until it ends,
 * calling @on_progress with a fraction in [0, 1] about once a second. 0 when the device reports
 * success; -EOPNOTSUPP not offered; -EIO the device reports failure; -errno from the ioctl.
 * When @resume, a sanitize already in progress is followed instead of started. */
int sanitize_run(int fd, const char *transport, enum sanitize_action action, bool resume,
		 void (*on_progress)(void *userdata, double fraction), void *userdata,
		 struct sanitize_outcome *out);
