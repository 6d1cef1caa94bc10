/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe probe DEVICE...: identity, capabilities, signatures, whether in use, the methods. */
#pragma once

#include "cli.h"

/* Prints each device (or one JSON array); an exit status. */
int cmd_probe(struct cli *c);
