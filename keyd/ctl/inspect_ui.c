// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl inspect's human-readable rendering of inspect_device()'s JSON. Reads nothing from
 * the device itself: what it prints is what volume/inspect.c found. */
#include <stdio.h>
#include <string.h>

#include "inspect_ui.h"
#include "token.h"

void inspect_ui_print(json_t *info)
{
	json_t *v;
	size_t i;

	printf("Device:       %s\n", json_string_value(json_object_get(info, "device")));
	printf("LUKS UUID:    %s\n", json_string_value(json_object_get(info, "uuid")));
	printf("Cipher:       %s, %lld-byte sectors\n",
	       json_string_value(json_object_get(info, "cipher")),
	       json_integer_value(json_object_get(info, "sector_size")));
	printf("Keyslots:\n");
	json_array_foreach (json_object_get(info, "keyslots"), i, v) {
		json_t *tok = json_object_get(v, "token");

		printf("  %2lld  %-9s ", json_integer_value(json_object_get(v, "slot")),
		       json_string_value(json_object_get(v, "kdf")));
		if (json_is_true(json_object_get(v, "kms_bound")))
			printf("keyd token %lld (KMS)\n", json_integer_value(tok));
		else if (json_is_string(json_object_get(v, "bound_to")))
			printf("token %lld (%s)  NOT BOUND TO THE KMS\n", json_integer_value(tok),
			       json_string_value(json_object_get(v, "bound_to")));
		else
			printf("passphrase/key file  NOT BOUND TO THE KMS\n");
	}
	printf("Tokens:\n");
	json_array_foreach (json_object_get(info, "tokens"), i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));

		printf("  %2lld  %s", json_integer_value(json_object_get(v, "id")), type);
		if (type && strcmp(type, TOKEN_TYPE) == 0) {
			json_t *wraps = json_object_get(v, "wraps"), *w;
			size_t j;

			printf("  volume %s, created %s",
			       json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "created")));
			if (json_array_size(wraps) > 1)
				printf(", any of %zu KMS", json_array_size(wraps));
			json_array_foreach (wraps, j, w) {
				const char *ver =
					json_string_value(json_object_get(w, "key_version"));

				printf("\n      KMS %s (%s), key %s%s%s",
				       json_string_value(json_object_get(w, "kms")),
				       json_string_value(json_object_get(w, "provider")),
				       json_string_value(json_object_get(w, "key_id")),
				       ver ? " version " : "", ver ? ver : "");
			}
		}
		printf("\n");
	}
	json_array_foreach (json_object_get(info, "warnings"), i, v)
		printf("WARNING: %s\n", json_string_value(v));
}
