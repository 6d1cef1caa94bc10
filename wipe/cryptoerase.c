// SPDX-License-Identifier: GPL-2.0-or-later
/* LUKS2 layout for the crypto method: libcryptsetup tells where the two header copies and the
 * keyslot areas are, so the overwrite covers all of them even for unusual layouts. Touches no
 * key material (nothing is unlocked) and writes nothing. */
#include <errno.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <string.h>

#include "cryptoerase.h"
#include "cryptsetup_util.h"

static uint64_t align_up(uint64_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

int cryptoerase_plan(const char *path, uint32_t align, struct cryptoerase_region *ret)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	uint64_t md = 0, ks = 0, end;
	json_t *slots;
	int r;

	*ret = (struct cryptoerase_region){0};
	r = cryptsetup_load(path, &cd);
	if (r < 0)
		return r;
	ret->data_offset = crypt_get_data_offset(cd) * 512;
	if (ret->data_offset == 0)
		return -EINVAL;
	r = crypt_get_metadata_size(cd, &md, &ks);
	if (r < 0)
		return r;
	/* Both JSON areas (primary at 0, secondary at md) and the keyslots area after them. */
	end = 2 * md + ks;
	slots = json_array();
	if (!slots)
		return -ENOMEM;
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, s);
		uint64_t off, len;

		if (st == CRYPT_SLOT_INACTIVE || st == CRYPT_SLOT_INVALID)
			continue;
		if (crypt_keyslot_area(cd, s, &off, &len) < 0)
			continue;
		json_array_append_new(slots, json_pack("{s:i, s:I, s:I}", "slot", s, "offset",
						       (json_int_t)off, "length", (json_int_t)len));
		if (off + len > end)
			end = off + len;
	}
	/* Everything before the data is metadata: take all of it. */
	if (ret->data_offset > end)
		end = ret->data_offset;
	snprintf(ret->uuid, sizeof(ret->uuid), "%s", crypt_get_uuid(cd) ?: "");
	ret->end = align_up(end, align);
	ret->keyslots = slots;
	return 0;
}

void cryptoerase_region_done(struct cryptoerase_region *r)
{
	json_decref(r->keyslots);
	r->keyslots = NULL;
}

int cryptoerase_check_gone(const char *path)
{
	struct crypt_device *cd = NULL;
	int r;

	r = crypt_init(&cd, path);
	if (r < 0)
		return r;
	/* NULL type: any LUKS version, so a LUKS1 remnant would be found too. */
	r = crypt_load(cd, CRYPT_LUKS, NULL);
	crypt_free(cd);
	return r < 0 ? 0 : -EEXIST;
}
