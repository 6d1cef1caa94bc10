// SPDX-License-Identifier: GPL-2.0-or-later
/* What keydctl's commands share: config loading, the audit record, JSON output, key files and
 * the log of convergence. Secrets (key files) only in secure memory, never in a message. */
#include <errno.h>
#include <fcntl.h>
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
		return log_error("%s: %s", c->config_path, je.msg), r;
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
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	secmem_free(s);
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
