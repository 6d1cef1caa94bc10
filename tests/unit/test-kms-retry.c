// SPDX-License-Identifier: GPL-2.0-or-later
/* The one retry policy (kms.c) against a scripted provider: a non-retryable failure is final, a
 * retryable one is tried again after an exponential pause with equal jitter (half fixed, half
 * random, capped), the KMS's Retry-After wins over our own pause (never shorter, spread up to
 * twice it so a throttled fleet does not come back as one herd), the deadline and the stop
 * flag end the waiting, and polling's key_info makes exactly one attempt. Each attempt is
 * reported through kms->report with the outcome its failure counts as (keyd's metrics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kms.h"
#include "secmem.h"
#include "util.h"

#define SCRIPT_MAX 64

/* What the fake KMS answers, attempt by attempt; past the script, success. */
struct step {
	int r;		/* 0: success */
	bool retryable; /* for a failure */
	long retry_after_s;
	long http_status; /* the reply's, for a failure the KMS answered */
};

struct fake {
	struct step script[SCRIPT_MAX];
	int n_script, calls, opens, open_failures;
	uint64_t pause_ms[SCRIPT_MAX]; /* what the policy chose before each retry */
	int n_pauses;
	bool stop_in_wait; /* the wait callback raises the stop flag */
	volatile bool stop;
};

static int fake_answer(struct kms *kms, struct error *e)
{
	struct fake *f = kms->data;
	struct step s = f->calls < f->n_script ? f->script[f->calls] : (struct step){0};

	f->calls++;
	if (s.r == 0)
		return 0;
	e->retry_after_s = s.retry_after_s;
	s.r = kms_fail(e, s.r, s.retryable, "fake KMS: attempt %d failed", f->calls);
	e->http_status = s.http_status;
	return s.r;
}

static int fake_open(struct kms *kms, struct error *e)
{
	struct fake *f = kms->data;

	f->opens++;
	if (f->open_failures > 0) {
		f->open_failures--;
		return kms_fail(e, -ECONNREFUSED, true, "fake KMS: cannot connect");
	}
	return 0;
}

static int fake_wrap(struct kms *kms, const char *key_id, const uint8_t *dek, size_t dek_len,
		     const char *aad, struct kms_wrapped *ret, struct error *e)
{
	int r = fake_answer(kms, e);

	(void)key_id, (void)dek, (void)dek_len, (void)aad;
	if (r == 0)
		ret->wdek = strdup("fake:wdek");
	return r;
}

static int fake_unwrap(struct kms *kms, const char *key_id, const char *wdek, const char *aad,
		       uint8_t **ret_dek, size_t *ret_len, struct kms_wrapped *rewrapped,
		       struct error *e)
{
	int r = fake_answer(kms, e);

	(void)key_id, (void)wdek, (void)aad, (void)rewrapped;
	if (r == 0) {
		*ret_dek = secmem_alloc(32);
		memset(*ret_dek, 0x42, 32);
		*ret_len = 32;
	}
	return r;
}

static int fake_key_info(struct kms *kms, const char *key_id, struct kms_key_info *ret,
			 struct error *e)
{
	(void)key_id;
	ret->state = KMS_KEY_ACTIVE;
	return fake_answer(kms, e);
}

static int fake_event_ack(struct kms *kms, const char *key_id, const char *event_id,
			  enum kms_key_state key_state, struct error *e)
{
	assert_string_equal(key_id, "key");
	assert_string_equal(event_id, "ev-1");
	assert_int_equal(key_state, KMS_KEY_ACTIVE);
	return fake_answer(kms, e);
}

static const struct kms_provider fake_provider = {
	.name = "fake",
	.open = fake_open,
	.wrap = fake_wrap,
	.unwrap = fake_unwrap,
	.key_info = fake_key_info,
	.event_ack = fake_event_ack,
};

static void on_wait(void *userdata, const struct kms *kms, unsigned attempt, uint64_t pause_ms,
		    const struct error *e)
{
	struct fake *f = userdata;

	assert_string_equal(kms->name, "fake");
	assert_int_equal(attempt, (unsigned)f->n_pauses + 1);
	assert_non_null(strstr(e->msg, "fake KMS"));
	if (f->n_pauses < SCRIPT_MAX)
		f->pause_ms[f->n_pauses++] = pause_ms;
	if (f->stop_in_wait)
		f->stop = true;
}

static struct kms *fake_kms(struct fake *f, uint64_t min_ms, uint64_t max_ms, uint64_t deadline_ms)
{
	static struct kms k;

	k = (struct kms){.name = "fake",
			 .provider = &fake_provider,
			 .open_lock = PTHREAD_MUTEX_INITIALIZER,
			 .retry = {.try_timeout_ms = 1000,
				   .backoff_min_ms = min_ms,
				   .backoff_max_ms = max_ms,
				   .deadline_ms = deadline_ms},
			 .data = f};
	return &k;
}

static int unwrap(struct kms *k, struct fake *f, struct error *e)
{
	uint8_t *dek = NULL;
	size_t n = 0;
	int r;

	r = kms_unwrap(k, "key", "wdek", "aad", &dek, &n, NULL, e, on_wait, f, &f->stop);
	if (r == 0) {
		assert_int_equal(n, 32);
		assert_int_equal(dek[0], 0x42);
	}
	secmem_free(dek);
	return r;
}

static void test_not_retryable_is_final(void **state)
{
	struct fake f = {.n_script = 1, .script = {{-EPERM, false, -1}}};
	struct kms *k = fake_kms(&f, 10, 100, 10000);
	struct error e;

	(void)state;
	assert_int_equal(kms_silence_us(k), UINT64_MAX);
	assert_int_equal(unwrap(k, &f, &e), -EPERM);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.n_pauses, 0);
	assert_false(e.retryable);
	assert_string_equal(e.msg, "fake KMS: attempt 1 failed");
	assert_int_equal(kms_silence_us(k), UINT64_MAX); /* a failure is no contact */
}

/* min * 2^(attempt-1), capped at max, then equal jitter: within [b/2, b]. */
static void test_exponential_backoff_with_equal_jitter(void **state)
{
	enum {
		N = 20
	};
	struct fake f = {.n_script = N};
	struct kms *k = fake_kms(&f, 4, 64, 60000);
	struct error e;
	int distinct = 0;

	(void)state;
	for (int i = 0; i < N; i++)
		f.script[i] = (struct step){-EAGAIN, true, -1, 0};
	assert_int_equal(unwrap(k, &f, &e), 0);
	assert_int_equal(f.calls, N + 1);
	assert_int_equal(f.n_pauses, N);
	for (int i = 0; i < N; i++) {
		uint64_t b = 4ULL << (i < 5 ? i : 5);

		b = b > 64 ? 64 : b;
		if (f.pause_ms[i] < b / 2 || f.pause_ms[i] > b)
			fail_msg("pause %d: %llu ms, expected within [%llu, %llu]", i + 1,
				 (unsigned long long)f.pause_ms[i], (unsigned long long)b / 2,
				 (unsigned long long)b);
		distinct += i > 5 && f.pause_ms[i] != f.pause_ms[5];
	}
	/* The capped pauses are drawn from [32, 64]: fifteen equal draws would be no jitter. */
	if (distinct == 0)
		fail_msg("every capped pause was %llu ms: no jitter",
			 (unsigned long long)f.pause_ms[5]);
	assert_true(kms_silence_us(k) < 5000000);
}

static void test_retry_after_wins(void **state)
{
	struct fake f = {.n_script = 1, .script = {{-EBUSY, true, 3}}, .stop_in_wait = true};
	struct kms *k = fake_kms(&f, 10, 100, 60000);
	uint64_t t0 = now_mono_us();
	uint64_t min = UINT64_MAX, max = 0;
	struct error e;

	(void)state;
	/* The stop flag raised in the wait callback cuts the 3..6 s sleep short; the next
	 * attempt still runs and succeeds. */
	assert_int_equal(unwrap(k, &f, &e), 0);
	assert_int_equal(f.n_pauses, 1);
	if (f.pause_ms[0] < 3000 || f.pause_ms[0] > 6000)
		fail_msg("Retry-After 3 s, but the pause was %llu ms (want 3000..6000)",
			 (unsigned long long)f.pause_ms[0]);
	assert_true(now_mono_us() - t0 < 2000000);

	/* Twenty hosts throttled in the same second, all told "Retry-After: 1": none comes back
	 * early, and they do not come back together (20 uniform draws over 1 s span less than
	 * 300 ms with a chance below 10^-8). */
	for (int i = 0; i < 20; i++) {
		f = (struct fake){
			.n_script = 1, .script = {{-EBUSY, true, 1}}, .stop_in_wait = true};
		k = fake_kms(&f, 10, 100, 60000);
		assert_int_equal(unwrap(k, &f, &e), 0);
		if (f.pause_ms[0] < 1000 || f.pause_ms[0] > 2000)
			fail_msg("Retry-After 1 s, but the pause was %llu ms (want 1000..2000)",
				 (unsigned long long)f.pause_ms[0]);
		min = f.pause_ms[0] < min ? f.pause_ms[0] : min;
		max = f.pause_ms[0] > max ? f.pause_ms[0] : max;
	}
	if (max - min < 300)
		fail_msg("20 throttled retries all within %llu..%llu ms: a herd",
			 (unsigned long long)min, (unsigned long long)max);

	/* Retry-After 0: try again at once. */
	f = (struct fake){.n_script = 1, .script = {{-EBUSY, true, 0}}};
	k = fake_kms(&f, 10, 100, 60000);
	assert_int_equal(unwrap(k, &f, &e), 0);
	assert_int_equal(f.n_pauses, 1);
	assert_int_equal(f.pause_ms[0], 0);
}

/* A pause that would end past the deadline is not taken: the error says how long we tried. */
static void test_deadline(void **state)
{
	struct fake f = {.n_script = SCRIPT_MAX};
	struct kms *k = fake_kms(&f, 20, 40, 150);
	uint64_t t0 = now_mono_us(), took;
	struct error e;

	(void)state;
	for (int i = 0; i < SCRIPT_MAX; i++)
		f.script[i] = (struct step){-EIO, true, -1, 0};
	assert_int_equal(unwrap(k, &f, &e), -EIO);
	took = now_mono_us() - t0;
	if (took > 150000 + 1000000) /* the deadline, and room for a loaded machine */
		fail_msg("gave up after %llu us, the deadline is 150 ms", (unsigned long long)took);
	assert_true(f.calls >= 2);
	assert_int_equal(f.n_pauses, f.calls - 1);
	if (!strstr(e.msg, "(gave up after ") || !strstr(e.msg, " attempts in 0 s)"))
		fail_msg("unexpected message: \"%s\"", e.msg);
	assert_true(e.retryable);

	/* A Retry-After beyond the deadline: no waiting at all. */
	f = (struct fake){.n_script = 1, .script = {{-EBUSY, true, 5}}};
	k = fake_kms(&f, 20, 40, 1000);
	t0 = now_mono_us();
	assert_int_equal(unwrap(k, &f, &e), -EBUSY);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.n_pauses, 0);
	assert_true(now_mono_us() - t0 < 500000);
	assert_non_null(strstr(e.msg, "(gave up after 1 attempts in 1 s)"));
}

static void test_stop_flag(void **state)
{
	struct fake f = {.n_script = 4,
			 .script = {{-EIO, true, -1}, {-EIO, true, -1}, {-EIO, true, -1}}};
	struct kms *k = fake_kms(&f, 10, 100, 60000);
	struct error e;

	(void)state;
	f.stop = true;
	assert_int_equal(unwrap(k, &f, &e), -EIO);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.n_pauses, 0);
	assert_non_null(strstr(e.msg, "gave up after 1 attempts"));

	/* Raised while waiting: one more attempt, then no further wait. */
	f = (struct fake){.n_script = 3,
			  .script = {{-EIO, true, -1}, {-EIO, true, -1}, {-EIO, true, -1}},
			  .stop_in_wait = true};
	k = fake_kms(&f, 10, 100, 60000);
	assert_int_equal(unwrap(k, &f, &e), -EIO);
	assert_int_equal(f.calls, 2);
	assert_int_equal(f.n_pauses, 1);
}

/* Opening (credentials, clients) is part of the attempt: retried, and done once. */
static void test_open_is_retried_then_kept(void **state)
{
	struct fake f = {.open_failures = 2};
	struct kms *k = fake_kms(&f, 2, 8, 60000);
	struct kms_wrapped w = {0};
	uint8_t dek[32] = {0};
	struct error e;

	(void)state;
	assert_int_equal(kms_wrap(k, "key", dek, 32, "aad", &w, &e, on_wait, &f, &f.stop), 0);
	assert_string_equal(w.wdek, "fake:wdek");
	kms_wrapped_done(&w);
	assert_int_equal(f.opens, 3);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.n_pauses, 2);
	assert_int_equal(kms_wrap(k, "key", dek, 32, "aad", &w, &e, on_wait, &f, &f.stop), 0);
	kms_wrapped_done(&w);
	assert_int_equal(f.opens, 3);
}

/* Polling asks again at its next tick: one attempt, whatever the failure. */
static void test_key_info_makes_one_attempt(void **state)
{
	struct fake f = {.n_script = 2, .script = {{-EAGAIN, true, 1}, {-EAGAIN, true, 1}}};
	struct kms *k = fake_kms(&f, 10, 100, 60000);
	struct kms_key_info info;
	struct error e;

	(void)state;
	assert_int_equal(kms_key_info(k, "key", &info, &e), -EAGAIN);
	assert_int_equal(f.calls, 1);
	assert_true(e.retryable);
	assert_int_equal(e.retry_after_s, 1);
	assert_int_equal(
		kms_rewrap(k, "key", "wdek", "aad", &(struct kms_wrapped){0}, &e, NULL, NULL, NULL),
		-EOPNOTSUPP);
	assert_false(e.retryable);
	assert_int_equal(f.calls, 1); /* no rewrap in the table: never called, never retried */
}

/* An acknowledgement lost to the network is one the KMS keeps waiting for: tried again, per
 * the policy, until the deadline; a refusal is final. */
static void test_event_ack_is_retried(void **state)
{
	struct fake f = {.n_script = 2,
			 .script = {{-ECONNRESET, true, -1, 0}, {-ETIMEDOUT, true, -1, 0}}};
	struct kms *k = fake_kms(&f, 1, 2, 10000);
	struct error e;

	(void)state;
	assert_int_equal(kms_event_ack(k, "key", "ev-1", KMS_KEY_ACTIVE, &e, &f.stop), 0);
	assert_int_equal(f.calls, 3);
	f = (struct fake){.n_script = 3,
			  .script = {{-ECONNRESET, true, -1, 0}, {-EACCES, false, -1, 401}}};
	assert_int_equal(kms_event_ack(k, "key", "ev-1", KMS_KEY_ACTIVE, &e, &f.stop), -EACCES);
	assert_int_equal(f.calls, 2);
	f = (struct fake){.n_script = SCRIPT_MAX};
	for (int i = 0; i < SCRIPT_MAX; i++)
		f.script[i] = (struct step){-ECONNRESET, true, -1, 0};
	k = fake_kms(&f, 10, 20, 50);
	assert_int_equal(kms_event_ack(k, "key", "ev-1", KMS_KEY_ACTIVE, &e, &f.stop), -ECONNRESET);
	assert_true(f.calls >= 2 && f.calls < SCRIPT_MAX);
	assert_non_null(strstr(e.msg, "gave up after"));
}

struct reports {
	int n;
	enum kms_action action[SCRIPT_MAX];
	enum kms_outcome outcome[SCRIPT_MAX];
};

static void on_report(void *u, const struct kms *kms, enum kms_action action,
		      enum kms_outcome outcome, uint64_t duration_us)
{
	struct reports *rp = u;

	assert_string_equal(kms->name, "fake");
	assert_true(duration_us < 10 * 1000000);
	rp->action[rp->n] = action;
	rp->outcome[rp->n++] = outcome;
}

/* Every attempt of a retried call is reported once, with what its failure was. */
static void test_each_attempt_is_reported(void **state)
{
	struct fake f = {.n_script = 3,
			 .script = {{-EBUSY, true, 0, 429},
				    {-EIO, true, 0, 503},
				    {-ECONNRESET, true, 0, 0}}};
	struct kms *k = fake_kms(&f, 1, 2, 10000);
	static const enum kms_outcome want[] = {KMS_OUTCOME_RATE_LIMITED, KMS_OUTCOME_SERVER,
						KMS_OUTCOME_TRANSPORT,	  KMS_OUTCOME_OK,
						KMS_OUTCOME_CLIENT,	  KMS_OUTCOME_ERROR};
	struct reports rp = {0};
	struct kms_key_info info;
	struct error e;

	(void)state;
	k->report = on_report;
	k->report_data = &rp;
	assert_int_equal(unwrap(k, &f, &e), 0);
	f = (struct fake){.n_script = 2,
			  .script = {{-EACCES, false, -1, 403}, {-EPROTO, false, -1, 0}}};
	assert_int_equal(kms_key_info(k, "key", &info, &e), -EACCES);
	assert_int_equal(kms_probe(k, "key", &e), 0); /* the fake has no probe: no call made */
	assert_int_equal(unwrap(k, &f, &e), -EPROTO);
	assert_int_equal(rp.n, 7);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rp.action[i], KMS_ACTION_UNWRAP);
	assert_int_equal(rp.action[4], KMS_ACTION_KEY_INFO);
	assert_int_equal(rp.action[5], KMS_ACTION_PROBE);
	assert_int_equal(rp.outcome[5], KMS_OUTCOME_OK);
	assert_int_equal(rp.action[6], KMS_ACTION_UNWRAP);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rp.outcome[i], want[i]);
	assert_int_equal(rp.outcome[6], want[5]);
	assert_string_equal(kms_outcome_names[KMS_OUTCOME_RATE_LIMITED], "429");
	assert_string_equal(kms_action_names[KMS_ACTION_KEY_INFO], "key_info");
}

/* kms_fail keeps the reply's Retry-After only with a retryable failure. */
static void test_kms_fail(void **state)
{
	struct error e = {.retry_after_s = 7};

	(void)state;
	assert_int_equal(kms_fail(&e, -EBUSY, true, "busy %d", 1), -EBUSY);
	assert_true(e.retryable);
	assert_int_equal(e.retry_after_s, 7);
	assert_string_equal(e.msg, "busy 1");
	e.retry_after_s = 7;
	assert_int_equal(kms_fail(&e, -EPERM, false, "no"), -EPERM);
	assert_false(e.retryable);
	assert_int_equal(e.retry_after_s, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_retryable_is_final),
		cmocka_unit_test(test_exponential_backoff_with_equal_jitter),
		cmocka_unit_test(test_retry_after_wins),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_stop_flag),
		cmocka_unit_test(test_open_is_retried_then_kept),
		cmocka_unit_test(test_key_info_makes_one_attempt),
		cmocka_unit_test(test_event_ack_is_retried),
		cmocka_unit_test(test_kms_fail),
		cmocka_unit_test(test_each_attempt_is_reported),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
