// SPDX-License-Identifier: GPL-2.0-or-later
/* What the commands share once main.c has parsed the command line: JSON output and the node
 * key with the audit log it signs. Logs its own failures (the commands are the top). */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "secmem.h"
#include "sign.h"

void cli_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));

	if (s)
		printf("%s\n", s);
	secmem_free(s);
}

int cli_setup_signing(struct cli *c)
{
	const char *key = c->key_path ? c->key_path : SIGN_KEY_PATH_DEFAULT;
	int r;

	r = sign_key_load(key, &c->opt.key);
	if (r < 0)
		return log_error_errno(r, "cannot load the node key %s: %m%s", key,
				       r == -EPERM ? " (must be root's, mode 0600)" : "");
	r = audit_open(c->audit_path, c->opt.key, &c->opt.audit);
	if (r < 0)
		return log_error_errno(r, "cannot open the audit log %s: %m", c->audit_path);
	return 0;
}
