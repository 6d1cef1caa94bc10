// SPDX-License-Identifier: GPL-2.0-or-later
/* libcryptsetup/libblkid glue. Holds no key material beyond the duration of a call. */
#include <blkid/blkid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "luks.h"

static void luks_log(int level, const char *msg, void *u)
{
	char line[1024];
	size_t n;

	(void)u;
	snprintf(line, sizeof(line), "%s", msg);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = 0;
	/* Our callers report each failure once in their own words; libcryptsetup's own
	 * messages are detail for whoever looks closer. */
	log_internal(level == CRYPT_LOG_ERROR ? LOG_INFO : LOG_DEBUG, 0, "libcryptsetup: %s", line);
}

void luks_setup(void)
{
	crypt_set_log_callback(NULL, luks_log, NULL);
	crypt_token_external_disable();
	if (log_get_max_level() >= LOG_DEBUG)
		crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

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

int luks_load(const char *path, struct crypt_device **ret)
{
	struct crypt_device *cd = NULL;
	int r;

	r = crypt_init(&cd, path);
	if (r < 0)
		return r;
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r < 0) {
		crypt_free(cd);
		return r == -EINVAL ? -EMEDIUMTYPE : r;
	}
	*ret = cd;
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

/* libdevmapper keeps process-wide, unlocked state (its list of pending /dev/mapper node
 * operations): two threads creating mappings at once corrupt it. Every call that reaches
 * device-mapper goes through this lock; KMS calls and key derivation stay parallel. */
static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;

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
		pthread_mutex_lock(&dm_lock);
	r = crypt_activate_by_passphrase(cd, name, slot, (const char *)dek, len, flags);
	if (name)
		pthread_mutex_unlock(&dm_lock);
	return r;
}

int luks_resume(struct crypt_device *cd, const char *name, int slot, const uint8_t *dek, size_t len)
{
	int r;

	pthread_mutex_lock(&dm_lock);
	r = crypt_resume_by_passphrase(cd, name, slot, (const char *)dek, len);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int luks_deactivate(const char *name)
{
	int r;

	pthread_mutex_lock(&dm_lock);
	r = crypt_deactivate(NULL, name);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int luks_suspend(const char *name)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r;

	pthread_mutex_lock(&dm_lock);
	r = crypt_init_by_name(&cd, name);
	if (r >= 0)
		r = crypt_suspend(cd, name);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int luks_mapping_uuid(const char *name, char *buf, size_t size)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;
	int r = 0;

	pthread_mutex_lock(&dm_lock);
	if (crypt_status(NULL, name) < CRYPT_ACTIVE)
		r = -ENODEV;
	else if (crypt_init_by_name(&cd, name) < 0 || !crypt_get_uuid(cd))
		r = -EIO;
	else
		snprintf(buf, size, "%s", crypt_get_uuid(cd));
	pthread_mutex_unlock(&dm_lock);
	return r;
}

bool luks_is_empty(const char *path)
{
	_cleanup_crypt_ struct crypt_device *cd = NULL;

	if (luks_load(path, &cd) < 0)
		return false;
	for (int i = 0; i < 32; i++)
		if (crypt_keyslot_status(cd, i) != CRYPT_SLOT_INACTIVE)
			return false;
	for (int i = 0; i < 32; i++)
		if (crypt_token_status(cd, i, NULL) != CRYPT_TOKEN_INACTIVE)
			return false;
	return true;
}

int luks_probe_signatures(const char *path, char *buf, size_t size)
{
	blkid_probe pr;
	int count = 0, r;

	buf[0] = 0;
	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return negative_errno();
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	/* Every signature, not just the first: a stale one under another is still data. */
	while ((r = blkid_do_probe(pr)) == 0) {
		const char *type = NULL;

		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) < 0 &&
		    blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) < 0)
			type = "unknown signature";
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", count ? ", " : "", type);
		count++;
	}
	blkid_free_probe(pr);
	return r < 0 ? -EIO : count;
}
