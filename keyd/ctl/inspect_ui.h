/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl inspect's terminal output: keyslots, tokens and warnings, one line each. */
#pragma once

#include <jansson.h>

/* Renders inspect_device()'s JSON to stdout. */
void inspect_ui_print(json_t *info);
