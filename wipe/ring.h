/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A bounded ring of aligned buffers that chunks pass through in stages (fill, write, account;
 * or read, check). Several threads may work one stage; each chunk goes through the stages in
 * order and leaves the ring in order. Owns the buffers and the hand-over, nothing about what
 * is in them. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_SLOTS	8
#define RING_STAGES_MAX 3

struct ring_slot {
	uint8_t *buf;
	uint64_t seq; /* the chunk this slot holds: 0, 1, 2, ... */
	int stage;    /* stages the chunk has been through */
	uint64_t off; /* set by the first stage: device offset of buf[0] */
	size_t len;
	int error; /* -errno a stage met for the whole buffer, for the stages after it */
};

struct ring {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ring_slot slots[RING_SLOTS];
	size_t size; /* of each buffer */
	int stages;
	uint64_t total;			/* chunks to pass through */
	uint64_t next[RING_STAGES_MAX]; /* the next chunk each stage will claim */
	uint64_t retired;		/* chunks through every stage */
	bool aborted;
};

/* RING_SLOTS zeroed buffers of @size bytes (see io_buffer) for @total chunks going through
 * @stages stages. -ENOMEM, -EINVAL. */
int ring_init(struct ring *r, size_t size, int stages, uint64_t total);
void ring_free(struct ring *r);

/* The next chunk for @stage, once the stage before has released it (the first stage: once its
 * slot is free); waits. NULL when the stage has seen every chunk, or after ring_abort(). */
struct ring_slot *ring_claim(struct ring *r, int stage);
/* Hands @s on to the next stage (after the last, the slot is free again). */
void ring_release(struct ring *r, struct ring_slot *s);
/* Every claim from now on returns NULL; waiting threads wake up. */
void ring_abort(struct ring *r);
bool ring_aborted(struct ring *r);
