/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyd's counters: volume operations by outcome, KMS attempts and their latency by KMS,
 * action and outcome, callback requests by outcome. The one owner of every count; calls nothing
 * else in daemon/ (everyone may count into it). Never sees key material. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kms.h"
#include "prom.h"

/* Latency buckets of keyd_kms_request_duration_seconds (upper bounds, seconds). */
#define METRICS_LATENCY_BUCKETS 12

struct metrics;

/* Room for the KMS of @cfg, whose attempts it counts from now on (sets each kms->report).
 * -ENOMEM. */
int metrics_new(const struct keyd_config *cfg, struct metrics **ret);
/* Stops counting (clears kms->report) and frees. */
void metrics_free(struct metrics *m);

/* An audit record of @type ("volume.unlock", "volume.rewrap", "volume.rekey", ...) with
 * @result ("success", "failure", "refused") was written: counts the operation if it is one
 * keyd_*_total counts (others are ignored). @m may be NULL. */
void metrics_count_operation(struct metrics *m, const char *type, const char *result);

/* Event endpoint outcomes (keyd_callback_requests_total's "outcome" label). */
enum metrics_callback {
	METRICS_CALLBACK_ACCEPTED,
	METRICS_CALLBACK_FAILED, /* authenticated, but acting on it failed */
	METRICS_CALLBACK_FORGED, /* signature does not verify */
	METRICS_CALLBACK_UNSIGNED,
	METRICS_CALLBACK_REPLAYED,
	METRICS_CALLBACK_EXPIRED, /* timestamp outside the replay window, or unreadable */
	METRICS_CALLBACK_LOCKED_OUT,
	METRICS_CALLBACK_NOT_ALLOWED, /* source outside callback.allow */
	METRICS_CALLBACK_MALFORMED,   /* bad header, body or event */
	METRICS_CALLBACK_TOO_BIG,
	METRICS_CALLBACK_NOT_FOUND, /* wrong path or method */
	METRICS_CALLBACK_TLS,	    /* the handshake failed */
	METRICS_CALLBACK_INTERNAL,
	_METRICS_CALLBACK_MAX,
};
extern const char *const metrics_callback_names[];
void metrics_count_callback(struct metrics *m, enum metrics_callback outcome);

/* Appends the counter families (with HELP and TYPE) to @p. */
void metrics_write(struct metrics *m, struct prom *p);
