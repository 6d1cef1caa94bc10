// SPDX-License-Identifier: GPL-2.0-or-later
/* libcryptsetup glue shared by keyd, keydctl, the token plugin and wipe: logging, header
 * loading, the device-mapper lock. Never unlocks, never writes a header. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cryptsetup_util.h"
#include "log.h"

/* A device that fails in a loop must not flood the journal: journald's own default burst. */
static struct log_ratelimit cryptsetup_ratelimit =
	LOG_RATELIMIT_INIT("libcryptsetup", 30 * 1000000ULL, 100);

static void cryptsetup_log(int level, const char *msg, void *u)
{
	int ours = level == CRYPT_LOG_ERROR ? LOG_INFO : LOG_DEBUG;
	char line[1024];
	size_t n;

	(void)u;
	if (ours > log_get_max_level() || !log_ratelimit_pass(&cryptsetup_ratelimit))
		return;
	snprintf(line, sizeof(line), "%s", msg);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = 0;
	/* Our callers report each failure once in their own words; libcryptsetup's own
	 * messages are detail for whoever looks closer. */
	log_internal(ours, 0, "libcryptsetup: %s", line);
}

void cryptsetup_setup(void)
{
	crypt_set_log_callback(NULL, cryptsetup_log, NULL);
	crypt_token_external_disable();
	if (log_get_max_level() >= LOG_DEBUG)
		crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

/* libcryptsetup reports a missing or unreadable device as -ENOTBLK or "no header" too: the
 * real reason, asked only when it failed (not on every unlock). */
static int device_errno(const char *path, int r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	close(fd);
	return r;
}

/* libcryptsetup 2.6 sets up its crypto backend in a process's first crypt_load behind a plain
 * flag (lib/crypto_backend/crypto_openssl.c): threads that load at once, as keyd's unlock
 * workers do at boot, each make an OpenSSL library context and store it in one global, so one
 * may fetch from another's before its providers are loaded (a failed load), and all but the
 * last leak (valgrind saw it). Loads therefore take turns until one has succeeded: the backend
 * is then set up, and later loads run side by side. */
static pthread_mutex_t first_load_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool first_load_done;

static int load_luks2(struct crypt_device *cd)
{
	bool turn = !atomic_load(&first_load_done);
	int r;

	if (turn)
		pthread_mutex_lock(&first_load_lock);
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (turn) {
		if (r == 0)
			atomic_store(&first_load_done, true);
		pthread_mutex_unlock(&first_load_lock);
	}
	return r;
}

int cryptsetup_load(const char *path, struct crypt_device **ret)
{
	struct crypt_device *cd = NULL;
	int r;

	r = crypt_init(&cd, path);
	if (r < 0)
		return device_errno(path, r);
	r = load_luks2(cd);
	if (r < 0) {
		crypt_free(cd);
		return device_errno(path, r == -EINVAL ? -EMEDIUMTYPE : r);
	}
	*ret = cd;
	return 0;
}

const char *cryptsetup_load_strerror(int r)
{
	static const struct {
		int r;
		const char *msg;
	} words[] = {
		{-ENOENT, "no such device"},
		{-EACCES, "permission denied (reading a LUKS2 header needs root)"},
		{-EPERM, "permission denied (reading a LUKS2 header needs root)"},
		{-EMEDIUMTYPE, "no LUKS2 header"},
		{-ENOTBLK, "not a block device or LUKS2 image"},
	};

	for (size_t i = 0; i < ELEMENTSOF(words); i++)
		if (words[i].r == r)
			return words[i].msg;
	return strerror(-r);
}

static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;

void cryptsetup_dm_lock(void)
{
	pthread_mutex_lock(&dm_lock);
}

void cryptsetup_dm_unlock(void)
{
	pthread_mutex_unlock(&dm_lock);
}
