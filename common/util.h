/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checked parsing, base64/hex, time and credential-file helpers. Key material read or decoded
 * here lands only in secure memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define CREDENTIAL_MAX 16384

struct error;

/* Decimal only, no sign, no trailing junk; -EINVAL or -ERANGE. */
int parse_u64(const char *s, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);

/* Base64 (standard alphabet, padded). Encoded text and decoded bytes both go to secure
 * memory, since either may be a key. -EINVAL on bad input, -ENOMEM. */
int b64_encode(const uint8_t *p, size_t n, char **ret);
int b64_decode(const char *s, uint8_t **ret, size_t *ret_n);

/* @n hex digits of @s (either case; @n even) into the @n / 2 bytes at @out. -EINVAL on an odd
 * @n or a character that is not a hex digit (@out may then hold part of the bytes). */
int hex_decode(const char *s, size_t n, uint8_t *out);

/* Monotonic and wall clocks in microseconds. */
uint64_t now_mono_us(void);
uint64_t now_real_us(void);
/* The CPU time the calling thread has used (user and system), in microseconds. */
uint64_t thread_cpu_us(void);
/* RFC 3339 UTC with microseconds into buf (at least 32 bytes). */
void format_rfc3339_us(uint64_t real_us, char *buf, size_t size);

/* Digits of a fraction of a second that parse_rfc3339_us takes (nanoseconds). */
#define RFC3339_FRACTION_MAX 9
/* RFC 3339 date-time ("2025-03-04T09:12:44Z", "2025-03-04T10:12:44.318207+01:00"; 't' and 'z'
 * in lower case too; a fraction of 1 to RFC3339_FRACTION_MAX digits, kept to the microsecond;
 * leap days checked), 1970 or later, into microseconds since the epoch. Reads what
 * format_rfc3339_us writes. -EINVAL otherwise. */
int parse_rfc3339_us(const char *s, uint64_t *ret);

/* "1.5 GiB": binary units, one decimal above bytes. */
void format_bytes(double v, char *buf, size_t size);

/* Reads the regular file open at @fd whole, at most @max bytes (-EFBIG beyond), into secure
 * memory with a NUL after the end (either may be a key). -EINVAL when not a regular file,
 * -ENOMEM, -errno from fstat or read. */
int read_file_fd(int fd, size_t max, uint8_t **ret, size_t *ret_n);

/* The first @size - 1 bytes of a small kernel file (sysfs, /proc) into @buf, trailing newlines
 * stripped. -errno from open or read (-ENOENT: absent). */
int read_line_file(const char *path, char *buf, size_t size);
/* Undoes the octal escapes (\040 for a blank) of /proc/self/mountinfo and /proc/swaps, in
 * place. */
void proc_unescape(char *s);
/* Reads a credential (API key, token, root key) into secure memory. An absolute path must be
 * a regular file owned by root, a relative name one in $CREDENTIALS_DIRECTORY (systemd
 * credentials) owned by keyd's user; either with no group/other access, in a path only root
 * can change (safepath.h). Never blocks on a FIFO or device: they are refused. Trailing
 * newlines are stripped when @text. @err (may be NULL) names the file and the problem.
 * -ENOENT, -EPERM (untrusted, or not a regular file), -EFBIG (> CREDENTIAL_MAX), -ENOMEM. */
int read_credential(const char *path, bool text, uint8_t **ret, size_t *ret_n, struct error *err);

/* Writes all @n bytes of @p, resuming after short writes and EINTR. -errno. */
int write_full(int fd, const void *p, size_t n);

/* Sleeps, restarting after signals; returns early only when *stop becomes true. */
void sleep_us(uint64_t us, const volatile bool *stop);
