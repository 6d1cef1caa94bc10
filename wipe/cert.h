/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The certificate of sanitization: a JSON record of one wipe (identity and signatures before and
 * after, method, NIST level, verification, errors, times, tool, operator, host, and the SP 800-88
 * Rev. 1 Appendix G fields), signed with the node's Ed25519 key; rendering and checking it. A
 * certificate never says success for a wipe that did not succeed. Never logs. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "device.h"
#include "error.h"
#include "method.h"
#include "pass.h"
#include "pattern.h"

#define CERT_FORMAT    "wipe-certificate/1"
#define CERT_FILE_MAX  (256 * 1024)
#define CERT_FIELD_MAX 256
#define CERT_ID_MAX    40

/* What a certificate states about one wipe, filled by whoever ran it. Plain data: the strings
 * and JSON values are borrowed for the call, never kept. */
struct cert_facts {
	const char *result;  /* "success", "failure" or "interrupted" */
	const char *summary; /* one line for people */
	const struct device_info *dev;
	json_t *before;	    /* {"device", "signatures", "luks_uuid"} before the first write */
	json_t *sigs_after; /* NULL: not probed */
	json_t *keyslots;   /* crypto: the keyslot areas destroyed; NULL otherwise */
	json_t *notes;	    /* caveats and fallbacks */
	const struct wipe_method *method;
	const struct sanitize_outcome *firmware; /* a firmware method's answer; NULL: none */
	const char *profile;			 /* NULL: none asked */
	enum pattern_kind pattern;
	uint64_t end;	       /* the method covered [0, end) */
	enum nist_level level; /* the method's level on this device */
	const char *level_note;
	enum pass_verify verify;
	const char *verified; /* "passed", "failed", "incomplete", "not-run", "not-requested" */
	struct pass_stats write, check;
	uint64_t resumes;
	uint64_t started_us, ended_us; /* wall clock */
	uint64_t write_us, verify_us;  /* time in each phase, this run */
	json_t *performed_by;	       /* {"name", "uid", "user", "sudo_user"?} */
	json_t *fields;		       /* Appendix G fields given with --field */
};

/* Where cert_issue put the certificate. */
struct cert_issued {
	char path[PATH_MAX];
	char id[CERT_ID_MAX];
};

/* Builds the certificate of @f, signs it with @key and writes it into @dir as
 * DEVICE-ID-TIME.json. -errno (signing, writing); @ret->id is set once the record has one,
 * @ret->path only when the file is written. */
int cert_issue(const struct cert_facts *f, EVP_PKEY *key, const char *dir, struct cert_issued *ret);

/* The record alone (unsigned), for tests and for cert_issue. */
json_t *cert_build(const struct cert_facts *f);

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
