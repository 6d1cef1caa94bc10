// SPDX-License-Identifier: GPL-2.0-or-later
/* What keydctl's commands share: config loading, the audit record, JSON output, key files and
 * the log of convergence. Secrets (key files) only in secure memory, never in a message. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "ctl.h"
#include "log.h"
#include "secmem.h"

int ctl_load_config(struct ctl *c)
{
	struct error je;
	int r;

	if (c->cfg)
		return 0;
	r = config_load(c->config_path, &c->cfg, &je);
	if (r < 0)
		return ctl_fail_code(c, r == -EACCES ? CTL_EXIT_PERMISSION : CTL_EXIT_CONFIG, r,
				     "%s: %s", c->config_path, je.msg);
	return 0;
}

/* A short-lived writer signs no checkpoint: keyd's next one vouches for the chain up to
 * there. */
void ctl_audit(struct ctl *c, const char *type, int r, json_t *object, const char *error)
{
	struct audit *a = NULL;
	int q;

	q = audit_open(c->cfg->audit_path, NULL, &a);
	if (q >= 0)
		q = audit_write(a, type, r < 0 ? "failure" : "success", NULL, object, error);
	if (q < 0)
		log_error_errno(q, "cannot write the audit record %s to %s: %m", type,
				c->cfg->audit_path);
	audit_close(a);
}

void ctl_print_json(json_t *j)
{
	json_auto_t *doc = json_pack("{s:i}", "schema", CTL_JSON_SCHEMA);
	char *s;

	if (!doc)
		return;
	json_object_update(doc, j);
	s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	secmem_free(s);
}

static int ctl_failv(struct ctl *c, enum ctl_exit code, int r, const char *fmt, va_list ap)
{
	char msg[ERROR_MAX];
	int saved = errno;

	errno = r < 0 ? -r : EIO; /* %m is @r, as in log_error_errno */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	errno = saved;
	log_error("%s", msg);
	if (!c->error[0]) {
		snprintf(c->error, sizeof(c->error), "%s", msg);
		c->exit_code = code;
	}
	return r < 0 ? r : -EIO;
}

int ctl_fail(struct ctl *c, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = ctl_failv(c, ctl_exit_from_errno(r < 0 ? r : -EIO), r, fmt, ap);
	va_end(ap);
	return r;
}

int ctl_fail_code(struct ctl *c, enum ctl_exit code, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = ctl_failv(c, code, r, fmt, ap);
	va_end(ap);
	return r;
}

void ctl_print_error(const struct ctl *c, enum ctl_exit code)
{
	const struct ctl_exit_row *row = ctl_exit_row(code);
	json_auto_t *j = json_pack("{s:{s:s, s:i, s:s}}", "error", "code", row->name, "exit",
				   (int)code, "message", c->error[0] ? c->error : row->meaning);

	if (j && c->error_detail)
		json_object_update(j, c->error_detail);
	ctl_print_json(j);
}

int ctl_read_key_file(const char *path, uint8_t **ret, size_t *ret_n)
{
	struct secbuf b = {.max = CTL_KEYFILE_MAX};
	_cleanup_close_ int fd = -1;
	uint8_t chunk[4096];
	int r = 0;

	fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negative_errno();
			break;
		}
		if (n == 0)
			break;
		r = secbuf_append(&b, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (r == 0 && b.len == 0)
		r = -ENODATA;
	if (r < 0) {
		secbuf_done(&b);
		return r;
	}
	*ret = b.data;
	*ret_n = b.len;
	return 0;
}

void ctl_log_changes(const char *device, const struct token_changes *changes)
{
	char what[128];

	for (int i = 0; i < changes->n; i++)
		log_info("%s: %s", device,
			 token_change_describe(&changes->c[i], what, sizeof(what)));
}
