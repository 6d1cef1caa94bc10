// SPDX-License-Identifier: GPL-2.0-or-later
/* Aggregates repeated refusals into one audit record per kind and interval with a count (see
 * noise.h). Owns its table of kinds only; never drops the first refusal of a kind, never logs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "util.h"

#define NOISE_OVERFLOW_KEY "*"

struct noise_kind {
	char key[NOISE_KEY_MAX + 1];
	char type[64];
	json_t *subject;	    /* the first refusal's, for the summary */
	char error[256];	    /* the last refusal's */
	uint64_t start_us;	    /* the interval began when a record was last written */
	uint64_t first_us, last_us; /* the counted repeats: real time, for the summary */
	uint64_t count;		    /* repeats not yet written */
	bool used;
};

struct noise {
	struct audit *audit;
	uint64_t interval_us;
	size_t max;
	struct noise_kind overflow;
	struct noise_kind kinds[];
};

int noise_new(struct audit *audit, uint64_t interval_us, size_t kinds_max, struct noise **ret)
{
	struct noise *n = calloc(1, sizeof(*n) + kinds_max * sizeof(n->kinds[0]));

	if (!n)
		return -ENOMEM;
	n->audit = audit;
	n->interval_us = interval_us;
	n->max = kinds_max;
	*ret = n;
	return 0;
}

static void kind_clear(struct noise_kind *k)
{
	json_decref(k->subject);
	*k = (struct noise_kind){.used = false};
}

void noise_free(struct noise *n)
{
	if (!n)
		return;
	noise_flush(n);
	for (size_t i = 0; i < n->max; i++)
		kind_clear(&n->kinds[i]);
	kind_clear(&n->overflow);
	free(n);
}

static struct noise_kind *kind_find(struct noise *n, const char *key, bool *fresh)
{
	struct noise_kind *free_slot = NULL;

	*fresh = false;
	for (size_t i = 0; i < n->max; i++) {
		if (n->kinds[i].used && strcmp(n->kinds[i].key, key) == 0)
			return &n->kinds[i];
		if (!n->kinds[i].used && !free_slot)
			free_slot = &n->kinds[i];
	}
	if (!free_slot) {
		*fresh = !n->overflow.used;
		return &n->overflow;
	}
	*fresh = true;
	return free_slot;
}

static void kind_take(struct noise_kind *k, const char *key, const char *type, json_t *subject)
{
	k->used = true;
	snprintf(k->key, sizeof(k->key), "%s", key);
	snprintf(k->type, sizeof(k->type), "%s", type);
	json_decref(k->subject);
	k->subject = subject ? json_deep_copy(subject) : NULL;
}

bool noise_note(struct noise *n, const char *key, const char *type, json_t *subject,
		const char *error, uint64_t now_us)
{
	bool fresh;
	struct noise_kind *k = kind_find(n, key, &fresh);

	if (fresh) {
		if (k == &n->overflow) {
			json_auto_t *s = json_pack("{s:s}", "sources", "many (table full)");

			kind_take(k, NOISE_OVERFLOW_KEY, type, s);
		} else {
			kind_take(k, key, type, subject);
		}
	}
	snprintf(k->error, sizeof(k->error), "%s", error ? error : "");
	if (fresh || (k->count == 0 && now_us - k->start_us >= n->interval_us)) {
		k->start_us = now_us;
		return true;
	}
	if (k->count++ == 0)
		k->first_us = now_real_us();
	k->last_us = now_real_us();
	return false;
}

/* The summary of @k's counted repeats: its type, the count and their first and last time. */
static void kind_summarise(struct noise *n, struct noise_kind *k, uint64_t now_us)
{
	char first[40], last[40], error[320];
	json_t *object;

	format_rfc3339_us(k->first_us, first, sizeof(first));
	format_rfc3339_us(k->last_us, last, sizeof(last));
	snprintf(error, sizeof(error), "repeated %llu times: %s", (unsigned long long)k->count,
		 k->error);
	object = json_pack("{s:s, s:I, s:s, s:s}", "summary", k->key, "count", (json_int_t)k->count,
			   "first", first, "last", last);
	if (n->audit)
		audit_write(n->audit, k->type, "refused", k->subject, object, error);
	json_decref(object);
	k->count = 0;
	k->start_us = now_us;
}

static unsigned kind_tick(struct noise *n, struct noise_kind *k, uint64_t now_us, bool all)
{
	if (!k->used)
		return 0;
	if (k->count && (all || now_us - k->start_us >= n->interval_us)) {
		kind_summarise(n, k, now_us);
		return 1;
	}
	if (!k->count && now_us - k->start_us >= 2 * n->interval_us)
		kind_clear(k);
	return 0;
}

unsigned noise_tick(struct noise *n, uint64_t now_us)
{
	unsigned w = 0;

	for (size_t i = 0; i < n->max; i++)
		w += kind_tick(n, &n->kinds[i], now_us, false);
	return w + kind_tick(n, &n->overflow, now_us, false);
}

unsigned noise_flush(struct noise *n)
{
	uint64_t now = now_mono_us();
	unsigned w = 0;

	for (size_t i = 0; i < n->max; i++)
		w += kind_tick(n, &n->kinds[i], now, true);
	return w + kind_tick(n, &n->overflow, now, true);
}
