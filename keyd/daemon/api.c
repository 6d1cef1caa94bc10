// SPDX-License-Identifier: GPL-2.0-or-later
/* Control API over libevent's evhttp on a Unix socket. No hand-written HTTP parsing; every
 * request is checked against the route table and the peer's credentials before it acts. */
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
#include "daemon.h"
#include "log.h"
#include "secmem.h"
#include "util.h"

#define API_BODY_MAX   (64 * 1024)
#define API_GROUPS_MAX 256

/* Who is on the other end of the socket (SO_PEERCRED, SO_PEERGROUPS). */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[API_GROUPS_MAX];
	size_t n_groups;
};

struct pending_reply {
	struct evhttp_request *req;
	struct pending_reply *next;
};

struct api {
	struct evhttp *http;
	int fd;
	char *path;
};

typedef void (*route_fn)(struct keyd *k, struct evhttp_request *req, const struct peer *p,
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

static void audit_request(struct keyd *k, const char *type, const char *result,
			  const struct peer *p, struct volume *v, const char *error)
{
	json_auto_t *subject = peer_subject(p);

	keyd_audit(k, type, result, subject, v, NULL, error);
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

json_t *api_volume_json(struct keyd *k, struct volume *v)
{
	char since[40];

	(void)k;
	format_rfc3339_us(v->since_us, since, sizeof(since));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s, s:s, s:i, s:i, s:s, "
			 "s:b, s:b}",
			 "name", v->name, "state", volume_state_names[v->state], "device_spec",
			 v->device_spec, "device", v->device, "uuid", v->uuid, "key_id",
			 v->token_key_id[0] ? v->token_key_id
			 : v->key_id	    ? v->key_id
					    : "",
			 "required", v->required, "discovered", v->discovered, "kms", v->kms->name,
			 "key_version", v->key_version, "error", v->error, "keyslot", v->keyslot,
			 "attempts", (int)v->attempts, "since", since, "revoked", v->revoked,
			 "shredded", v->shredded);
}

static void handle_status(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			  const char *arg)
{
	json_t *vols = json_array();

	(void)p;
	(void)arg;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_volumes; i++)
		json_array_append_new(vols, api_volume_json(k, &k->volumes[i]));
	pthread_mutex_unlock(&k->lock);
	reply_json(req, HTTP_OK,
		   json_pack("{s:s, s:b, s:{s:b, s:s?}, s:o}", "version", KEYD_VERSION, "ready",
			     k->ready, "device_mapper", "available", k->dm, "reason",
			     k->dm ? NULL : k->dm_why, "volumes", vols));
}

/* The volume @name with k->lock held, or NULL after a 404 reply (lock not held). */
static struct volume *volume_locked(struct keyd *k, struct evhttp_request *req, const char *name)
{
	struct volume *v;

	pthread_mutex_lock(&k->lock);
	v = keyd_find_volume(k, name);
	if (!v) {
		pthread_mutex_unlock(&k->lock);
		reply_error(req, HTTP_NOTFOUND, "no volume named '%s'", name);
	}
	return v;
}

static void pending_drop(struct evhttp_connection *conn, void *u)
{
	struct keyd *k = u;

	/* The client went away: forget its requests before evhttp frees them. */
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_volumes; i++) {
		struct pending_reply **pp = &k->volumes[i].replies;

		while (*pp) {
			if (evhttp_request_get_connection((*pp)->req) == conn) {
				struct pending_reply *dead = *pp;

				*pp = dead->next;
				free(dead);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	pthread_mutex_unlock(&k->lock);
}

static void handle_unlock(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			  const char *name)
{
	struct volume *v;
	struct pending_reply *pr;
	int r;

	v = volume_locked(k, req, name);
	if (!v)
		return;
	if (v->state == VOLUME_OPEN) {
		reply_json(req, HTTP_OK, api_volume_json(k, v));
		pthread_mutex_unlock(&k->lock);
		return;
	}
	log_info("%s: unlock requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	if (v->state == VOLUME_RELEASED) {
		/* Only the main thread releases: the volume cannot be released meanwhile. */
		pthread_mutex_unlock(&k->lock);
		audit_request(k, "control.unlock", "refused", p, v, "released (decommissioned)");
		return reply_error(req, 409,
				   "'%s' was released (decommissioned): keyd will not "
				   "unlock it again; restart keyd to start over",
				   name);
	}
	pthread_mutex_unlock(&k->lock);
	audit_request(k, "control.unlock", "success", p, v, NULL);
	pthread_mutex_lock(&k->lock);
	r = keyd_unlock_start(k, v);
	if (r < 0) {
		pthread_mutex_unlock(&k->lock);
		return reply_error(req, HTTP_INTERNAL, "cannot start unlock of '%s': %s", name,
				   strerror(-r));
	}
	/* The reply goes out when the worker finishes (api_finish_replies). */
	pr = calloc(1, sizeof(*pr));
	if (pr) {
		pr->req = req;
		pr->next = v->replies;
		v->replies = pr;
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), pending_drop, k);
	}
	pthread_mutex_unlock(&k->lock);
	if (!pr)
		reply_error(req, HTTP_INTERNAL, "out of memory");
}

void api_finish_replies(struct keyd *k, struct volume *v)
{
	bool ok = v->state == VOLUME_OPEN || v->state == VOLUME_VERIFIED;

	while (v->replies) {
		struct pending_reply *pr = v->replies;

		v->replies = pr->next;
		evhttp_connection_set_closecb(evhttp_request_get_connection(pr->req), NULL, NULL);
		if (ok)
			reply_json(pr->req, HTTP_OK, api_volume_json(k, v));
		else
			reply_json(pr->req, HTTP_INTERNAL,
				   json_pack("{s:s, s:o}", "error", v->error, "volume",
					     api_volume_json(k, v)));
		free(pr);
	}
}

static void handle_lock(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			const char *name)
{
	struct error err;
	struct volume *v;
	int r;

	v = volume_locked(k, req, name);
	if (!v)
		return;
	log_info("%s: lock requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	r = keyd_lock_volume(k, v, &err);
	if (r < 0)
		reply_error(req, r == -EBUSY || r == -ESTALE ? 409 : HTTP_INTERNAL, "%s", err.msg);
	else
		reply_json(req, HTTP_OK, api_volume_json(k, v));
	pthread_mutex_unlock(&k->lock);
	audit_request(k, "volume.lock",
		      r == -ESTALE ? "refused"
		      : r < 0	   ? "failure"
				   : "success",
		      p, v, r < 0 ? err.msg : NULL);
	event_active(k->wake, EV_READ, 0);
}

static void lifecycle_action(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			     const char *name, enum lifecycle_job_kind kind, const char *what)
{
	char msg[256], type[32];
	int r;

	log_info("%s: %s requested by uid %u (pid %d)", name, what, p->uid, (int)p->pid);
	r = lifecycle_submit(k, kind, NULL, name, msg, sizeof(msg));
	snprintf(type, sizeof(type), "control.%s", what);
	/* As for unlock, lock and release: a volume keyd does not have is a 404, not a record. */
	if (r != -ENOENT)
		audit_request(k, type, r < 0 ? "failure" : "success", p, keyd_find_volume(k, name),
			      r < 0 ? msg : NULL);
	if (r < 0)
		return reply_error(req, r == -ENOENT ? HTTP_NOTFOUND : 503, "%s", msg);
	reply_json(req, 202, json_pack("{s:s, s:s}", "volume", name, "result", msg));
}

static void handle_suspend(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			   const char *name)
{
	lifecycle_action(k, req, p, name, LIFECYCLE_SUSPEND, "suspend");
}

static void handle_resume(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			  const char *name)
{
	lifecycle_action(k, req, p, name, LIFECYCLE_RESUME, "resume");
}

static void handle_release(struct keyd *k, struct evhttp_request *req, const struct peer *p,
			   const char *name)
{
	json_t *report = NULL;
	struct error err;
	struct volume *v;
	int r;

	v = volume_locked(k, req, name);
	if (!v)
		return;
	log_info("%s: release requested by uid %u (pid %d)", v->name, p->uid, (int)p->pid);
	r = keyd_release_volume(k, v, &err, &report);
	if (r < 0)
		reply_error(req, r == -EBUSY ? 409 : HTTP_INTERNAL, "%s", err.msg);
	else
		reply_json(req, HTTP_OK,
			   json_pack("{s:o, s:O}", "volume", api_volume_json(k, v), "released",
				     report));
	pthread_mutex_unlock(&k->lock);
	{
		json_auto_t *subject = peer_subject(p);

		keyd_audit(k, "volume.release", r < 0 ? "failure" : "success", subject, v, report,
			   r < 0 ? err.msg : NULL);
	}
	json_decref(report);
	event_active(k->wake, EV_READ, 0);
}

static const struct route routes[] = {
	{.method = EVHTTP_REQ_GET,
	 .prefix = "/v1/status",
	 .op = CONTROL_STATUS,
	 .handler = handle_status},
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
static bool peer_may(struct keyd *k, const struct peer *p, enum control_op op, const char *volume)
{
	struct group *g;

	if (p->uid == 0)
		return true;
	g = getgrnam(k->cfg->control_group);
	if (op == CONTROL_STATUS && g && peer_in_group(p, g->gr_gid))
		return true;
	for (size_t i = 0; i < k->cfg->n_policy; i++) {
		const struct policy_rule *r = &k->cfg->policy[i];
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

static void on_request(struct evhttp_request *req, void *u)
{
	struct keyd *k = u;
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
		if (!peer_may(k, &p, r->op, r->suffix ? arg : NULL)) {
			char why[128];

			snprintf(why, sizeof(why), "%s%s%s not granted to uid %u",
				 control_op_names[r->op], r->suffix ? " of " : "",
				 r->suffix ? arg : "", p.uid);
			log_notice("control API: refused %s from uid %u (pid %d): %s", path, p.uid,
				   (int)p.pid, why);
			audit_request(k, "control.refused", "refused", &p,
				      r->suffix ? keyd_find_volume(k, arg) : NULL, why);
			return reply_error(req, 403,
					   "permission denied: %s (root, or a control.policy "
					   "rule, may; group '%s' may read status)",
					   why, k->cfg->control_group);
		}
		return r->handler(k, req, &p, arg);
	}
	if (path_known)
		return reply_error(req, 405, "method not allowed on %s", path);
	reply_error(req, HTTP_NOTFOUND, "no such endpoint: %s", path ? path : "(none)");
}

static int socket_create(const char *path, const char *group, bool open_to_all)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	struct group *g;
	char *slash;

	if (!dir || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(negative_errno(), "cannot create %s: %m", dir);
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	/* A stale socket from a previous run would make bind fail. */
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(negative_errno(), "cannot remove old %s: %m", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(negative_errno(), "cannot bind %s: %m", path);
	g = getgrnam(group);
	if (g && chown(path, 0, g->gr_gid) < 0)
		return log_error_errno(negative_errno(), "cannot chown %s: %m", path);
	/* With a policy, callers outside the group may be granted something: keyd checks every
	 * caller's credentials itself, so the file mode need not keep them out. */
	if (chmod(path, open_to_all ? 0666 : g ? 0660 : 0600) < 0)
		return log_error_errno(negative_errno(), "cannot chmod %s: %m", path);
	if (!g)
		log_notice("group '%s' does not exist: the control socket is root-only", group);
	if (listen(fd, 64) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

int api_setup(struct keyd *k)
{
	struct api *a = calloc(1, sizeof(*a));
	int fd;

	if (!a)
		return -ENOMEM;
	k->api = a;
	a->fd = -1;
	fd = socket_create(k->cfg->socket_path, k->cfg->control_group, k->cfg->n_policy > 0);
	if (fd < 0)
		return fd;
	a->fd = fd;
	a->path = strdup(k->cfg->socket_path);
	a->http = evhttp_new(k->base);
	if (!a->http || !a->path)
		return -ENOMEM;
	evhttp_set_max_body_size(a->http, API_BODY_MAX);
	evhttp_set_max_headers_size(a->http, 16 * 1024);
	evhttp_set_timeout(a->http, 600);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(a->http, on_request, k);
	if (!evhttp_accept_socket_with_handle(a->http, fd))
		return -EIO;
	log_info("control API listening on %s", k->cfg->socket_path);
	return 0;
}

void api_done(struct keyd *k)
{
	struct api *a = k->api;

	if (!a)
		return;
	if (a->http)
		evhttp_free(a->http);
	else if (a->fd >= 0)
		close(a->fd);
	if (a->path)
		unlink(a->path);
	free(a->path);
	free(a);
	k->api = NULL;
}
