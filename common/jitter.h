/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Random spreads for timers, so that hosts which started together (a fleet after a power
 * event) do not act in step. Keeps no state, never sleeps, never logs. */
#pragma once

#include <stdint.h>

/* Percentages above this would let a spread delay shrink towards zero. */
#define JITTER_PCT_MAX 50

/* @base spread uniformly over base * (1 - pct/100) .. base * (1 + pct/100), the mean staying
 * @base; @pct above JITTER_PCT_MAX counts as JITTER_PCT_MAX, 0 returns @base. */
uint64_t jitter_spread(uint64_t base, unsigned pct);

/* At least @base: uniform over base .. base * (1 + pct/100), @pct at most 100. For a wait
 * the other side imposed (Retry-After), which must not be cut short. */
uint64_t jitter_above(uint64_t base, unsigned pct);
