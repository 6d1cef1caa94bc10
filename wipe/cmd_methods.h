/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wipe methods: list methods and profiles. */
#pragma once

#include "cli.h"

int cmd_methods(struct cli *c);
