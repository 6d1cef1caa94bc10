// SPDX-License-Identifier: GPL-2.0-or-later
/* Control API over evhttp on a Unix socket: no hand-written HTTP; every connection is admitted
 * at accept by its caller's uid (caps per uid and in all, root exempt), every request checked
 * against the route table and the peer's credentials before it acts (through the registry,
 * workers and lifecycle thread); refusals summarised (noise.c). Owns the requests that wait for
 * a worker. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api.h"
#include "conn_limit.h"
#include "log.h"
#include "prom.h"
#include "noise.h"
#include "secmem.h"
#include "util.h"

#define API_BODY_MAX   (64 * 1024)
#define API_GROUPS_MAX 256
/* Connections of callers other than root, open at once: in all, and of one uid. Root's are
 * never refused, so the socket always has room for the operator. */
#define API_CONNECTIONS_MAX	    64
#define API_CONNECTIONS_PER_UID_MAX 16
#define API_TICK_MS		    500

/* Who is on the other end of the socket (SO_PEERCRED, SO_PEERGROUPS). */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[API_GROUPS_MAX];
	size_t n_groups;
};

/* A request answered when the volume's unlock worker ends (ticket 0), or when the lifecycle
 * job of @ticket (a suspend or resume of kind @kind) has run. */
struct waiting_reply {
	struct evhttp_request *req;
	struct volume *v;
	uint64_t ticket;
	enum lifecycle_job_kind kind;
	struct waiting_reply *next;
};

/* A connection of a caller other than root, admitted and (while its descriptor still names the
 * same socket) open: evhttp tells no one when a connection ends, so the table is pruned by
 * fstat() at each admission. */
struct api_conn {
	uid_t uid;
	int fd;
	ino_t ino;
};

struct api {
	struct api_env env;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int fd;
	char *path;
	struct waiting_reply *waiting;		    /* main thread only */
	struct api_conn conns[API_CONNECTIONS_MAX]; /* callers other than root */
	size_t n_conns;
	struct noise *noise; /* refusals, summarised */
	struct event *tick;
};

typedef void (*route_fn)(struct api *a, struct evhttp_request *req, const struct peer *p,
			 const char *arg);

struct route {
	enum evhttp_cmd_type method;
	const char *prefix; /* path, or the part before the volume name */
	const char *suffix; /* NULL: exact path; else the part after the volume name */
	enum control_op op;
	route_fn handler;
};

/* Who asked, for the audit log. */
static json_t *peer_subject(const struct peer *p)
{
	struct passwd *pw = getpwuid(p->uid);

	return json_pack("{s:i, s:s?, s:i, s:s}", "uid", (int)p->uid, "user",
			 pw ? pw->pw_name : NULL, "pid", (int)p->pid, "via", "control socket");
}

static void audit_request(struct api *a, const char *type, const char *result, const struct peer *p,
			  struct volume *v, json_t *extra, const char *error)
{
	json_auto_t *subject = peer_subject(p);

	registry_audit(a->env.reg, type, result, subject, v, extra, error);
}

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	if (b && s) {
		evbuffer_add(b, s, strlen(s));
		evbuffer_add(b, "\n", 1);
	}
	evhttp_send_reply(req, code, NULL, b);
	secmem_free(s);
	if (b)
		evbuffer_free(b);
	json_decref(body);
}

static void reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(req, code, json_pack("{s:s}", "error", msg));
}

/* Each root key of the volume and its state; "depends_on" the KMS it can still be opened
 * through (any-of); "shredding" what crypto-shredding takes, said plainly. Lock held. */
static void volume_keys_json(const struct volume *v, json_t *o)
{
	const struct volume_status *st = &v->st;
	json_t *keys = json_array(), *on = json_array();
	size_t destroyed = 0;
	char say[256];

	for (size_t k = 0; keys && on && k < v->n_keys; k++) {
		const struct volume_key_status *ks = &st->keys[k];

		json_array_append_new(keys,
				      json_pack("{s:s, s:s, s:s, s:s}", "kms", v->keys[k].kms->name,
						"key_id", registry_key_id_of_locked(v, k),
						"key_version", ks->key_version, "state",
						ks->destroyed ? "destroyed"
						: ks->revoked ? "revoked"
							      : "usable"));
		if (!ks->revoked)
			json_array_append_new(on, json_string(v->keys[k].kms->name));
		destroyed += ks->destroyed;
	}
	if (v->n_keys > 1)
		snprintf(say, sizeof(say),
			 "any of %zu root keys opens it: crypto-shredding needs all %zu destroyed "
			 "(%zu of %zu are)",
			 v->n_keys, v->n_keys, destroyed, v->n_keys);
	else
		snprintf(say, sizeof(say), "crypto-shredding needs its root key destroyed (%s)",
			 destroyed ? "it is" : "it is not");
	json_object_set_new(o, "keys", keys);
	json_object_set_new(o, "depends_on", on);
	json_object_set_new(o, "shredding", json_string(say));
}

/* The public description of a volume (never key material); registry lock held. */
static json_t *volume_json(const struct volume *v)
{
	const struct volume_status *st = &v->st;
	char since[40];
	json_t *o;

	format_rfc3339_us(st->since_us, since, sizeof(since));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s, s:s, s:i, s:i, s:s, "
		      "s:b, s:b, s:o}",
		      "name", v->name, "state", volume_state_names[st->state], "device_spec",
		      v->device_spec, "device", st->device, "uuid", st->uuid, "key_id",
		      registry_key_id_locked(v), "required", v->required, "discovered",
		      v->discovered, "kms", v->keys[0].kms->name, "key_version", st->key_version,
		      "error", st->error, "keyslot", st->keyslot, "attempts", (int)st->attempts,
		      "since", since, "revoked", st->revoked, "shredded", st->shredded,
		      "uuid_also_on", jx_list(st->uuid_also_on));
	if (o)
		volume_keys_json(v, o);
	return o;
}

static void handle_status(struct api *a, struct evhttp_request *req, const struct peer *p,
			  const char *arg)
{
	struct registry *reg = a->env.reg;
	json_t *vols = json_array();

	(void)p;
	(void)arg;
	pthread_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->n; i++)
		json_array_append_new(vols, volume_json(&reg->volumes[i]));
	pthread_mutex_unlock(&reg->lock);
	reply_json(req, HTTP_OK,
		   json_pack("{s:s, s:b, s:{s:b, s:s?}, s:o}", "version", KEYD_VERSION, "ready",
			     *a->env.ready, "device_mapper", "available", a->env.dm, "reason",
			     a->env.dm ? NULL : a->env.dm_why, "volumes", vols));
}

/* Prometheus text by default (a scraper, curl); ?format=json wraps the same text in keydctl's
 * one JSON document. */
static void handle_metrics(struct api *a, struct evhttp_request *req, const struct peer *p,
			   const char *arg)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	_cleanup_free_ char *text = NULL;
	struct evbuffer *b;
	int r;

	(void)p;
	(void)arg;
	r = metrics_report(a->env.metrics, &text);
	if (r < 0)
		return reply_error(req, HTTP_INTERNAL, "cannot build the metrics: %s",
				   strerror(-r));
	if (q && strcmp(q, "format=json") == 0)
		return reply_json(req, HTTP_OK, json_pack("{s:s}", "metrics", text));
	b = evbuffer_new();
	if (!b)
		return reply_error(req, HTTP_INTERNAL, "out of memory");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  PROM_CONTENT_TYPE);
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply(req, HTTP_OK, NULL, b);
	evbuffer_free(b);
}

/* The volume @name with the registry lock held, or NULL after a 404 reply (lock not held). */
static struct volume *volume_locked(struct api *a, struct evhttp_request *req, const char *name)
{
	struct volume *v;

	pthread_mutex_lock(&a->env.reg->lock);
	v = registry_find(a->env.reg, name);
	if (!v) {
		pthread_mutex_unlock(&a->env.reg->lock);
		reply_error(req, HTTP_NOTFOUND, "no volume named '%s'", name);
	}
	return v;
}

static void waiting_drop(struct evhttp_connection *conn, void *u)
{
	struct api *a = u;
	struct waiting_reply **pp = &a->waiting;

	/* The client went away: forget its requests before evhttp frees them. */
	while (*pp) {
		if (evhttp_request_get_connection((*pp)->req) == conn) {
			struct waiting_reply *dead = *pp;

			*pp = dead->next;
			free(dead);
		} else {
			pp = &(*pp)->next;
		}
	}
}

/* The reply to @req goes out when @v's worker ends, or the job of @ticket has run
 * (api_answer_waiting). */
static int waiting_add(struct api *a, struct evhttp_request *req, struct volume *v, uint64_t ticket,
		       enum lifecycle_job_kind kind)
{
	struct waiting_reply *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	*w = (struct waiting_reply){
		.req = req, .v = v, .ticket = ticket, .kind = kind, .next = a->waiting};
	a->waiting = w;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), waiting_drop, a);
	return 0;
}

static void handle_unlock(struct api *a, struct evhttp_request *req, const struct peer *p,
			  const char *name)
{
	struct registry *reg = a->env.reg;
	struct volume *v;
	int r;

	v = volume_locked(a, req, name);
	if (!v)
		return;
	if (v->st.state == VOLUME_OPEN) {
		reply_json(req, HTTP_OK, volume_json(v));
		pthread_mutex_unlock(&reg->lock);
		return;
	}
	log_info("%s: unlock requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	if (v->st.state == VOLUME_RELEASED) {
		/* Only the main thread releases: the volume cannot be released meanwhile. */
		pthread_mutex_unlock(&reg->lock);
		audit_request(a, "control.unlock", "refused", p, v, NULL,
			      "released (decommissioned)");
		return reply_error(req, 409,
				   "'%s' was released (decommissioned): keyd will not "
				   "unlock it again; restart keyd to start over",
				   name);
	}
	pthread_mutex_unlock(&reg->lock);
	audit_request(a, "control.unlock", "success", p, v, NULL, NULL);
	pthread_mutex_lock(&reg->lock);
	r = worker_start(a->env.workers, v);
	if (r < 0) {
		pthread_mutex_unlock(&reg->lock);
		return reply_error(req, HTTP_INTERNAL, "cannot start unlock of '%s': %s", name,
				   strerror(-r));
	}
	r = waiting_add(a, req, v, 0, LIFECYCLE_EVENT);
	pthread_mutex_unlock(&reg->lock);
	if (r < 0)
		reply_error(req, HTTP_INTERNAL, "out of memory");
}

/* A failed unlock, suspend or resume: its message, the volume, and (an unlock's) errno by name,
 * "EKEYREVOKED", from which keydctl takes its exit code: the daemon's reply says what keydctl
 * run alone would have exited with. */
static void reply_failed(struct evhttp_request *req, const struct volume *v)
{
	const char *name = v->st.error_errno ? strerrorname_np(-v->st.error_errno) : NULL;
	json_t *o = json_pack("{s:s, s:o}", "error", v->st.error, "volume", volume_json(v));

	if (o && name)
		json_object_set_new(o, "errno", json_string(name));
	reply_json(req, HTTP_INTERNAL, o);
}

/* Whether what @w waited for came out as asked: unlock and resume leave the volume usable,
 * suspend leaves it not. */
static bool waiting_succeeded(const struct waiting_reply *w)
{
	enum volume_state s = w->v->st.state;
	bool usable = s == VOLUME_OPEN || s == VOLUME_VERIFIED;

	if (w->ticket && w->kind == LIFECYCLE_SUSPEND)
		return !usable && s != VOLUME_RELEASED;
	return usable;
}

void api_answer_waiting(struct api *a)
{
	struct waiting_reply **pp = &a->waiting;

	while (*pp) {
		struct waiting_reply *w = *pp;
		const struct volume *v = w->v;

		if (w->ticket ? !lifecycle_finished(a->env.lifecycle, w->ticket)
			      : v->worker_running) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		evhttp_connection_set_closecb(evhttp_request_get_connection(w->req), NULL, NULL);
		if (waiting_succeeded(w))
			reply_json(w->req, HTTP_OK, volume_json(v));
		else if (v->st.state == VOLUME_RELEASED)
			reply_json(w->req, 409,
				   json_pack("{s:s, s:o}", "error",
					     "released (decommissioned): keyd will not act on it",
					     "volume", volume_json(v)));
		else
			reply_failed(w->req, v);
		free(w);
	}
}

static void handle_lock(struct api *a, struct evhttp_request *req, const struct peer *p,
			const char *name)
{
	struct registry *reg = a->env.reg;
	struct error err;
	struct volume *v;
	int r;

	v = volume_locked(a, req, name);
	if (!v)
		return;
	log_info("%s: lock requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	r = registry_lock_volume(reg, v, &err);
	if (r < 0)
		reply_error(req, r == -EBUSY || r == -ESTALE ? 409 : HTTP_INTERNAL, "%s", err.msg);
	else
		reply_json(req, HTTP_OK, volume_json(v));
	pthread_mutex_unlock(&reg->lock);
	audit_request(a, "volume.lock",
		      r == -ESTALE ? "refused"
		      : r < 0	   ? "failure"
				   : "success",
		      p, v, NULL, r < 0 ? err.msg : NULL);
	registry_wake(reg);
}

/* Whether the request's query asks not to wait for the result ("?wait=0"). */
static bool request_no_wait(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;

	return q && strcmp(q, "wait=0") == 0;
}

/* Suspend and resume run on the lifecycle thread; the reply waits for it (as unlock waits
 * for its worker) unless the caller asked not to. */
static void lifecycle_action(struct api *a, struct evhttp_request *req, const struct peer *p,
			     const char *name, enum lifecycle_job_kind kind, const char *what)
{
	char msg[256], type[32];
	uint64_t ticket = 0;
	int r;

	log_info("%s: %s requested by uid %u (pid %d)", name, what, p->uid, (int)p->pid);
	r = lifecycle_submit(a->env.lifecycle, kind, NULL, name, msg, sizeof(msg), &ticket);
	snprintf(type, sizeof(type), "control.%s", what);
	/* As for unlock, lock and release: a volume keyd does not have is a 404, not a record. */
	if (r != -ENOENT)
		audit_request(a, type, r < 0 ? "failure" : "success", p,
			      registry_find(a->env.reg, name), NULL, r < 0 ? msg : NULL);
	if (r < 0)
		return reply_error(req, r == -ENOENT ? HTTP_NOTFOUND : 503, "%s", msg);
	if (request_no_wait(req))
		return reply_json(req, 202, json_pack("{s:s, s:s}", "volume", name, "result", msg));
	pthread_mutex_lock(&a->env.reg->lock);
	r = waiting_add(a, req, registry_find(a->env.reg, name), ticket, kind);
	pthread_mutex_unlock(&a->env.reg->lock);
	if (r < 0)
		reply_error(req, HTTP_INTERNAL, "out of memory");
}

static void handle_suspend(struct api *a, struct evhttp_request *req, const struct peer *p,
			   const char *name)
{
	lifecycle_action(a, req, p, name, LIFECYCLE_SUSPEND, "suspend");
}

static void handle_resume(struct api *a, struct evhttp_request *req, const struct peer *p,
			  const char *name)
{
	lifecycle_action(a, req, p, name, LIFECYCLE_RESUME, "resume");
}

static void handle_release(struct api *a, struct evhttp_request *req, const struct peer *p,
			   const char *name)
{
	struct registry *reg = a->env.reg;
	json_t *report = NULL;
	struct error err;
	struct volume *v;
	int r;

	v = volume_locked(a, req, name);
	if (!v)
		return;
	log_info("%s: release requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	r = registry_release(reg, v, &err, &report);
	if (r < 0)
		reply_error(req, r == -EBUSY ? 409 : HTTP_INTERNAL, "%s", err.msg);
	else
		reply_json(req, HTTP_OK,
			   json_pack("{s:o, s:O}", "volume", volume_json(v), "released", report));
	pthread_mutex_unlock(&reg->lock);
	audit_request(a, "volume.release", r < 0 ? "failure" : "success", p, v, report,
		      r < 0 ? err.msg : NULL);
	json_decref(report);
	registry_wake(reg);
}

static const struct route routes[] = {
	{.method = EVHTTP_REQ_GET,
	 .prefix = "/v1/status",
	 .op = CONTROL_STATUS,
	 .handler = handle_status},
	{.method = EVHTTP_REQ_GET,
	 .prefix = "/v1/metrics",
	 .op = CONTROL_STATUS,
	 .handler = handle_metrics},
	{.method = EVHTTP_REQ_POST,
	 .prefix = "/v1/volumes/",
	 .suffix = "/unlock",
	 .op = CONTROL_UNLOCK,
	 .handler = handle_unlock},
	{.method = EVHTTP_REQ_POST,
	 .prefix = "/v1/volumes/",
	 .suffix = "/lock",
	 .op = CONTROL_LOCK,
	 .handler = handle_lock},
	{.method = EVHTTP_REQ_POST,
	 .prefix = "/v1/volumes/",
	 .suffix = "/release",
	 .op = CONTROL_RELEASE,
	 .handler = handle_release},
	{.method = EVHTTP_REQ_POST,
	 .prefix = "/v1/volumes/",
	 .suffix = "/suspend",
	 .op = CONTROL_SUSPEND,
	 .handler = handle_suspend},
	{.method = EVHTTP_REQ_POST,
	 .prefix = "/v1/volumes/",
	 .suffix = "/resume",
	 .op = CONTROL_RESUME,
	 .handler = handle_resume},
};

/* Matches @path against @r; the volume name between prefix and suffix goes to @arg. */
static bool route_match(const struct route *r, const char *path, char *arg, size_t size)
{
	size_t pl = strlen(r->prefix), n, sl;

	if (!r->suffix)
		return strcmp(path, r->prefix) == 0;
	if (strncmp(path, r->prefix, pl) != 0)
		return false;
	path += pl;
	n = strlen(path);
	sl = strlen(r->suffix);
	if (n <= sl || strcmp(path + n - sl, r->suffix) != 0 || n - sl >= size)
		return false;
	memcpy(arg, path, n - sl);
	arg[n - sl] = 0;
	return volume_name_valid(arg);
}

static int peer_identify(struct evhttp_request *req, struct peer *p)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
	struct ucred cred;
	socklen_t len = sizeof(cred), glen = sizeof(p->groups);

	*p = (struct peer){.pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1};
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return negative_errno();
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &glen) == 0)
		p->n_groups = glen / sizeof(gid_t);
	return 0;
}

static bool peer_in_group(const struct peer *p, gid_t g)
{
	if (p->gid == g)
		return true;
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == g)
			return true;
	return false;
}

/* Root may do everything; the control group may read status; policy rules grant the rest. */
static bool peer_may(const struct keyd_config *cfg, const struct peer *p, enum control_op op,
		     const char *volume)
{
	struct group *g;

	if (p->uid == 0)
		return true;
	g = getgrnam(cfg->control_group);
	if (op == CONTROL_STATUS && g && peer_in_group(p, g->gr_gid))
		return true;
	for (size_t i = 0; i < cfg->n_policy; i++) {
		const struct policy_rule *r = &cfg->policy[i];
		bool who = false, which = !r->volumes || !volume;

		for (size_t j = 0; j < r->n_uids; j++)
			who |= r->uids[j] == p->uid;
		for (size_t j = 0; j < r->n_gids; j++)
			who |= peer_in_group(p, r->gids[j]);
		for (size_t j = 0; volume && j < r->n_volumes; j++)
			which |= strcmp(r->volumes[j], volume) == 0;
		if (who && which && (r->ops & (1u << op)))
			return true;
	}
	return false;
}

/* Whether a refusal is the first of its kind (uid and reason) in the noise interval: else it is
 * only counted, for the summary. */
static bool refusal_is_news(struct api *a, const struct peer *p, const char *why)
{
	char key[NOISE_KEY_MAX + 1];
	json_auto_t *subject = json_pack("{s:i, s:s}", "uid", (int)p->uid, "via", "control socket");

	snprintf(key, sizeof(key), "uid %u %s", p->uid, why);
	return !a->noise ||
	       noise_note(a->noise, key, "control.refused", subject, why, now_mono_us());
}

/* A caller whose credentials do not grant @r: 403, logged and audited. */
static void refuse(struct api *a, struct evhttp_request *req, const struct peer *p,
		   const struct route *r, const char *path, const char *arg)
{
	char why[128];

	snprintf(why, sizeof(why), "%s%s%s not granted to uid %u", control_op_names[r->op],
		 r->suffix ? " of " : "", r->suffix ? arg : "", p->uid);
	if (refusal_is_news(a, p, why)) {
		log_notice("control API: refused %s from uid %u (pid %d): %s", path, p->uid,
			   (int)p->pid, why);
		audit_request(a, "control.refused", "refused", p,
			      r->suffix ? registry_find(a->env.reg, arg) : NULL, NULL, why);
	}
	reply_error(req, 403,
		    "permission denied: %s (root, or a control.policy rule, may; group '%s' may "
		    "read status)",
		    why, a->env.cfg->control_group);
}

static void on_request(struct evhttp_request *req, void *u)
{
	struct api *a = u;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	char arg[VOLUME_NAME_MAX + 1] = "";
	bool path_known = false;
	struct peer p;

	if (peer_identify(req, &p) < 0)
		return reply_error(req, 403, "permission denied: cannot identify the caller");
	for (size_t i = 0; path && i < ELEMENTSOF(routes); i++) {
		const struct route *r = &routes[i];

		if (!route_match(r, path, arg, sizeof(arg)))
			continue;
		path_known = true;
		if (r->method != method)
			continue;
		if (!peer_may(a->env.cfg, &p, r->op, r->suffix ? arg : NULL))
			return refuse(a, req, &p, r, path, arg);
		return r->handler(a, req, &p, arg);
	}
	if (path_known)
		return reply_error(req, 405, "method not allowed on %s", path);
	reply_error(req, HTTP_NOTFOUND, "no such endpoint: %s", path ? path : "(none)");
}

/* Forgets connections that ended: their descriptor is closed, or names another socket now. */
static void conns_prune(struct api *a)
{
	size_t j = 0;

	for (size_t i = 0; i < a->n_conns; i++) {
		struct stat st;

		if (fstat(a->conns[i].fd, &st) == 0 && st.st_ino == a->conns[i].ino)
			a->conns[j++] = a->conns[i];
	}
	a->n_conns = j;
}

/* Root always; others within API_CONNECTIONS_MAX in all and API_CONNECTIONS_PER_UID_MAX each,
 * and never into the descriptor reserve. NULL when admitted, else why not. */
static const char *conn_admit(struct api *a, int fd, uid_t uid)
{
	size_t mine = 0;
	struct stat st;

	if (uid == 0)
		return NULL;
	if (conn_limit_fd_reserved(fd))
		return "file descriptors running out";
	conns_prune(a);
	for (size_t i = 0; i < a->n_conns; i++)
		mine += a->conns[i].uid == uid;
	if (a->n_conns >= API_CONNECTIONS_MAX)
		return "too many connections";
	if (mine >= API_CONNECTIONS_PER_UID_MAX)
		return "too many connections of this uid";
	if (fstat(fd, &st) < 0)
		return "cannot identify the connection";
	a->conns[a->n_conns++] = (struct api_conn){.uid = uid, .fd = fd, .ino = st.st_ino};
	return NULL;
}

/* A connection just accepted, waiting for its admission. */
struct api_new_conn {
	struct api *a;
	struct bufferevent *bev; /* referenced until the admission ran */
};

/* The admission, on the loop's next turn after accept, before a byte is read. A refused
 * connection is shut; evhttp frees it on its end of file. */
static void on_new_conn(evutil_socket_t unused, short what, void *u)
{
	struct api_new_conn *n = u;
	int fd = bufferevent_getfd(n->bev);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	const char *refused;

	(void)unused;
	(void)what;
	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    (refused = conn_admit(n->a, fd, cred.uid))) {
		char why[128];
		struct peer p = {.uid = cred.uid, .pid = cred.pid};

		snprintf(why, sizeof(why), "connection closed at accept: %s", refused);
		if (refusal_is_news(n->a, &p, why)) {
			json_auto_t *subject =
				json_pack("{s:i, s:i, s:s}", "uid", (int)cred.uid, "pid",
					  (int)cred.pid, "via", "control socket");

			log_warning("control API: uid %u (pid %d): %s", cred.uid, (int)cred.pid,
				    why);
			registry_audit(n->a->env.reg, "control.refused", "refused", subject, NULL,
				       NULL, why);
		}
		shutdown(fd, SHUT_RDWR);
	}
	bufferevent_decref(n->bev);
	free(n);
}

/* evhttp asks for each accepted connection's bufferevent (the one it would make itself). Its
 * socket is set right after this returns, so the admission runs on the loop's next turn;
 * until then a reference keeps the bufferevent, should the connection end first. (A pending
 * admission runs only while the loop does, and api_done comes after the loop.) */
static struct bufferevent *conn_new(struct event_base *base, void *u)
{
	static const struct timeval now = {0, 0};
	struct api_new_conn *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->a = u;
	n->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!n->bev || event_base_once(base, -1, EV_TIMEOUT, on_new_conn, n, &now) < 0) {
		if (n->bev)
			bufferevent_free(n->bev);
		free(n);
		return NULL;
	}
	bufferevent_incref(n->bev);
	return n->bev;
}

/* Every API_TICK_MS: a listener paused for want of descriptors tries again, and refusals
 * counted over an ended interval are written as summaries. */
static void on_tick(evutil_socket_t fd, short what, void *u)
{
	struct api *a = u;

	(void)fd;
	(void)what;
	if (a->bound)
		conn_limit_resume(a->bound);
	noise_tick(a->noise, now_mono_us());
}

/* A system call on @path failed: -errno, and err says "cannot @what @path: why". */
static int fail_errno(struct error *err, const char *what, const char *path)
{
	int r = negative_errno();

	return error_set(err, r, "cannot %s %s: %s", what, path, strerror(-r));
}

/* The socket is bound under a temporary name and renamed into place once it listens, so a
 * client that sees the path can always connect (never ECONNREFUSED between bind and listen)
 * and never meets the wrong owner or mode. */
static int socket_create(const char *path, const char *group, bool open_to_all, struct error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	struct group *g;
	char *slash;
	int n;

	if (!dir)
		return error_set(err, -ENOMEM, "control API: out of memory");
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return error_set(err, -ENAMETOOLONG, "control socket %s: path too long", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return fail_errno(err, "create", dir);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail_errno(err, "create a socket for", path);
	/* A stale socket from a run that died here would make bind fail. */
	if (unlink(sa.sun_path) < 0 && errno != ENOENT)
		return fail_errno(err, "remove old", sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail_errno(err, "bind", sa.sun_path);
	g = getgrnam(group);
	/* With a policy, callers outside the group may be granted something: keyd checks every
	 * caller's credentials itself, so the file mode need not keep them out. */
	if ((g && chown(sa.sun_path, 0, g->gr_gid) < 0) ||
	    chmod(sa.sun_path, open_to_all ? 0666
			       : g	   ? 0660
					   : 0600) < 0 ||
	    listen(fd, 64) < 0 || rename(sa.sun_path, path) < 0) {
		int r = fail_errno(err, "set up", path);

		unlink(sa.sun_path);
		return r;
	}
	if (!g)
		log_notice("group '%s' does not exist: the control socket is root-only", group);
	return TAKE_FD(fd);
}

int api_setup(const struct api_env *env, struct api **ret, struct error *err)
{
	const struct keyd_config *cfg = env->cfg;
	struct api *a = calloc(1, sizeof(*a));
	int fd;

	if (!a)
		return error_set(err, -ENOMEM, "control API: out of memory");
	*ret = a;
	a->env = *env;
	a->fd = -1;
	if (noise_new(env->reg->audit, NOISE_INTERVAL_US, NOISE_KINDS_MAX, &a->noise) < 0 ||
	    !(a->tick = event_new(env->base, -1, EV_PERSIST, on_tick, a)))
		return error_set(err, -ENOMEM, "control API: out of memory");
	fd = socket_create(cfg->socket_path, cfg->control_group, cfg->n_policy > 0, err);
	if (fd < 0)
		return fd;
	a->fd = fd;
	a->path = strdup(cfg->socket_path);
	a->http = evhttp_new(env->base);
	if (!a->http || !a->path)
		return error_set(err, -ENOMEM, "control API: out of memory");
	evhttp_set_max_body_size(a->http, API_BODY_MAX);
	evhttp_set_max_headers_size(a->http, 16 * 1024);
	evhttp_set_timeout(a->http, 600);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(a->http, on_request, a);
	evhttp_set_bevcb(a->http, conn_new, a);
	a->bound = evhttp_accept_socket_with_handle(a->http, fd);
	if (!a->bound)
		return error_set(err, -EIO, "control API: cannot serve on %s", cfg->socket_path);
	conn_limit_guard(a->bound);
	event_add(a->tick, &(struct timeval){0, API_TICK_MS * 1000});
	log_info("control API listening on %s", cfg->socket_path);
	return 0;
}

void api_done(struct api *a)
{
	if (!a)
		return;
	if (a->tick)
		event_free(a->tick);
	/* Freeing the connections drops their waiting requests (waiting_drop). */
	if (a->http)
		evhttp_free(a->http);
	else if (a->fd >= 0)
		close(a->fd);
	a->http = NULL;
	a->bound = NULL;
	noise_free(a->noise); /* the summaries still due */
	a->noise = NULL;
	while (a->waiting) {
		struct waiting_reply *w = a->waiting;

		a->waiting = w->next;
		free(w);
	}
	if (a->path)
		unlink(a->path);
	free(a->path);
	free(a);
}
