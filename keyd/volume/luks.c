// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's LUKS2 volume glue: finding devices, the keyd keyslot's PBKDF, activation (or a
 * check-only activation without device-mapper). Holds no key material beyond a call. */
#include <blkid/blkid.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "keyslot.h"
#include "luks.h"
#include "secmem.h"

void luks_devices_free(struct luks_device *l, int n)
{
	for (int i = 0; i < n; i++)
		free(l[i].node);
	free(l);
}

/* @name's LUKS UUID by libblkid's LUKS prober alone: the header area is read, not every
 * superblock type at both ends of the disk as blkid_probe_all does (that took ~7 ms a device
 * here, per volume per unlock: issue 17). 1: LUKS, 0: not, or unreadable. */
static int probe_luks(const char *node, char *uuid, size_t size)
{
	static const char *const luks[] = {"crypto_LUKS", NULL};
	blkid_probe pr = blkid_new_probe_from_filename(node);
	const char *v;
	int r = 0;

	if (!pr)
		return 0;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_ONLYIN, (char **)luks);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID);
	if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0) {
		snprintf(uuid, size, "%s", v);
		r = 1;
	}
	blkid_free_probe(pr);
	return r;
}

/* A suspended device-mapper device (keyd's own on_revoke=suspend among them) queues every
 * read until it is resumed: probing it would hang the scan, and whoever waits on it. blkid
 * skips such devices too. */
static bool dm_suspended(const char *kname)
{
	char path[300], v[8] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/dm/suspended", kname);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(v, sizeof(v), f))
		v[0] = 0;
	fclose(f);
	return v[0] == '1';
}

/* The node blkid's cache would name: /dev/mapper/NAME for a device-mapper device. */
static int device_node(const char *kname, char *buf, size_t size)
{
	char path[300], dm[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/dm/name", kname);
	f = fopen(path, "re");
	if (f && fgets(dm, sizeof(dm), f)) {
		dm[strcspn(dm, "\n")] = 0;
		fclose(f);
		return snprintf(buf, size, "/dev/mapper/%s", dm) < (int)size ? 0 : -ENAMETOOLONG;
	}
	if (f)
		fclose(f);
	return snprintf(buf, size, "/dev/%s", kname) < (int)size ? 0 : -ENAMETOOLONG;
}

int luks_devices(struct luks_device **ret)
{
	struct luks_device *l = calloc(LUKS_DEVICES_MAX, sizeof(*l));
	/* Every block device the kernel lists, as blkid_probe_all walks them. */
	FILE *f = fopen("/proc/partitions", "re");
	char line[256];
	int n = 0;

	if (!l || !f) {
		int r = !f ? -errno : -ENOMEM;

		free(l);
		if (f)
			fclose(f);
		return r;
	}
	while (n < LUKS_DEVICES_MAX && fgets(line, sizeof(line), f)) {
		unsigned long long blocks;
		char kname[128], node[300];
		unsigned maj, mnr;

		/* Empty devices (an unbound loop device) and 1-block extended partitions hold no
		 * header. */
		if (sscanf(line, " %u %u %llu %127s", &maj, &mnr, &blocks, kname) != 4 ||
		    blocks <= 1 || dm_suspended(kname) ||
		    device_node(kname, node, sizeof(node)) < 0 ||
		    probe_luks(node, l[n].uuid, sizeof(l[n].uuid)) != 1)
			continue;
		l[n].node = strdup(node);
		if (!l[n].node)
			break;
		n++;
	}
	fclose(f);
	*ret = l;
	return n;
}

bool luks_same_device(const char *a, const char *b)
{
	struct stat sa, sb;

	if (strcmp(a, b) == 0)
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISBLK(sa.st_mode) &&
	       S_ISBLK(sb.st_mode) && sa.st_rdev == sb.st_rdev;
}

/* Whether block device @upper holds @lower directly (/sys/dev/block/LOWER/holders/). */
static bool holds(const char *upper, const char *lower)
{
	struct stat su, sl;
	char path[64], want[32], dev[32] = "";
	struct dirent *e;
	bool found = false;
	DIR *d;

	if (stat(upper, &su) < 0 || stat(lower, &sl) < 0 || su.st_rdev == sl.st_rdev)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(sl.st_rdev),
		 minor(sl.st_rdev));
	snprintf(want, sizeof(want), "%u:%u\n", major(su.st_rdev), minor(su.st_rdev));
	d = opendir(path);
	while (d && !found && (e = readdir(d))) {
		char p[320];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/class/block/%s/dev", e->d_name);
		f = fopen(p, "re");
		found = f && fgets(dev, sizeof(dev), f) && strcmp(dev, want) == 0;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* Device @i of @l is one more carrier of @uuid: not @except, and not a device another carrier
 * is stacked on (a multipath map over its paths, dm-linear over a disk: one header shows on
 * each, and the top one is the volume). */
static bool uuid_carrier(const struct luks_device *l, int n, int i, const char *uuid,
			 const char *except)
{
	if (!uuid[0] || strcasecmp(l[i].uuid, uuid) != 0 ||
	    (except && luks_same_device(l[i].node, except)))
		return false;
	for (int j = 0; j < n; j++)
		if (j != i && strcasecmp(l[j].uuid, uuid) == 0 && holds(l[j].node, l[i].node))
			return false;
	return true;
}

int luks_uuid_find(const struct luks_device *l, int n, const char *uuid, const char *except,
		   char *buf, size_t size)
{
	int found = 0;

	buf[0] = 0;
	for (int i = 0; i < n; i++)
		if (uuid_carrier(l, n, i, uuid, except)) {
			size_t len = strlen(buf);

			snprintf(buf + len, size - len, "%s%s", len ? ", " : "", l[i].node);
			found++;
		}
	return found;
}

/* The scan luks_uuid_others shares among the threads that ask at once: keyd's first pass asks
 * once per volume, all near the end, and 32 volumes each scanning every device took a quarter
 * of the pass's CPU (issue 17). As a group commit: a caller is answered from the first scan that
 * began after it asked, never from one already under way, so each sees the devices as they were
 * at its call or later, as its own scan would. The list lives only while a caller needs it. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t done;
	bool running;
	uint64_t started, finished; /* scans begun, and the last one ended */
	unsigned users;		    /* callers inside luks_uuid_others */
	struct luks_device *l;
	int n; /* what luks_devices returned */
} scan = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void scan_drop(void)
{
	if (scan.l)
		luks_devices_free(scan.l, scan.n > 0 ? scan.n : 0);
	scan.l = NULL;
	scan.n = 0;
}

int luks_uuid_others(const char *uuid, const char *device, char *buf, size_t size)
{
	uint64_t need;
	int found;

	buf[0] = 0;
	pthread_mutex_lock(&scan.lock);
	need = scan.started + 1;
	scan.users++;
	while (scan.finished < need) {
		struct luks_device *l = NULL;
		int n;

		if (scan.running) {
			pthread_cond_wait(&scan.done, &scan.lock);
			continue;
		}
		scan.running = true;
		scan.started++;
		pthread_mutex_unlock(&scan.lock);
		n = luks_devices(&l);
		pthread_mutex_lock(&scan.lock);
		scan_drop();
		scan.l = n >= 0 ? l : NULL;
		scan.n = n;
		scan.finished = scan.started;
		scan.running = false;
		pthread_cond_broadcast(&scan.done);
	}
	found = scan.n < 0 ? scan.n : luks_uuid_find(scan.l, scan.n, uuid, device, buf, size);
	if (--scan.users == 0) /* the scanner is a user too: nothing runs */
		scan_drop();
	pthread_mutex_unlock(&scan.lock);
	return found;
}

/* UUID=: the one LUKS device with that UUID (1), none (0), or -ENOTUNIQ naming them all. */
static int resolve_uuid(const char *uuid, char **ret, struct error *e)
{
	struct luks_device *l;
	char names[512];
	int n, found, r = 0;

	n = luks_devices(&l);
	if (n < 0)
		return error_set(e, n, "cannot list the block devices (/proc/partitions): %s",
				 strerror(-n));
	found = luks_uuid_find(l, n, uuid, NULL, names, sizeof(names));
	if (found > 1)
		r = error_set(e, -ENOTUNIQ,
			      "LUKS UUID %s is on %d devices (%s): a cloned or restored header; "
			      "refusing to guess which one is the volume (name it by a stable path "
			      "such as /dev/disk/by-id/...)",
			      uuid, found, names);
	for (int i = 0; found == 1 && i < n; i++)
		if (uuid_carrier(l, n, i, uuid, NULL))
			*ret = l[i].node, l[i].node = NULL;
	luks_devices_free(l, n);
	return r < 0 ? r : found > 0;
}

int luks_resolve_device(const char *spec, char **ret, struct error *e)
{
	char *p;
	int r;

	if (spec[0] == '/') {
		p = strdup(spec);
		if (!p)
			return error_set(e, -ENOMEM, "out of memory");
		*ret = p;
		return 0;
	}
	if (strncmp(spec, "UUID=", 5) == 0) {
		r = resolve_uuid(spec + 5, ret, e);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	/* blkid_evaluate_spec understands UUID=, PARTUUID= and LABEL= (via udev links or a
	 * probe of every device when udev has none). */
	p = blkid_evaluate_spec(spec, NULL);
	if (!p)
		return error_set(e, -ENODEV, "no device matches %s", spec);
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

/* @slot opened by keyd (keyslot.c) and the key it holds activated, or checked when @name is
 * NULL, by libcryptsetup, which checks it against the header's digest first; < 0 if keyd cannot
 * open that keyslot itself or the key does not hold, and the caller asks libcryptsetup. */
static int activate_by_keyslot_key(struct crypt_device *cd, const char *name, int slot,
				   const uint8_t *dek, size_t len, uint32_t flags)
{
	_cleanup_secure_ uint8_t *vk = NULL;
	size_t vk_len;
	int r;

	r = keyslot_volume_key(cd, slot, dek, len, &vk, &vk_len);
	if (r < 0)
		return r;
	if (name)
		cryptsetup_dm_lock();
	r = crypt_activate_by_volume_key(cd, name, (const char *)vk, vk_len, flags);
	if (name)
		cryptsetup_dm_unlock();
	return r < 0 ? r : slot;
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
	/* A keyslot of keyd's kind is opened by keyd, for the CPU (keyslot.c); libcryptsetup
	 * opens any other, and any that keyd's opening does not make hold. */
	if (slot >= 0) {
		r = activate_by_keyslot_key(cd, name, slot, dek, len, flags);
		if (r >= 0 || r == -EEXIST || r == -EBUSY)
			return r;
	}
	if (name)
		cryptsetup_dm_lock();
	r = crypt_activate_by_passphrase(cd, name, slot, (const char *)dek, len, flags);
	if (name)
		cryptsetup_dm_unlock();
	return r;
}

int luks_keyslot_add(struct crypt_device *cd, int slot, const uint8_t *dek, const uint8_t *new_dek,
		     size_t len)
{
	_cleanup_secure_ uint8_t *vk = NULL;
	size_t vk_len;
	int r;

	/* As luks_activate: keyd opens its own kind of keyslot, and libcryptsetup checks the
	 * volume key against the header's digest before it adds a keyslot for it. */
	if (slot >= 0 && keyslot_volume_key(cd, slot, dek, len, &vk, &vk_len) >= 0) {
		r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)vk, vk_len,
						    (const char *)new_dek, len);
		if (r != -EPERM)
			return r;
	}
	return crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)dek, len,
					       (const char *)new_dek, len);
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
