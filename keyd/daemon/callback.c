// SPDX-License-Identifier: GPL-2.0-or-later
/* The event endpoint's listener (evhttp over OpenSSL): allow-list and connection caps at
 * accept (before TLS), one deadline for the whole connection, lockout, route, size cap,
 * signature, freshness, replay (callback_auth.c), schema (event.c), then the daemon's handler;
 * every attempt audited, repeated refusals summarised (noise.c). No hand-written HTTP; no
 * secret in any log. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "callback.h"
#include "callback_auth.h"
#include "conn_limit.h"
#include "log.h"
#include "messages.h"
#include "noise.h"
#include "secmem.h"
#include "util.h"

#define CALLBACK_HEADERS_MAX (8 * 1024)
#define CALLBACK_TICK_MS     500 /* listener resumed, audit summaries written */
#define CALLBACK_BACKLOG     64
#define CALLBACK_REASON_MAX  512
#define CALLBACK_DN_MAX	     256
#define CALLBACK_AUDIT_TYPE  "callback.event"
/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are OpenSSL's defaults. */
#define CALLBACK_TLS12_CIPHERS                                                                     \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct callback {
	unsigned refs; /* the owner's, and one per open connection */
	bool stopped;
	const struct callback_config *cfg;
	struct evhttp *http;
	SSL_CTX *ssl_ctx;
	uint8_t *secret; /* secure memory */
	size_t secret_len;
	struct audit *audit;
	callback_event_fn fn;
	void *userdata;
	struct callback_replay *replay;
	struct callback_lockout *lockout;
	struct conn_limit *conns; /* admitted connections, in all and per address */
	struct noise *noise;	  /* refusals, summarised */
	struct event *tick;
	struct evhttp_bound_socket *bound;
	struct metrics *metrics; /* NULL: nobody counts */
	uint16_t port;
	/* The replay cache lives in memory: whatever was signed before this start may have been
	 * accepted by the keyd before, so it is refused. */
	uint64_t started_s;
};

/* One TLS connection, hung on its SSL object: the SSL's end is the connection's end, which
 * is how attempts that never become a request (failed handshakes, requests libevent refused
 * itself) are still audited. */
struct callback_conn {
	struct callback *cb;
	SSL *ssl;
	struct event *timer; /* first the admission (at once), then the deadline */
	struct sockaddr_storage peer;
	char peer_str[KEY_EVENT_SOURCE_MAX + 1];
	struct conn_source source;
	bool admission_done; /* the peer is known and was checked (at accept) */
	bool allowed;	     /* ... and admitted: allow-list, caps */
	bool ended;	     /* an outcome was recorded: nothing more to audit at the end */
	bool timed_out;
	bool hello; /* a ClientHello arrived */
	bool handshake_done;
	bool answered;	/* a request reached on_request (which audits it) */
	bool cert_seen; /* the peer presented a certificate */
	int verify_err;
	int alert;	 /* the last TLS alert of the handshake, or -1 */
	bool alert_sent; /* ... sent by us, else received */
};

/* Every outcome: its name, the HTTP status it answers with (0: none, the connection is
 * closed), and whether it counts towards the source's lockout. Only failures of authentication
 * count (a signature that does not match, a client certificate that does not verify): they are
 * what a lockout slows down, guessing. Transport noise (handshakes that fail or never happen,
 * timeouts, malformed HTTP) costs an attacker at the control plane's address nothing, so
 * counting it would let anyone there lock the control plane out. A sender that holds the secret
 * gains nothing from guessing, so refusals after a valid signature do not count either. */
static const struct {
	const char *name;
	int status;
	const char *phrase;
	bool counts;
	const char *result;	      /* the audit record's; NULL: "refused" */
	enum metrics_callback metric; /* keyd_callback_requests_total's outcome */
} outcomes[_CALLBACK_OUTCOME_MAX] = {
	[CALLBACK_ACCEPTED] = {"accepted", 202, "Accepted", false, "success",
			       METRICS_CALLBACK_ACCEPTED},
	[CALLBACK_FAILED] = {"failed", 500, "Internal Server Error", false, "failure",
			     METRICS_CALLBACK_FAILED},
	[CALLBACK_NOT_ALLOWED] = {"not_allowed", 0, NULL, false, NULL,
				  METRICS_CALLBACK_NOT_ALLOWED},
	[CALLBACK_TOO_MANY] = {"too_many_connections", 0, NULL, false, NULL,
			       METRICS_CALLBACK_NOT_ALLOWED},
	[CALLBACK_HANDSHAKE_FAILED] = {"handshake_failed", 0, NULL, false, NULL,
				       METRICS_CALLBACK_TLS},
	[CALLBACK_BAD_CLIENT_CERT] = {"bad_client_certificate", 0, NULL, true, NULL,
				      METRICS_CALLBACK_TLS},
	[CALLBACK_TIMEOUT] = {"timeout", 0, NULL, false, NULL, METRICS_CALLBACK_MALFORMED},
	[CALLBACK_INCOMPLETE] = {"incomplete", 0, NULL, false, NULL, METRICS_CALLBACK_MALFORMED},
	[CALLBACK_LOCKED_OUT] = {"locked_out", 429, "Too Many Requests", false, NULL,
				 METRICS_CALLBACK_LOCKED_OUT},
	[CALLBACK_NOT_FOUND] = {"not_found", 404, "Not Found", false, NULL,
				METRICS_CALLBACK_NOT_FOUND},
	[CALLBACK_METHOD] = {"method_not_allowed", 405, "Method Not Allowed", false, NULL,
			     METRICS_CALLBACK_NOT_FOUND},
	[CALLBACK_TOO_BIG] = {"too_big", 413, "Payload Too Large", false, NULL,
			      METRICS_CALLBACK_TOO_BIG},
	[CALLBACK_HEADER] = {"bad_header", 400, "Bad Request", false, NULL,
			     METRICS_CALLBACK_MALFORMED},
	[CALLBACK_UNSIGNED] = {"unsigned", 401, "Unauthorized", false, NULL,
			       METRICS_CALLBACK_UNSIGNED},
	[CALLBACK_FORGED] = {"forged", 403, "Forbidden", true, NULL, METRICS_CALLBACK_FORGED},
	[CALLBACK_TIMESTAMP] = {"bad_timestamp", 400, "Bad Request", false, NULL,
				METRICS_CALLBACK_EXPIRED},
	[CALLBACK_EXPIRED] = {"expired", 400, "Bad Request", false, NULL, METRICS_CALLBACK_EXPIRED},
	[CALLBACK_MALFORMED] = {"malformed", 400, "Bad Request", false, NULL,
				METRICS_CALLBACK_MALFORMED},
	[CALLBACK_REPLAY] = {"replay", 409, "Conflict", false, NULL, METRICS_CALLBACK_REPLAYED},
	[CALLBACK_INTERNAL] = {"internal_error", 500, "Internal Server Error", false, "failure",
			       METRICS_CALLBACK_INTERNAL},
};

const char *callback_outcome_name(enum callback_outcome o)
{
	return o < _CALLBACK_OUTCOME_MAX ? outcomes[o].name : "unknown";
}

/* One request on its way through the checks; what the audit record and the reply say. */
struct attempt {
	struct callback *cb;
	struct evhttp_request *req;
	const struct sockaddr *peer;
	const char *peer_str;
	char client_cert[CALLBACK_DN_MAX];
	uint8_t cert_id[CALLBACK_LOCKOUT_ID_LEN]; /* SHA-256 of the verified certificate ... */
	bool have_cert_id;			  /* ... if there is one */
	const void *body;			  /* the request's, len bytes */
	size_t len;
	const char *timestamp; /* the signed timestamp header */
	uint64_t ts, now_s;    /* ... as Unix seconds, and this host's clock */
	struct key_event ev;   /* filled as far as the checks got */
	bool have_id, have_event;
};

/* OpenSSL's slot for our conn on each SSL: registered once per process, like OpenSSL's own. */
static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

static void callback_unref(struct callback *cb)
{
	if (--cb->refs > 0)
		return;
	if (cb->ssl_ctx)
		SSL_CTX_free(cb->ssl_ctx);
	secmem_free(cb->secret);
	callback_replay_free(cb->replay);
	callback_lockout_free(cb->lockout);
	conn_limit_free(cb->conns);
	free(cb);
}

/* Messages may quote what a sender wrote; keep them to one line of printable text. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* The peer's address without its port, for the noise and lockout keys. */
static void source_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	uint8_t a[16];
	int family;

	if (callback_addr_key(sa, &family, a) < 0 || !inet_ntop(family, a, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

/* Whether a refusal is the first of its kind (outcome, address) in the noise interval: else it
 * is only counted, for the summary. */
static bool refusal_is_news(struct callback *cb, const struct sockaddr *sa, enum callback_outcome o,
			    json_t *subject, const char *error)
{
	char key[NOISE_KEY_MAX + 1], ip[INET6_ADDRSTRLEN];

	if (!cb->noise)
		return false; /* stopped */
	source_ip(sa, ip, sizeof(ip));
	snprintf(key, sizeof(key), "%s %s", ip, outcomes[o].name);
	return noise_note(cb->noise, key, CALLBACK_AUDIT_TYPE, subject, error, now_mono_us());
}

/* Writes one attempt's record; refusals go through the noise table, so that a repeat within
 * its interval is only counted. True when a record was written now (then the caller logs). */
static bool audit_attempt(struct callback *cb, const struct sockaddr *sa, const char *peer,
			  const char *client_cert, const struct attempt *a, enum callback_outcome o,
			  const char *error)
{
	const char *result = outcomes[o].result ? outcomes[o].result : "refused";
	json_t *subject, *object = NULL;
	bool written = true;
	int r = 0;

	/* Every outcome passes here once: counted before the audit log summarises repeats. */
	metrics_count_callback(cb->metrics, outcomes[o].metric);
	subject = json_pack("{s:s, s:s*}", "peer", peer, "client_cert",
			    client_cert && client_cert[0] ? client_cert : NULL);
	if (a && a->have_id)
		object = json_pack("{s:s, s:s*, s:s*, s:s*}", "event_id", a->ev.id, "type",
				   a->have_event ? key_event_type_names[a->ev.type] : NULL,
				   "key_id", a->have_event ? a->ev.key_id : NULL, "kms",
				   a->have_event && a->ev.kms[0] ? a->ev.kms : NULL);
	if (!subject)
		r = -ENOMEM;
	else if (!outcomes[o].result && sa)
		written = refusal_is_news(cb, sa, o, subject, error);
	if (subject && written && cb->audit)
		r = audit_write(cb->audit, CALLBACK_AUDIT_TYPE, result, subject, object, error);
	if (r < 0)
		log_error_errno(r, "callback: cannot write the audit record for %s: %m", peer);
	json_decref(subject);
	json_decref(object);
	return written;
}

static void lockout_count(struct callback *cb, const struct sockaddr *peer, const uint8_t *id,
			  const char *peer_str)
{
	if (callback_lockout_fail(cb->lockout, peer, id, now_mono_us()))
		log_warning("callback: %s locked out for %llu s after %u failures", peer_str,
			    (unsigned long long)(cb->cfg->lockout.duration_us / 1000000),
			    cb->cfg->lockout.failures);
}

/* Why a handshake failed, as far as the connection saw it. */
static void handshake_failure(const struct callback_conn *c, char *buf, size_t size)
{
	size_t n;

	if (c->verify_err) {
		snprintf(buf, size, "TLS handshake failed: client certificate: %s",
			 X509_verify_cert_error_string(c->verify_err));
		return;
	}
	n = (size_t)snprintf(buf, size, "TLS handshake failed");
	if (c->alert >= 0 && n < size)
		/* OpenSSL 3.0 has no name for TLS 1.3's alert 116 */
		n += (size_t)snprintf(buf + n, size - n, " (%s alert: %s)",
				      c->alert_sent ? "sent" : "the client sent",
				      c->alert == SSL_AD_CERTIFICATE_REQUIRED
					      ? "certificate required"
					      : SSL_alert_desc_string_long(c->alert));
	if (c->cb->cfg->client_ca_file && !c->cert_seen && n < size)
		snprintf(buf + n, size - n, "; no client certificate was presented");
}

/* Records how a connection that was admitted but never answered ended. */
static void conn_record_end(struct callback_conn *conn)
{
	struct callback *cb = conn->cb;
	const struct sockaddr *sa = (const struct sockaddr *)&conn->peer;
	char why[CALLBACK_REASON_MAX];
	enum callback_outcome o;

	/* A TCP connect that sent nothing and went away (a health check) is no attempt. */
	if (!conn->hello && !conn->timed_out)
		return;
	if (conn->timed_out) {
		o = CALLBACK_TIMEOUT;
		snprintf(why, sizeof(why),
			 "request_timeout_s (%llu s) passed before the request was complete",
			 (unsigned long long)cb->cfg->request_timeout_s);
	} else if (conn->handshake_done) {
		o = CALLBACK_INCOMPLETE;
		snprintf(why, sizeof(why), "%s",
			 "connection closed without a complete request (malformed HTTP, "
			 "body over max_body_bytes, or timeout)");
	} else {
		o = conn->verify_err ? CALLBACK_BAD_CLIENT_CERT : CALLBACK_HANDSHAKE_FAILED;
		handshake_failure(conn, why, sizeof(why));
	}
	if (audit_attempt(cb, sa, conn->peer_str, NULL, NULL, o, why))
		log_notice("callback: refused %s: %s", conn->peer_str, why);
	if (outcomes[o].counts)
		lockout_count(cb, sa, NULL, conn->peer_str);
}

static void conn_end(struct callback_conn *conn)
{
	struct callback *cb = conn->cb;

	if (!cb->stopped && conn->allowed && !conn->ended)
		conn_record_end(conn);
	if (conn->allowed)
		conn_limit_release(cb->conns, &conn->source);
	if (conn->timer)
		event_free(conn->timer);
	callback_unref(cb);
	free(conn);
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	(void)parent;
	if (ptr) /* every SSL in the process passes here; ours carry a conn */
		conn_end(ptr);
}

static void conn_index_init(void)
{
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
}

static struct callback_conn *conn_of_ssl(const SSL *ssl)
{
	return ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

/* Ends a connection from outside libevent's callbacks: its next read sees end of file, and
 * evhttp frees it (and with it the SSL and this conn) in its own time. */
static void conn_shut(struct callback_conn *conn)
{
	int fd = SSL_get_fd(conn->ssl);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static const char *const too_many_why[] = {
	[CONN_TOO_MANY] = "max_connections reached",
	[CONN_TOO_MANY_FROM_SOURCE] = "max_connections_per_source reached",
	[CONN_NO_DESCRIPTORS] = "file descriptors running out",
};

/* The allow-list and the connection caps, once the peer is known: at accept, before a byte
 * is read. A refused connection is closed with no TLS and no HTTP; true if admitted. */
static bool conn_admit(struct callback_conn *conn)
{
	struct callback *cb = conn->cb;
	struct sockaddr *sa = (struct sockaddr *)&conn->peer;
	socklen_t len = sizeof(conn->peer);
	int fd = SSL_get_fd(conn->ssl), family;
	enum conn_verdict v;
	char why[128];

	if (conn->admission_done || cb->stopped)
		return conn->allowed;
	conn->admission_done = true;
	if (fd < 0 || getpeername(fd, sa, &len) < 0)
		return false;
	callback_addr_format(sa, conn->peer_str, sizeof(conn->peer_str));
	if (!callback_config_allows(cb->cfg, sa)) {
		conn->ended = true;
		if (audit_attempt(cb, sa, conn->peer_str, NULL, NULL, CALLBACK_NOT_ALLOWED,
				  "peer not in callback.allow"))
			log_debug("callback: refused %s: not in the allow-list", conn->peer_str);
		return false;
	}
	conn->source.len = 1 + 16;
	if (callback_addr_key(sa, &family, conn->source.key + 1) < 0)
		return false;
	conn->source.key[0] = (uint8_t)family;
	v = conn_limit_admit(cb->conns, &conn->source, fd);
	if (v != CONN_ADMITTED) {
		conn->ended = true;
		snprintf(why, sizeof(why), "connection closed at accept: %s", too_many_why[v]);
		if (audit_attempt(cb, sa, conn->peer_str, NULL, NULL, CALLBACK_TOO_MANY, why))
			log_warning("callback: refused %s: %s", conn->peer_str, why);
		return false;
	}
	conn->allowed = true;
	return true;
}

/* First (at once, on the loop's next turn after accept) the admission; then the deadline of
 * the whole connection, which no byte the peer sends postpones. */
static void conn_on_timer(evutil_socket_t fd, short what, void *u)
{
	struct callback_conn *conn = u;
	struct timeval deadline = {(time_t)conn->cb->cfg->request_timeout_s, 0};

	(void)fd;
	(void)what;
	if (conn->cb->stopped)
		return;
	if (!conn->admission_done) {
		if (conn_admit(conn))
			evtimer_add(conn->timer, &deadline);
		else
			conn_shut(conn);
		return;
	}
	conn->timed_out = !conn->answered;
	conn_shut(conn);
}

/* evhttp asks for each accepted connection's bufferevent: a TLS one in accepting state. Its
 * socket is set right after this returns, so the admission runs on the loop's next turn. */
static struct bufferevent *conn_new(struct event_base *base, void *u)
{
	struct callback *cb = u;
	struct callback_conn *conn = calloc(1, sizeof(*conn));
	SSL *ssl = conn ? SSL_new(cb->ssl_ctx) : NULL;
	const struct timeval now = {0, 0};

	/* NULL makes evhttp fall back to plain TCP; on_request refuses such connections. */
	if (!ssl) {
		free(conn);
		return NULL;
	}
	conn->cb = cb;
	conn->ssl = ssl;
	conn->alert = -1;
	conn->timer = evtimer_new(base, conn_on_timer, conn);
	cb->refs++;
	if (!conn->timer || !SSL_set_ex_data(ssl, conn_index, conn)) {
		if (conn->timer)
			event_free(conn->timer);
		callback_unref(cb);
		free(conn);
		SSL_free(ssl);
		return NULL;
	}
	evtimer_add(conn->timer, &now);
	/* On failure libevent frees the SSL (BEV_OPT_CLOSE_ON_FREE), and with it the conn. */
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

/* The admission again, should the ClientHello be read before the timer ran: nothing is
 * signed or answered for a peer that is not admitted. */
static int on_client_hello(SSL *ssl, int *alert, void *u)
{
	struct callback_conn *conn = conn_of_ssl(ssl);
	const struct timeval deadline = {conn ? (time_t)conn->cb->cfg->request_timeout_s : 0, 0};
	bool first;

	(void)u;
	if (!conn) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	conn->hello = true;
	first = !conn->admission_done;
	if (conn_admit(conn)) {
		if (first)
			evtimer_add(conn->timer, &deadline);
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	*alert = SSL_AD_ACCESS_DENIED;
	return SSL_CLIENT_HELLO_ERROR;
}

static void on_tls_info(const SSL *ssl, int where, int ret)
{
	struct callback_conn *conn = conn_of_ssl(ssl);

	if (!conn)
		return;
	if (where & SSL_CB_HANDSHAKE_DONE)
		conn->handshake_done = true;
	if ((where & SSL_CB_ALERT) && !conn->handshake_done) {
		conn->alert = ret & 0xff;
		conn->alert_sent = where & SSL_CB_WRITE;
	}
}

static int on_verify(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct callback_conn *conn = conn_of_ssl(ssl);

	if (!conn)
		return ok;
	conn->cert_seen = true;
	if (!ok && !conn->verify_err)
		conn->verify_err = X509_STORE_CTX_get_error(x);
	return ok;
}

static SSL *request_ssl(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	return evcon ? bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)) : NULL;
}

/* The verified client certificate's subject, RFC 2253, escaped to ASCII by OpenSSL. */
static void client_dn(SSL *ssl, char *buf, size_t size)
{
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	BIO *b;
	int n;

	buf[0] = 0;
	if (!x || !(b = BIO_new(BIO_s_mem())))
		return;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, buf, (int)size - 1);
		buf[n > 0 ? n : 0] = 0;
		sanitize(buf);
	}
	BIO_free(b);
}

/* The SHA-256 of the verified client certificate: the identity the lockout keys on. */
static bool client_cert_id(SSL *ssl, uint8_t id[CALLBACK_LOCKOUT_ID_LEN])
{
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	unsigned n = 0;

	return x && SSL_get_verify_result(ssl) == X509_V_OK &&
	       X509_digest(x, EVP_sha256(), id, &n) == 1 && n == CALLBACK_LOCKOUT_ID_LEN;
}

static void reply(struct evhttp_request *req, int status, const char *phrase, json_t *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

	evhttp_add_header(h, "Content-Type", "application/json");
	/* One attempt per connection: every attempt meets the allow-list and TLS afresh. */
	evhttp_add_header(h, "Connection", "close");
	if (b && s) {
		evbuffer_add(b, s, strlen(s));
		evbuffer_add(b, "\n", 1);
	}
	evhttp_send_reply(req, status, phrase, b);
	secmem_free(s); /* jansson allocates from the secure heap */
	if (b)
		evbuffer_free(b);
	json_decref(body);
}

/* Answers, logs, audits and counts one refusal; false, so that a check can return it. */
static bool refuse(struct attempt *a, enum callback_outcome why, const char *fmt, ...)
	_printf_(3, 4);
static bool refuse(struct attempt *a, enum callback_outcome why, const char *fmt, ...)
{
	char msg[CALLBACK_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sanitize(msg);
	if (audit_attempt(a->cb, a->peer, a->peer_str, a->client_cert, a, why, msg))
		log_struct(LOG_NOTICE, 0, MESSAGE_CALLBACK_REFUSED,
			   (const char *const[]){
				   "KMS", a->have_event && a->ev.kms[0] ? a->ev.kms : NULL,
				   "KEY_ID", a->have_event ? a->ev.key_id : NULL, NULL},
			   "callback: refused %s%s%s: %s", a->peer_str, a->have_id ? " event " : "",
			   a->have_id ? a->ev.id : "", msg);
	if (outcomes[why].counts)
		lockout_count(a->cb, a->peer, a->have_cert_id ? a->cert_id : NULL, a->peer_str);
	reply(a->req, outcomes[why].status, outcomes[why].phrase,
	      json_pack("{s:s, s:s*}", "error", msg, "id", a->have_id ? a->ev.id : NULL));
	return false;
}

/* The one header of that name; NULL if absent, *dup if it came more than once. */
static const char *header_one(struct evkeyvalq *h, const char *name, bool *dup)
{
	const char *v = NULL;
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, h, next)
	if (strcasecmp(kv->key, name) == 0) {
		if (v)
			*dup = true;
		v = kv->value;
	}
	return v;
}

static void deliver(struct attempt *a)
{
	struct callback *cb = a->cb;
	char msg[CALLBACK_REASON_MAX] = "";
	int r, status;

	a->ev.origin = KEY_EVENT_FROM_CALLBACK;
	snprintf(a->ev.source, sizeof(a->ev.source), "%s", a->peer_str);
	r = cb->fn(cb->userdata, &a->ev, msg, sizeof(msg));
	sanitize(msg);
	if (r >= 0) {
		/* Remembered only once acted on: a sender may retry what failed. */
		if (callback_replay_add(cb->replay, a->ev.id, a->ts + cb->cfg->replay_window_s) < 0)
			log_error("callback: cannot remember event id %s", a->ev.id);
		log_info("callback: %s event %s for key %s from %s accepted%s%s",
			 key_event_type_names[a->ev.type], a->ev.id, a->ev.key_id, a->peer_str,
			 msg[0] ? ": " : "", msg);
		audit_attempt(cb, a->peer, a->peer_str, a->client_cert, a, CALLBACK_ACCEPTED, NULL);
		reply(a->req, 202, "Accepted",
		      json_pack("{s:s, s:s, s:s}", "id", a->ev.id, "result", "accepted", "message",
				msg));
		return;
	}
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", strerror(-r));
	status = r == -EAGAIN || r == -EBUSY ? 503 : 500;
	log_error("callback: %s event %s for key %s from %s failed: %s",
		  key_event_type_names[a->ev.type], a->ev.id, a->ev.key_id, a->peer_str, msg);
	audit_attempt(cb, a->peer, a->peer_str, a->client_cert, a, CALLBACK_FAILED, msg);
	reply(a->req, status, status == 503 ? "Service Unavailable" : "Internal Server Error",
	      json_pack("{s:s, s:s, s:s}", "id", a->ev.id, "result", "failed", "error", msg));
}

/* A request over plain TCP: no TLS bufferevent could be made for it (out of memory). */
static void refuse_without_tls(struct callback *cb, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;
	char peer[KEY_EVENT_SOURCE_MAX + 1] = "?";

	if (sa)
		callback_addr_format(sa, peer, sizeof(peer));
	log_error("callback: refused %s: no TLS state (out of memory)", peer);
	audit_attempt(cb, sa, peer, NULL, NULL, CALLBACK_INTERNAL, "no TLS state (out of memory)");
	reply(req, 500, "Internal Server Error", NULL);
}

/* A source that failed too often is refused before anything else is looked at. */
static bool check_lockout(struct attempt *a)
{
	uint64_t left = callback_lockout_remaining(
		a->cb->lockout, a->peer, a->have_cert_id ? a->cert_id : NULL, now_mono_us());
	char after[24];

	if (left == 0)
		return true;
	snprintf(after, sizeof(after), "%llu", (unsigned long long)(left + 999999) / 1000000);
	evhttp_add_header(evhttp_request_get_output_headers(a->req), "Retry-After", after);
	return refuse(a, CALLBACK_LOCKED_OUT, "locked out after repeated failures; retry in %s s",
		      after);
}

/* POST to the one path, the body within max_body_bytes; the body goes to a->body. */
static bool check_request(struct attempt *a)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(a->req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(a->req);
	uint64_t max = a->cb->cfg->max_body_bytes;

	if (!path || strcmp(path, CALLBACK_PATH) != 0)
		return refuse(a, CALLBACK_NOT_FOUND, "no such endpoint (only POST %s)",
			      CALLBACK_PATH);
	if (evhttp_request_get_command(a->req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(a->req), "Allow", "POST");
		return refuse(a, CALLBACK_METHOD, "method not allowed (only POST %s)",
			      CALLBACK_PATH);
	}
	a->len = evbuffer_get_length(in);
	if (a->len > max)
		return refuse(a, CALLBACK_TOO_BIG, "body larger than %llu bytes",
			      (unsigned long long)max);
	a->body = a->len ? (const void *)evbuffer_pullup(in, -1) : "";
	if (!a->body)
		return refuse(a, CALLBACK_INTERNAL, "out of memory");
	return true;
}

/* The HMAC over timestamp and body: the sender holds the secret. Its failures count towards
 * the lockout; its success clears the source's count. */
static bool check_signature(struct attempt *a)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(a->req);
	struct callback *cb = a->cb;
	bool dup = false;
	const char *sig;
	int r;

	a->timestamp = header_one(h, CALLBACK_HEADER_TIMESTAMP, &dup);
	sig = header_one(h, CALLBACK_HEADER_SIGNATURE, &dup);
	if (dup)
		return refuse(a, CALLBACK_HEADER, "%s or %s given more than once",
			      CALLBACK_HEADER_TIMESTAMP, CALLBACK_HEADER_SIGNATURE);
	r = callback_signature_check(cb->secret, cb->secret_len, a->timestamp, a->body, a->len,
				     sig);
	if (r == -ENOKEY)
		return refuse(a, CALLBACK_UNSIGNED, "unsigned: %s and %s are required",
			      CALLBACK_HEADER_TIMESTAMP, CALLBACK_HEADER_SIGNATURE);
	if (r == -EBADMSG)
		return refuse(a, CALLBACK_FORGED, "signature does not match");
	if (r < 0)
		return refuse(a, CALLBACK_INTERNAL, "cannot compute HMAC: %s", strerror(-r));
	callback_lockout_success(cb->lockout, a->peer, a->have_cert_id ? a->cert_id : NULL);
	return true;
}

/* The signed timestamp within replay_window_s of this host's clock. */
static bool check_fresh(struct attempt *a)
{
	uint64_t window = a->cb->cfg->replay_window_s;
	int r;

	a->now_s = now_real_us() / 1000000;
	r = callback_timestamp_check(a->timestamp, a->now_s, window, &a->ts);
	if (r == -ETIME)
		return refuse(a, CALLBACK_EXPIRED,
			      "expired: %s is more than %llu s away from this host's clock",
			      CALLBACK_HEADER_TIMESTAMP, (unsigned long long)window);
	if (r < 0)
		return refuse(a, CALLBACK_TIMESTAMP, "%s must be Unix seconds",
			      CALLBACK_HEADER_TIMESTAMP);
	if (a->ts < a->cb->started_s)
		return refuse(a, CALLBACK_EXPIRED,
			      "expired: signed before keyd started (%llu < %llu), so a replay "
			      "cannot be ruled out",
			      (unsigned long long)a->ts, (unsigned long long)a->cb->started_s);
	return true;
}

/* The body as an event: its id first (not seen before), then the whole schema. */
static bool read_event(struct attempt *a)
{
	json_auto_t *root = NULL;
	json_error_t jerr;
	struct error je;
	const char *id;

	root = json_loadb(a->body, a->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return refuse(a, CALLBACK_MALFORMED, "body is not JSON: %d:%d: %s", jerr.line,
			      jerr.column, jerr.text);
	if (!json_is_object(root))
		return refuse(a, CALLBACK_MALFORMED, "event: must be an object");
	if (jx_string(root, "event", "id", true, KEY_EVENT_ID_MAX, &id, &je) < 0 ||
	    key_event_id_check(id, &je) < 0)
		return refuse(a, CALLBACK_MALFORMED, "%s", je.msg);
	snprintf(a->ev.id, sizeof(a->ev.id), "%s", id);
	a->have_id = true;
	if (callback_replay_seen(a->cb->replay, a->ev.id, a->now_s))
		return refuse(a, CALLBACK_REPLAY, "replay: event %s was already accepted",
			      a->ev.id);
	if (key_event_from_json(root, &a->ev, &je) < 0)
		return refuse(a, CALLBACK_MALFORMED, "%s", je.msg);
	a->have_event = true;
	return true;
}

/* Each request meets the checks in the order the file head gives; the first to fail answers. */
static void on_request(struct evhttp_request *req, void *u)
{
	struct callback *cb = u;
	struct attempt a = {.cb = cb, .req = req};
	SSL *ssl = request_ssl(req);
	struct callback_conn *conn = conn_of_ssl(ssl);

	if (!conn || !conn->allowed)
		return refuse_without_tls(cb, req);
	conn->answered = true;
	conn->ended = true;
	a.peer = (const struct sockaddr *)&conn->peer;
	a.peer_str = conn->peer_str;
	client_dn(ssl, a.client_cert, sizeof(a.client_cert));
	a.have_cert_id = client_cert_id(ssl, a.cert_id);
	if (check_lockout(&a) && check_request(&a) && check_signature(&a) && check_fresh(&a) &&
	    read_event(&a))
		deliver(&a);
}

static int tls_error(struct error *err, const char *what, const char *file)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return error_set(err, -EINVAL, "callback: %s %s: %s", what, file, buf);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static int tls_setup(struct callback *cb, struct error *err)
{
	const struct callback_config *c = cb->cfg;
	_cleanup_secure_ uint8_t *pem = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio;
	size_t n;
	int r;

	cb->ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (!cb->ssl_ctx)
		return error_set(err, -ENOMEM, "callback: cannot create the TLS context");
	if (!SSL_CTX_set_min_proto_version(cb->ssl_ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(cb->ssl_ctx, CALLBACK_TLS12_CIPHERS))
		return error_set(err, -EIO, "callback: cannot set the TLS versions and ciphers");
	SSL_CTX_set_options(cb->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
						 SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(cb->ssl_ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(cb->ssl_ctx, c->cert_file) != 1)
		return tls_error(err, "cannot load cert_file", c->cert_file);
	r = read_credential(c->key_file, false, &pem, &n, err);
	if (r < 0)
		return error_prefix(err, r, "callback: cannot read key_file %s", c->key_file);
	bio = BIO_new_mem_buf(pem, (int)n);
	if (bio)
		key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!key)
		return tls_error(err, "cannot load key_file (PEM, unencrypted)", c->key_file);
	r = SSL_CTX_use_PrivateKey(cb->ssl_ctx, key);
	EVP_PKEY_free(key);
	if (r != 1 || SSL_CTX_check_private_key(cb->ssl_ctx) != 1)
		return tls_error(err, "key_file does not match cert_file:", c->key_file);
	if (c->client_ca_file) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->client_ca_file);

		if (!names ||
		    SSL_CTX_load_verify_locations(cb->ssl_ctx, c->client_ca_file, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			return tls_error(err, "cannot load client_ca_file", c->client_ca_file);
		}
		SSL_CTX_set_client_CA_list(cb->ssl_ctx, names);
		SSL_CTX_set_verify(cb->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   on_verify);
		SSL_CTX_set_verify_depth(cb->ssl_ctx, 4);
	}
	SSL_CTX_set_client_hello_cb(cb->ssl_ctx, on_client_hello, cb);
	SSL_CTX_set_info_callback(cb->ssl_ctx, on_tls_info);
	return 0;
}

static int listen_socket(const struct callback_config *c, struct sockaddr_storage *ss)
{
	_cleanup_close_ int fd = -1;
	socklen_t len = sizeof(*ss);
	int one = 1;

	fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return negative_errno();
	/* [::] means IPv6 only; IPv4 peers need their own listen address. */
	if (c->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return negative_errno();
	if (bind(fd, (const struct sockaddr *)&c->addr, c->addr_len) < 0 ||
	    listen(fd, CALLBACK_BACKLOG) < 0 || getsockname(fd, (struct sockaddr *)ss, &len) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

/* The HMAC secret, into secure memory: at least CALLBACK_SECRET_MIN bytes. */
static int read_secret(struct callback *cb, struct error *err)
{
	const char *file = cb->cfg->hmac_secret_file;
	int r;

	r = read_credential(file, true, &cb->secret, &cb->secret_len, err);
	if (r < 0)
		return error_prefix(err, r, "callback: cannot read hmac_secret_file %s", file);
	if (cb->secret_len < CALLBACK_SECRET_MIN)
		return error_set(err, -EINVAL,
				 "callback: hmac_secret_file %s holds %zu bytes, at least %d are "
				 "needed",
				 file, cb->secret_len, CALLBACK_SECRET_MIN);
	return 0;
}

/* evhttp on the listening socket @fd (taken over even on failure). */
static int serve(struct callback *cb, struct event_base *base, int fd, struct error *err)
{
	cb->http = evhttp_new(base);
	if (!cb->http) {
		close(fd);
		return error_set(err, -ENOMEM, "callback: out of memory");
	}
	evhttp_set_max_body_size(cb->http, (ev_ssize_t)cb->cfg->max_body_bytes);
	evhttp_set_max_headers_size(cb->http, CALLBACK_HEADERS_MAX);
	evhttp_set_timeout(cb->http, (int)cb->cfg->request_timeout_s);
	/* Other methods reach on_request too, so that their refusal is audited there. */
	evhttp_set_allowed_methods(cb->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_bevcb(cb->http, conn_new, cb);
	evhttp_set_gencb(cb->http, on_request, cb);
	cb->bound = evhttp_accept_socket_with_handle(cb->http, fd);
	if (!cb->bound) {
		close(fd);
		return error_set(err, -EIO, "callback: cannot serve on %s", cb->cfg->listen);
	}
	conn_limit_guard(cb->bound);
	return 0;
}

/* Every CALLBACK_TICK_MS: a listener paused for want of descriptors tries again, and the
 * refusals counted over an ended interval are written as summaries. */
static void on_tick(evutil_socket_t fd, short what, void *u)
{
	struct callback *cb = u;

	(void)fd;
	(void)what;
	if (cb->bound)
		conn_limit_resume(cb->bound);
	noise_tick(cb->noise, now_mono_us());
}

int callback_start(struct event_base *base, const struct callback_config *cfg, struct audit *audit,
		   callback_event_fn fn, void *userdata, struct callback **ret, struct error *err)
{
	char where[KEY_EVENT_SOURCE_MAX + 1];
	struct sockaddr_storage bound;
	struct callback *cb;
	int fd, r;

	pthread_once(&conn_index_once, conn_index_init);
	if (conn_index < 0)
		return error_set(err, -ENOMEM, "callback: out of memory");
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return error_set(err, -ENOMEM, "callback: out of memory");
	*cb = (struct callback){.refs = 1,
				.cfg = cfg,
				.audit = audit,
				.fn = fn,
				.userdata = userdata,
				.started_s = now_real_us() / 1000000};
	if ((r = read_secret(cb, err)) < 0)
		goto fail;
	if ((r = callback_replay_new(CALLBACK_REPLAY_IDS_MAX, &cb->replay)) < 0 ||
	    (r = callback_lockout_new(&cfg->lockout, CALLBACK_SOURCES_MAX, &cb->lockout)) < 0 ||
	    (r = conn_limit_new((unsigned)cfg->max_connections,
				(unsigned)cfg->max_connections_per_source, &cb->conns)) < 0 ||
	    (r = noise_new(audit, NOISE_INTERVAL_US, NOISE_KINDS_MAX, &cb->noise)) < 0 ||
	    (r = (cb->tick = event_new(base, -1, EV_PERSIST, on_tick, cb)) ? 0 : -ENOMEM) < 0) {
		error_set(err, r, "callback: out of memory");
		goto fail;
	}
	if ((r = tls_setup(cb, err)) < 0)
		goto fail;
	fd = listen_socket(cfg, &bound);
	if (fd < 0) {
		r = error_set(err, fd, "callback: cannot listen on %s: %s", cfg->listen,
			      strerror(-fd));
		goto fail;
	}
	cb->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
						    : ((struct sockaddr_in6 *)&bound)->sin6_port);
	callback_addr_format((struct sockaddr *)&bound, where, sizeof(where));
	if ((r = serve(cb, base, fd, err)) < 0)
		goto fail;
	event_add(cb->tick, &(struct timeval){0, CALLBACK_TICK_MS * 1000});
	log_info("callback: event endpoint listening on %s%s", where,
		 cfg->client_ca_file ? ", client certificates required" : "");
	*ret = cb;
	return 0;
fail:
	callback_stop(cb);
	return r;
}

void callback_stop(struct callback *cb)
{
	if (!cb)
		return;
	/* Connections end later, when libevent finalises them; they find cb->stopped. */
	cb->stopped = true;
	if (cb->tick)
		event_free(cb->tick);
	cb->tick = NULL;
	if (cb->http)
		evhttp_free(cb->http);
	cb->http = NULL;
	cb->bound = NULL;
	noise_free(cb->noise); /* the summaries still due */
	cb->noise = NULL;
	callback_unref(cb);
}

uint16_t callback_port(const struct callback *cb)
{
	return cb->port;
}

void callback_set_metrics(struct callback *cb, struct metrics *m)
{
	cb->metrics = m;
}
