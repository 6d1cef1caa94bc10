// SPDX-License-Identifier: GPL-2.0-or-later
/* The lifecycle thread: applies events to volumes (rewrap, on_revoke, restore) once the KMS of
 * the root key confirms them, reconciles each root key with its KMS by polling, enforces
 * max_key_cache_age, acknowledges events. Works under each volume's op_lock and changes its
 * state only through the registry, never across a KMS, hook or dm call. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cryptsetup_util.h"
#include "erase.h"
#include "jitter.h"
#include "lifecycle.h"
#include "log.h"
#include "messages.h"
#include "rotate.h"
#include "safepath.h"
#include "token.h"
#include "unlock.h"
#include "util.h"

#define LIFECYCLE_QUEUE_MAX 256
#define HOOK_TIMEOUT_US	    (120 * 1000000ULL)
#define AGE_CHECK_MAX_US    (60 * 1000000ULL)
#define SCHEDULE_CHECK_US   (60 * 1000000ULL)
/* One rotation seen by polling or an event rewraps every volume of the key: up to this many at
 * once, since each waits on the KMS and on its header's flush, not on the CPU. */
#define REWRAP_THREADS_MAX 8

extern char **environ;

struct job {
	enum lifecycle_job_kind kind;
	uint64_t ticket; /* its place in the queue's history, for lifecycle_finished */
	struct key_event ev;
	char volume[VOLUME_NAME_MAX + 1];
};

/* What polling last saw of one root key. */
struct key_watch {
	struct kms *kms;
	char key_id[KMS_KEY_ID_MAX + 1];
	enum kms_key_state state;
	bool unsupported; /* the provider cannot report key state */
};

struct lifecycle {
	struct lifecycle_env env;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job queue[LIFECYCLE_QUEUE_MAX];
	size_t head, n;
	uint64_t submitted,
		finished; /* tickets: jobs run in order, so finished covers all before */
	bool stop;
	struct key_watch *watch;
	size_t n_watch;
	uint64_t next_poll_us;
	uint64_t next_schedule_us;
};

/* Runs each hook (argv, no shell) to completion, killing one that outlives HOOK_TIMEOUT_US. */
static void run_hooks(const struct volume *v, const struct hook *hooks, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t deadline = now_mono_us() + HOOK_TIMEOUT_US;
		char why[SAFEPATH_WHY_MAX];
		int status = 0, r;
		pid_t pid;

		/* keyd runs it as root: a program someone else could change would be theirs. */
		r = safepath_check_program(hooks[i].argv[0], why, sizeof(why));
		if (r < 0) {
			log_error("%s: %s hook %s refused: %s", v->name, what, hooks[i].argv[0],
				  why);
			continue;
		}
		r = -posix_spawn(&pid, hooks[i].argv[0], NULL, NULL, hooks[i].argv, environ);
		if (r < 0) {
			log_error_errno(r, "%s: %s hook %s: cannot start: %m", v->name, what,
					hooks[i].argv[0]);
			continue;
		}
		while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_mono_us() < deadline)
			sleep_us(50000, NULL);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			log_error("%s: %s hook %s: killed after %llu s", v->name, what,
				  hooks[i].argv[0], HOOK_TIMEOUT_US / 1000000);
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			log_error("%s: %s hook %s failed (status %d)", v->name, what,
				  hooks[i].argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		} else {
			log_info("%s: %s hook %s done", v->name, what, hooks[i].argv[0]);
		}
	}
}

/* erase_on_delete: the KMS confirmed every root key destroyed, so the volume has no way back;
 * its keyd keyslot and token go too (keyd/volume/erase.c), recorded and logged here. */
static void erase_keyslot(struct lifecycle *l, struct volume *v)
{
	struct erase_result er;
	struct error err;
	char dev[VOLUME_DEVICE_MAX];
	int r;

	if (!registry_device(l->env.reg, v, dev, sizeof(dev))) {
		log_error("%s: erase_on_delete: no device to erase", v->name);
		return;
	}
	r = volume_erase(dev, &er, &err);
	registry_audit(l->env.reg, "volume.erase", r < 0 ? "failure" : "success", NULL, v, NULL,
		       r < 0 ? err.msg : NULL);
	if (r < 0)
		log_error("%s: erase_on_delete: %s", v->name, err.msg);
	else
		log_notice("%s: erase_on_delete: keyslot %d and token %d destroyed", v->name,
			   er.keyslot, er.token);
}

/* What on_revoke does to a volume in state @s: the state it leaves it in, and @msg says so. */
static enum volume_state revoke_step(struct lifecycle *l, struct volume *v, enum volume_state s,
				     enum on_revoke policy, const char *why, char *msg, size_t size)
{
	struct error err = {.msg = ""};
	int r;

	if (policy == ON_REVOKE_AUDIT_ONLY) {
		snprintf(msg, size, "%s; on_revoke=audit-only: left %s", why,
			 volume_state_names[s]);
		return s;
	}
	if (s == VOLUME_SUSPENDED) {
		snprintf(msg, size, "%s: stays suspended", why);
		return s;
	}
	if (s != VOLUME_OPEN) {
		snprintf(msg, size,
			 "%s: not mapped; will not be unlocked until the key is "
			 "back (on_revoke=%s)",
			 why, on_revoke_names[policy]);
		return VOLUME_REVOKED;
	}
	if (policy == ON_REVOKE_CLOSE && v->cfg)
		run_hooks(v, v->cfg->stop_hooks, v->cfg->n_stop_hooks, "stop");
	r = policy == ON_REVOKE_CLOSE ? registry_close_mapping(l->env.reg, v, &err) : -EBUSY;
	if (r >= 0) {
		snprintf(msg, size, "%s: closed (on_revoke=close)", why);
		return VOLUME_REVOKED;
	}
	r = luks_suspend(v->name);
	if (r >= 0) {
		snprintf(msg, size, "%s: suspended (on_revoke=%s%s)", why, on_revoke_names[policy],
			 policy == ON_REVOKE_CLOSE ? "; still in use, so suspended" : "");
		return VOLUME_SUSPENDED;
	}
	snprintf(msg, size, "%s: could not close nor suspend: %s", why, strerror(-r));
	return s;
}

/* An action on @v: its op_lock, and its fields on every line this thread logs meanwhile (the
 * journal's VOLUME=, DEVICE=, KMS=, KEY_ID=, KEY_VERSION=). */
static void volume_begin(struct lifecycle *l, struct volume *v)
{
	pthread_mutex_lock(&v->op_lock);
	registry_log_context(l->env.reg, v);
}

static void volume_end(struct volume *v)
{
	registry_log_context_end();
	pthread_mutex_unlock(&v->op_lock);
}

/* on_revoke: what disabled or deleted root keys, or KMS silent for too long, do. @shred: the
 * KMS say every root key is destroyed (erase_on_delete then erases the keyslot). */
static void act_revoke(struct lifecycle *l, struct volume *v, const char *why, bool shred,
		       enum revoke_cause cause)
{
	struct registry *reg = l->env.reg;
	enum on_revoke policy = v->cfg ? v->cfg->on_revoke : ON_REVOKE_CLOSE;
	enum volume_state s, next;
	char msg[ERROR_MAX];

	volume_begin(l, v);
	s = registry_state(reg, v);
	if (s == VOLUME_RELEASED) {
		volume_end(v);
		return;
	}
	next = revoke_step(l, v, s, policy, why, msg, sizeof(msg));
	registry_set_revoked(reg, v, s == VOLUME_OPEN, cause, shred);
	log_struct(LOG_WARNING, 0, MESSAGE_REVOKED, NULL, "%s: %s", v->name, msg);
	registry_set_state(reg, v, next, msg);
	{
		json_auto_t *what = json_pack("{s:s, s:s}", "action", msg, "on_revoke",
					      on_revoke_names[policy]);

		registry_audit(reg, shred ? "volume.shred" : "volume.revoke", "success", NULL, v,
			       what, NULL);
	}
	if (shred && v->cfg && v->cfg->erase_on_delete)
		erase_keyslot(l, v);
	volume_end(v);
}

/* The key is back: unwrap again, resume a suspended mapping or open a closed one. */
static void act_restore(struct lifecycle *l, struct volume *v, const char *why)
{
	struct registry *reg = l->env.reg;
	struct volume_status st;
	struct unlock_result res;
	struct error err;
	int r, k;

	volume_begin(l, v);
	registry_status(reg, v, &st);
	/* Left open while revoked (audit-only, or it could be neither closed nor suspended): the
	 * revocation ends, once; polling must not find it revoked at every tick. */
	if (st.state == VOLUME_OPEN && st.revoked) {
		json_auto_t *reason = json_pack("{s:s}", "reason", why);

		registry_set_restored(reg, v);
		registry_audit(reg, "volume.restore", "success", NULL, v, reason, NULL);
		log_struct(LOG_INFO, 0, MESSAGE_RESTORED, NULL,
			   "%s: %s: the mapping had stayed open", v->name, why);
	}
	/* Already back (polling and an event may both say so): nothing to do, nothing to record. */
	if (st.state == VOLUME_OPEN || (st.state == VOLUME_VERIFIED && !st.revoked) ||
	    st.state == VOLUME_RELEASED || !st.device[0]) {
		volume_end(v);
		return;
	}
	r = volume_unlock(&(struct unlock_request){.device = st.device,
						   .keys = v->keys,
						   .n_keys = v->n_keys,
						   .name = l->env.dm ? v->name : NULL,
						   .converge = true,
						   .resume = st.state == VOLUME_SUSPENDED,
						   .stop = l->env.stop},
			  &res, &err);
	registry_log_changes(st.device, &res.converged);
	/* As at boot: a ciphertext rewrapped while the key was away is kept, not dropped. */
	if (r >= 0)
		registry_keep_rewrapped(reg, v, st.device, &res);
	kms_wrapped_done(&res.rewrapped);
	{
		json_auto_t *reason = json_pack("{s:s}", "reason", why);

		registry_audit(reg, "volume.restore", r < 0 ? "failure" : "success", NULL, v,
			       reason, r < 0 ? err.msg : NULL);
	}
	if (r < 0) {
		log_error("%s: %s, but unlocking failed: %s", v->name, why, err.msg);
		registry_set_state(reg, v, st.state, err.msg);
		volume_end(v);
		return;
	}
	/* The KMS that unwrapped has proven its root key usable, whatever was heard before. */
	k = registry_key_index(v, res.kms);
	if (k >= 0)
		registry_set_key_revoked(reg, v, (size_t)k, false, false, NULL);
	registry_set_restored(reg, v);
	log_struct(LOG_INFO, 0, MESSAGE_RESTORED, NULL, "%s: %s: %s", v->name, why,
		   st.state == VOLUME_SUSPENDED ? "resumed"
		   : l->env.dm			? "reopened"
						: "key verified again");
	registry_set_state(reg, v, l->env.dm ? VOLUME_OPEN : VOLUME_VERIFIED, NULL);
	if (st.was_open && l->env.dm && v->cfg)
		run_hooks(v, v->cfg->start_hooks, v->cfg->n_start_hooks, "start");
	volume_end(v);
}

/* Rewraps the token's WDEK of root key @k: the other KMS's wraps are not touched. */
static void act_rewrap(struct lifecycle *l, struct volume *v, size_t k, const char *why)
{
	struct rotate_result rr;
	struct error err;
	char dev[VOLUME_DEVICE_MAX];

	volume_begin(l, v);
	if (registry_device(l->env.reg, v, dev, sizeof(dev)) &&
	    registry_rewrap(l->env.reg, v, v->keys[k].kms, dev, NULL, why, &rr, &err) < 0)
		log_error("%s: %s, but rewrap failed: %s", v->name, why, err.msg);
	volume_end(v);
}

/* The volumes one rotation rewraps, for rewrap_all. */
struct rewrap_batch {
	struct lifecycle *l;
	const char *why;
	struct rewrap_item {
		struct volume *v;
		size_t k;
	} * items;
	size_t n, next;
	pthread_mutex_t lock;
};

static bool rewrap_batch_add(struct rewrap_batch *b, struct volume *v, size_t k)
{
	struct rewrap_item *items = realloc(b->items, (b->n + 1) * sizeof(*items));

	if (!items)
		return false;
	b->items = items;
	b->items[b->n++] = (struct rewrap_item){.v = v, .k = k};
	return true;
}

static void *rewrap_thread(void *u)
{
	struct rewrap_batch *b = u;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&b->lock);
		i = *b->l->env.stop ? b->n : b->next++;
		pthread_mutex_unlock(&b->lock);
		if (i >= b->n)
			return NULL;
		act_rewrap(b->l, b->items[i].v, b->items[i].k, b->why);
	}
}

/* Rewraps every volume of @b, up to REWRAP_THREADS_MAX at once (each volume under its own
 * op_lock, as act_rewrap alone), this thread among them; returns when all are done. A thread
 * that cannot be started leaves its share to the others. */
static void rewrap_all(struct rewrap_batch *b)
{
	pthread_t threads[REWRAP_THREADS_MAX - 1];
	size_t want = b->n < REWRAP_THREADS_MAX ? b->n : REWRAP_THREADS_MAX, started = 0;

	if (!b->n)
		return;
	pthread_mutex_init(&b->lock, NULL);
	for (; want > 1 && started < want - 1; started++)
		if (pthread_create(&threads[started], NULL, rewrap_thread, b) != 0)
			break;
	rewrap_thread(b);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&b->lock);
	free(b->items);
	b->items = NULL;
	b->n = b->next = 0;
}

static void act_rekey(struct lifecycle *l, struct volume *v, const char *why)
{
	struct registry *reg = l->env.reg;
	struct rotate_result rr;
	struct error err;
	char dev[VOLUME_DEVICE_MAX];
	int r;

	volume_begin(l, v);
	if (!registry_device(reg, v, dev, sizeof(dev))) {
		volume_end(v);
		return;
	}
	r = volume_rekey(dev, v->keys, v->n_keys, l->env.stop, &rr, &err);
	registry_log_changes(dev, &rr.changes);
	if (r < 0) {
		log_error("%s: %s, but re-key failed: %s", v->name, why, err.msg);
		registry_audit(reg, "volume.rekey", "failure", NULL, v, NULL, err.msg);
	} else {
		json_auto_t *what = json_pack("{s:i, s:i, s:s}", "old_keyslot", rr.old_keyslot,
					      "new_keyslot", rr.new_keyslot, "reason", why);

		log_struct(LOG_INFO, 0, MESSAGE_REKEYED,
			   (const char *const[]){"KEY_VERSION",
						 rr.new_version[0] ? rr.new_version : NULL, NULL},
			   "%s: %s: re-keyed (keyslot %d -> %d)", v->name, why, rr.old_keyslot,
			   rr.new_keyslot);
		registry_set_key(reg, v, rr.new_keyslot, rr.new_version);
		registry_audit(reg, "volume.rekey", "success", NULL, v, what, NULL);
	}
	volume_end(v);
}

/* rekey_every_days: the active token's last re-key (or enrollment) decides. */
static void check_rekey_schedule(struct lifecycle *l)
{
	struct registry *reg = l->env.reg;

	for (size_t i = 0; i < reg->n && !*l->env.stop; i++) {
		struct volume *v = &reg->volumes[i];
		_cleanup_crypt_ struct crypt_device *cd = NULL;
		struct keyd_token tok;
		struct error je;
		uint64_t since = 0, every;
		char dev[VOLUME_DEVICE_MAX];

		if (!v->cfg || !v->cfg->rekey_every_days)
			continue;
		if (!registry_device(reg, v, dev, sizeof(dev)) || cryptsetup_load(dev, &cd) < 0 ||
		    token_find(cd, &tok, &je) <= 0)
			continue;
		if (tok.id >= 0 &&
		    parse_rfc3339_us(tok.updated ? tok.updated : tok.created, &since) < 0)
			since = 0;
		token_done(&tok);
		every = v->cfg->rekey_every_days * 86400 * 1000000ULL;
		if (since && now_real_us() - since >= every)
			act_rekey(l, v, "scheduled re-key (rekey_every_days)");
	}
}

/* The key states in which a root key cannot be used; an expired key still unwraps. */
static bool state_revoked(enum kms_key_state s)
{
	return s == KMS_KEY_SUSPENDED || s == KMS_KEY_DEACTIVATED || s == KMS_KEY_DESTROYED ||
	       s == KMS_KEY_PRE_ACTIVE || s == KMS_KEY_MISSING;
}

/* What the KMS itself says of a key an event names. */
enum key_verdict {
	VERDICT_USABLE,	   /* active (or expired): a disable or delete is not acted on */
	VERDICT_REVOKED,   /* disabled: counts as revoked, nothing irreversible */
	VERDICT_DESTROYED, /* deleted: counts as destroyed (shredding once all are) */
	VERDICT_UNKNOWN, /* the KMS could not be asked: reversible steps only, polling reconciles */
};

static enum key_verdict key_verdict(struct kms *kms, const char *key_id, char *note, size_t size)
{
	struct kms_key_info info;
	struct error e;

	if (kms_key_info(kms, key_id, &info, &e) < 0) {
		snprintf(note, size, "KMS '%s' could not confirm it: %s", kms->name, e.msg);
		return VERDICT_UNKNOWN;
	}
	snprintf(note, size, "KMS '%s' reports the key %s", kms->name,
		 kms_key_state_names[info.state]);
	if (info.state == KMS_KEY_DESTROYED)
		return VERDICT_DESTROYED;
	return state_revoked(info.state) ? VERDICT_REVOKED : VERDICT_USABLE;
}

/* The index of the volume's root key the event is about, or -1. */
static int volume_key_matching(struct lifecycle *l, struct volume *v, const struct key_event *ev)
{
	char key[KMS_KEY_ID_MAX + 1];

	for (size_t k = 0; k < v->n_keys; k++)
		if ((!ev->kms[0] || strcmp(ev->kms, v->keys[k].kms->name) == 0) &&
		    strcmp(registry_key_id_of(l->env.reg, v, k, key, sizeof(key)), ev->key_id) == 0)
			return (int)k;
	return -1;
}

static const char *const origin_names[] = {
	[KEY_EVENT_FROM_POLL] = "polling",
	[KEY_EVENT_FROM_CALLBACK] = "callback",
	[KEY_EVENT_FROM_CONTROL] = "keydctl",
};

/* Key Protect's rule for adopters: acknowledge after acting; tried again per the retry
 * policy, as every KMS call is. */
static void acknowledge(struct lifecycle *l, struct kms *kms, const struct key_event *ev)
{
	static const enum kms_key_state held[] = {
		[KEY_EVENT_ROTATE] = KMS_KEY_ACTIVE,  [KEY_EVENT_DISABLE] = KMS_KEY_SUSPENDED,
		[KEY_EVENT_ENABLE] = KMS_KEY_ACTIVE,  [KEY_EVENT_DELETE] = KMS_KEY_DESTROYED,
		[KEY_EVENT_RESTORE] = KMS_KEY_ACTIVE,
	};
	struct error e = {.retry_after_s = -1};
	int r = kms_event_ack(kms, ev->key_id, ev->id, held[ev->type], &e, l->env.stop);

	if (r < 0)
		log_warning("event %s: acknowledgement to KMS '%s' failed: %s", ev->id, kms->name,
			    e.msg);
	else
		log_info("event %s: acknowledged to KMS '%s'", ev->id, kms->name);
}

/* "KMS 'b' (key K)" for every root key of @v still usable, into @buf. */
static void usable_keys(struct lifecycle *l, struct volume *v, char *buf, size_t size)
{
	struct volume_status st;
	char key[KMS_KEY_ID_MAX + 1];
	size_t n = 0;

	buf[0] = 0;
	registry_status(l->env.reg, v, &st);
	for (size_t k = 0; k < v->n_keys; k++)
		if (!st.keys[k].revoked)
			snprintf(buf + strlen(buf), size - strlen(buf), "%sKMS '%s' (key %s)",
				 n++ ? ", " : "", v->keys[k].kms->name,
				 registry_key_id_of(l->env.reg, v, k, key, sizeof(key)));
}

/* Root key @k was disabled or deleted. Any-of: while another of the volume's root keys is
 * usable nothing is closed or rewrapped, and the operator is told what the volume depends on
 * now; only the last one applies on_revoke, and shredding needs every one destroyed. What is
 * already so (polling and an event both said it) is neither done nor recorded again. */
static void act_key_revoked(struct lifecycle *l, struct volume *v, size_t k, const char *why,
			    bool destroyed)
{
	struct registry *reg = l->env.reg;
	struct volume_status st;
	size_t usable, n_destroyed;
	bool known;
	char left[KMS_KEYS_MAX * (KMS_NAME_MAX + KMS_KEY_ID_MAX + 16)], msg[ERROR_MAX];

	registry_status(reg, v, &st);
	known = st.keys[k].revoked && (st.keys[k].destroyed || !destroyed);
	usable = registry_set_key_revoked(reg, v, k, true, destroyed, &n_destroyed);
	if (usable == 0) {
		bool shred = n_destroyed == v->n_keys;

		if (st.revoked && (st.shredded || !shred)) {
			log_info("%s: %s: already revoked", v->name, why);
			return;
		}
		act_revoke(l, v, why, shred, REVOKE_BY_KEY);
		return;
	}
	if (known) {
		log_info("%s: %s: already known", v->name, why);
		return;
	}
	usable_keys(l, v, left, sizeof(left));
	snprintf(msg, sizeof(msg), "%s: nothing closed or rewrapped; the volume now depends on %s",
		 why, left);
	log_warning("%s: %s", v->name, msg);
	{
		json_auto_t *what =
			json_pack("{s:s, s:s, s:b, s:s}", "revoked_kms", v->keys[k].kms->name,
				  "action", msg, "destroyed", destroyed, "depends_on", left);

		registry_audit(reg, "volume.key_revoked", "success", NULL, v, what, NULL);
	}
}

/* An event is a hint, whoever signed it: the KMS of the root key it names is asked before
 * keyd acts. A disable or delete is done only as far as the KMS confirms it; one the KMS
 * cannot be asked about gets the reversible step (the key counted revoked, never destroyed),
 * and polling reconciles. An enable or restore unwraps, which only a usable key does; the key
 * is counted usable again once its KMS says so. Returns whether anything was done (an event
 * refused is not acknowledged). */
static bool act_on_event(struct lifecycle *l, struct volume *v, size_t k,
			 const struct key_event *ev, const char *why)
{
	bool revoke = ev->type == KEY_EVENT_DISABLE || ev->type == KEY_EVENT_DELETE;
	enum key_verdict verdict;
	char note[ERROR_MAX + 128], what[ERROR_MAX + 1024];

	verdict = key_verdict(v->keys[k].kms, ev->key_id, note, sizeof(note));
	if (!revoke) {
		if (verdict == VERDICT_USABLE)
			registry_set_key_revoked(l->env.reg, v, k, false, false, NULL);
		act_restore(l, v, why);
		return true;
	}
	snprintf(what, sizeof(what), "%s; %s", why, note);
	if (verdict == VERDICT_USABLE) {
		json_auto_t *reason = json_pack("{s:s}", "reason", why);

		log_warning("%s: %s: not acted on", v->name, what);
		registry_audit(l->env.reg,
			       ev->type == KEY_EVENT_DELETE ? "volume.shred" : "volume.revoke",
			       "refused", NULL, v, reason, note);
		return false;
	}
	act_key_revoked(l, v, k, what, verdict == VERDICT_DESTROYED);
	return true;
}

static void run_event(struct lifecycle *l, const struct key_event *ev)
{
	struct registry *reg = l->env.reg;
	struct kms *acked_by = NULL;
	char why[512];
	struct rewrap_batch rewraps = {.l = l, .why = why};

	snprintf(why, sizeof(why), "root key %s: %s (%s%s%s)", ev->key_id,
		 key_event_type_names[ev->type], origin_names[ev->origin],
		 ev->id[0] ? ", event " : "", ev->id);
	for (size_t i = 0; i < reg->n; i++) {
		struct volume *v = &reg->volumes[i];
		int k = volume_key_matching(l, v, ev);

		if (k < 0)
			continue;
		switch (ev->type) {
		case KEY_EVENT_ROTATE:
			if (!rewrap_batch_add(&rewraps, v, (size_t)k))
				act_rewrap(l, v, (size_t)k, why);
			break;
		case KEY_EVENT_DISABLE:
		case KEY_EVENT_DELETE:
		case KEY_EVENT_ENABLE:
		case KEY_EVENT_RESTORE:
			if (!act_on_event(l, v, (size_t)k, ev, why))
				continue; /* nothing done, nothing to acknowledge */
			break;
		case _KEY_EVENT_TYPE_MAX:
			break;
		}
		acked_by = v->keys[k].kms;
	}
	rewrap_all(&rewraps);
	if (acked_by && ev->id[0] && acked_by->provider->event_ack)
		acknowledge(l, acked_by, ev);
}

static void run_job(struct lifecycle *l, const struct job *j)
{
	struct volume *v = j->kind == LIFECYCLE_EVENT ? NULL : registry_find(l->env.reg, j->volume);

	switch (j->kind) {
	case LIFECYCLE_EVENT:
		run_event(l, &j->ev);
		break;
	case LIFECYCLE_SUSPEND:
		if (v)
			act_revoke(l, v, "suspended by keydctl", false, REVOKE_BY_OPERATOR);
		break;
	case LIFECYCLE_RESUME:
		if (v)
			act_restore(l, v, "resumed by keydctl");
		break;
	}
}

static struct key_watch *watch_for(struct lifecycle *l, struct kms *kms, const char *key_id)
{
	for (size_t i = 0; i < l->n_watch; i++)
		if (l->watch[i].kms == kms && strcmp(l->watch[i].key_id, key_id) == 0)
			return &l->watch[i];
	return NULL;
}

/* The keys in use now, each once, keeping what was seen of those already watched; a key no
 * volume uses any more (re-keyed to another) is no longer polled. */
static void watch_keys_in_use(struct lifecycle *l)
{
	struct registry *reg = l->env.reg;
	struct key_watch *now = calloc(reg->n * KMS_KEYS_MAX + 1, sizeof(*now));
	char key[KMS_KEY_ID_MAX + 1];
	size_t n = 0;

	if (!now)
		return;
	for (size_t i = 0; i < reg->n; i++) {
		struct volume *v = &reg->volumes[i];

		for (size_t k = 0; k < v->n_keys; k++) {
			struct kms *kms = v->keys[k].kms;
			const struct key_watch *seen;
			bool dup = false;

			if (!registry_key_id_of(reg, v, k, key, sizeof(key))[0])
				continue;
			for (size_t j = 0; j < n; j++)
				dup |= now[j].kms == kms && strcmp(now[j].key_id, key) == 0;
			if (dup)
				continue;
			seen = watch_for(l, kms, key);
			now[n] = seen ? *seen
				      : (struct key_watch){.kms = kms, .state = KMS_KEY_UNKNOWN};
			snprintf(now[n].key_id, sizeof(now[n].key_id), "%s", key);
			n++;
		}
	}
	free(l->watch);
	l->watch = now;
	l->n_watch = n;
}

/* The reason polling gives for what it does to a volume of key @w. */
static void poll_reason(const struct key_watch *w, const struct kms_key_info *info,
			const char *what, char *buf, size_t size)
{
	snprintf(buf, size, "root key %s: %s (polling): KMS '%s' reports it %s", w->key_id, what,
		 w->kms->name, kms_key_state_names[info->state]);
}

/* Whether any of @v's root keys but @k is usable, as far as keyd knows. */
static bool other_key_usable(const struct volume *v, const struct volume_status *st, size_t k)
{
	for (size_t i = 0; i < v->n_keys; i++)
		if (i != k && !st->keys[i].revoked)
			return true;
	return false;
}

/* Root key @k of @v cannot be used, polling says: counted revoked (or destroyed) unless it is
 * already, and the volume revoked if no other key is usable and it is not yet (one a manual
 * unlock brought back included). */
static void reconcile_revoked(struct lifecycle *l, const struct key_watch *w, struct volume *v,
			      size_t k, const struct kms_key_info *info)
{
	bool destroyed = info->state == KMS_KEY_DESTROYED;
	struct volume_status st;
	char why[512];

	registry_status(l->env.reg, v, &st);
	if (st.keys[k].revoked && (st.keys[k].destroyed || !destroyed) &&
	    (st.revoked || other_key_usable(v, &st, k)))
		return;
	poll_reason(w, info,
		    destroyed			     ? "delete"
		    : info->state == KMS_KEY_MISSING ? "gone"
						     : "disable",
		    why, sizeof(why));
	act_key_revoked(l, v, k, why, destroyed);
}

/* Root key @k of @v is usable (active, or expired, which still unwraps): counted usable again,
 * a volume the key or the KMS's silence revoked brought back (keydctl suspend stays until
 * keydctl resume; keyslots erase_on_delete erased do not come back), and with an active key a
 * token behind its newest version added to @rewraps. */
static void reconcile_usable(struct lifecycle *l, const struct key_watch *w, struct volume *v,
			     size_t k, const struct kms_key_info *info,
			     struct rewrap_batch *rewraps)
{
	struct registry *reg = l->env.reg;
	struct volume_status st;
	uint64_t rotated = 0;
	char why[512];

	registry_status(reg, v, &st);
	if (st.keys[k].revoked)
		registry_set_key_revoked(reg, v, k, false, false, NULL);
	if (st.revoked && st.revoked_by != REVOKE_BY_OPERATOR &&
	    !(st.shredded && v->cfg && v->cfg->erase_on_delete)) {
		if (st.revoked_by == REVOKE_BY_AGE)
			snprintf(why, sizeof(why), "KMS '%s' reachable again", w->kms->name);
		else
			poll_reason(w, info, st.keys[k].destroyed ? "restore" : "enable", why,
				    sizeof(why));
		act_restore(l, v, why);
		registry_status(reg, v, &st);
	}
	if (info->state != KMS_KEY_ACTIVE)
		return;
	if (info->last_rotated[0] && parse_rfc3339_us(info->last_rotated, &rotated) < 0)
		rotated = 0;
	registry_set_key_rotated(reg, v, rotated);
	if (info->version[0] && st.keys[k].key_version[0] &&
	    strcmp(info->version, st.keys[k].key_version) != 0 && !rewrap_batch_add(rewraps, v, k))
		act_rewrap(l, v, k, rewraps->why);
}

/* What polling learnt of key @w decides each volume that uses it: the KMS is the truth, an
 * event only a hint. A locked or released volume is the operator's. */
static void reconcile_key(struct lifecycle *l, const struct key_watch *w,
			  const struct kms_key_info *info)
{
	struct registry *reg = l->env.reg;
	char key[KMS_KEY_ID_MAX + 1];
	struct rewrap_batch rewraps = {.l = l, .why = "root key rotated (polling)"};

	for (size_t j = 0; j < reg->n && !*l->env.stop; j++) {
		struct volume *v = &reg->volumes[j];
		int k = registry_key_index(v, w->kms->name);
		enum volume_state s;

		if (k < 0 ||
		    strcmp(registry_key_id_of(reg, v, (size_t)k, key, sizeof(key)), w->key_id) != 0)
			continue;
		s = registry_state(reg, v);
		if (s == VOLUME_RELEASED || s == VOLUME_LOCKED)
			continue;
		if (state_revoked(info->state))
			reconcile_revoked(l, w, v, (size_t)k, info);
		else
			reconcile_usable(l, w, v, (size_t)k, info, &rewraps);
	}
	rewrap_all(&rewraps);
}

/* Asks the KMS about every root key in use and brings its volumes in line with the answer. */
static void poll_keys(struct lifecycle *l)
{
	watch_keys_in_use(l);
	for (size_t i = 0; i < l->n_watch && !*l->env.stop; i++) {
		struct key_watch *w = &l->watch[i];
		struct kms_key_info info;
		struct error e;
		int r;

		if (w->unsupported)
			continue;
		r = kms_key_info(w->kms, w->key_id, &info, &e);
		if (r == -EOPNOTSUPP) {
			w->unsupported = true;
			continue;
		}
		if (r < 0) {
			log_warning("polling key %s at KMS '%s': %s", w->key_id, w->kms->name,
				    e.msg);
			continue;
		}
		if (info.state == KMS_KEY_EXPIRED && w->state != KMS_KEY_EXPIRED)
			log_warning("root key %s at KMS '%s' expired: it still unwraps, so its "
				    "volumes stay open, but it wraps nothing; re-key them to "
				    "another key (keydctl rotate --rekey --key-id)",
				    w->key_id, w->kms->name);
		w->state = info.state;
		reconcile_key(l, w, &info);
	}
}

/* The time since any of the volume's KMS last answered (any-of: the freshest contact counts);
 * UINT64_MAX if none ever did. */
static uint64_t volume_silence_us(const struct volume *v)
{
	uint64_t least = UINT64_MAX;

	for (size_t k = 0; k < v->n_keys; k++) {
		uint64_t s = kms_silence_us(v->keys[k].kms);

		least = s < least ? s : least;
	}
	return least;
}

/* Key Protect's rule for adopters: a key may be used at most max_key_cache_age after the
 * last successful contact with the KMS (with several, with any of them). */
static void check_cache_age(struct lifecycle *l)
{
	struct registry *reg = l->env.reg;
	uint64_t max_us = l->env.cfg->max_key_cache_age_s * 1000000;

	for (size_t i = 0; i < reg->n; i++) {
		struct volume *v = &reg->volumes[i];
		uint64_t silent = volume_silence_us(v);
		enum volume_state s = registry_state(reg, v);
		char why[256], names[KMS_KEYS_MAX * (KMS_NAME_MAX + 4)] = "";

		if ((s != VOLUME_OPEN && s != VOLUME_VERIFIED) || silent <= max_us ||
		    silent == UINT64_MAX)
			continue;
		for (size_t k = 0; k < v->n_keys; k++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s'%s'",
				 k ? (k + 1 == v->n_keys ? " and " : ", ") : "",
				 v->keys[k].kms->name);
		snprintf(why, sizeof(why),
			 "%s %s unreachable for %llu s (max_key_cache_age_s %llu)",
			 v->n_keys > 1 ? "every KMS of the volume," : "KMS", names,
			 (unsigned long long)(silent / 1000000),
			 (unsigned long long)l->env.cfg->max_key_cache_age_s);
		act_revoke(l, v, why, false, REVOKE_BY_AGE);
	}
}

/* Each poll is its own draw, so daemons that booted together drift apart instead of
 * polling the KMS in lockstep for ever (docs/fleet.md). */
static uint64_t poll_delay_us(const struct keyd_config *cfg)
{
	return jitter_spread(cfg->poll_interval_s * 1000000, (unsigned)cfg->poll_jitter_pct);
}

static uint64_t next_wakeup(struct lifecycle *l)
{
	const struct keyd_config *cfg = l->env.cfg;
	uint64_t age = cfg->max_key_cache_age_s * 1000000 / 4;
	uint64_t t = now_mono_us() + (age < AGE_CHECK_MAX_US ? age : AGE_CHECK_MAX_US);

	if (cfg->poll_interval_s && l->next_poll_us < t)
		t = l->next_poll_us;
	if (l->next_schedule_us < t)
		t = l->next_schedule_us;
	return t;
}

/* The next job, waiting for one until the next timed check is due; false once stopped. */
static bool next_job(struct lifecycle *l, struct job *j, bool *have)
{
	*have = false;
	pthread_mutex_lock(&l->lock);
	while (!l->stop && l->n == 0) {
		uint64_t until = next_wakeup(l), now = now_mono_us();
		struct timespec ts;

		if (now >= until)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((until - now) / 1000000);
		ts.tv_nsec += (long)((until - now) % 1000000) * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&l->cond, &l->lock, &ts);
	}
	if (l->stop) {
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	if (l->n) {
		*j = l->queue[l->head];
		l->head = (l->head + 1) % LIFECYCLE_QUEUE_MAX;
		l->n--;
		*have = true;
	}
	pthread_mutex_unlock(&l->lock);
	return true;
}

static void *lifecycle_main(void *u)
{
	struct lifecycle *l = u;
	const struct keyd_config *cfg = l->env.cfg;
	struct job j;
	bool have;

	while (next_job(l, &j, &have)) {
		if (have) {
			run_job(l, &j);
			pthread_mutex_lock(&l->lock);
			l->finished = j.ticket;
			pthread_mutex_unlock(&l->lock);
			registry_wake(l->env.reg); /* a request may wait for this job */
		}
		if (cfg->poll_interval_s && now_mono_us() >= l->next_poll_us) {
			poll_keys(l);
			l->next_poll_us = now_mono_us() + poll_delay_us(cfg);
		}
		check_cache_age(l);
		if (now_mono_us() >= l->next_schedule_us) {
			check_rekey_schedule(l);
			l->next_schedule_us = now_mono_us() + SCHEDULE_CHECK_US;
		}
	}
	return NULL;
}

bool lifecycle_finished(struct lifecycle *l, uint64_t ticket)
{
	bool done;

	pthread_mutex_lock(&l->lock);
	done = l->finished >= ticket;
	pthread_mutex_unlock(&l->lock);
	return done;
}

int lifecycle_submit(struct lifecycle *l, enum lifecycle_job_kind kind, const struct key_event *ev,
		     const char *volume, char *msg, size_t msgsize, uint64_t *ret_ticket)
{
	struct registry *reg = l->env.reg;
	size_t matched = 0;
	struct job *j;

	if (kind == LIFECYCLE_EVENT) {
		for (size_t i = 0; i < reg->n; i++)
			matched += volume_key_matching(l, &reg->volumes[i], ev) >= 0;
		if (matched == 0)
			return snprintf(msg, msgsize, "no volume uses key %s%s%s", ev->key_id,
					ev->kms[0] ? " of KMS " : "", ev->kms),
			       -ENOENT;
	} else if (!registry_find(reg, volume)) {
		return snprintf(msg, msgsize, "no volume named '%s'", volume), -ENOENT;
	}
	pthread_mutex_lock(&l->lock);
	if (l->n == LIFECYCLE_QUEUE_MAX) {
		pthread_mutex_unlock(&l->lock);
		return snprintf(msg, msgsize, "too many lifecycle events queued"), -EBUSY;
	}
	j = &l->queue[(l->head + l->n++) % LIFECYCLE_QUEUE_MAX];
	*j = (struct job){.kind = kind, .ticket = ++l->submitted};
	if (ret_ticket)
		*ret_ticket = j->ticket;
	if (ev)
		j->ev = *ev;
	if (volume)
		snprintf(j->volume, sizeof(j->volume), "%s", volume);
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (kind == LIFECYCLE_EVENT)
		snprintf(msg, msgsize, "%s for %zu volume(s) queued",
			 key_event_type_names[ev->type], matched);
	else
		snprintf(msg, msgsize, "queued");
	return 0;
}

/* Says at start which hooks would be refused when their time comes (run_hooks checks again
 * then: a path can change), so the operator hears of it before a revocation needs them. */
static void hooks_check(const struct registry *reg)
{
	for (size_t i = 0; i < reg->n; i++) {
		const struct volume_config *c = reg->volumes[i].cfg;
		char why[SAFEPATH_WHY_MAX];

		for (size_t j = 0; c && j < c->n_stop_hooks + c->n_start_hooks; j++) {
			bool stop = j < c->n_stop_hooks;
			const struct hook *h =
				stop ? &c->stop_hooks[j] : &c->start_hooks[j - c->n_stop_hooks];

			if (safepath_check_program(h->argv[0], why, sizeof(why)) < 0)
				log_warning("%s: %s hook %s will not be run: %s", c->name,
					    stop ? "stop" : "start", h->argv[0], why);
		}
	}
}

int lifecycle_start(const struct lifecycle_env *env, struct lifecycle **ret)
{
	struct lifecycle *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int r;

	if (!l)
		return -ENOMEM;
	l->env = *env;
	hooks_check(env->reg);
	l->watch = calloc(env->reg->n + 1, sizeof(*l->watch));
	if (!l->watch) {
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->next_poll_us = now_mono_us() + poll_delay_us(env->cfg);
	/* The first look at the re-key schedule, once the first unlock pass has found devices. */
	l->next_schedule_us = now_mono_us() + 2 * 1000000;
	r = -pthread_create(&l->thread, NULL, lifecycle_main, l);
	if (r < 0) {
		lifecycle_stop(l);
		return r;
	}
	l->started = true;
	*ret = l;
	return 0;
}

void lifecycle_stop(struct lifecycle *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (l->started)
		pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l->watch);
	free(l);
}
