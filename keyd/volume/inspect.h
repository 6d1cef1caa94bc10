/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a LUKS2 header says about a keyd volume, as JSON: keyslots, tokens, and every keyslot
 * that is not bound to the KMS (it survives the root key's destruction). Never a key; prints
 * nothing (keydctl renders it: ctl/inspect_ui.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Describes the LUKS2 device at @path. -EMEDIUMTYPE if not LUKS2. */
int inspect_device(const char *path, json_t **ret, struct error *err);
