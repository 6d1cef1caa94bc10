// SPDX-License-Identifier: GPL-2.0-or-later
/* What the commands share once main.c has parsed the command line: the error that decides
 * the exit status, the JSON envelope, and the node key with the audit log it signs. Logs its
 * own failures (the commands are the top). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit_anchor.h"
#include "cli.h"
#include "log.h"
#include "secmem.h"
#include "sign.h"

void cli_record(struct cli *c, int status, const char *message)
{
	if (status == EXIT_OK)
		return;
	if (c->error_status != EXIT_OK && exitcode_worst(c->error_status, status) != status)
		return;
	c->error_status = status;
	snprintf(c->error, sizeof(c->error), "%s", message);
}

int cli_error(struct cli *c, int status, const char *fmt, ...)
{
	char msg[CLI_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	cli_record(c, status, msg);
	return status;
}

json_t *cli_error_json(int status, const char *message)
{
	const struct exitcode *e = exitcode_find(status);

	return json_pack("{s:s, s:i, s:s}", "code", e ? e->name : "failed", "exit", status,
			 "message",
			 message && message[0] ? message
			 : e		       ? e->summary
					       : "failed");
}

void cli_out_set(struct cli *c, const char *key, json_t *v)
{
	if (!c->out)
		c->out = json_object();
	json_object_set_new(c->out, key, v);
}

int cli_finish(struct cli *c, int status)
{
	json_auto_t *doc = NULL;
	char *s;

	if (!c->json)
		return status;
	doc = json_pack("{s:i}", "schema", WIPE_JSON_SCHEMA);
	if (!doc)
		return EXIT_FAILED;
	if (c->out)
		json_object_update(doc, c->out);
	if (status != EXIT_OK)
		json_object_set_new(
			doc, "error",
			cli_error_json(status, c->error_status == status ? c->error : NULL));
	s = json_dumps(doc, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	secmem_free(s);
	return s ? status : EXIT_FAILED;
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
	if (r == -EINVAL)
		log_warning("audit log %s: %s", c->audit_path, AUDIT_ANCHOR_NO_DIR);
	else if (r < 0)
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
		return cli_error(c, EXIT_FAILED, "cannot load the node key %s: %s%s", key,
				 strerror(-r), r == -EPERM ? " (must be root's, mode 0600)" : ""),
		       r;
	r = audit_open(c->audit_path, c->opt.key, &c->opt.audit);
	if (r < 0)
		return cli_error(c, EXIT_FAILED, "cannot open the audit log %s: %s", c->audit_path,
				 strerror(-r)),
		       r;
	return cli_audit_anchor(c, key);
}
