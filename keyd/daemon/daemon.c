// SPDX-License-Identifier: GPL-2.0-or-later
/* The daemon's wiring and main loop: builds the registry, audit log, workers' environment,
 * control API, lifecycle thread and event endpoint, hands each only what it needs, and runs the
 * libevent loop (signals, READY=1/STATUS=). Holds no volume state of its own. */
#include <limits.h>
#include <errno.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "audit_anchor.h"
#include "daemon.h"
#include "evlog.h"
#include "log.h"
#include "messages.h"
#include "notify.h"
#include "sign.h"
#include "util.h"

/* Volumes by state, for STATUS= and readiness. */
struct tally {
	size_t open, waiting, failed, verified, required, required_open;
	char why[ERROR_MAX + 72]; /* what the first waiting volume waits for, for STATUS= */
};

/* Counts the volumes, joins the workers that ended and answers the requests that waited for
 * them. Registry lock held. */
static void tally_and_reap(struct keyd *k, struct tally *t)
{
	for (size_t i = 0; i < k->reg.n; i++) {
		struct volume *v = &k->reg.volumes[i];
		enum volume_state s = v->st.state;

		t->open += s == VOLUME_OPEN;
		/* A worker sets the final state before it ends: count states, not threads. */
		t->waiting += s == VOLUME_WAITING || s == VOLUME_PENDING;
		t->failed += s == VOLUME_FAILED;
		t->verified += s == VOLUME_VERIFIED;
		if (s == VOLUME_WAITING && !t->why[0] && v->st.error[0])
			snprintf(t->why, sizeof(t->why), " (%s: %s)", v->name, v->st.error);
		if (v->required) {
			t->required++;
			t->required_open += s == VOLUME_OPEN;
		}
		worker_reap(v);
	}
	api_answer_waiting(k->api);
}

/* The main loop's view after any change: systemd STATUS=, READY=1 once every required
 * volume is open, and replies to API requests that waited for a worker. */
static void on_wake(evutil_socket_t fd, short what, void *u)
{
	struct keyd *k = u;
	/* The event loop's thread only: what systemd was last told, so the journal gets each
	 * change once (systemd itself does not log STATUS=). */
	static char last[sizeof(((struct tally *)0)->why) + 160];
	struct tally t = {0};
	char status[sizeof(last)];

	(void)fd;
	(void)what;
	pthread_mutex_lock(&k->reg.lock);
	tally_and_reap(k, &t);
	pthread_mutex_unlock(&k->reg.lock);

	snprintf(status, sizeof(status),
		 "STATUS=%zu/%zu volumes open, %zu waiting%s, %zu failed%s%s", t.open, k->reg.n,
		 t.waiting, t.why, t.failed, k->dm ? "" : "; ",
		 k->dm ? "" : "no device-mapper: keys verified only");
	if (strcmp(status, last)) {
		log_info("status: %s", status + strlen("STATUS="));
		snprintf(last, sizeof(last), "%s", status);
	}
	if (!k->pass_done && t.waiting == 0) {
		k->pass_done = true;
		log_info("first unlock pass done in %.3f s: %zu open, %zu verified, %zu failed",
			 (double)(now_mono_us() - k->started_us) / 1e6, t.open, t.verified,
			 t.failed);
	}
	if (!k->ready && t.required_open == t.required) {
		k->ready = true;
		strncat(status, "\nREADY=1", sizeof(status) - strlen(status) - 1);
		log_struct(LOG_INFO, 0, MESSAGE_KEYD_READY, NULL,
			   "ready: all %zu required volumes are open", t.required);
	}
	notify_send(status);
}

static void on_signal(evutil_socket_t sig, short what, void *u)
{
	struct keyd *k = u;

	(void)what;
	log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	k->stop = true;
	notify_send("STOPPING=1");
	event_base_loopexit(k->base, NULL);
}

/* An authenticated event from the callback endpoint (main thread). */
static int on_callback_event(void *u, const struct key_event *ev, char *msg, size_t msgsize)
{
	struct keyd *k = u;
	int r = lifecycle_submit(k->lifecycle, LIFECYCLE_EVENT, ev, NULL, msg, msgsize, NULL);

	/* A key no volume here uses is not the sender's error: acknowledge, do nothing. */
	return r == -ENOENT ? 0 : r;
}

/* The configured volumes, then (with "discover") the LUKS2 devices that name a known KMS. */
static int setup_volumes(struct keyd *k, struct error *err)
{
	const struct keyd_config *cfg = k->cfg;
	int r;

	r = registry_init(&k->reg, cfg->n_volumes + (cfg->discover ? REGISTRY_DISCOVERED_MAX : 0));
	if (r < 0)
		return error_set(err, r, "out of memory");
	k->reg.stop = &k->stop;
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		r = registry_add(&k->reg, &cfg->volumes[i]);
		if (r < 0)
			return error_set(err, r, "volume %s: %s", cfg->volumes[i].name,
					 strerror(-r));
	}
	/* Discovery adds to the configured volumes: its failure is said, never fatal. */
	if (cfg->discover && (r = registry_discover(&k->reg, cfg)) < 0)
		log_warning_errno(r, "discover: cannot list the block devices: %m");
	return 0;
}

/* The soft descriptor limit up to the hard one (systemd's advice for programs that need many,
 * and use no select()): the listeners' caps and conn_limit's reserve are counted within it. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug_errno(negative_errno(), "cannot raise the descriptor limit: %m");
	}
}

static int setup_loop(struct keyd *k, struct error *err)
{
	evlog_setup();
	raise_nofile();
	if (evthread_use_pthreads() < 0 || !(k->base = event_base_new()))
		return error_set(err, -ENOMEM, "cannot set up the event loop");
	k->wake = event_new(k->base, -1, EV_PERSIST, on_wake, k);
	k->sigterm = evsignal_new(k->base, SIGTERM, on_signal, k);
	k->sigint = evsignal_new(k->base, SIGINT, on_signal, k);
	if (!k->wake || !k->sigterm || !k->sigint)
		return error_set(err, -ENOMEM, "cannot set up the event loop");
	event_add(k->sigterm, NULL);
	event_add(k->sigint, NULL);
	k->reg.wake = k->wake;
	return 0;
}

/* node_exporter's textfile: written now, then every metrics.interval_s, on the main thread. */
static void on_textfile(evutil_socket_t fd, short what, void *u)
{
	struct keyd *k = u;
	/* Main thread only: a failure is logged when it starts, not every interval. */
	static bool failing;
	struct error err;

	(void)fd;
	(void)what;
	if (metrics_report_textfile(&k->metrics_env, k->cfg->metrics_textfile_dir, &err) < 0) {
		if (!failing)
			log_warning("%s", err.msg);
		failing = true;
	} else if (failing) {
		log_info("metrics: writing %s/" METRICS_TEXTFILE_NAME " again",
			 k->cfg->metrics_textfile_dir);
		failing = false;
	}
}

static int setup_metrics(struct keyd *k, struct error *err)
{
	const struct keyd_config *cfg = k->cfg;
	struct timeval every = {.tv_sec = (time_t)cfg->metrics_interval_s};

	if (metrics_new(cfg, &k->metrics) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	k->reg.metrics = k->metrics;
	k->metrics_env = (struct metrics_env){
		.cfg = cfg, .reg = &k->reg, .metrics = k->metrics, .ready = &k->ready};
	if (!cfg->metrics_textfile_dir)
		return 0;
	k->textfile = event_new(k->base, -1, EV_PERSIST, on_textfile, k);
	if (!k->textfile || event_add(k->textfile, &every) < 0)
		return error_set(err, -ENOMEM, "cannot set up the metrics textfile timer");
	return 0;
}

/* The log's last sealed position, kept beside the node key: a log found cut back, or deleted
 * and begun anew, is said loudly (and recorded in it as audit.gap). Never stops keyd: the
 * volumes matter more than the log, and the gap is on record. */
static int audit_anchor_setup(struct audit *a, const char *log_path, const char *key_path)
{
	char anchor[PATH_MAX];
	struct audit_gap gap;
	int r;

	r = audit_anchor_path(log_path, key_path, anchor, sizeof(anchor));
	if (r >= 0)
		r = audit_set_anchor(a, anchor, &gap);
	if (r == -EINVAL)
		log_warning("audit log %s: %s", log_path, AUDIT_ANCHOR_NO_DIR);
	else if (r < 0)
		log_error_errno(r, "audit log %s: cannot keep its anchor: %m", log_path);
	else if (r > 0)
		log_error(
			"audit log %s: RECORDS ARE MISSING: %s (anchor %s sealed seq %llu, the log "
			"ended at seq %llu); recorded as audit.gap, and 'keydctl audit verify' "
			"fails from now on",
			log_path, gap.reason, anchor, (unsigned long long)gap.anchor_seq,
			(unsigned long long)gap.log_last_seq);
	return 0;
}

static int setup_audit(struct keyd *k, struct error *err)
{
	const struct keyd_config *cfg = k->cfg;
	EVP_PKEY *node_key = NULL;
	int r;

	r = sign_key_load(cfg->node_key_file, &node_key);
	if (r < 0)
		return error_set(err, r, "cannot load the node signing key %s: %s",
				 cfg->node_key_file, strerror(-r));
	r = audit_open(cfg->audit_path, node_key, &k->audit);
	EVP_PKEY_free(node_key);
	if (r < 0)
		return error_set(err, r, "cannot open the audit log %s: %s", cfg->audit_path,
				 strerror(-r));
	k->reg.audit = k->audit;
	k->metrics_env.audit = k->audit;
	return audit_anchor_setup(k->audit, cfg->audit_path, cfg->node_key_file);
}

int keyd_setup(struct keyd *k, struct keyd_config *cfg, struct error *err)
{
	int r;

	*k = (struct keyd){.cfg = cfg};
	k->dm = luks_dm_available(k->dm_why, sizeof(k->dm_why));
	if (!k->dm)
		log_warning("%s: volumes will be verified but not activated", k->dm_why);
	if ((r = setup_volumes(k, err)) < 0 || (r = setup_loop(k, err)) < 0 ||
	    (r = setup_metrics(k, err)) < 0 || (r = setup_audit(k, err)) < 0)
		return r;
	k->workers = (struct worker_env){
		.reg = &k->reg, .dm = k->dm, .dm_why = k->dm_why, .stop = &k->stop};
	r = lifecycle_start(
		&(struct lifecycle_env){.reg = &k->reg, .cfg = cfg, .dm = k->dm, .stop = &k->stop},
		&k->lifecycle);
	if (r < 0)
		return error_set(err, r, "cannot start the lifecycle thread: %s", strerror(-r));
	r = api_setup(&(struct api_env){.base = k->base,
					.cfg = cfg,
					.reg = &k->reg,
					.workers = &k->workers,
					.lifecycle = k->lifecycle,
					.ready = &k->ready,
					.metrics = &k->metrics_env,
					.dm = k->dm,
					.dm_why = k->dm_why},
		      &k->api, err);
	if (r < 0 || !cfg->callback)
		return r;
	r = callback_start(k->base, cfg->callback, k->audit, on_callback_event, k, &k->callback,
			   err);
	if (r >= 0)
		callback_set_metrics(k->callback, k->metrics);
	return r;
}

int keyd_run(struct keyd *k)
{
	k->started_us = now_mono_us();
	registry_audit(&k->reg, "keyd.start", "success", NULL, NULL, NULL, NULL);
	pthread_mutex_lock(&k->reg.lock);
	for (size_t i = 0; i < k->reg.n; i++) {
		int r = worker_start(&k->workers, &k->reg.volumes[i]);

		if (r < 0)
			log_error_errno(r, "%s: cannot start unlock worker: %m",
					k->reg.volumes[i].name);
	}
	pthread_mutex_unlock(&k->reg.lock);
	/* With nothing to wait for, readiness is immediate. */
	event_active(k->wake, EV_READ, 0);
	if (k->textfile)
		event_active(k->textfile, EV_TIMEOUT, 0);
	return event_base_dispatch(k->base) < 0 ? -EIO : 0;
}

void keyd_done(struct keyd *k)
{
	k->stop = true;
	callback_stop(k->callback);
	lifecycle_stop(k->lifecycle);
	for (size_t i = 0; i < k->reg.n; i++)
		worker_join(&k->reg.volumes[i]);
	api_done(k->api);
	if (k->reg.volumes)
		registry_done(&k->reg);
	if (k->audit) {
		audit_write(k->audit, "keyd.stop", "success", NULL, NULL, NULL);
		audit_close(k->audit);
	}
	if (k->textfile)
		event_free(k->textfile);
	metrics_free(k->metrics);
	if (k->wake)
		event_free(k->wake);
	if (k->sigterm)
		event_free(k->sigterm);
	if (k->sigint)
		event_free(k->sigint);
	if (k->base)
		event_base_free(k->base);
}
