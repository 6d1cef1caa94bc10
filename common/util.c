// SPDX-License-Identifier: GPL-2.0-or-later
/* Checked parsing and encoding helpers. Never atoi; never a key outside secure memory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "secmem.h"
#include "util.h"

int parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = parse_u64(s, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

int b64_encode(const uint8_t *p, size_t n, char **ret)
{
	char *s;

	if (n > INT_MAX / 2)
		return -E2BIG;
	s = secmem_alloc(4 * ((n + 2) / 3) + 1);
	if (!s)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	*ret = s;
	return 0;
}

int b64_decode(const char *s, uint8_t **ret, size_t *ret_n)
{
	size_t len = strlen(s), pad = 0;
	uint8_t *d;
	int n;

	/* EVP_DecodeBlock accepts whitespace and ignores padding; we want strict input. */
	if (len == 0 || len % 4 || len > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			  (c == '=' && i >= len - 2);
		if (!ok)
			return -EINVAL;
	}
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	if (pad == 1 && s[len - 2] == '=')
		return -EINVAL;
	d = secmem_alloc(len / 4 * 3 + 1);
	if (!d)
		return -ENOMEM;
	n = EVP_DecodeBlock(d, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		secmem_free(d);
		return -EINVAL;
	}
	*ret = d;
	*ret_n = (size_t)n - pad;
	return 0;
}

uint64_t now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void format_rfc3339_us(uint64_t real_us, char *buf, size_t size)
{
	time_t t = (time_t)(real_us / 1000000);
	struct tm tm;
	char base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%06uZ", base, (unsigned)(real_us % 1000000));
}

int parse_rfc3339_us(const char *s, uint64_t *ret)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	uint64_t us = 0;
	time_t t;

	if (!end)
		return -EINVAL;
	if (*end == '.') {
		int digits = 0;

		for (end++; *end >= '0' && *end <= '9'; end++, digits++)
			if (digits < 6)
				us = us * 10 + (uint64_t)(*end - '0');
		if (digits == 0)
			return -EINVAL;
		for (; digits < 6; digits++)
			us *= 10;
	}
	if (strcmp(end, "Z") != 0)
		return -EINVAL;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret = (uint64_t)t * 1000000 + us;
	return 0;
}

void format_bytes(double v, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;

	while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int read_file_fd(int fd, size_t max, uint8_t **ret, size_t *ret_n)
{
	_cleanup_secure_ uint8_t *d = NULL;
	struct stat st;
	size_t n = 0;

	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	d = secmem_alloc((size_t)st.st_size + 1);
	if (!d)
		return -ENOMEM;
	/* A file that shrinks meanwhile gives what it still has. */
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, d + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		n += (size_t)k;
	}
	d[n] = 0;
	*ret = TAKE_PTR(d);
	*ret_n = n;
	return 0;
}

int read_credential(const char *path, bool text, uint8_t **ret, size_t *ret_n)
{
	_cleanup_close_ int fd = -1;
	_cleanup_secure_ uint8_t *d = NULL;
	char full[PATH_MAX];
	struct stat st;
	size_t n = 0;
	int r;

	if (path[0] != '/') {
		const char *dir = getenv("CREDENTIALS_DIRECTORY");

		if (!dir || strchr(path, '/'))
			return -ENOENT;
		snprintf(full, sizeof(full), "%s/%s", dir, path);
		path = full;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EPERM;
	/* systemd credentials are managed by systemd; our own files must be root's and private. */
	if (path != full && (st.st_uid != 0 || (st.st_mode & 077)))
		return -EPERM;
	r = read_file_fd(fd, CREDENTIAL_MAX, &d, &n);
	if (r < 0)
		return r;
	if (text)
		while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r'))
			d[--n] = 0;
	*ret = TAKE_PTR(d);
	*ret_n = n;
	return 0;
}

void sleep_us(uint64_t us, const volatile bool *stop)
{
	uint64_t end = now_mono_us() + us;

	for (;;) {
		uint64_t now = now_mono_us();
		struct timespec ts;
		uint64_t step;

		if (now >= end || (stop && *stop))
			return;
		/* Wake at least every 100 ms so a stop request is noticed. */
		step = end - now < 100000 ? end - now : 100000;
		ts.tv_sec = (time_t)(step / 1000000);
		ts.tv_nsec = (long)(step % 1000000) * 1000;
		nanosleep(&ts, NULL);
	}
}

int write_full(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n > 0) {
		ssize_t k = write(fd, q, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		q += k;
		n -= (size_t)k;
	}
	return 0;
}
