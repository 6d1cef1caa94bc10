/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The certificate of sanitization: a JSON record of one wipe (identity and signatures before and
 * after, method, NIST level, verification, errors, times, tool, operator, host, and the SP 800-88
 * Rev. 1 Appendix G fields), signed with the node's Ed25519 key; rendering and checking it. A
 * certificate never says success for a wipe that did not succeed. Never logs. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>

#include "job.h"

#define CERT_FORMAT    "wipe-certificate/1"
#define CERT_FILE_MAX  (256 * 1024)
#define CERT_FIELD_MAX 256

/* Builds, signs and writes the certificate of @j into its cert_dir as DEVICE-ID-TIME.json;
 * sets j->cert_path and j->cert_id. -errno (signing, writing). */
int cert_issue(struct wipe_job *j);

/* The record alone (unsigned), for tests and for cert_issue. */
json_t *cert_build(const struct wipe_job *j);

/* Reads a certificate file. -EFBIG over CERT_FILE_MAX, -EBADMSG not JSON. */
int cert_load(const char *path, json_t **ret);

/* Checks the signature (with @trusted, or the embedded key when NULL) and that the record is
 * whole and consistent (a "success" with failed blocks or a failed verification is rejected).
 * 0 valid; -EBADMSG with @err saying what is wrong; -ENOKEY unsigned. */
int cert_check(json_t *cert, EVP_PKEY *trusted, struct error *err);

/* Renders for people. */
void cert_print(json_t *cert, FILE *f);

/* The Appendix G fields an operator supplies (--field KEY=VALUE). */
bool cert_field_settable(const char *key);
void cert_fields_help(FILE *f);
