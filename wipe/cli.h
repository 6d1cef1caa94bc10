/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What wipe's command line decided (main.c parses argv, nothing else does), the exit statuses,
 * and what every command shares: JSON on stdout, the node key and the audit log. Decides
 * nothing about devices. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

#define WIPE_CONFIRM_MAX 64
#define WIPE_INPUT_MAX	 256

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 3,
	EXIT_INTERRUPTED = 130,
};

struct cli {
	struct wipe_options opt;
	const char *key_path, *audit_path;
	const char *performer; /* --operator */
	const char *trust_dir; /* --trusted-keys */
	const char *confirm[WIPE_CONFIRM_MAX];
	size_t n_confirm;
	uint64_t rate_limit;
	uint64_t progress_us;
	bool json, progress;
	char **args; /* the command's operands */
	int n_args;
};

/* Pretty-printed on stdout. */
void cli_print_json(json_t *j);

/* Loads (or creates) the node key and opens the audit log, for the commands that sign or
 * audit. Logs what failed; -errno. */
int cli_setup_signing(struct cli *c);
