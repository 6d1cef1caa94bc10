// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl inspect's human-readable rendering of inspect_device()'s JSON. Reads nothing from
 * the device itself: what it prints is what volume/inspect.c found. The header is outside
 * input: every text is escaped (text.c) and a field of the wrong type shows as "?". */
#include <stdio.h>
#include <string.h>

#include "inspect_ui.h"
#include "text.h"
#include "token.h"

/* Room for one escaped header string (a token field is at most a few KiB). */
#define SHOW_MAX (4 * 4096 + 1)

/* @o's member @key as printable text in @buf: escaped, or "?" if it is not a string. */
static const char *show(json_t *o, const char *key, char *buf)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? text_escape(s, buf, SHOW_MAX) : "?";
}

static void print_keyslot(json_t *v)
{
	static char kdf[SHOW_MAX], bound[SHOW_MAX];
	json_t *tok = json_object_get(v, "token");

	printf("  %2lld  %-9s ", json_integer_value(json_object_get(v, "slot")),
	       show(v, "kdf", kdf));
	if (json_is_true(json_object_get(v, "kms_bound")))
		printf("keyd token %lld (KMS)\n", json_integer_value(tok));
	else if (json_is_string(json_object_get(v, "bound_to")))
		printf("token %lld (%s)  NOT BOUND TO THE KMS\n", json_integer_value(tok),
		       show(v, "bound_to", bound));
	else
		printf("passphrase/key file  NOT BOUND TO THE KMS\n");
}

/* A keyd token: the volume, and each wrap (one per KMS) on a line of its own. */
static void print_keyd_token(json_t *v)
{
	static char name[SHOW_MAX], kms[SHOW_MAX], prov[SHOW_MAX], key[SHOW_MAX], ver[SHOW_MAX],
		created[SHOW_MAX];
	json_t *wraps = json_object_get(v, "wraps"), *w;
	size_t j;

	printf("  volume %s, created %s", show(v, "name", name), show(v, "created", created));
	if (json_array_size(wraps) > 1)
		printf(", any of %zu KMS", json_array_size(wraps));
	json_array_foreach (wraps, j, w)
		printf("\n      KMS %s (%s), key %s%s%s", show(w, "kms", kms),
		       show(w, "provider", prov), show(w, "key_id", key),
		       json_object_get(w, "key_version") ? " version " : "",
		       json_object_get(w, "key_version") ? show(w, "key_version", ver) : "");
}

static void print_token(json_t *v)
{
	static char type[SHOW_MAX], bad[SHOW_MAX];
	const char *t = json_string_value(json_object_get(v, "type"));

	printf("  %2lld  %s", json_integer_value(json_object_get(v, "id")), show(v, "type", type));
	if (t && strcmp(t, TOKEN_TYPE) == 0 && json_is_string(json_object_get(v, "invalid")))
		printf("  INVALID: %s", show(v, "invalid", bad));
	else if (t && strcmp(t, TOKEN_TYPE) == 0)
		print_keyd_token(v);
	printf("\n");
}

void inspect_ui_print(json_t *info)
{
	static char buf[SHOW_MAX];
	json_t *v;
	size_t i;

	printf("Device:       %s\n", show(info, "device", buf));
	printf("LUKS UUID:    %s\n", show(info, "uuid", buf));
	printf("Cipher:       %s, %lld-byte sectors\n", show(info, "cipher", buf),
	       json_integer_value(json_object_get(info, "sector_size")));
	printf("Keyslots:\n");
	json_array_foreach (json_object_get(info, "keyslots"), i, v)
		print_keyslot(v);
	printf("Tokens:\n");
	json_array_foreach (json_object_get(info, "tokens"), i, v)
		print_token(v);
	json_array_foreach (json_object_get(info, "warnings"), i, v)
		printf("WARNING: %s\n",
		       json_is_string(v) ? text_escape(json_string_value(v), buf, SHOW_MAX) : "?");
}
