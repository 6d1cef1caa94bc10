// SPDX-License-Identifier: GPL-2.0-or-later
/* libblkid probing in "safe" mode with every chain on, reporting each signature found (a stale
 * one beneath another is still somebody's data). The only place wipe maps blkid errors. */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "signatures.h"

/* blkid returns -1 (or a negative errno, depending on the call and version) without errno. */
static int blkid_error(int r)
{
	return r < -1 ? r : -EIO;
}

static void set_value(blkid_probe pr, json_t *o, const char *name, const char *key)
{
	const char *v = NULL;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v && v[0])
		json_object_set_new(o, key, json_string(v));
}

int signatures_probe(const char *path, json_t **ret, char luks_uuid[SIGNATURES_UUID_MAX])
{
	_cleanup_close_ int fd = -1;

	luks_uuid[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	return signatures_probe_fd(fd, ret, luks_uuid);
}

int signatures_probe_fd(int fd, json_t **ret, char luks_uuid[SIGNATURES_UUID_MAX])
{
	json_t *list = json_array();
	blkid_probe pr;
	int r;

	luks_uuid[0] = 0;
	if (!list)
		return -ENOMEM;
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0) {
		blkid_free_probe(pr);
		json_decref(list);
		return -EIO;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID |
						      BLKID_SUBLKS_LABEL | BLKID_SUBLKS_VERSION |
						      BLKID_SUBLKS_USAGE | BLKID_SUBLKS_MAGIC);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	while ((r = blkid_do_probe(pr)) == 0) {
		const char *type = NULL, *off = NULL;
		json_t *o = json_object();

		if (!o)
			break;
		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0) {
			json_object_set_new(o, "type", json_string(type));
			set_value(pr, o, "USAGE", "usage");
			set_value(pr, o, "UUID", "uuid");
			set_value(pr, o, "LABEL", "label");
			set_value(pr, o, "VERSION", "version");
			blkid_probe_lookup_value(pr, "SBMAGIC_OFFSET", &off, NULL);
			if (strcmp(type, "crypto_LUKS") == 0) {
				const char *u = NULL;

				if (blkid_probe_lookup_value(pr, "UUID", &u, NULL) == 0)
					snprintf(luks_uuid, SIGNATURES_UUID_MAX, "%s", u);
			}
		} else if (blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) == 0) {
			json_object_set_new(o, "type", json_string(type));
			json_object_set_new(o, "usage", json_string("partition_table"));
			set_value(pr, o, "PTUUID", "uuid");
			blkid_probe_lookup_value(pr, "PTMAGIC_OFFSET", &off, NULL);
		} else {
			json_object_set_new(o, "type", json_string("unknown"));
		}
		if (off)
			json_object_set_new(o, "offset", json_string(off));
		json_array_append_new(list, o);
	}
	blkid_free_probe(pr);
	if (r < 0) {
		json_decref(list);
		return blkid_error(r);
	}
	*ret = list;
	return 0;
}

void signatures_format(json_t *sigs, char *buf, size_t size)
{
	size_t i, o = 0;
	json_t *s;

	buf[0] = 0;
	json_array_foreach (sigs, i, s) {
		const char *uuid = json_string_value(json_object_get(s, "uuid"));
		int n = snprintf(buf + o, size - o, "%s%s%s%s%s", i ? ", " : "",
				 json_string_value(json_object_get(s, "type")),
				 uuid ? " (UUID " : "", uuid ? uuid : "", uuid ? ")" : "");

		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
	if (!o)
		snprintf(buf, size, "none");
}
