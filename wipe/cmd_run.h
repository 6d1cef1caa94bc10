/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe run DEVICE...: wipe, verify and certify, several devices in parallel. */
#pragma once

#include "cli.h"

/* Plans, confirms, runs and reports every device; the worst outcome's exit status. */
int cmd_run(struct cli *c);
