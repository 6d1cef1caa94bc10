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
#include <unistd.h>

#include "error.h"
#include "safepath.h"
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

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, size_t n, uint8_t *out)
{
	if (n % 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static uint64_t clock_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

uint64_t thread_cpu_us(void)
{
	return clock_us(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t now_real_us(void)
{
	return clock_us(CLOCK_REALTIME);
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

static bool take_digits(const char **p, int n, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (unsigned)(**p - '0');
	}
	*ret = v;
	return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* The seconds' fraction, if any (".318207"), in microseconds; digits past the sixth dropped. */
static int take_fraction(const char **p, unsigned *ret_us)
{
	unsigned scale = 1000000, us = 0;
	int n = 0;

	*ret_us = 0;
	if (**p != '.')
		return 0;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++)
		if (scale > 1) {
			scale /= 10;
			us += (unsigned)(**p - '0') * scale;
		}
	if (n == 0 || n > RFC3339_FRACTION_MAX)
		return -EINVAL;
	*ret_us = us;
	return 0;
}

/* "Z" or "+hh:mm"/"-hh:mm": the seconds to subtract to reach UTC. */
static int take_offset(const char **p, int64_t *ret_s)
{
	unsigned oh, om;
	int64_t sign;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*ret_s = 0;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -EINVAL;
	sign = *(*p)++ == '+' ? 1 : -1;
	if (!take_digits(p, 2, &oh) || *(*p)++ != ':' || !take_digits(p, 2, &om) || oh > 23 ||
	    om > 59)
		return -EINVAL;
	*ret_s = sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

int parse_rfc3339_us(const char *s, uint64_t *ret)
{
	unsigned y, mo, d, h, mi, sec, frac;
	const char *p = s;
	struct tm tm;
	int64_t t, offset;

	if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) || *p++ != '-' ||
	    !take_digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
		return -EINVAL;
	p++;
	if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi) || *p++ != ':' ||
	    !take_digits(&p, 2, &sec))
		return -EINVAL;
	if (take_fraction(&p, &frac) < 0 || take_offset(&p, &offset) < 0)
		return -EINVAL;
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	tm = (struct tm){.tm_year = (int)y - 1900,
			 .tm_mon = (int)mo - 1,
			 .tm_mday = (int)d,
			 .tm_hour = (int)h,
			 .tm_min = (int)mi,
			 .tm_sec = (int)sec};
	t = (int64_t)timegm(&tm) - offset;
	if (t < 0)
		return -EINVAL;
	*ret = (uint64_t)t * 1000000 + frac;
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

int read_line_file(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, size - 1);
	if (n < 0)
		return negative_errno();
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	return 0;
}

void proc_unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		unsigned v;

		if (s[0] == '\\' && sscanf(s + 1, "%3o", &v) == 1 &&
		    strspn(s + 1, "01234567") >= 3) {
			*o = (char)v;
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = 0;
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

/* The name of @st's file type, for a message that refuses it. */
static const char *file_type_name(mode_t mode)
{
	static const struct {
		mode_t type;
		const char *name;
	} types[] = {
		{S_IFIFO, "a FIFO"},	     {S_IFCHR, "a character device"},
		{S_IFBLK, "a block device"}, {S_IFSOCK, "a socket"},
		{S_IFDIR, "a directory"},    {S_IFLNK, "a symlink"},
	};

	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if ((mode & S_IFMT) == types[i].type)
			return types[i].name;
	return "not a regular file";
}

int read_credential(const char *path, bool text, uint8_t **ret, size_t *ret_n, struct error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_secure_ uint8_t *d = NULL;
	char full[PATH_MAX], why[SAFEPATH_WHY_MAX];
	bool systemd = path[0] != '/';
	struct stat st;
	size_t n = 0;
	int r;

	if (systemd) {
		const char *dir = getenv("CREDENTIALS_DIRECTORY");

		if (!dir || !dir[0] || strchr(path, '/'))
			return error_set(err, -ENOENT,
					 "%s: not an absolute path, nor a systemd credential name "
					 "in $CREDENTIALS_DIRECTORY%s",
					 path, dir && dir[0] ? "" : " (which is not set)");
		if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir, path) >= sizeof(full))
			return error_set(err, -ENAMETOOLONG, "%s/%s: path too long", dir, path);
		path = full;
	}
	/* O_NONBLOCK: opening a FIFO (or a tty) must not wait for a writer, or keyd would hang
	 * in open() and never see SIGTERM. O_NOFOLLOW: the file itself, not where a link leads. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ELOOP)
		return error_set(err, -EPERM,
				 "%s is a symlink: a credential is read only from the "
				 "file itself",
				 path);
	if (fd < 0) {
		r = negative_errno();
		return error_set(err, r, "%s: %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = negative_errno();
		return error_set(err, r, "%s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return error_set(err, -EPERM, "%s is %s, not a regular file", path,
				 file_type_name(st.st_mode));
	/* Ours must be root's, a systemd credential keyd's user's (systemd makes it so); either
	 * private, and in a path nobody else can change (as sshd's StrictModes). */
	r = safepath_check(path, fd, systemd ? geteuid() : 0, 077, why, sizeof(why));
	if (r < 0)
		return error_set(err, r, "%s", why);
	r = read_file_fd(fd, CREDENTIAL_MAX, &d, &n);
	if (r < 0)
		return error_set(err, r, "%s: %s", path,
				 r == -EFBIG ? "larger than a credential may be" : strerror(-r));
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
