/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What wipe's command line decided (main.c parses argv, nothing else does) and what every
 * command shares: the error that decides the exit status, the one JSON document on stdout, the
 * node key and the audit log. Decides nothing about devices. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exitcode.h"
#include "job.h"
#include "macro.h"

#define WIPE_CONFIRM_MAX 64
#define WIPE_INPUT_MAX	 256
#define WIPE_JSON_SCHEMA 1 /* the "schema" of every --json document (docs/json-wipe.md) */
#define CLI_ERROR_MAX	 1024

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
	bool help, version; /* --help, --version: text, not JSON */
	char **args;	    /* the command's operands */
	int n_args;
	const char *metrics_dir; /* --metrics-textfile */

	/* --json: what the command reports, printed by cli_finish inside the envelope. */
	json_t *out;
	/* The error that decides the exit status (the worst one seen), for the envelope. */
	int error_status;
	char error[CLI_ERROR_MAX];
};

/* Logs @fmt as an error and records it with @status when it is the worst so far. Returns
 * @status. */
int cli_error(struct cli *c, int status, const char *fmt, ...) _printf_(3, 4);

/* Records, without logging, what a device's outcome means for the exit status. */
void cli_record(struct cli *c, int status, const char *message);

/* {"code", "exit", "message"}: one error as every --json document carries it. */
json_t *cli_error_json(int status, const char *message);

/* Sets "key" of the command's document to @v (stolen). */
void cli_out_set(struct cli *c, const char *key, json_t *v);

/* The end of every command: with --json the one document on stdout, {"schema": 1, ...what the
 * command set..., "error": {...}} (the error only when @status is not 0). Returns @status. */
int cli_finish(struct cli *c, int status);

/* Loads (or creates) the node key and opens the audit log, for the commands that sign or
 * audit. Logs what failed; -errno. */
int cli_setup_signing(struct cli *c);
