// SPDX-License-Identifier: GPL-2.0-or-later
/* The audit log's anchor file: one signed JSON object {"format", "seq", "hash", "signature"}
 * naming the newest sealed checkpoint. Written whole (temp file, rename) by the writer that
 * sealed it, read by the writer at open and by the verifier. Never touches the log itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "audit_anchor.h"
#include "secmem.h"
#include "sign.h"
#include "util.h"

#define ANCHOR_FORMAT "keyd-audit-anchor/1"
#define ANCHOR_MAX    4096

int audit_anchor_path(const char *log_path, const char *key_path, char *buf, size_t size)
{
	const char *base = strrchr(log_path, '/'), *slash = strrchr(key_path, '/');

	/* A credential name has no directory of ours: the anchor would land in the current
	 * one, which the verifier run elsewhere would never find. */
	if (key_path[0] != '/')
		return -EINVAL;
	base = base ? base + 1 : log_path;
	if ((size_t)snprintf(buf, size, "%.*s/%s.anchor", (int)(slash - key_path), key_path,
			     base) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int audit_anchor_write(const char *path, EVP_PKEY *key, const struct audit_anchor *a)
{
	json_auto_t *j = json_pack("{s:s, s:I, s:s}", "format", ANCHOR_FORMAT, "seq",
				   (json_int_t)a->seq, "hash", a->hash);
	_cleanup_secure_ char *text = NULL; /* jansson allocates from the secure heap */
	size_t n;
	int r;

	if (!j)
		return -ENOMEM;
	if ((r = sign_json(key, j)) < 0)
		return r;
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	text[n++] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
	/* Beside the node key, whose directory exists: nothing to create. */
	return atomicfile_write(path, text, n, 0600, 0);
}

int audit_anchor_read(const char *path, EVP_PKEY *trusted, struct audit_anchor *ret,
		      struct error *err)
{
	_cleanup_secure_ uint8_t *d = NULL;
	_cleanup_close_ int fd = -1;
	json_auto_t *j = NULL;
	const char *format, *hash;
	json_int_t seq;
	size_t n;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		/* No anchor yet is no error; any other reason is said with the file's name. */
		r = negative_errno();
		return r == -ENOENT ? r : error_set(err, r, "anchor %s: %s", path, strerror(-r));
	}
	r = read_file_fd(fd, ANCHOR_MAX, &d, &n);
	if (r < 0)
		return error_set(err, r == -EINVAL ? -EBADMSG : r, "anchor %s: %s", path,
				 r == -EINVAL ? "not a regular file" : strerror(-r));
	j = json_loadb((const char *)d, n, JSON_REJECT_DUPLICATES, NULL);
	if (json_unpack(j, "{s:s, s:I, s:s, s:o}", "format", &format, "seq", &seq, "hash", &hash,
			"signature", &(json_t *){NULL}) < 0 ||
	    strcmp(format, ANCHOR_FORMAT) != 0 || seq < 1 || !audit_hash_valid(hash))
		return error_set(err, -EBADMSG, "anchor %s: not an audit anchor", path);
	r = sign_json_verify(j, trusted, err);
	if (r < 0)
		return error_prefix(err, -EBADMSG, "anchor %s: signature", path);
	*ret = (struct audit_anchor){.seq = (uint64_t)seq};
	memcpy(ret->hash, hash, sizeof(ret->hash));
	return 0;
}
