/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checking an audit log written by audit.h: its chain of hashes and its signed checkpoints.
 * Reads only. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"

/* Verifies the chain and the checkpoint signatures of the log at @path; @trusted (may be NULL)
 * must have signed every checkpoint. With @anchor (audit_anchor.h; may be NULL, or name no
 * file yet) the log must reach the position it sealed, with that very record: a log cut back
 * or begun anew fails, and so does an "audit.gap" record a writer left. *report (may be NULL)
 * describes the log. On -EBADMSG, @err names the first line and what is wrong with it
 * (edited, deleted, inserted, reordered, truncated, rewritten, gap, anchor), and the report
 * lists them all. -ENOENT and other -errno from reading the file, -EINVAL for a key that
 * cannot be used, -ENOMEM. */
int audit_verify(const char *path, const char *anchor, EVP_PKEY *trusted, json_t **report,
		 struct error *err);
