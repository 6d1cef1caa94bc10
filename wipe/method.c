// SPDX-License-Identifier: GPL-2.0-or-later
/* Method and profile tables. The NIST levels follow SP 800-88 (Rev. 1 Table A-8, Rev. 2 and
 * IEEE 2883): an overwrite through the block interface is Clear on every medium (it cannot reach
 * spare, remapped or over-provisioned areas); Purge needs the device's own sanitize, or a
 * cryptographic erase whose key storage is itself reliably overwritten. */
#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

const struct wipe_method wipe_methods[] = {
	{
		.name = "crypto",
		.summary = "LUKS2 cryptographic erase: overwrite both header copies and the whole "
			   "keyslot area with a keystream, so no keyslot can ever open the data",
		.kind = METHOD_CRYPTO,
		.pattern = PATTERN_KEYSTREAM,
		.technique = "Crypto Erase",
		.verifiable = true,
		.verify_default = PASS_VERIFY_FULL,
	},
	{
		.name = "zero",
		.summary = "overwrite every block with zeros (one pass)",
		.kind = METHOD_OVERWRITE,
		.pattern = PATTERN_ZERO,
		.technique = "Overwrite",
		.verifiable = true,
		.verify_default = PASS_VERIFY_SAMPLE,
	},
	{
		.name = "random",
		.summary = "overwrite every block with an AES-128-CTR keystream from a fresh key "
			   "(one pass; verified by regenerating it)",
		.kind = METHOD_OVERWRITE,
		.pattern = PATTERN_KEYSTREAM,
		.technique = "Overwrite",
		.verifiable = true,
		.verify_default = PASS_VERIFY_SAMPLE,
	},
	{
		.name = "zeroout",
		.summary = "BLKZEROOUT: the device writes zeros itself (write-zeroes offload, "
			   "without deallocation); falls back to the zero overwrite",
		.kind = METHOD_IOCTL,
		.ioctl = BLKZEROOUT,
		.technique = "Overwrite",
		.verifiable = true,
		.verify_default = PASS_VERIFY_SAMPLE,
	},
	{
		.name = "discard",
		.summary = "BLKDISCARD: deallocate every block (not a sanitization: the data may "
			   "remain in the medium)",
		.kind = METHOD_IOCTL,
		.ioctl = BLKDISCARD,
		.technique = "Other",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "secure-discard",
		.summary = "BLKSECDISCARD: the device's secure erase of every block (eMMC secure "
			   "trim, virtio secure erase)",
		.kind = METHOD_IOCTL,
		.ioctl = BLKSECDISCARD,
		.technique = "Other",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "sanitize-block",
		.summary = "firmware sanitize, block erase (NVMe Sanitize / ATA BLOCK ERASE EXT)",
		.kind = METHOD_FIRMWARE,
		.action = SANITIZE_BLOCK_ERASE,
		.technique = "Block Erase",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "sanitize-crypto",
		.summary = "firmware sanitize, cryptographic erase (NVMe Sanitize / ATA CRYPTO "
			   "SCRAMBLE EXT)",
		.kind = METHOD_FIRMWARE,
		.action = SANITIZE_CRYPTO_ERASE,
		.technique = "Crypto Erase",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "sanitize-overwrite",
		.summary = "firmware sanitize, overwrite of every physical block, including spare "
			   "areas (NVMe Sanitize / ATA OVERWRITE EXT)",
		.kind = METHOD_FIRMWARE,
		.action = SANITIZE_OVERWRITE,
		.technique = "Overwrite",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "format-erase",
		.summary = "NVMe Format NVM with Secure Erase Setting 1 (user data erase)",
		.kind = METHOD_FIRMWARE,
		.action = SANITIZE_FORMAT_ERASE,
		.technique = "Block Erase",
		.verify_default = PASS_VERIFY_NONE,
	},
	{
		.name = "format-crypto",
		.summary = "NVMe Format NVM with Secure Erase Setting 2 (cryptographic erase)",
		.kind = METHOD_FIRMWARE,
		.action = SANITIZE_FORMAT_CRYPTO,
		.technique = "Crypto Erase",
		.verify_default = PASS_VERIFY_NONE,
	},
};
const size_t wipe_methods_count = ELEMENTSOF(wipe_methods);

const struct wipe_profile wipe_profiles[] = {
	{
		.name = "clear",
		.summary = "NIST SP 800-88 Clear: overwrite every user-addressable block, verified",
		.level = NIST_CLEAR,
		.prefer = (const char *const[]){"random", "zero", NULL},
	},
	{
		.name = "purge",
		.summary =
			"NIST SP 800-88 Purge: firmware sanitize where the device has it; else a "
			"LUKS2 cryptographic erase on magnetic media; otherwise refused",
		.level = NIST_PURGE,
		.prefer = (const char *const[]){"sanitize-block", "sanitize-crypto",
						"sanitize-overwrite", "format-crypto",
						"format-erase", "crypto", NULL},
	},
};
const size_t wipe_profiles_count = ELEMENTSOF(wipe_profiles);

const char *nist_level_name(enum nist_level l)
{
	static const char *const names[] = {
		[NIST_NONE] = "none",
		[NIST_CLEAR] = "clear",
		[NIST_PURGE] = "purge",
	};
	return names[l];
}

const struct wipe_method *method_find(const char *name)
{
	for (size_t i = 0; i < wipe_methods_count; i++)
		if (streq_ptr(name, wipe_methods[i].name))
			return &wipe_methods[i];
	return NULL;
}

const struct wipe_profile *profile_find(const char *name)
{
	for (size_t i = 0; i < wipe_profiles_count; i++)
		if (streq_ptr(name, wipe_profiles[i].name))
			return &wipe_profiles[i];
	return NULL;
}

int method_check(const struct wipe_method *m, const struct device_info *d, const char *luks_uuid,
		 char *why, size_t size)
{
	char answer[METHOD_WHY_MAX / 2];
	bool offered = false;

	why[0] = 0;
	switch (m->kind) {
	case METHOD_OVERWRITE:
		return 0;
	case METHOD_CRYPTO:
		if (luks_uuid && luks_uuid[0])
			return 0;
		snprintf(why, size, "%s holds no LUKS2 header: a cryptographic erase needs one",
			 d->path);
		return -EOPNOTSUPP;
	case METHOD_IOCTL:
		if (m->ioctl == BLKDISCARD && !d->discard_max) {
			snprintf(why, size, "%s does not support discard", d->path);
			return -EOPNOTSUPP;
		}
		if (m->ioctl == BLKSECDISCARD && !d->secure_discard) {
			snprintf(why, size, "%s does not advertise secure erase", d->path);
			return -EOPNOTSUPP;
		}
		/* BLKZEROOUT always works: the kernel writes zeros when the device cannot. */
		return 0;
	case METHOD_FIRMWARE:
		if (d->partition) {
			snprintf(why, size,
				 "%s is a partition: firmware sanitize erases the whole "
				 "disk, wipe %s instead",
				 d->path, d->disk);
			return -EOPNOTSUPP;
		}
		if (d->firmware.action[m->action])
			return 0;
		for (int a = 0; a < _SANITIZE_ACTION_MAX; a++)
			offered |= d->firmware.action[a];
		sanitize_explain(&d->firmware, m->action, answer, sizeof(answer));
		if (offered)
			snprintf(why, size, "%s does not offer %s: %s", d->path,
				 sanitize_action_name(m->action), answer);
		else if (d->firmware.nvme || d->firmware.ata)
			snprintf(why, size,
				 "%s (%s) offers no firmware sanitize or secure format: %s",
				 d->path, d->firmware.nvme ? "NVMe" : "ATA", answer);
		else
			snprintf(why, size,
				 "%s (%s) has no firmware sanitize that wipe can drive "
				 "(NVMe and ATA only)",
				 d->path, d->transport);
		return -EOPNOTSUPP;
	}
	return -EINVAL;
}

bool method_verifiable(const struct wipe_method *m, const struct device_info *d, char *why,
		       size_t size)
{
	bool erases =
		m->kind == METHOD_FIRMWARE || (m->kind == METHOD_IOCTL && m->ioctl == BLKDISCARD);

	why[0] = 0;
	if (m->verifiable || (erases && d->firmware.reads_zero))
		return true;
	if (erases && d->firmware.nvme)
		snprintf(
			why, size,
			"the namespace's DLFEAT is 0x%02x: it does not say that erased blocks read "
			"as zeros",
			d->firmware.dlfeat);
	else
		snprintf(why, size, "what the device returns afterwards is up to it");
	return false;
}

static const char *overwrite_limit(enum device_media media)
{
	static const char *const why[] = {
		[DEVICE_MEDIA_MAGNETIC] = "an overwrite through the block interface cannot reach "
					  "reallocated sectors or hidden areas: Clear on magnetic "
					  "media (SP 800-88 Table A-8); Purge needs the drive's "
					  "sanitize",
		[DEVICE_MEDIA_FLASH] =
			"overwrite is not Purge on flash: the FTL keeps remapped and "
			"over-provisioned pages out of reach; Purge needs the drive's "
			"sanitize",
		[DEVICE_MEDIA_VIRTUAL] =
			"the medium beneath a virtual device is unknown (snapshots, "
			"copy-on-write, thin provisioning may keep old blocks): "
			"Clear only; Purge belongs to the physical device",
	};
	return why[media];
}

enum nist_level method_level(const struct wipe_method *m, const struct device_info *d, char *why,
			     size_t size)
{
	enum device_media media = device_media(d);

	why[0] = 0;
	switch (m->kind) {
	case METHOD_FIRMWARE:
		return NIST_PURGE;
	case METHOD_CRYPTO:
		/* LUKS splits each keyslot with the anti-forensic splitter: a stray remnant of a
		 * sector is useless, so overwriting the keyslot area of a magnetic disk destroys
		 * the key. A flash FTL may keep whole old copies of that area. */
		if (media == DEVICE_MEDIA_MAGNETIC)
			return NIST_PURGE;
		snprintf(
			why, size, "%s",
			media == DEVICE_MEDIA_FLASH
				? "on flash the FTL may keep whole old copies of the keyslot area, "
				  "so the key is Cleared, not Purged; Purge needs the drive's "
				  "sanitize"
				: "the medium beneath a virtual device may keep old copies of the "
				  "keyslot area: Clear only");
		return NIST_CLEAR;
	case METHOD_OVERWRITE:
		snprintf(why, size, "%s", overwrite_limit(media));
		return NIST_CLEAR;
	case METHOD_IOCTL:
		if (m->ioctl == BLKDISCARD) {
			snprintf(why, size,
				 "deallocation is not sanitization: the blocks may remain "
				 "readable in the medium");
			return NIST_NONE;
		}
		if (m->ioctl == BLKSECDISCARD) {
			snprintf(why, size,
				 "what a secure discard erases is up to the device; "
				 "counted as Clear");
			return NIST_CLEAR;
		}
		snprintf(why, size, "%s", overwrite_limit(media));
		return NIST_CLEAR;
	}
	return NIST_NONE;
}

int profile_choose(const struct wipe_profile *p, const struct device_info *d, const char *luks_uuid,
		   const struct wipe_method **ret, char *why, size_t size)
{
	char fw[METHOD_WHY_MAX] = "", crypto[METHOD_WHY_MAX] = "", tmp[METHOD_WHY_MAX];

	for (const char *const *n = p->prefer; *n; n++) {
		const struct wipe_method *m = method_find(*n);

		if (method_check(m, d, luks_uuid, tmp, sizeof(tmp)) < 0) {
			if (m->kind == METHOD_FIRMWARE && !fw[0])
				snprintf(fw, sizeof(fw), "%s", tmp);
			if (m->kind == METHOD_CRYPTO)
				snprintf(crypto, sizeof(crypto), "%s", tmp);
			continue;
		}
		if (method_level(m, d, tmp, sizeof(tmp)) < p->level) {
			if (m->kind == METHOD_CRYPTO)
				snprintf(crypto, sizeof(crypto), "%s", tmp);
			continue;
		}
		*ret = m;
		return 0;
	}
	snprintf(why, size, "profile %s cannot be honoured on %s (%s): %s; crypto erase: %s; %s",
		 p->name, d->path, device_media_name(device_media(d)), fw[0] ? fw : "no sanitize",
		 crypto[0] ? crypto : "not applicable", overwrite_limit(device_media(d)));
	return -EOPNOTSUPP;
}
