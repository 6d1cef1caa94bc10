/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl's run state and what its commands share: the config, the audit record of a change
 * made here, JSON output, key files read into secure memory, the log of what convergence did.
 * The only place of keydctl's that logs is its commands, once per outcome. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctl_exit.h"
#include "error.h"
#include "token.h"

#define CTL_KEYFILE_MAX (64 * 1024)
/* The version of every JSON document keydctl prints (docs/json.md): raised when a field
 * changes meaning or goes away, not when one is added. */
#define CTL_JSON_SCHEMA 1

struct ctl {
	const char *config_path;
	const char *socket;
	const char *kms;
	const char *key_id;
	const char *name;
	const char *key_file;
	const char *rotate_mode;
	bool format;
	bool json;
	bool quiet;
	bool no_wait;
	bool force;
	bool strict; /* check: a host posture finding that is not ok fails it */
	bool help;
	char **args;
	int n_args;
	struct keyd_config *cfg;
	/* The first failure a command reported (ctl_fail): the exit code and the message of the
	 * JSON error document. */
	enum ctl_exit exit_code;
	char error[ERROR_MAX];
	json_t *error_detail; /* more for the error document (audit verify's report); owned */
};

/* Loads c->config_path once; logs why it cannot. */
int ctl_load_config(struct ctl *c);
/* One audit record of a change keydctl made (enroll, rotate), to the same log as keyd's. */
void ctl_audit(struct ctl *c, const char *type, int r, json_t *object, const char *error);
/* Prints @j as the command's one JSON document, "schema" first. */
void ctl_print_json(json_t *j);
/* A command failed with @r: logs the message once (%m is @r) and keeps the first message and
 * its exit code (from @r's errno, ctl_exit.c) for the JSON error document. Returns r. */
int ctl_fail(struct ctl *c, int r, const char *fmt, ...) _printf_(3, 4);
/* As ctl_fail, with the exit code given. */
int ctl_fail_code(struct ctl *c, enum ctl_exit code, int r, const char *fmt, ...) _printf_(4, 5);
/* The error document: {"schema": N, "error": {"code", "exit", "message"}, ...detail}. */
void ctl_print_error(const struct ctl *c, enum ctl_exit code);
/* All of FILE (or stdin for "-") into secure memory, as cryptsetup's --key-file reads it:
 * every byte counts, a trailing newline included. -ENODATA if empty, -E2BIG past
 * CTL_KEYFILE_MAX, open/read -errno. */
int ctl_read_key_file(const char *path, uint8_t **ret, size_t *ret_n);
/* Logs what token_converge finished or rolled back on @device first. */
void ctl_log_changes(const char *device, const struct token_changes *changes);
