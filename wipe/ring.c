// SPDX-License-Identifier: GPL-2.0-or-later
/* Staged ring of I/O buffers: a mutex, one condition variable, and per slot the chunk it holds
 * and how far that chunk got. A hand-over per 4 MiB costs nothing next to the I/O. Knows
 * nothing of devices or patterns. */
#include <errno.h>

#include "io.h"
#include "ring.h"

int ring_init(struct ring *r, size_t size, int stages, uint64_t total)
{
	if (stages < 1 || stages > RING_STAGES_MAX)
		return -EINVAL;
	*r = (struct ring){.size = size, .stages = stages, .total = total};
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	for (size_t i = 0; i < RING_SLOTS; i++) {
		r->slots[i].seq = i;
		r->slots[i].buf = io_buffer(size);
		if (!r->slots[i].buf) {
			ring_free(r);
			return -ENOMEM;
		}
	}
	return 0;
}

void ring_free(struct ring *r)
{
	for (size_t i = 0; i < RING_SLOTS; i++) {
		io_buffer_free(r->slots[i].buf, r->size);
		r->slots[i].buf = NULL;
	}
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

struct ring_slot *ring_claim(struct ring *r, int stage)
{
	struct ring_slot *s = NULL;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		uint64_t i = r->next[stage];
		struct ring_slot *t = &r->slots[i % RING_SLOTS];

		if (r->aborted || i >= r->total)
			break;
		/* The chunk is in its slot (not the one RING_SLOTS before it) and done with the
		 * stage before this one. */
		if (t->seq == i && t->stage == stage) {
			r->next[stage]++;
			if (stage == 0)
				t->error = 0;
			s = t;
			break;
		}
		pthread_cond_wait(&r->cond, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return s;
}

void ring_release(struct ring *r, struct ring_slot *s)
{
	pthread_mutex_lock(&r->lock);
	s->stage++;
	/* Free the slots of finished chunks in order, so chunk i + RING_SLOTS finds its slot. */
	while (r->retired < r->total) {
		struct ring_slot *t = &r->slots[r->retired % RING_SLOTS];

		if (t->seq != r->retired || t->stage != r->stages)
			break;
		t->seq += RING_SLOTS;
		t->stage = 0;
		r->retired++;
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void ring_abort(struct ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->aborted = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

bool ring_aborted(struct ring *r)
{
	bool a;

	pthread_mutex_lock(&r->lock);
	a = r->aborted;
	pthread_mutex_unlock(&r->lock);
	return a;
}
