/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checking an audit log written by audit.h: its chain of hashes and its signed checkpoints.
 * Reads only. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"

/* Verifies the chain and the checkpoint signatures of the log at @path; @trusted (may be NULL)
 * must have signed every checkpoint. *report (may be NULL) describes the log. On -EBADMSG,
 * @err names the first line and what is wrong with it (edited, deleted, inserted, reordered,
 * truncated), and the report lists them all. -ENOENT and other -errno from reading the file,
 * -EINVAL for a key that cannot be used, -ENOMEM. */
int audit_verify(const char *path, EVP_PKEY *trusted, json_t **report, struct error *err);
