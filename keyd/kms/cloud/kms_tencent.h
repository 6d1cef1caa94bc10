/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parsers of Tencent Cloud replies the `tencent` provider reads (exported for the fuzz
 * harness): the API 3.0 envelope, DescribeKey's KeyMetadata, a CAM role's credentials. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"
#include "kms_cloud.h"

struct tencent_meta {
	size_t state; /* index into the provider's state table */
	bool symmetric;
	uint64_t last_rotate; /* LastRotateTime, seconds since the epoch; 0: never */
	char key_id[KMS_KEY_ID_MAX + 1];
};

/* {"Response": {…}}: 0 with *ret the Response object; -EREMOTEIO with @code and @msg (made
 * printable) for Response.Error; -EPROTO for anything else. */
int tencent_parse_response(const char *body, size_t n, json_t **ret, char *code, size_t code_size,
			   char *msg, size_t msg_size);
/* DescribeKey's Response: KeyId, KeyState, KeyUsage, LastRotateTime. -EPROTO with @why. */
int tencent_parse_key_metadata(json_t *resp, struct tencent_meta *m, struct error *pe);
/* The CVM metadata service's role credentials: TmpSecretId, TmpSecretKey, Token, ExpiredTime
 * (into secure memory). -EPROTO, -EACCES (Code not Success), -ENOMEM with @why. */
int tencent_parse_role_credentials(json_t *j, struct cloud_creds *ret, struct error *pe);
