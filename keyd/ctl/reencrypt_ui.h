/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl's terminal side of re-encryption: progress on stderr (a line with percentage, rate
 * and ETA on a terminal, JSON lines otherwise), SIGINT/SIGTERM stop cleanly after the current
 * step, the result on stdout. The work itself is volume/reencrypt.c's. */
#pragma once

#include <stdbool.h>

#include "ctl.h"
#include "reencrypt.h"

/* Runs volume_reencrypt(@req) with the progress display and signal handling above; prints the
 * result (JSON with c->json) and reports a failure once (ctl_fail). @res and @err are left for
 * the caller's audit record. Returns -errno as volume_reencrypt. */
int reencrypt_ui_run(struct ctl *c, const struct reencrypt_request *req,
		     struct reencrypt_result *res, struct error *err);
