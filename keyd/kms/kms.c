// SPDX-License-Identifier: GPL-2.0-or-later
/* The provider table and the one retry policy every KMS call goes through: a bounded time
 * per try, exponential backoff with jitter or the KMS's Retry-After, an overall deadline. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "jitter.h"
#include "kms.h"
#include "secmem.h"
#include "util.h"

const char *const kms_key_state_names[] = {
	[KMS_KEY_UNKNOWN] = "unknown",	       [KMS_KEY_PRE_ACTIVE] = "pre-active",
	[KMS_KEY_ACTIVE] = "active",	       [KMS_KEY_SUSPENDED] = "suspended",
	[KMS_KEY_DEACTIVATED] = "deactivated", [KMS_KEY_DESTROYED] = "destroyed",
	[KMS_KEY_MISSING] = "missing",	       [KMS_KEY_EXPIRED] = "expired",
};

const char *const kms_action_names[] = {
	[KMS_ACTION_WRAP] = "wrap",	[KMS_ACTION_UNWRAP] = "unwrap",
	[KMS_ACTION_REWRAP] = "rewrap", [KMS_ACTION_KEY_INFO] = "key_info",
	[KMS_ACTION_PROBE] = "probe",	[KMS_ACTION_EVENT_ACK] = "event_ack",
};

const char *const kms_outcome_names[] = {
	[KMS_OUTCOME_OK] = "ok",
	[KMS_OUTCOME_RATE_LIMITED] = "429",
	[KMS_OUTCOME_SERVER] = "5xx",
	[KMS_OUTCOME_CLIENT] = "4xx",
	[KMS_OUTCOME_TRANSPORT] = "transport",
	[KMS_OUTCOME_ERROR] = "error",
};

static const struct kms_provider *const providers[] = {
	&kms_provider_file,    &kms_provider_keyprotect, &kms_provider_vault, &kms_provider_aws,
	&kms_provider_tencent, &kms_provider_pkcs11,	 &kms_provider_kmip,
};

const struct kms_provider *kms_provider_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(providers); i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

const char *kms_provider_names(void)
{
	static char list[128];

	if (!list[0])
		for (size_t i = 0; i < ELEMENTSOF(providers); i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", providers[i]->name);
	return list;
}

int kms_fail(struct error *e, int r, bool retryable, const char *fmt, ...)
{
	long retry_after_s = e ? e->retry_after_s : -1;
	va_list ap;

	va_start(ap, fmt);
	r = error_setv(e, r, fmt, ap);
	va_end(ap);
	/* A Retry-After the provider read from this reply stays with a retryable failure. */
	if (e && retryable) {
		e->retryable = true;
		e->retry_after_s = retry_after_s;
	}
	return r;
}

void kms_wrapped_done(struct kms_wrapped *w)
{
	free(w->wdek);
	free(w->key_version);
	w->wdek = w->key_version = NULL;
}

int kms_aad_for_uuid(const char *uuid, char *buf, size_t size)
{
	int n = snprintf(buf, size, "keyd:v1:%s", uuid);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The first caller opens the KMS; the others wait for it on open_lock. Without the lock, two
 * threads that both found it closed each opened it: two HTTP clients in one struct, one leaked
 * and the other's locks initialised again under its feet (valgrind saw it). */
static int kms_ensure_open(struct kms *kms, struct error *e)
{
	int r = 0;

	if (__atomic_load_n(&kms->opened, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&kms->open_lock);
	if (!kms->opened) {
		r = kms->provider->open ? kms->provider->open(kms, e) : 0;
		if (r >= 0)
			__atomic_store_n(&kms->opened, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&kms->open_lock);
	return r;
}

/* Pause before attempt @attempt (1-based): min * 2^(attempt-1), capped, then "equal jitter"
 * (half fixed, half random) so a fleet rebooting together does not hammer the KMS in step. */
static uint64_t backoff_ms(const struct kms_retry *rp, unsigned attempt)
{
	uint64_t b = rp->backoff_min_ms;

	for (unsigned i = 1; i < attempt && b < rp->backoff_max_ms; i++)
		b *= 2;
	if (b > rp->backoff_max_ms)
		b = rp->backoff_max_ms;
	return jitter_above(b / 2, 100); /* b/2 .. b */
}

enum kms_outcome kms_outcome_of(int r, const struct error *e)
{
	if (r >= 0)
		return KMS_OUTCOME_OK;
	if (e->http_status == 429)
		return KMS_OUTCOME_RATE_LIMITED;
	if (e->http_status >= 500)
		return KMS_OUTCOME_SERVER;
	if (e->http_status > 0)
		return KMS_OUTCOME_CLIENT;
	return e->retryable ? KMS_OUTCOME_TRANSPORT : KMS_OUTCOME_ERROR;
}

/* The KMS's Retry-After, never cut short, plus up to as much again at random: every client
 * throttled in the same second gets the same whole-second Retry-After, and retrying exactly
 * then would arrive as one herd again (docs/fleet.md; AWS's and Google's client guidance add
 * jitter to every retry). 0 stays 0: "now". */
static uint64_t retry_after_ms(long s)
{
	return jitter_above((uint64_t)s * 1000, 100);
}

struct kms_call {
	enum kms_action op;
	const char *key_id;
	const uint8_t *dek;
	size_t dek_len;
	const char *wdek;
	const char *aad;
	struct kms_wrapped *wrapped;
	uint8_t **ret_dek;
	size_t *ret_len;
	struct kms_key_info *info;
	const char *event_id;
	enum kms_key_state key_state;
};

static int kms_call_once(struct kms *kms, const struct kms_call *c, struct error *e)
{
	switch (c->op) {
	case KMS_ACTION_WRAP:
		return kms->provider->wrap(kms, c->key_id, c->dek, c->dek_len, c->aad, c->wrapped,
					   e);
	case KMS_ACTION_UNWRAP:
		return kms->provider->unwrap(kms, c->key_id, c->wdek, c->aad, c->ret_dek,
					     c->ret_len, c->wrapped, e);
	case KMS_ACTION_REWRAP:
		if (!kms->provider->rewrap)
			return kms_fail(e, -EOPNOTSUPP, false, "provider %s cannot rewrap",
					kms->provider->name);
		return kms->provider->rewrap(kms, c->key_id, c->wdek, c->aad, c->wrapped, e);
	case KMS_ACTION_KEY_INFO:
		if (!kms->provider->key_info)
			return kms_fail(e, -EOPNOTSUPP, false,
					"provider %s cannot report key state", kms->provider->name);
		return kms->provider->key_info(kms, c->key_id, c->info, e);
	case KMS_ACTION_PROBE:
		return kms->provider->probe ? kms->provider->probe(kms, c->key_id, e) : 0;
	case KMS_ACTION_EVENT_ACK:
		if (!kms->provider->event_ack)
			return kms_fail(e, -EOPNOTSUPP, false,
					"provider %s has no event acknowledgement",
					kms->provider->name);
		return kms->provider->event_ack(kms, c->key_id, c->event_id, c->key_state, e);
	case _KMS_ACTION_MAX:
		break;
	}
	return -EINVAL;
}

/* One attempt: open the provider if needed, call it, note a success, tell whoever counts. */
static int kms_attempt(struct kms *kms, const struct kms_call *c, struct error *e)
{
	uint64_t t0 = now_mono_us(), t1;
	int r;

	*e = (struct error){.retry_after_s = -1};
	r = kms_ensure_open(kms, e);
	if (r >= 0)
		r = kms_call_once(kms, c, e);
	t1 = now_mono_us();
	if (r >= 0)
		__atomic_store_n(&kms->last_ok_us, t1, __ATOMIC_RELAXED);
	if (kms->report)
		kms->report(kms->report_data, kms, c->op, kms_outcome_of(r, e), t1 - t0);
	return r;
}

static int kms_call_retrying(struct kms *kms, const struct kms_call *c, struct error *e,
			     kms_wait_fn wait, void *userdata, const volatile bool *stop)
{
	uint64_t deadline = now_mono_us() + kms->retry.deadline_ms * 1000;
	int r;

	for (unsigned attempt = 1;; attempt++) {
		uint64_t pause, now;

		/* @stop also abandons a request in flight: a KMS that hangs costs nothing
		 * once another has answered (unwrap_any) or keyd is stopping. */
		http_set_stop(stop);
		r = kms_attempt(kms, c, e);
		http_set_stop(NULL);
		if (r >= 0 || !e->retryable)
			return r;

		pause = e->retry_after_s >= 0 ? retry_after_ms(e->retry_after_s)
					      : backoff_ms(&kms->retry, attempt);
		now = now_mono_us();
		if ((stop && *stop) || now + pause * 1000 >= deadline) {
			size_t n = strlen(e->msg);

			snprintf(e->msg + n, sizeof(e->msg) - n,
				 " (gave up after %u attempts in %llu s)", attempt,
				 (unsigned long long)kms->retry.deadline_ms / 1000);
			return r;
		}
		if (wait)
			wait(userdata, kms, attempt, pause, e);
		sleep_us(pause * 1000, stop);
	}
}

int kms_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
	     const char *aad, struct kms_wrapped *ret, struct error *e, kms_wait_fn wait,
	     void *userdata, const volatile bool *stop)
{
	struct kms_call c = {.op = KMS_ACTION_WRAP,
			     .key_id = key_id,
			     .dek = dek,
			     .dek_len = dek_len,
			     .aad = aad,
			     .wrapped = ret};

	return kms_call_retrying(kms, &c, e, wait, userdata, stop);
}

int kms_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
	       uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped, struct error *e,
	       kms_wait_fn wait, void *userdata, const volatile bool *stop)
{
	struct kms_call c = {.op = KMS_ACTION_UNWRAP,
			     .key_id = key_id,
			     .wdek = wdek,
			     .aad = aad,
			     .wrapped = rewrapped,
			     .ret_dek = ret_dek,
			     .ret_len = ret_len};

	return kms_call_retrying(kms, &c, e, wait, userdata, stop);
}

int kms_rewrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
	       struct kms_wrapped *ret, struct error *e, kms_wait_fn wait, void *userdata,
	       const volatile bool *stop)
{
	struct kms_call c = {.op = KMS_ACTION_REWRAP,
			     .key_id = key_id,
			     .wdek = wdek,
			     .aad = aad,
			     .wrapped = ret};

	return kms_call_retrying(kms, &c, e, wait, userdata, stop);
}

int kms_event_ack(struct kms *kms, const char *key_id, const char *event_id,
		  enum kms_key_state key_state, struct error *e, const volatile bool *stop)
{
	struct kms_call c = {.op = KMS_ACTION_EVENT_ACK,
			     .key_id = key_id,
			     .event_id = event_id,
			     .key_state = key_state};

	return kms_call_retrying(kms, &c, e, NULL, NULL, stop);
}

int kms_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret, struct error *e)
{
	struct kms_call c = {.op = KMS_ACTION_KEY_INFO, .key_id = key_id, .info = ret};

	/* One attempt: polling asks again at its next tick anyway. */
	*ret = (struct kms_key_info){.state = KMS_KEY_UNKNOWN};
	return kms_attempt(kms, &c, e);
}

int kms_probe(struct kms *kms, const char *key_id, struct error *e)
{
	struct kms_call c = {.op = KMS_ACTION_PROBE, .key_id = key_id};

	return kms_attempt(kms, &c, e);
}

uint64_t kms_silence_us(struct kms *kms)
{
	uint64_t last = __atomic_load_n(&kms->last_ok_us, __ATOMIC_RELAXED);

	return last ? now_mono_us() - last : UINT64_MAX;
}

void kms_free(struct kms *kms)
{
	if (!kms)
		return;
	if (kms->provider && kms->provider->done)
		kms->provider->done(kms);
	pthread_mutex_destroy(&kms->open_lock);
	free(kms->name);
	free(kms);
}
