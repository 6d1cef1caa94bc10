// SPDX-License-Identifier: GPL-2.0-or-later
/* Methods and profiles against described devices: what Clear and Purge pick, and that a profile
 * which cannot be honoured says why (overwrite is not Purge on flash, a virtual device has an
 * unknown medium, a partition cannot be sanitized by the firmware). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "method.h"

static struct device_info dev(const char *transport, bool rotational)
{
	struct device_info d = {.rotational = rotational, .size = 1ull << 30};

	snprintf(d.path, sizeof(d.path), "/dev/test");
	snprintf(d.transport, sizeof(d.transport), "%s", transport);
	return d;
}

static const char *choose(const char *profile, const struct device_info *d, const char *luks,
			  char *why, size_t size)
{
	const struct wipe_method *m = NULL;
	int r = profile_choose(profile_find(profile), d, luks, &m, why, size);

	printf("%s on %s%s: %s %s\n", profile, d->transport, luks[0] ? " (LUKS)" : "",
	       r < 0 ? "refused:" : m->name, r < 0 ? why : "");
	return r < 0 ? NULL : m->name;
}

static void test_clear_is_an_overwrite_everywhere(void **state)
{
	struct device_info d = dev("loop", true);
	char why[METHOD_WHY_MAX];

	(void)state;
	assert_string_equal(choose("clear", &d, "", why, sizeof(why)), "random");
	d = dev("nvme", false);
	assert_string_equal(choose("clear", &d, "", why, sizeof(why)), "random");
}

static void test_purge_on_flash_without_sanitize(void **state)
{
	struct device_info d = dev("nvme", false);
	char why[METHOD_WHY_MAX];

	(void)state;
	d.firmware.nvme = true;
	assert_null(choose("purge", &d, "", why, sizeof(why)));
	assert_non_null(strstr(why, "overwrite is not Purge on flash"));
	/* Nor does a LUKS2 header on flash make it Purge: the FTL may keep the keyslots. */
	assert_null(choose("purge", &d, "9b5c…", why, sizeof(why)));
	assert_non_null(strstr(why, "FTL may keep whole old copies of the keyslot area"));
}

static void test_purge_prefers_firmware(void **state)
{
	struct device_info d = dev("nvme", false);
	char why[METHOD_WHY_MAX];

	(void)state;
	d.firmware.nvme = true;
	d.firmware.action[SANITIZE_CRYPTO_ERASE] = true;
	assert_string_equal(choose("purge", &d, "", why, sizeof(why)), "sanitize-crypto");
	d.firmware.action[SANITIZE_BLOCK_ERASE] = true;
	assert_string_equal(choose("purge", &d, "", why, sizeof(why)), "sanitize-block");
	/* A partition of that disk: the firmware would erase all of it. */
	d.partition = 2;
	assert_int_equal(method_check(method_find("sanitize-block"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(why, "is a partition"));
}

static void test_purge_on_magnetic(void **state)
{
	struct device_info d = dev("ata", true);
	char why[METHOD_WHY_MAX];

	(void)state;
	d.firmware.ata = true;
	assert_string_equal(choose("purge", &d, "0f3c2d6e-luks", why, sizeof(why)), "crypto");
	assert_int_equal(method_level(method_find("crypto"), &d, why, sizeof(why)), NIST_PURGE);
	assert_null(choose("purge", &d, "", why, sizeof(why)));
	assert_non_null(strstr(why, "reallocated sectors"));
	d.firmware.action[SANITIZE_OVERWRITE] = true;
	assert_string_equal(choose("purge", &d, "", why, sizeof(why)), "sanitize-overwrite");
}

static void test_purge_on_virtual(void **state)
{
	struct device_info d = dev("loop", true);
	char why[METHOD_WHY_MAX];

	(void)state;
	assert_int_equal(device_media(&d), DEVICE_MEDIA_VIRTUAL);
	assert_null(choose("purge", &d, "0f3c2d6e-luks", why, sizeof(why)));
	assert_non_null(strstr(why, "virtual"));
	assert_non_null(strstr(why, "no firmware sanitize"));
}

/* What is not offered is refused with the device's own answer, field and value. */
static void test_unsupported_quotes_the_device(void **state)
{
	struct device_info d = dev("nvme", false);
	char why[METHOD_WHY_MAX];

	(void)state;
	d.firmware = (struct sanitize_caps){.nvme = true, .namespaces = 1, .oacs = 0x0016};
	d.firmware.action[SANITIZE_FORMAT_ERASE] = true;
	assert_int_equal(method_check(method_find("sanitize-block"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_string_equal(why, "/dev/test does not offer block-erase: the controller's Identify "
				 "data has SANICAP 0x00000000 (bit 1, block erase: clear)");
	assert_int_equal(method_check(method_find("format-crypto"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(why, "FNA 0x00 (bit 2, cryptographic erase in Format NVM: clear)"));
	/* Two namespaces: nothing is offered, and that is why. */
	d.firmware = (struct sanitize_caps){.nvme = true, .namespaces = 2, .sanicap = 2};
	assert_int_equal(method_check(method_find("sanitize-block"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(why, "offers no firmware sanitize or secure format: the "
				    "controller has 2 active namespaces"));
	d = dev("ata", true);
	d.firmware = (struct sanitize_caps){.ata = true, .ata_word59 = 0x1000 | 0x2000};
	d.firmware.action[SANITIZE_CRYPTO_ERASE] = true;
	assert_int_equal(method_check(method_find("sanitize-block"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(why, "word 59 is 0x3000 (bit 15, BLOCK ERASE EXT: clear)"));
}

/* Reading back after a firmware erase or a discard checks something only where the drive says
 * erased blocks read as zeros (NVMe DLFEAT 001b). */
static void test_verifiable(void **state)
{
	struct device_info d = dev("nvme", false);
	char why[METHOD_WHY_MAX];

	(void)state;
	assert_true(method_verifiable(method_find("zero"), &d, why, sizeof(why)));
	d.firmware = (struct sanitize_caps){.nvme = true, .namespaces = 1, .dlfeat = 0x08};
	assert_false(method_verifiable(method_find("format-erase"), &d, why, sizeof(why)));
	assert_string_equal(why, "the namespace's DLFEAT is 0x08: it does not say that erased "
				 "blocks read as zeros");
	assert_false(method_verifiable(method_find("discard"), &d, why, sizeof(why)));
	d.firmware.dlfeat = 0x09;
	d.firmware.reads_zero = true;
	assert_true(method_verifiable(method_find("format-erase"), &d, why, sizeof(why)));
	assert_true(method_verifiable(method_find("discard"), &d, why, sizeof(why)));
	assert_false(method_verifiable(method_find("secure-discard"), &d, why, sizeof(why)));
	d = dev("ata", true);
	d.firmware.ata = true;
	assert_false(method_verifiable(method_find("sanitize-block"), &d, why, sizeof(why)));
	assert_string_equal(why, "what the device returns afterwards is up to it");
}

static void test_levels_and_support(void **state)
{
	struct device_info d = dev("scsi", false);
	char why[METHOD_WHY_MAX];

	(void)state;
	assert_int_equal(method_level(method_find("discard"), &d, why, sizeof(why)), NIST_NONE);
	assert_int_equal(method_check(method_find("discard"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	d.discard_max = 1 << 30;
	assert_int_equal(method_check(method_find("discard"), &d, "", why, sizeof(why)), 0);
	assert_int_equal(method_check(method_find("secure-discard"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_int_equal(method_check(method_find("crypto"), &d, "", why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_int_equal(method_level(method_find("zeroout"), &d, why, sizeof(why)), NIST_CLEAR);
	/* Every method has a name, a summary, an Appendix G technique, and a sane default. */
	for (size_t i = 0; i < wipe_methods_count; i++) {
		const struct wipe_method *m = &wipe_methods[i];

		assert_non_null(m->summary);
		assert_non_null(m->technique);
		assert_ptr_equal(method_find(m->name), m);
		if (!m->verifiable)
			assert_int_equal(m->verify_default, PASS_VERIFY_NONE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clear_is_an_overwrite_everywhere),
		cmocka_unit_test(test_purge_on_flash_without_sanitize),
		cmocka_unit_test(test_purge_prefers_firmware),
		cmocka_unit_test(test_purge_on_magnetic),
		cmocka_unit_test(test_purge_on_virtual),
		cmocka_unit_test(test_levels_and_support),
		cmocka_unit_test(test_unsupported_quotes_the_device),
		cmocka_unit_test(test_verifiable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
