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
#include "token.h"

#define CTL_KEYFILE_MAX (64 * 1024)

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
	char **args;
	int n_args;
	struct keyd_config *cfg;
};

/* Loads c->config_path once; logs why it cannot. */
int ctl_load_config(struct ctl *c);
/* One audit record of a change keydctl made (enroll, rotate), to the same log as keyd's. */
void ctl_audit(struct ctl *c, const char *type, int r, json_t *object, const char *error);
void ctl_print_json(json_t *j);
/* All of FILE (or stdin for "-") into secure memory, as cryptsetup's --key-file reads it:
 * every byte counts, a trailing newline included. -ENODATA if empty, -E2BIG past
 * CTL_KEYFILE_MAX, open/read -errno. */
int ctl_read_key_file(const char *path, uint8_t **ret, size_t *ret_n);
/* Logs what token_converge finished or rolled back on @device first. */
void ctl_log_changes(const char *device, const struct token_changes *changes);
