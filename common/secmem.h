/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one home of key material in memory: OpenSSL's secure heap (mlock'd, excluded from
 * core dumps, guard pages), wiped on free. Never hands out memory from the normal heap. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Sets up a secure heap of @size bytes (power of two), makes the process non-dumpable with
 * no core file, and routes jansson's allocations through the secure heap.
 * -ENOMEM if the heap cannot be locked (RLIMIT_MEMLOCK), -EPERM if prctl fails. */
int secmem_init(size_t size);

/* Zeroed secure allocation; NULL when the heap is exhausted (never falls back). */
void *secmem_alloc(size_t n);
/* Wipes and frees; accepts NULL. */
void secmem_free(void *p);
void *secmem_dup(const void *p, size_t n);
char *secmem_strdup(const char *s);
/* Bytes of the secure heap in use (for tests and status). */
size_t secmem_used(void);

static inline void secmem_freep(void *p)
{
	secmem_free(*(void **)p);
}
#define _cleanup_secure_ _cleanup_(secmem_freep)

/* A growable byte buffer in secure memory with a hard cap; always NUL-terminated. */
struct secbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* -E2BIG past buf->max, -ENOMEM when the secure heap is full. */
int secbuf_append(struct secbuf *buf, const void *p, size_t n);
void secbuf_done(struct secbuf *buf);
