// SPDX-License-Identifier: GPL-2.0-or-later
/* TLS connections to a KMIP server with OpenSSL: non-blocking sockets, poll() against one
 * deadline for connect, handshake, write and read, the server's certificate checked against
 * the trust anchors and its name or address. Replies land in secure memory; decrypted TLS
 * records are cleansed after reading. Never logs, never quotes a message body. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kmip_conn.h"
#include "secmem.h"
#include "ttlv.h"
#include "util.h"

/* Errors for which another try, or another endpoint, may work. */
static bool conn_retryable(int r)
{
	static const int retryable[] = {-ECONNREFUSED, -ETIMEDOUT,    -EHOSTUNREACH, -ENETUNREACH,
					-ECONNRESET,   -ECONNABORTED, -EPIPE,	     -EAGAIN};

	for (size_t i = 0; i < ELEMENTSOF(retryable); i++)
		if (r == retryable[i])
			return true;
	return false;
}

static int conn_fail(struct error *e, int r, const char *fmt, ...) _printf_(3, 4);
static int conn_fail(struct error *e, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_setv(e, r, fmt, ap);
	va_end(ap);
	if (e)
		e->retryable = conn_retryable(r);
	return r;
}

int kmip_endpoint_parse(const char *s, struct kmip_endpoint *ep)
{
	const char *host = s, *port = NULL, *end;
	size_t hn;
	uint32_t p;

	*ep = (struct kmip_endpoint){0};
	if (!s || !*s || strlen(s) >= sizeof(ep->text))
		return -EINVAL;
	if (s[0] == '[') {
		host = s + 1;
		end = strchr(host, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		port = end[1] ? end + 2 : NULL;
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			return -EINVAL; /* a bare IPv6 address: write it in brackets */
		port = end ? end + 1 : NULL;
		end = end ? end : s + strlen(s);
	}
	hn = (size_t)(end - host);
	if (hn == 0 || hn > KMIP_HOST_MAX)
		return -EINVAL;
	memcpy(ep->host, host, hn);
	for (size_t i = 0; i < hn; i++) {
		char c = ep->host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || (s[0] == '[' && c == ':')))
			return -EINVAL;
	}
	if (port && (parse_u32(port, &p) < 0 || p == 0 || p > 65535))
		return -EINVAL;
	snprintf(ep->port, sizeof(ep->port), "%s", port ? port : KMIP_PORT_DEFAULT);
	{
		struct in6_addr a6;
		struct in_addr a4;

		ep->is_ip = inet_pton(AF_INET, ep->host, &a4) == 1 ||
			    inet_pton(AF_INET6, ep->host, &a6) == 1;
		if (s[0] == '[' && inet_pton(AF_INET6, ep->host, &a6) != 1)
			return -EINVAL;
	}
	snprintf(ep->text, sizeof(ep->text), "%s", s);
	return 0;
}

/* OpenSSL's reason for the last failure, for a message. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "unknown TLS error";
}

static int use_cert_chain(SSL_CTX *ctx, const uint8_t *cert, size_t cert_len, struct error *e)
{
	BIO *bio = BIO_new_mem_buf(cert, (int)cert_len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	int r = 0;

	if (!x) {
		r = conn_fail(e, -EINVAL, "client_cert_file holds no PEM certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		r = conn_fail(e, -EINVAL, "client certificate refused: %s", ssl_reason());
		goto out;
	}
	/* Intermediate CAs may follow the client certificate in the same file. */
	for (X509 *ca; (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL));)
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			r = conn_fail(e, -EINVAL, "client certificate chain: %s", ssl_reason());
			goto out;
		}
out:
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

static int use_key(SSL_CTX *ctx, const uint8_t *key, size_t key_len, struct error *e)
{
	BIO *bio = BIO_new_mem_buf(key, (int)key_len);
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	int r = 0;

	if (!pk)
		r = conn_fail(e, -EINVAL, "client_key_file holds no unencrypted PEM private key");
	else if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		r = conn_fail(e, -EINVAL, "client_key_file is not the key of client_cert_file");
	EVP_PKEY_free(pk);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int kmip_tls_init(struct kmip_tls *t, const char *ca_file, const uint8_t *cert, size_t cert_len,
		  const uint8_t *key, size_t key_len, struct error *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int r;

	if (!ctx)
		return conn_fail(e, -ENOMEM, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A decrypted record may hold a DEK or a root key: wiped once read. */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		r = conn_fail(e, -ENOENT, "cannot load %s%s: %s",
			      ca_file ? "ca_file " : "the system trust store",
			      ca_file ? ca_file : "", ssl_reason());
		goto fail;
	}
	r = use_cert_chain(ctx, cert, cert_len, e);
	if (r >= 0)
		r = use_key(ctx, key, key_len, e);
	if (r < 0)
		goto fail;
	t->ctx = ctx;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

void kmip_tls_done(struct kmip_tls *t)
{
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}

/* Waits for @events on @fd until the deadline. */
static int wait_fd(int fd, short events, uint64_t deadline_us)
{
	for (;;) {
		uint64_t now = now_mono_us();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (now >= deadline_us)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)((deadline_us - now + 999) / 1000));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return negative_errno();
	}
}

static int tcp_connect(const struct kmip_endpoint *ep, uint64_t deadline_us, struct error *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
			*res = NULL;
	int r = -EHOSTUNREACH, g;

	/* Name resolution is bounded by the resolver's own timeouts (resolv.conf). */
	g = getaddrinfo(ep->host, ep->port, &hints, &res);
	if (g != 0)
		return conn_fail(e, -EHOSTUNREACH, "cannot resolve %s: %s", ep->host,
				 gai_strerror(g));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol),
		    one = 1, soerr = 0;
		socklen_t len = sizeof(soerr);

		if (fd < 0) {
			r = negative_errno();
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(res);
			return fd;
		}
		r = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline_us) : negative_errno();
		if (r >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && !soerr) {
			freeaddrinfo(res);
			return fd;
		}
		if (r >= 0)
			r = soerr ? -soerr : -ECONNREFUSED;
		close(fd);
		if (r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return conn_fail(e, r, "cannot connect: %s", strerror(-r));
}

/* The TLS alerts a server sends when it does not accept the client's certificate. */
static bool alert_refuses_client(unsigned long e)
{
	static const int alerts[] = {
		SSL_AD_BAD_CERTIFICATE,	    SSL_AD_UNSUPPORTED_CERTIFICATE,
		SSL_AD_CERTIFICATE_REVOKED, SSL_AD_CERTIFICATE_EXPIRED,
		SSL_AD_CERTIFICATE_UNKNOWN, SSL_AD_UNKNOWN_CA,
		SSL_AD_ACCESS_DENIED,	    SSL_AD_CERTIFICATE_REQUIRED,
	};
	int reason = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;

	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(alerts); i++)
		if (reason == alerts[i])
			return true;
	return false;
}

/* One step of a non-blocking SSL call that returned @ret: 1 to call again, or -errno. */
static int ssl_wait(struct kmip_conn *c, int ret, const char *what, struct error *e)
{
	int code = SSL_get_error(c->ssl, ret), r;
	unsigned long last;

	switch (code) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		r = wait_fd(c->fd, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->deadline_us);
		if (r == -ETIMEDOUT)
			return conn_fail(e, r,
					 "%s: not done within the per-try timeout "
					 "(unlock.try_timeout_s)",
					 what);
		return r < 0 ? conn_fail(e, r, "%s: %s", what, strerror(-r)) : 1;
	case SSL_ERROR_ZERO_RETURN:
		return conn_fail(e, -ECONNRESET, "%s: the server closed the connection", what);
	case SSL_ERROR_SYSCALL: {
		int saved = errno;

		ERR_clear_error();
		/* errno 0: the server closed the connection without a TLS alert. */
		return conn_fail(e, saved ? -saved : -ECONNRESET, "%s: %s", what,
				 saved ? strerror(saved) : "the server closed the connection");
	}
	default:
		break;
	}
	last = ERR_peek_last_error();
	if (ERR_GET_LIB(last) == ERR_LIB_SSL &&
	    ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		/* OpenSSL 3's word for a connection that ended inside a TLS record or without a
		 * close_notify: the network broke it, as a reset does; another try may work. */
		r = conn_fail(e, -ECONNRESET,
			      "%s: the connection broke in the middle of a TLS record", what);
	} else if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		r = conn_fail(e, -EPROTO, "%s: the server certificate: %s", what,
			      X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	} else if (alert_refuses_client(last)) {
		r = conn_fail(e, -EACCES,
			      "%s: the server refused keyd's client certificate (TLS alert: %s)",
			      what, ssl_reason());
	} else {
		r = conn_fail(e, -EPROTO, "%s: TLS failed: %s", what, ssl_reason());
	}
	ERR_clear_error();
	return r;
}

/* A server that closes the connection makes write(2) raise SIGPIPE, which would end keyd or
 * the process the token plugin runs in: blocked around our writes, and consumed. */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t pipe, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int kmip_conn_open(struct kmip_conn *c, const struct kmip_tls *t, const struct kmip_endpoint *ep,
		   uint64_t deadline_us, struct error *e)
{
	struct sigpipe_guard g;
	int r;

	*c = (struct kmip_conn){.fd = -1, .deadline_us = deadline_us};
	r = tcp_connect(ep, deadline_us, e);
	if (r < 0)
		return r;
	c->fd = r;
	c->ssl = SSL_new(t->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		kmip_conn_close(c);
		return conn_fail(e, -ENOMEM, "cannot set up TLS");
	}
	/* The certificate must name what keyd connected to: an IP address or a DNS name. */
	if (ep->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ep->host) != 1
		      : SSL_set1_host(c->ssl, ep->host) != 1 ||
				SSL_set_tlsext_host_name(c->ssl, ep->host) != 1) {
		kmip_conn_close(c);
		return conn_fail(e, -ENOMEM, "cannot set the name to verify");
	}
	ERR_clear_error();
	sigpipe_block(&g);
	for (;;) {
		int ret = SSL_connect(c->ssl);

		if (ret == 1) {
			r = 0;
			break;
		}
		r = ssl_wait(c, ret, "TLS handshake", e);
		if (r < 0)
			break;
	}
	sigpipe_restore(&g);
	if (r < 0)
		kmip_conn_close(c);
	return r;
}

static int conn_write(struct kmip_conn *c, const uint8_t *p, size_t n, struct error *e)
{
	struct sigpipe_guard g;
	int r = 0;

	sigpipe_block(&g);
	while (n > 0) {
		int k = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		r = ssl_wait(c, k, "sending the request", e);
		if (r < 0)
			break;
		r = 0;
	}
	sigpipe_restore(&g);
	return r;
}

static int conn_read(struct kmip_conn *c, uint8_t *p, size_t n, struct error *e)
{
	struct sigpipe_guard g;
	int r = 0;

	sigpipe_block(&g); /* a read may write: TLS 1.3 key updates, alerts */
	while (n > 0) {
		int k = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		r = ssl_wait(c, k, "reading the reply", e);
		if (r < 0)
			break;
		r = 0;
	}
	sigpipe_restore(&g);
	return r;
}

int kmip_conn_call(struct kmip_conn *c, const uint8_t *req, size_t n, uint8_t **ret, size_t *ret_n,
		   struct error *e)
{
	_cleanup_secure_ uint8_t *buf = NULL;
	uint8_t hdr[TTLV_HEADER_LEN];
	uint32_t tag, len;
	int r;

	ERR_clear_error();
	r = conn_write(c, req, n, e);
	if (r >= 0)
		r = conn_read(c, hdr, sizeof(hdr), e);
	if (r < 0)
		return r;
	tag = (uint32_t)hdr[0] << 16 | (uint32_t)hdr[1] << 8 | hdr[2];
	len = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
	if (tag != KMIP_TAG_RESPONSE_MESSAGE || hdr[3] != TTLV_STRUCTURE || len % 8)
		return conn_fail(e, -EBADMSG,
				 "the reply is not a KMIP Response Message (it starts with "
				 "%02x%02x%02x%02x)",
				 hdr[0], hdr[1], hdr[2], hdr[3]);
	if (len > TTLV_MSG_MAX - TTLV_HEADER_LEN)
		return conn_fail(e, -E2BIG, "a reply of %u bytes, more than %d",
				 len + TTLV_HEADER_LEN, TTLV_MSG_MAX);
	buf = secmem_alloc(TTLV_HEADER_LEN + len);
	if (!buf)
		return conn_fail(e, -ENOMEM, "out of secure memory for the reply");
	memcpy(buf, hdr, sizeof(hdr));
	r = conn_read(c, buf + TTLV_HEADER_LEN, len, e);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(buf);
	*ret_n = TTLV_HEADER_LEN + len;
	return 0;
}

void kmip_conn_close(struct kmip_conn *c)
{
	if (c->ssl) {
		struct sigpipe_guard g;

		/* One close_notify, without waiting for the server's. */
		sigpipe_block(&g);
		SSL_shutdown(c->ssl);
		sigpipe_restore(&g);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	ERR_clear_error();
	*c = (struct kmip_conn){.fd = -1};
}
