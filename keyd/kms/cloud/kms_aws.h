/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parsers of AWS replies the `aws` provider reads (exported for the fuzz harness): an
 * error's __type and message, DescribeKey's KeyMetadata, IMDS role credentials. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kms.h"
#include "kms_cloud.h"

struct aws_meta {
	size_t state;			    /* index into the provider's state table */
	char material[KMS_VERSION_MAX + 1]; /* CurrentKeyMaterialId, "" if none */
	bool symmetric;			    /* ENCRYPT_DECRYPT with SYMMETRIC_DEFAULT */
};

/* An error reply's __type (namespace and ":…" stripped; "" if none or odd) and message (made
 * printable). Never fails. */
void aws_parse_error(const char *body, size_t n, char *type, size_t type_size, char *msg,
		     size_t msg_size);
/* DescribeKey's reply: KeyState, KeyUsage, KeySpec, CurrentKeyMaterialId. -EPROTO, @why. */
int aws_parse_key_metadata(json_t *reply, struct aws_meta *m, struct error *pe);
/* IMDS role credentials: Code, AccessKeyId, SecretAccessKey, Token, Expiration (into secure
 * memory). -EPROTO, -EACCES (Code not Success), -ENOMEM with @why. */
int aws_parse_role_credentials(json_t *j, struct cloud_creds *ret, struct error *pe);
