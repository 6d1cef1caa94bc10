// SPDX-License-Identifier: GPL-2.0-or-later
/* The progress reporter thread: samples each job's atomic counters, smooths the rate, and
 * redraws (terminal) or emits JSON lines (anything else). Owns only its own output. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "progress.h"
#include "secmem.h"
#include "util.h"

#define PROGRESS_TTY_US	 500000
#define PROGRESS_JSON_US 1000000
#define BAR_WIDTH	 24

static void format_eta(double s, char *buf, size_t size)
{
	uint64_t t = s > 0 && s < 1e9 ? (uint64_t)s : 0;

	if (s <= 0 || s >= 1e9)
		snprintf(buf, size, "--:--");
	else if (t >= 3600)
		snprintf(buf, size, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, size, "%" PRIu64 ":%02" PRIu64, t / 60, t % 60);
}

/* Job @j's bytes over every phase: done so far, and what the whole run has to do (a verify
 * pass to come counts, so the ETA is the run's, not the phase's). */
static void job_work(struct wipe_job *j, uint64_t *done, uint64_t *total)
{
	uint64_t base = atomic_load(&j->base);

	*done = base + atomic_load(&j->done);
	*total = base + atomic_load(&j->total) + atomic_load(&j->later);
}

/* Updates the smoothed rate of job @i over all its work; returns the ETA of the whole run in
 * seconds, < 0 while no rate is known yet (the first sample of a run). */
static double progress_sample(struct progress *p, size_t i, int phase, uint64_t done,
			      uint64_t total)
{
	uint64_t now = now_mono_us();

	if (p->seen[i].phase < 0 || done < p->seen[i].done) {
		p->seen[i].rate = 0;
	} else if (now > p->seen[i].at_us) {
		double inst =
			(double)(done - p->seen[i].done) * 1e6 / (double)(now - p->seen[i].at_us);

		p->seen[i].rate = p->seen[i].rate ? 0.7 * p->seen[i].rate + 0.3 * inst : inst;
	}
	p->seen[i].phase = phase;
	p->seen[i].done = done;
	p->seen[i].at_us = now;
	return p->seen[i].rate > 0 ? (double)(total > done ? total - done : 0) / p->seen[i].rate
				   : -1;
}

static void progress_draw(struct progress *p, bool final)
{
	if (p->drawn)
		fprintf(p->out, "\033[%zuA", p->drawn);
	for (size_t i = 0; i < p->n; i++) {
		struct wipe_job *j = p->jobs[i];
		int phase = atomic_load(&j->phase);
		uint64_t done, total;
		double frac, eta;
		char bar[BAR_WIDTH + 1], a[32], b[32], rate[32], t[32];
		size_t fill;

		job_work(j, &done, &total);
		frac = total ? (double)done / (double)total : 0;
		eta = progress_sample(p, i, phase, done, total);
		frac = frac > 1 ? 1 : frac;
		fill = (size_t)(frac * BAR_WIDTH);
		memset(bar, '#', fill);
		memset(bar + fill, '.', BAR_WIDTH - fill);
		bar[BAR_WIDTH] = 0;
		format_bytes((double)done, a, sizeof(a));
		format_bytes((double)total, b, sizeof(b));
		format_bytes(p->seen[i].rate, rate, sizeof(rate));
		format_eta(eta, t, sizeof(t));
		if (phase == JOB_DONE || final)
			fprintf(p->out, "\r\033[K%-12s %-8s %s\n", j->dev.name,
				job_result_name(j->result), j->message);
		else if (eta < 0) /* no rate yet: nothing to say about it */
			fprintf(p->out, "\r\033[K%-12s %-7s [%s] %5.1f%% %s/%s\n", j->dev.name,
				job_phase_name(phase), bar, frac * 100, a, b);
		else
			fprintf(p->out, "\r\033[K%-12s %-7s [%s] %5.1f%% %s/%s %s/s ETA %s\n",
				j->dev.name, job_phase_name(phase), bar, frac * 100, a, b, rate, t);
	}
	p->drawn = p->n;
	fflush(p->out);
}

/* One line per device: "done"/"total" of the current phase; "eta_s" and "left" cover every
 * phase still to come; "rate_bps" and "eta_s" are null until a rate is known. */
static void progress_emit_json(struct progress *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct wipe_job *j = p->jobs[i];
		int phase = atomic_load(&j->phase);
		uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);
		uint64_t all_done, all_total;
		double eta;
		json_auto_t *o = NULL;
		char *s;

		if ((phase == JOB_DONE && p->seen[i].phase == JOB_DONE) || j->result == JOB_REFUSED)
			continue; /* said once, or never started */
		job_work(j, &all_done, &all_total);
		eta = progress_sample(p, i, phase, all_done, all_total);
		o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:o, s:o}", "type", "progress",
			      "device", j->dev.path, "phase", job_phase_name(phase), "done",
			      (json_int_t)done, "total", (json_int_t)total, "percent",
			      total ? (double)done * 100 / (double)total : 0.0, "left",
			      (json_int_t)(all_total > all_done ? all_total - all_done : 0),
			      "rate_bps",
			      eta < 0 ? json_null() : json_integer((json_int_t)p->seen[i].rate),
			      "eta_s", eta < 0 ? json_null() : json_integer((json_int_t)eta));
		s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			fprintf(p->out, "%s\n", s);
		secmem_free(s);
	}
	fflush(p->out);
}

static void progress_emit(struct progress *p)
{
	if (p->tty)
		progress_draw(p, false);
	else
		progress_emit_json(p);
}

static void *progress_thread(void *u)
{
	struct progress *p = u;
	uint64_t interval = p->interval_us ? p->interval_us
			    : p->tty	   ? PROGRESS_TTY_US
					   : PROGRESS_JSON_US;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		uint64_t until;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		until = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + interval;
		ts.tv_sec = (time_t)(until / 1000000);
		ts.tv_nsec = (long)(until % 1000000) * 1000;
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (!p->stop)
			progress_emit(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int progress_start(struct progress *p, struct wipe_job **jobs, size_t n, bool tty,
		   uint64_t interval_us, FILE *out)
{
	pthread_condattr_t attr;

	*p = (struct progress){.jobs = jobs,
			       .n = n < PROGRESS_DEVICES_MAX ? n : PROGRESS_DEVICES_MAX,
			       .tty = tty,
			       .interval_us = interval_us,
			       .out = out};
	for (size_t i = 0; i < p->n; i++)
		p->seen[i].phase = -1;
	pthread_mutex_init(&p->lock, NULL);
	/* Wall-clock jumps must not stall or flood the display. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	/* The first line before any job starts, here and not in the thread: the whole work, no
	 * rate yet, whatever the scheduler does with the thread (a loaded machine ran it only
	 * after the first 4 MiB had been written). */
	progress_emit(p);
	if (pthread_create(&p->thread, NULL, progress_thread, p) != 0)
		return -EAGAIN;
	p->started = true;
	return 0;
}

void progress_stop(struct progress *p)
{
	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->tty)
		progress_draw(p, true);
	else
		progress_emit_json(p);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	p->started = false;
}
