// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe methods: the method and profile tables, as wipe/method.c holds them. */
#include <stdio.h>

#include "cmd_methods.h"

int cmd_methods(struct cli *c)
{
	(void)c;
	printf("Methods:\n");
	for (size_t i = 0; i < wipe_methods_count; i++)
		printf("  %-19s %s\n", wipe_methods[i].name, wipe_methods[i].summary);
	printf("Profiles (NIST SP 800-88):\n");
	for (size_t i = 0; i < wipe_profiles_count; i++)
		printf("  %-19s %s\n", wipe_profiles[i].name, wipe_profiles[i].summary);
	return EXIT_OK;
}
