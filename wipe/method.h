/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The wipe methods and the NIST SP 800-88 profiles, as tables: what each method does, whether
 * this device can take it, the sanitization level it reaches here (and why not higher), and
 * which method a profile picks. Decides; does no I/O beyond what device_probe gathered. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "device.h"
#include "pass.h"
#include "pattern.h"
#include "sanitize.h"

#define METHOD_WHY_MAX 512

enum method_kind {
	METHOD_OVERWRITE, /* write a pattern over every block */
	METHOD_CRYPTO,	  /* LUKS2: overwrite both headers and every keyslot area */
	METHOD_IOCTL,	  /* BLKZEROOUT, BLKDISCARD, BLKSECDISCARD */
	METHOD_FIRMWARE,  /* NVMe / ATA sanitize, NVMe format with secure erase */
};

enum nist_level {
	NIST_NONE,
	NIST_CLEAR,
	NIST_PURGE,
};

struct wipe_method {
	const char *name;
	const char *summary;
	enum method_kind kind;
	enum pattern_kind pattern;   /* OVERWRITE, CRYPTO */
	unsigned long ioctl;	     /* IOCTL */
	enum sanitize_action action; /* FIRMWARE */
	const char *technique;	     /* SP 800-88 Rev. 1 Appendix G "Method Used" */
	bool verifiable;	     /* reading back proves something */
	enum pass_verify verify_default;
};

struct wipe_profile {
	const char *name;
	const char *summary;
	enum nist_level level;
	const char *const *prefer; /* method names, best first */
};

extern const struct wipe_method wipe_methods[];
extern const size_t wipe_methods_count;
extern const struct wipe_profile wipe_profiles[];
extern const size_t wipe_profiles_count;

const struct wipe_method *method_find(const char *name);
const struct wipe_profile *profile_find(const char *name);

/* Whether @d can take @m at all (@luks_uuid: the LUKS2 header found, "" if none).
 * -EOPNOTSUPP with the reason in @why. */
int method_check(const struct wipe_method *m, const struct device_info *d, const char *luks_uuid,
		 char *why, size_t size);

/* The level @m reaches on @d; when below Purge, @why says what keeps it there. */
enum nist_level method_level(const struct wipe_method *m, const struct device_info *d, char *why,
			     size_t size);

/* Whether reading @d back after @m checks anything: a method that writes a pattern, or a
 * firmware erase or discard on a drive that says erased blocks read as zeros (NVMe DLFEAT);
 * when not, @why says why not. */
bool method_verifiable(const struct wipe_method *m, const struct device_info *d, char *why,
		       size_t size);

/* The method @p picks for @d. -EOPNOTSUPP when the profile cannot be honoured on this device;
 * @why explains (e.g. "overwrite is not Purge on flash"). */
int profile_choose(const struct wipe_profile *p, const struct device_info *d, const char *luks_uuid,
		   const struct wipe_method **ret, char *why, size_t size);

const char *nist_level_name(enum nist_level l);
