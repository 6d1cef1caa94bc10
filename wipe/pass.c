// SPDX-License-Identifier: GPL-2.0-or-later
/* Passes over a device as a pipeline of threads around a staged ring: for a wipe, a generator
 * fills 4 MiB buffers, PASS_DEPTH writers write them and this thread accounts for them in order
 * (progress, checkpoints); for a verification, PASS_DEPTH readers read while this thread
 * compares. Failed transfers are retried block by block to count exactly what failed. Never
 * logs. */
#include <errno.h>
#include <linux/fs.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"
#include "ring.h"

/* Transfers in flight: two keep the device busy while a thread waits for a CPU. */
#define PASS_DEPTH 2

const char *const pass_verify_names[] = {
	[PASS_VERIFY_NONE] = "none",
	[PASS_VERIFY_SAMPLE] = "sample",
	[PASS_VERIFY_FULL] = "full",
	NULL,
};

const char *pass_verify_name(enum pass_verify v)
{
	return pass_verify_names[v];
}

int pass_verify_parse(const char *s, enum pass_verify *ret)
{
	for (size_t i = 0; pass_verify_names[i]; i++)
		if (streq_ptr(s, pass_verify_names[i])) {
			*ret = (enum pass_verify)i;
			return 0;
		}
	return -EINVAL;
}

void pass_stats_init(struct pass_stats *st)
{
	*st = (struct pass_stats){.first_bad = UINT64_MAX};
}

static size_t pass_chunk(const struct pass *p)
{
	return p->chunk ? p->chunk : PASS_CHUNK;
}

static bool pass_stopped(const struct pass *p)
{
	/* Set by a signal handler (or a test), read by several threads. */
	return p->stop && __atomic_load_n(p->stop, __ATOMIC_RELAXED);
}

static uint64_t error_limit(const struct pass *p)
{
	return p->error_limit ? p->error_limit : PASS_ERROR_LIMIT;
}

static void count_progress(const struct pass *p, uint64_t n)
{
	if (p->progress)
		atomic_fetch_add(p->progress, n);
}

static void stats_note_failure(struct pass_stats *st, uint64_t off, uint64_t blocks, int error)
{
	st->io_errors += blocks;
	if (off < st->first_bad) {
		st->first_bad = off;
		st->first_error = error;
	}
}

static void stats_merge(struct pass_stats *st, const struct pass_stats *add)
{
	if (add->io_errors)
		stats_note_failure(st, add->first_bad, add->io_errors, add->first_error);
}

/* Errors that belong to some blocks and may spare the others; anything else (read-only device,
 * vanished device, bad descriptor) will fail every block alike. */
static bool error_is_local(int r)
{
	return r == -EIO || r == -ENODATA || r == -EILSEQ || r == -EREMOTEIO || r == -ETIMEDOUT ||
	       r == -EBADMSG;
}

/* After a whole-buffer transfer failed: retries block by block so the failure is counted in
 * blocks and everything else still gets written (or read). Returns the error when it is not
 * local to some blocks (then counted for the whole buffer), else 0. @ok[i] marks the blocks of
 * a read that arrived (NULL for writes). Gives up early once @cancel is set. */
static int salvage_blocks(struct pass *p, bool write, uint8_t *buf, size_t n, uint64_t off,
			  int first, bool *ok, struct pass_stats *st, struct ring *cancel)
{
	uint32_t bs = p->dev->block;
	uint64_t failed = 0;

	if (!error_is_local(first)) {
		stats_note_failure(st, off, n / bs, first);
		return first;
	}
	for (size_t u = 0; u < n; u += bs) {
		int r = write ? io_write_at(p->dev, buf + u, bs, off + u)
			      : io_read_at(p->dev, buf + u, bs, off + u);

		if (ok)
			ok[u / bs] = r >= 0;
		if (r < 0) {
			stats_note_failure(st, off + u, 1, r);
			/* A dying disk can take seconds per block: stop once the pass is lost. */
			if (++failed > error_limit(p) || (cancel && ring_aborted(cancel))) {
				stats_note_failure(st, off + u + bs, (n - u - bs) / bs, r);
				return -EIO;
			}
		}
	}
	return 0;
}

static int sync_and_report(struct pass *p, uint64_t off, struct pass_stats *st)
{
	int r = io_sync(p->dev);

	if (r < 0) {
		/* A failed flush may have lost anything since the last one: not a block error. */
		stats_note_failure(st, off, 0, r);
		return r;
	}
	return p->on_synced ? p->on_synced(p->userdata, off, st) : 0;
}

/* The threads of one pass and what they share. */
struct pipeline {
	struct pass *p;
	struct ring ring;
	const uint64_t *offs;		     /* sample units, or NULL for [start, end) in chunks */
	uint64_t n;			     /* chunks */
	size_t unit;			     /* bytes per chunk */
	struct pass_stats found[RING_SLOTS]; /* per slot: what its writer met */
	pthread_t threads[1 + PASS_DEPTH];
	size_t n_threads;
};

static void pipeline_extent(const struct pipeline *pl, struct ring_slot *s)
{
	const struct pass *p = pl->p;

	if (pl->offs) {
		s->off = pl->offs[s->seq];
		s->len = pl->unit;
		return;
	}
	s->off = p->start + s->seq * pl->unit;
	s->len = p->end - s->off < pl->unit ? p->end - s->off : pl->unit;
}

/* Write, stage 0: the pattern. Zeros need nothing: the buffers start zeroed and a write pass
 * never dirties them. */
static void *fill_worker(void *u)
{
	struct pipeline *pl = u;
	struct pattern_gen g;
	struct ring_slot *s;
	int r = pattern_gen_init(&g, pl->p->pattern);

	while ((s = ring_claim(&pl->ring, 0))) {
		pipeline_extent(pl, s);
		if (r < 0)
			s->error = r;
		else if (pl->p->pattern->kind != PATTERN_ZERO)
			s->error = pattern_fill(&g, s->buf, s->len, s->off);
		ring_release(&pl->ring, s);
	}
	if (r == 0)
		pattern_gen_done(&g);
	return NULL;
}

/* Write, stage 1: the device. */
static void *write_worker(void *u)
{
	struct pipeline *pl = u;
	struct pass *p = pl->p;
	struct ring_slot *s;

	while ((s = ring_claim(&pl->ring, 1))) {
		struct pass_stats *f = &pl->found[s - pl->ring.slots];
		int r;

		pass_stats_init(f);
		if (s->error == 0 && pass_stopped(p)) {
			ring_abort(&pl->ring);
		} else if (s->error == 0) {
			io_throttle_wait(p->throttle, s->len, p->stop);
			r = io_write_at(p->dev, s->buf, s->len, s->off);
			if (r < 0)
				s->error = salvage_blocks(p, true, s->buf, s->len, s->off, r, NULL,
							  f, &pl->ring);
		}
		ring_release(&pl->ring, s);
	}
	return NULL;
}

/* Verification, stage 0: the device. The checker re-reads what failed block by block. */
static void *read_worker(void *u)
{
	struct pipeline *pl = u;
	struct pass *p = pl->p;
	struct ring_slot *s;

	while ((s = ring_claim(&pl->ring, 0))) {
		pipeline_extent(pl, s);
		if (pass_stopped(p)) {
			ring_abort(&pl->ring);
		} else {
			io_throttle_wait(p->throttle, s->len, p->stop);
			s->error = io_read_at(p->dev, s->buf, s->len, s->off);
		}
		ring_release(&pl->ring, s);
	}
	return NULL;
}

static int pipeline_start(struct pipeline *pl, bool read)
{
	int r = ring_init(&pl->ring, pl->unit, read ? 2 : 3, pl->n);

	if (r < 0)
		return r;
	if (!read && (r = -pthread_create(&pl->threads[pl->n_threads], NULL, fill_worker, pl)) == 0)
		pl->n_threads++;
	for (int i = 0; r == 0 && i < PASS_DEPTH; i++)
		if ((r = -pthread_create(&pl->threads[pl->n_threads], NULL,
					 read ? read_worker : write_worker, pl)) == 0)
			pl->n_threads++;
	if (r < 0) {
		ring_abort(&pl->ring);
		for (size_t i = 0; i < pl->n_threads; i++)
			pthread_join(pl->threads[i], NULL);
		ring_free(&pl->ring);
	}
	return r;
}

static void pipeline_finish(struct pipeline *pl)
{
	ring_abort(&pl->ring);
	for (size_t i = 0; i < pl->n_threads; i++)
		pthread_join(pl->threads[i], NULL);
	ring_free(&pl->ring);
}

int pass_write(struct pass *p, struct pass_stats *st)
{
	struct pipeline pl = {.p = p, .unit = pass_chunk(p)};
	uint64_t done = p->start, last_cp = p->start;
	struct ring_slot *s;
	int r, fatal = 0;

	pl.n = (p->end - p->start + pl.unit - 1) / pl.unit;
	r = pipeline_start(&pl, false);
	if (r < 0)
		return r;
	/* Stage 2, in order: what is accounted for here is on the device. */
	while ((s = ring_claim(&pl.ring, 2))) {
		const struct pass_stats *f = &pl.found[s - pl.ring.slots];

		stats_merge(st, f);
		if (s->error < 0 || st->io_errors > error_limit(p)) {
			fatal = s->error < 0 ? s->error : -EIO;
			ring_release(&pl.ring, s);
			break;
		}
		done = s->off + s->len;
		/* Blocks that could not be written are not counted as written. */
		st->bytes += s->len - f->io_errors * p->dev->block;
		count_progress(p, s->len);
		ring_release(&pl.ring, s);
		if (p->sync_every && done - last_cp >= p->sync_every) {
			r = sync_and_report(p, done, st);
			if (r < 0) {
				fatal = r;
				break;
			}
			last_cp = done;
		}
	}
	pipeline_finish(&pl);
	/* Flush what was written even after a failure: the certificate reports the device's
	 * state, and a checkpoint must never claim more than the device holds. */
	r = last_cp == done && done != p->start ? io_sync(p->dev) : sync_and_report(p, done, st);
	if (st->io_errors)
		return -EIO;
	if (fatal)
		return fatal;
	if (r < 0)
		return r;
	return done < p->end ? -EINTR : 0;
}

int pass_ioctl(struct pass *p, unsigned long request, struct pass_stats *st)
{
	uint64_t off = p->start, last_cp = p->start;
	bool throttled = request == BLKZEROOUT;
	int r;

	while (off < p->end) {
		uint64_t len = p->end - off < PASS_IOCTL_CHUNK ? p->end - off : PASS_IOCTL_CHUNK;

		if (pass_stopped(p))
			break;
		if (throttled)
			io_throttle_wait(p->throttle, len, p->stop);
		r = io_range(p->dev, request, off, len);
		if (r == -EOPNOTSUPP && off == p->start && st->bytes == 0)
			return r;
		if (r < 0) {
			stats_note_failure(st, off, len / p->dev->block, r);
			if (!error_is_local(r) || st->io_errors > error_limit(p))
				break;
		}
		off += len;
		st->bytes += r < 0 ? 0 : len; /* a failed range counts as failed blocks only */
		count_progress(p, len);
		if (p->sync_every && off - last_cp >= p->sync_every) {
			r = sync_and_report(p, off, st);
			if (r < 0)
				return st->io_errors ? -EIO : r;
			last_cp = off;
		}
	}
	r = sync_and_report(p, off, st);
	if (st->io_errors)
		return -EIO;
	if (r < 0)
		return r;
	return off < p->end ? -EINTR : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Stratified sample: the first and last unit, and one unit at a random place in each of
 * @want equal strata in between, so coverage is even and the count is fixed. A device that
 * knew which blocks we read could not have guessed them (RAND_bytes). */
static int sample_offsets(const struct pass *p, uint64_t **ret, size_t *ret_n)
{
	uint64_t units = (p->end - p->start) / PASS_SAMPLE_UNIT, want;
	_cleanup_free_ uint64_t *offs = NULL;
	size_t n = 0;

	want = units / 100;
	want = want < PASS_SAMPLE_MIN	? PASS_SAMPLE_MIN
	       : want > PASS_SAMPLE_MAX ? PASS_SAMPLE_MAX
					: want;
	if (units < want + 2)
		return -ERANGE; /* small enough to read all of it */
	offs = calloc(want + 2, sizeof(*offs));
	if (!offs)
		return -ENOMEM;
	offs[n++] = p->start;
	for (uint64_t i = 0; i < want; i++) {
		uint64_t lo = 1 + i * (units - 2) / want, hi = 1 + (i + 1) * (units - 2) / want,
			 rnd;

		if (RAND_bytes((uint8_t *)&rnd, sizeof(rnd)) != 1)
			return -EIO;
		offs[n++] = p->start + (lo + rnd % (hi - lo)) * PASS_SAMPLE_UNIT;
	}
	offs[n++] = p->start + (units - 1) * PASS_SAMPLE_UNIT;
	qsort(offs, n, sizeof(*offs), cmp_u64);
	*ret = TAKE_PTR(offs);
	*ret_n = n;
	return 0;
}

static bool sample_applies(const struct pass *p)
{
	uint64_t units = (p->end - p->start) / PASS_SAMPLE_UNIT;

	return units >= PASS_SAMPLE_MIN + 2 && (p->end - p->start) % PASS_SAMPLE_UNIT == 0 &&
	       p->start % p->dev->block == 0;
}

uint64_t pass_verify_bytes(const struct pass *p, enum pass_verify mode)
{
	uint64_t units = (p->end - p->start) / PASS_SAMPLE_UNIT, want = units / 100;

	if (mode == PASS_VERIFY_NONE)
		return 0;
	if (mode == PASS_VERIFY_FULL || !sample_applies(p))
		return p->end - p->start;
	want = want < PASS_SAMPLE_MIN	? PASS_SAMPLE_MIN
	       : want > PASS_SAMPLE_MAX ? PASS_SAMPLE_MAX
					: want;
	return units < want + 2 ? p->end - p->start : (want + 2) * PASS_SAMPLE_UNIT;
}

/* Checks one buffer that arrived (or did not: @s->error) against the pattern. */
static int verify_slot(struct pass *p, struct pattern_gen *g, struct ring_slot *s, uint8_t *scratch,
		       bool *ok, struct pass_stats *st)
{
	uint32_t bs = p->dev->block;
	uint64_t first = UINT64_MAX;
	size_t step = s->error ? bs : s->len;
	int64_t bad;

	/* Re-read a failed buffer block by block: count what cannot be read, compare the rest. */
	if (s->error &&
	    salvage_blocks(p, false, s->buf, s->len, s->off, s->error, ok, st, NULL) < 0)
		return 0; /* counted for the whole buffer */
	for (size_t u = 0; u < s->len; u += step) {
		if (s->error && !ok[u / bs])
			continue;
		bad = pattern_compare(g, s->buf + u, step, s->off + u, scratch, bs, &first);
		if (bad < 0)
			return (int)bad;
		st->mismatches += (uint64_t)bad;
		if (bad && first < st->first_bad)
			st->first_bad = first;
	}
	return 0;
}

int pass_verify(struct pass *p, enum pass_verify mode, struct pass_stats *st)
{
	_cleanup_free_ uint64_t *offs = NULL;
	_cleanup_free_ bool *ok = NULL;
	struct pipeline pl = {.p = p, .unit = pass_chunk(p)};
	struct pattern_gen g;
	struct ring_slot *s;
	uint8_t *scratch = NULL;
	size_t n_offs = 0;
	int r = 0;

	if (mode == PASS_VERIFY_NONE)
		return 0;
	if (mode == PASS_VERIFY_SAMPLE && sample_applies(p)) {
		r = sample_offsets(p, &offs, &n_offs);
		if (r < 0 && r != -ERANGE)
			return r;
		if (offs) {
			pl.offs = offs;
			pl.n = n_offs;
			pl.unit = PASS_SAMPLE_UNIT;
		}
	}
	if (!pl.offs)
		pl.n = (p->end - p->start + pl.unit - 1) / pl.unit;
	ok = calloc(pl.unit / p->dev->block, sizeof(*ok));
	if (!ok)
		return -ENOMEM;
	r = pattern_gen_init(&g, p->pattern);
	if (r < 0)
		return r;
	/* The scratch buffer receives the regenerated keystream; zeros need none. */
	if (p->pattern->kind == PATTERN_KEYSTREAM && !(scratch = io_buffer(pl.unit))) {
		pattern_gen_done(&g);
		return -ENOMEM;
	}
	r = pipeline_start(&pl, true);
	if (r < 0) {
		pattern_gen_done(&g);
		io_buffer_free(scratch, pl.unit);
		return r;
	}
	/* Stage 1, in order: the comparison. */
	while ((s = ring_claim(&pl.ring, 1))) {
		r = verify_slot(p, &g, s, scratch, ok, st);
		if (r == 0) {
			st->bytes += s->len;
			count_progress(p, s->len);
		}
		ring_release(&pl.ring, s);
		if (r < 0 || st->io_errors > error_limit(p))
			break;
	}
	pipeline_finish(&pl);
	pattern_gen_done(&g);
	io_buffer_free(scratch, pl.unit);
	if (r < 0)
		return r;
	if (st->io_errors || st->mismatches)
		return -EBADMSG;
	return st->bytes < pass_verify_bytes(p, mode) ? -EINTR : 0;
}
