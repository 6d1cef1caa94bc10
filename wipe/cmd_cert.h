/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe cert show FILE..., cert verify FILE... [--key PEM], cert pubkey. */
#pragma once

#include "cli.h"

int cmd_cert_show(struct cli *c);
/* EXIT_FAILED if any certificate is invalid. */
int cmd_cert_verify(struct cli *c);
int cmd_cert_pubkey(struct cli *c);
