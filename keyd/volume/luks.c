// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's LUKS2 volume glue: finding devices, the keyd keyslot's PBKDF, activation (or a
 * check-only activation without device-mapper). Holds no key material beyond a call. */
#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "luks.h"

int luks_resolve_device(const char *spec, char **ret)
{
	char *p;

	if (spec[0] == '/') {
		p = strdup(spec);
		if (!p)
			return -ENOMEM;
		*ret = p;
		return 0;
	}
	/* blkid_evaluate_spec understands UUID=, PARTUUID= and LABEL= (via udev links or a
	 * probe of every device when udev has none). */
	p = blkid_evaluate_spec(spec, NULL);
	if (!p)
		return -ENODEV;
	*ret = p;
	return 0;
}

int luks_set_keyd_pbkdf(struct crypt_device *cd)
{
	static const struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2,
		.hash = "sha512",
		.iterations = LUKS_PBKDF_ITERATIONS,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};

	return crypt_set_pbkdf_type(cd, &pbkdf);
}

bool luks_dm_available(char *why, size_t size)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/misc", "re");

	/* device-mapper registers a misc device; without it no mapping can be made. */
	if (f) {
		while (!found && fgets(line, sizeof(line), f))
			found = strstr(line, " device-mapper") != NULL;
		fclose(f);
	}
	if (!found)
		snprintf(why, size,
			 "this kernel has no device-mapper (dm-mod/dm-crypt not built in or "
			 "loaded; /proc/misc lists no device-mapper)");
	return found;
}

int luks_activate(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek,
		  size_t len, uint32_t flags)
{
	int r;

	/* During a re-encryption the data needs the old and the new volume key, which no single
	 * keyslot holds: libcryptsetup gathers both only when it may pick the keyslots. Just
	 * before one starts, the token already names the new keyslot, still unbound (reencrypt.c).
	 * Either way the DEK opens the keyd keyslots and nothing else. */
	if (slot >= 0 && (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE ||
			  crypt_keyslot_status(cd, slot) == CRYPT_SLOT_UNBOUND))
		slot = CRYPT_ANY_SLOT;
	if (name)
		cryptsetup_dm_lock();
	r = crypt_activate_by_passphrase(cd, name, slot, (const char *)dek, len, flags);
	if (name)
		cryptsetup_dm_unlock();
	return r;
}

int luks_resume(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek, size_t len)
{
	int r;

	cryptsetup_dm_lock();
	r = crypt_resume_by_passphrase(cd, name, slot, (const char *)dek, len);
	cryptsetup_dm_unlock();
	return r;
}

int luks_deactivate(const char *name)
{
	int r;

	cryptsetup_dm_lock();
	r = crypt_deactivate(NULL, name);
	cryptsetup_dm_unlock();
	return r;
}

int luks_suspend(const char *name)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r;

	cryptsetup_dm_lock();
	r = crypt_init_by_name(&cd, name);
	if (r >= 0)
		r = crypt_suspend(cd, name);
	cryptsetup_dm_unlock();
	return r;
}

int luks_mapping_uuid(const char *name, char *buf, size_t size)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r = 0;

	cryptsetup_dm_lock();
	if (crypt_status(NULL, name) < CRYPT_ACTIVE)
		r = -ENODEV;
	else if (crypt_init_by_name(&cd, name) < 0 || !crypt_get_uuid(cd))
		r = -EIO;
	else
		snprintf(buf, size, "%s", crypt_get_uuid(cd));
	cryptsetup_dm_unlock();
	return r;
}

bool luks_is_empty(const char *path)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;

	if (cryptsetup_load(path, &cd) < 0)
		return false;
	for (int i = 0; i < 32; i++)
		if (crypt_keyslot_status(cd, i) != CRYPT_SLOT_INACTIVE)
			return false;
	for (int i = 0; i < 32; i++)
		if (crypt_token_status(cd, i, NULL) != CRYPT_TOKEN_INACTIVE)
			return false;
	return true;
}
