/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe verify DEVICE... --method zero|zeroout|crypto: what a device holds afterwards. */
#pragma once

#include "cli.h"

/* Checks and reports every device; EXIT_FAILED if any differs. */
int cmd_verify(struct cli *c);
