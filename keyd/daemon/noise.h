/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rate-limited audit of refusals ("noise": what anyone who can reach a listener can cause):
 * the first refusal of a kind from a source is written at once, repeats within an interval are
 * counted and written as one summary record with the count. A bounded table: past its size,
 * new kinds share one overflow entry, so an attack costs at most a fixed number of records
 * (and fsyncs) per interval whatever its rate. Logs nothing; writes only summaries. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"

#define NOISE_KEY_MAX	  128 /* bytes of a kind's key, e.g. "127.0.0.2 not_allowed" */
#define NOISE_INTERVAL_US (60ULL * 1000000) /* one record per kind per interval, at most */
#define NOISE_KINDS_MAX	  64 /* kinds tracked at once; more share the overflow entry */

struct noise;

/* @audit may be NULL (nothing is written, refusals are still counted). -ENOMEM. */
int noise_new(struct audit *audit, uint64_t interval_us, size_t kinds_max, struct noise **ret);
/* Writes the summaries still due (noise_flush), then frees. */
void noise_free(struct noise *n);

/* One refusal of kind @key at monotonic @now_us: true when the caller is to write its record
 * (and log it) now, false when it was only counted. @type and @subject are the summary's;
 * @error the refusal's reason, which the summary quotes. */
bool noise_note(struct noise *n, const char *key, const char *type, json_t *subject,
		const char *error, uint64_t now_us);
/* Writes a summary for each kind whose interval has ended with repeats counted; forgets kinds
 * quiet for two intervals. Returns the number of summaries written. Call it periodically. */
unsigned noise_tick(struct noise *n, uint64_t now_us);
/* Writes every pending summary now (at shutdown). */
unsigned noise_flush(struct noise *n);
