// SPDX-License-Identifier: GPL-2.0-or-later
/* Trusted keys for certificate checks. A key in the trust directory counts only if nobody but
 * root (or the caller) could have put it there; the embedded key of a certificate never counts.
 * Never logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secmem.h"
#include "sign.h"
#include "trust.h"
#include "util.h"

/* A PEM public key, or a private key whose public half is meant. -EBADMSG if neither. */
static int key_read(int fd, EVP_PKEY **ret)
{
	_cleanup_secure_ uint8_t *pem = NULL;
	EVP_PKEY *k;
	size_t n = 0;
	BIO *b;
	int r;

	r = read_file_fd(fd, TRUST_FILE_MAX, &pem, &n);
	if (r < 0)
		return r;
	b = BIO_new_mem_buf(pem, (int)n);
	if (!b)
		return -ENOMEM;
	k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!k) {
		BIO_reset(b);
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	BIO_free(b);
	if (!k)
		return -EBADMSG;
	*ret = k;
	return 0;
}

static int trust_add(struct trust *t, int fd, const char *from)
{
	struct trusted_key *keys, *k;
	EVP_PKEY *key = NULL;
	int r;

	if (t->n >= TRUST_KEYS_MAX)
		return -E2BIG;
	r = key_read(fd, &key);
	if (r < 0)
		return r;
	keys = reallocarray(t->keys, t->n + 1, sizeof(*keys));
	if (!keys) {
		EVP_PKEY_free(key);
		return -ENOMEM;
	}
	t->keys = keys;
	k = &t->keys[t->n];
	*k = (struct trusted_key){.key = key};
	if (sign_key_fingerprint(key, k->fingerprint) < 0) {
		EVP_PKEY_free(key);
		return -EBADMSG; /* not Ed25519 */
	}
	snprintf(k->from, sizeof(k->from), "%s", from);
	t->n++;
	return 0;
}

static void note_skipped(struct trust *t, const char *name, const char *why)
{
	size_t o = strlen(t->skipped);

	snprintf(t->skipped + o, sizeof(t->skipped) - o, "%s%s (%s)", o ? ", " : "", name, why);
}

/* Only what root (or we) wrote and nobody else may change is trusted. */
static bool owned_safely(const struct stat *st)
{
	return (st->st_uid == 0 || st->st_uid == getuid()) && !(st->st_mode & 022);
}

static int trust_dir(struct trust *t, const char *dir)
{
	_cleanup_close_ int dfd = -1;
	struct dirent *e;
	struct stat st;
	DIR *dh;
	int r = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (fstat(dfd, &st) < 0)
		return negative_errno();
	if (!owned_safely(&st)) {
		note_skipped(t, dir, "writable by others");
		return 0;
	}
	dh = fdopendir(TAKE_FD(dfd));
	if (!dh)
		return negative_errno();
	while (r >= 0 && (e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		_cleanup_close_ int fd = -1;
		char from[PATH_MAX];

		if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".pem") != 0)
			continue;
		fd = openat(dirfd(dh), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			note_skipped(t, e->d_name, "not a regular file");
			continue;
		}
		if (!owned_safely(&st)) {
			note_skipped(t, e->d_name, "writable by others");
			continue;
		}
		snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
		r = trust_add(t, fd, from);
		if (r == -EBADMSG) {
			note_skipped(t, e->d_name, "not an Ed25519 key");
			r = 0;
		}
	}
	closedir(dh);
	return r;
}

int trust_load(struct trust *t, const char *key_file, const char *node_key, const char *dir)
{
	_cleanup_close_ int fd = -1;
	int r;

	*t = (struct trust){0};
	if (key_file) {
		t->explicit = true;
		fd = open(key_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return negative_errno();
		return trust_add(t, fd, key_file);
	}
	fd = open(node_key, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = trust_add(t, fd, node_key);
		if (r < 0 && r != -EBADMSG)
			return r;
	} else if (errno != ENOENT) {
		return negative_errno();
	}
	return trust_dir(t, dir);
}

const struct trusted_key *trust_find(const struct trust *t, const char *fingerprint)
{
	for (size_t i = 0; fingerprint && i < t->n; i++)
		if (strcmp(t->keys[i].fingerprint, fingerprint) == 0)
			return &t->keys[i];
	return NULL;
}

void trust_done(struct trust *t)
{
	for (size_t i = 0; i < t->n; i++)
		EVP_PKEY_free(t->keys[i].key);
	free(t->keys);
	*t = (struct trust){0};
}
