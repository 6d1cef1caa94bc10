// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe methods: the method and profile tables, as wipe/method.c holds them, for people or as
 * JSON. */
#include <stdio.h>

#include "cmd_methods.h"

static json_t *methods_json(void)
{
	json_t *methods = json_array(), *profiles = json_array();

	for (size_t i = 0; i < wipe_methods_count; i++)
		json_array_append_new(
			methods, json_pack("{s:s, s:s, s:b, s:s}", "name", wipe_methods[i].name,
					   "summary", wipe_methods[i].summary, "verifiable",
					   wipe_methods[i].verifiable, "verify_default",
					   pass_verify_name(wipe_methods[i].verify_default)));
	for (size_t i = 0; i < wipe_profiles_count; i++)
		json_array_append_new(profiles,
				      json_pack("{s:s, s:s, s:s}", "name", wipe_profiles[i].name,
						"summary", wipe_profiles[i].summary, "nist_level",
						nist_level_name(wipe_profiles[i].level)));
	return json_pack("{s:o, s:o}", "methods", methods, "profiles", profiles);
}

int cmd_methods(struct cli *c)
{
	if (c->json) {
		c->out = methods_json();
		return EXIT_OK;
	}
	printf("Methods:\n");
	for (size_t i = 0; i < wipe_methods_count; i++)
		printf("  %-19s %s\n", wipe_methods[i].name, wipe_methods[i].summary);
	printf("Profiles (NIST SP 800-88):\n");
	for (size_t i = 0; i < wipe_profiles_count; i++)
		printf("  %-19s %s\n", wipe_profiles[i].name, wipe_profiles[i].summary);
	return EXIT_OK;
}
