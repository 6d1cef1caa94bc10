/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's metrics as one Prometheus text page: the state read now from the registry, the
 * KMS, the audit log and the build, then metrics.c's counters; and that page written atomically
 * into node_exporter's textfile directory. Reads only; never changes what it reports on. */
#pragma once

#include <stdbool.h>

#include "audit.h"
#include "config.h"
#include "metrics.h"
#include "registry.h"

/* The file keyd writes in metrics.textfile_dir (node_exporter reads *.prom there). */
#define METRICS_TEXTFILE_NAME "keyd.prom"

/* What the page reports on; every pointer must outlive its use. */
struct metrics_env {
	const struct keyd_config *cfg;
	struct registry *reg;
	struct metrics *metrics;
	struct audit *audit; /* NULL: no audit families */
	const bool *ready;   /* READY=1 was sent (read on the main thread) */
};

/* The whole page, NUL-terminated, in *ret (free()). -ENOMEM, -E2BIG. */
int metrics_report(const struct metrics_env *env, char **ret);
/* Writes the page to DIR/keyd.prom through a temporary file in DIR and rename(2), so that
 * node_exporter never reads half of it. -errno; err names the file. */
int metrics_report_textfile(const struct metrics_env *env, const char *dir, struct error *err);
