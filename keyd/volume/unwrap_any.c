// SPDX-License-Identifier: GPL-2.0-or-later
/* The any-of unwrap race: one thread per KMS that holds a wrap of the token, each going through
 * token_unwrap (and so kms.c's retries); the first DEK wins and stops the others. The losers'
 * DEKs, if any arrive, are freed from secure memory unread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "secmem.h"
#include "unwrap_any.h"
#include "util.h"

struct race {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_mutex_t wait_lock; /* the caller's wait callback, one call at a time */
	volatile bool stop;	   /* set by the winner, or when the caller's stop is */
	int winner;		   /* index into racers, -1 while none */
	unsigned running;
	kms_wait_fn wait;
	void *userdata;
};

struct racer {
	struct race *race;
	const struct kms_key *key;
	const struct keyd_token *t;
	const char *uuid;
	pthread_t thread;
	uint8_t *dek;
	struct kms_wrapped rewrapped;
	struct error err;
	int index;
	int r;
};

int unwrap_any_candidates(const struct kms_key *keys, size_t n_keys, const struct keyd_token *t,
			  int *use, struct error *e)
{
	char names[KMS_KEYS_MAX * (KMS_NAME_MAX + KMS_KEY_ID_MAX + 16)] = "";
	char offered[sizeof(names)] = "";
	int n = 0, w;

	for (size_t k = 0; k < n_keys && n < KMS_KEYS_MAX; k++) {
		w = token_wrap_index(t, keys[k].kms->name);
		if (w >= 0 && (!keys[k].key_id || strcmp(keys[k].key_id, t->wrap[w].key_id) == 0))
			use[n++] = (int)k;
	}
	if (n > 0)
		return n;
	for (unsigned i = 0; i < t->n_wraps; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s'%s' (key %s)",
			 i ? ", " : "", t->wrap[i].kms, t->wrap[i].key_id);
	for (size_t k = 0; k < n_keys; k++)
		snprintf(offered + strlen(offered), sizeof(offered) - strlen(offered),
			 "%s'%s' (key %s)", k ? ", " : "", keys[k].kms->name,
			 keys[k].key_id ? keys[k].key_id : "any");
	return error_set(e, -EXDEV, "token is wrapped by KMS %s; the configuration says %s", names,
			 offered);
}

static void racer_wait(void *userdata, const struct kms *kms, unsigned attempt, uint64_t pause_ms,
		       const struct error *e)
{
	struct race *race = ((struct racer *)userdata)->race;

	if (!race->wait)
		return;
	pthread_mutex_lock(&race->wait_lock);
	race->wait(race->userdata, kms, attempt, pause_ms, e);
	pthread_mutex_unlock(&race->wait_lock);
}

static void *racer_run(void *arg)
{
	struct racer *x = arg;
	struct race *race = x->race;

	x->r = token_unwrap(x->key->kms, x->t, x->uuid, &x->dek, &x->rewrapped, racer_wait, x,
			    &race->stop, &x->err);
	pthread_mutex_lock(&race->lock);
	if (x->r >= 0 && race->winner < 0) {
		race->winner = x->index;
		race->stop = true;
	}
	race->running--;
	pthread_cond_signal(&race->changed);
	pthread_mutex_unlock(&race->lock);
	return NULL;
}

/* Waits for a winner or for every racer to give up, passing the caller's stop on. */
static void race_wait(struct race *race, const volatile bool *stop)
{
	pthread_mutex_lock(&race->lock);
	while (race->winner < 0 && race->running > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&race->changed, &race->lock, &ts);
		if (stop && *stop)
			race->stop = true;
	}
	race->stop = true;
	pthread_mutex_unlock(&race->lock);
}

/* Every KMS's failure, in the order of the keys: "unwrap with KMS 'a' ...; unwrap with ...". */
static int race_failure(struct racer *x, int n, struct error *e)
{
	char msg[ERROR_MAX] = "";

	for (int i = 0; i < n; i++)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%s%s", i ? "; " : "",
			 x[i].err.msg);
	return error_set(e, x[0].r, "%s", msg);
}

int unwrap_any(const struct kms_key *keys, size_t n_keys, const struct keyd_token *t,
	       const char *uuid, uint8_t **ret_dek, struct unwrap_any_result *res, kms_wait_fn wait,
	       void *userdata, const volatile bool *stop, struct error *e)
{
	struct race race = {.winner = -1, .wait = wait, .userdata = userdata};
	struct racer x[KMS_KEYS_MAX];
	int use[KMS_KEYS_MAX], n, started = 0, r;

	*ret_dek = NULL;
	*res = (struct unwrap_any_result){.key = -1, .wrap = -1};
	n = unwrap_any_candidates(keys, n_keys, t, use, e);
	if (n < 0)
		return n;
	if (n == 1) {
		r = token_unwrap(keys[use[0]].kms, t, uuid, ret_dek, &res->rewrapped, wait,
				 userdata, stop, e);
		if (r >= 0) {
			res->key = use[0];
			res->wrap = token_wrap_index(t, keys[use[0]].kms->name);
		}
		return r;
	}
	pthread_mutex_init(&race.lock, NULL);
	pthread_mutex_init(&race.wait_lock, NULL);
	pthread_cond_init(&race.changed, NULL);
	for (int i = 0; i < n; i++) {
		x[i] = (struct racer){
			.race = &race, .key = &keys[use[i]], .t = t, .uuid = uuid, .index = i};
		error_set(&x[i].err, -ECANCELED, "KMS '%s': not asked", keys[use[i]].kms->name);
		x[i].r = -ECANCELED;
	}
	race.running = (unsigned)n;
	for (; started < n; started++) {
		r = -pthread_create(&x[started].thread, NULL, racer_run, &x[started]);
		if (r < 0) {
			/* The ones never asked say why, not "stopped". */
			for (int i = started; i < n; i++) {
				x[i].r = r;
				error_set(&x[i].err, r, "KMS '%s': cannot start a thread: %s",
					  keys[use[i]].kms->name, strerror(-r));
			}
			break;
		}
	}
	pthread_mutex_lock(&race.lock);
	race.running -= (unsigned)(n - started); /* never started: nothing to wait for */
	pthread_mutex_unlock(&race.lock);
	race_wait(&race, stop);
	for (int i = 0; i < started; i++)
		pthread_join(x[i].thread, NULL);

	if (race.winner >= 0) {
		struct racer *w = &x[race.winner];

		*ret_dek = TAKE_PTR(w->dek);
		res->rewrapped = w->rewrapped;
		w->rewrapped = (struct kms_wrapped){0};
		res->key = use[race.winner];
		res->wrap = token_wrap_index(t, w->key->kms->name);
		r = 0;
	} else {
		r = race_failure(x, n, e);
	}
	for (int i = 0; i < n; i++) {
		secmem_free(x[i].dek);
		kms_wrapped_done(&x[i].rewrapped);
	}
	pthread_cond_destroy(&race.changed);
	pthread_mutex_destroy(&race.wait_lock);
	pthread_mutex_destroy(&race.lock);
	return r;
}
