// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd's counters, each a relaxed atomic so that counting never waits for a lock (unlock
 * workers, the lifecycle thread and the event loop all count), and their exposition. Which audit
 * records are counted, and under which family, is one table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define GET(x)	  __atomic_load_n(&(x), __ATOMIC_RELAXED)

static const char *const results[] = {"success", "failure", "refused"};
#define N_RESULTS ELEMENTSOF(results)

/* The volume operations counted, by the audit record each writes exactly once. */
static const struct {
	const char *audit_type;
	const char *family;
	const char *help;
} operations[] = {
	{"volume.unlock", "keyd_unlock_total", "Volume unlocks keyd carried out, by outcome."},
	{"volume.rewrap", "keyd_rewrap_total",
	 "Rewraps of a volume's data key to the root key's newest version, by outcome."},
	{"volume.rekey", "keyd_rekey_total", "Re-keys (new data key and keyslot), by outcome."},
	{"volume.revoke", "keyd_revoke_total", "on_revoke applied to a volume, by outcome."},
	{"volume.restore", "keyd_restore_total",
	 "Volumes restored after a revocation, by outcome."},
};

const char *const metrics_callback_names[] = {
	[METRICS_CALLBACK_ACCEPTED] = "accepted",
	[METRICS_CALLBACK_FAILED] = "failed",
	[METRICS_CALLBACK_FORGED] = "forged",
	[METRICS_CALLBACK_UNSIGNED] = "unsigned",
	[METRICS_CALLBACK_REPLAYED] = "replayed",
	[METRICS_CALLBACK_EXPIRED] = "expired",
	[METRICS_CALLBACK_LOCKED_OUT] = "locked_out",
	[METRICS_CALLBACK_NOT_ALLOWED] = "not_allowed",
	[METRICS_CALLBACK_MALFORMED] = "malformed",
	[METRICS_CALLBACK_TOO_BIG] = "too_big",
	[METRICS_CALLBACK_NOT_FOUND] = "not_found",
	[METRICS_CALLBACK_TLS] = "tls",
	[METRICS_CALLBACK_INTERNAL] = "internal",
};

/* Upper bounds in microseconds; +Inf is the count. */
static const uint64_t latency_le_us[METRICS_LATENCY_BUCKETS] = {
	5000,	10000,	 25000,	  50000,   100000,   250000,
	500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

struct metrics_requests {
	uint64_t count;
	uint64_t sum_us;
	uint64_t bucket[METRICS_LATENCY_BUCKETS];
};

/* One KMS's attempts: what kms->report_data points at. */
struct metrics_kms {
	struct kms *kms;
	struct metrics_requests req[_KMS_ACTION_MAX][_KMS_OUTCOME_MAX];
};

struct metrics {
	struct metrics_kms *kms;
	size_t n_kms;
	uint64_t ops[ELEMENTSOF(operations)][N_RESULTS];
	uint64_t callback[_METRICS_CALLBACK_MAX];
};

static void metrics_kms_report(void *u, const struct kms *kms, enum kms_action action,
			       enum kms_outcome outcome, uint64_t duration_us)
{
	struct metrics_requests *q = &((struct metrics_kms *)u)->req[action][outcome];

	(void)kms;
	ADD(q->count, 1);
	ADD(q->sum_us, duration_us);
	for (size_t i = 0; i < METRICS_LATENCY_BUCKETS; i++)
		if (duration_us <= latency_le_us[i])
			ADD(q->bucket[i], 1);
}

int metrics_new(const struct keyd_config *cfg, struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m || !(m->kms = calloc(cfg->n_kms + 1, sizeof(*m->kms)))) {
		free(m);
		return -ENOMEM;
	}
	m->n_kms = cfg->n_kms;
	for (size_t i = 0; i < cfg->n_kms; i++) {
		m->kms[i].kms = cfg->kms[i];
		cfg->kms[i]->report_data = &m->kms[i];
		cfg->kms[i]->report = metrics_kms_report;
	}
	*ret = m;
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_kms; i++)
		m->kms[i].kms->report = NULL;
	free(m->kms);
	free(m);
}

void metrics_count_operation(struct metrics *m, const char *type, const char *result)
{
	if (!m)
		return;
	for (size_t i = 0; i < ELEMENTSOF(operations); i++) {
		if (strcmp(operations[i].audit_type, type) != 0)
			continue;
		for (size_t j = 0; j < N_RESULTS; j++)
			if (strcmp(results[j], result) == 0)
				ADD(m->ops[i][j], 1);
	}
}

void metrics_count_callback(struct metrics *m, enum metrics_callback outcome)
{
	if (m && outcome < _METRICS_CALLBACK_MAX)
		ADD(m->callback[outcome], 1);
}

static void write_operations(struct metrics *m, struct prom *p)
{
	for (size_t i = 0; i < ELEMENTSOF(operations); i++) {
		prom_family(p, operations[i].family, "counter", operations[i].help);
		for (size_t j = 0; j < N_RESULTS; j++)
			prom_sample(p, operations[i].family,
				    (const char *const[]){"outcome", results[j], NULL},
				    (double)GET(m->ops[i][j]));
	}
}

/* One KMS's attempts of one action and outcome, with the labels that name them. */
struct metrics_series {
	const struct metrics_requests *q;
	uint64_t n;
	const char *labels[11]; /* kms, provider, action, outcome, and room for le */
};

typedef void (*series_fn)(struct prom *p, struct metrics_series *s);

/* Calls @fn for each series that happened: a KMS that never answered 429 has no 429 series. */
static void each_series(struct metrics *m, struct prom *p, series_fn fn)
{
	for (size_t k = 0; k < m->n_kms; k++)
		for (int a = 0; a < _KMS_ACTION_MAX; a++)
			for (int o = 0; o < _KMS_OUTCOME_MAX; o++) {
				const struct kms *kms = m->kms[k].kms;
				struct metrics_series s = {.q = &m->kms[k].req[a][o],
							   .labels = {"kms", kms->name, "provider",
								      kms->provider->name, "action",
								      kms_action_names[a],
								      "outcome",
								      kms_outcome_names[o], NULL}};

				s.n = GET(s.q->count);
				if (s.n)
					fn(p, &s);
			}
}

static void write_request_count(struct prom *p, struct metrics_series *s)
{
	prom_sample(p, "keyd_kms_requests_total", s->labels, (double)s->n);
}

static void write_request_histogram(struct prom *p, struct metrics_series *s)
{
	static const char bucket[] = "keyd_kms_request_duration_seconds_bucket";
	char le[32];

	s->labels[8] = "le";
	s->labels[9] = le;
	for (size_t b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
		snprintf(le, sizeof(le), "%g", (double)latency_le_us[b] / 1e6);
		prom_sample(p, bucket, s->labels, (double)GET(s->q->bucket[b]));
	}
	s->labels[9] = "+Inf";
	prom_sample(p, bucket, s->labels, (double)s->n);
	s->labels[8] = NULL;
	prom_sample(p, "keyd_kms_request_duration_seconds_sum", s->labels,
		    (double)GET(s->q->sum_us) / 1e6);
	prom_sample(p, "keyd_kms_request_duration_seconds_count", s->labels, (double)s->n);
}

static void write_requests(struct metrics *m, struct prom *p)
{
	prom_family(p, "keyd_kms_requests_total", "counter",
		    "Attempts of KMS requests (each try of a retried call counts), by KMS, "
		    "provider, action and outcome (ok, 429, 5xx, 4xx, transport, error).");
	each_series(m, p, write_request_count);
	prom_family(p, "keyd_kms_request_duration_seconds", "histogram",
		    "Time one KMS attempt took, connection included, by KMS, provider, action and "
		    "outcome.");
	each_series(m, p, write_request_histogram);
}

static void write_callback(struct metrics *m, struct prom *p)
{
	static const char name[] = "keyd_callback_requests_total";

	prom_family(p, name, "counter",
		    "Requests to the event endpoint, by outcome (accepted, forged, replayed, "
		    "locked_out, ...).");
	for (int o = 0; o < _METRICS_CALLBACK_MAX; o++)
		prom_sample(p, name,
			    (const char *const[]){"outcome", metrics_callback_names[o], NULL},
			    (double)GET(m->callback[o]));
}

void metrics_write(struct metrics *m, struct prom *p)
{
	write_operations(m, p);
	write_requests(m, p);
	write_callback(m, p);
}
