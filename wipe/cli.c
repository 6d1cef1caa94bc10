// SPDX-License-Identifier: GPL-2.0-or-later
/* What the commands share once main.c has parsed the command line: JSON output and the node
 * key with the audit log it signs. Logs its own failures (the commands are the top). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "audit_anchor.h"
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

/* The log's last sealed position, beside the node key (as keyd keeps it): a log found cut back
 * or begun anew is said loudly, and recorded in it. The wipe itself goes on. */
static int cli_audit_anchor(struct cli *c, const char *key)
{
	char anchor[PATH_MAX];
	struct audit_gap gap;
	int r;

	r = audit_anchor_path(c->audit_path, key, anchor, sizeof(anchor));
	if (r >= 0)
		r = audit_set_anchor(c->opt.audit, anchor, &gap);
	if (r < 0)
		log_error_errno(r, "audit log %s: cannot keep its anchor: %m", c->audit_path);
	else if (r > 0)
		log_error("audit log %s: RECORDS ARE MISSING: %s (anchor %s sealed seq %llu, the "
			  "log ended at seq %llu); recorded as audit.gap",
			  c->audit_path, gap.reason, anchor, (unsigned long long)gap.anchor_seq,
			  (unsigned long long)gap.log_last_seq);
	return 0;
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
	return cli_audit_anchor(c, key);
}
