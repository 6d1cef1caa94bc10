/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Schema checks for JSON read at the edge (config, tokens, KMS replies): typed getters that
 * name the JSON path of whatever is wrong. Never logs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "macro.h"

/* Formats e->msg and returns -EINVAL. */
int jx_fail(struct error *e, const char *fmt, ...) _printf_(2, 3);

/* Every key of @obj must be in NULL-terminated @allowed; else "PATH.KEY: unknown key". */
int jx_only_keys(json_t *obj, const char *path, const char *const *allowed, struct error *e);

/* Typed getters. Missing and !required: leave *ret alone, return 0. Missing and required, or
 * wrong type, or out of range: -EINVAL with "PATH.KEY: ..." in e. */
int jx_string(json_t *obj, const char *path, const char *key, bool required, size_t max_len,
	      const char **ret, struct error *e);
int jx_bool(json_t *obj, const char *path, const char *key, bool *ret, struct error *e);
int jx_uint(json_t *obj, const char *path, const char *key, uint64_t min, uint64_t max,
	    uint64_t *ret, struct error *e);
/* One value of NULL-terminated @choices; *ret is its index. */
int jx_enum(json_t *obj, const char *path, const char *key, const char *const *choices, int *ret,
	    struct error *e);
/* A JSON array of the items of @list, a ", "-joined list (as luks_uuid_find writes). NULL on
 * ENOMEM. */
json_t *jx_list(const char *list);
