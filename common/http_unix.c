// SPDX-License-Identifier: GPL-2.0-or-later
/* HTTP/1.1 client over a local Unix socket: one request, "Connection: close", the reply parsed
 * with named limits. Never speaks TCP or TLS (that is http.c over libcurl), never logs bodies. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "http_unix.h"
#include "macro.h"
#include "util.h"

#define HTTP_UNIX_HEAD_MAX     (16 * 1024) /* status line and headers */
#define HTTP_UNIX_REQ_HEAD_MAX 4096

/* A token at the start of a header line, case-insensitively; the value after it, trimmed. */
static bool header_value(const char *line, size_t len, const char *name, char *v, size_t vmax)
{
	size_t nl = strlen(name), vl;

	if (len <= nl || strncasecmp(line, name, nl) != 0)
		return false;
	line += nl;
	len -= nl;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	vl = len < vmax - 1 ? len : vmax - 1;
	memcpy(v, line, vl);
	v[vl] = 0;
	return true;
}

/* Chunked body from @p (after the headers) into resp->body. */
static int parse_chunked(const char *p, size_t n, struct http_response *resp, struct error *e)
{
	size_t i = 0;

	for (;;) {
		const char *eol = memmem(p + i, n - i, "\r\n", 2);
		char hex[20];
		size_t hl;
		uint64_t size = 0;

		if (!eol)
			return -EAGAIN;
		hl = strcspn(p + i, ";\r");
		if (hl == 0 || hl >= sizeof(hex) || p + i + hl > eol)
			return error_set(e, -EPROTO, "malformed chunk size in the reply");
		memcpy(hex, p + i, hl);
		hex[hl] = 0;
		for (size_t k = 0; k < hl; k++) {
			int d = hex[k] >= '0' && hex[k] <= '9'	 ? hex[k] - '0'
				: hex[k] >= 'a' && hex[k] <= 'f' ? hex[k] - 'a' + 10
				: hex[k] >= 'A' && hex[k] <= 'F' ? hex[k] - 'A' + 10
								 : -1;
			if (d < 0 || size > HTTP_RESPONSE_MAX)
				return error_set(e, -EPROTO, "malformed chunk size in the reply");
			size = size * 16 + (uint64_t)d;
		}
		i = (size_t)(eol - p) + 2;
		if (size == 0)
			/* Trailers, if any, end with an empty line; they carry nothing we read. */
			return memmem(p + i - 2, n - i + 2, "\r\n\r\n", 4) ? 0 : -EAGAIN;
		if (size > HTTP_RESPONSE_MAX)
			return error_set(e, -E2BIG, "the reply is larger than %d bytes",
					 HTTP_RESPONSE_MAX);
		if (n - i < size + 2)
			return -EAGAIN;
		if (p[i + size] != '\r' || p[i + size + 1] != '\n')
			return error_set(e, -EPROTO, "malformed chunk in the reply");
		if (secbuf_append(&resp->body, p + i, size) < 0)
			return error_set(e, -E2BIG, "the reply is larger than %d bytes",
					 HTTP_RESPONSE_MAX);
		i += size + 2;
	}
}

static int parse(const char *p, size_t n, bool eof, struct http_response *resp, struct error *e)
{
	const char *end = memmem(p, n, "\r\n\r\n", 4), *line;
	bool chunked = false, have_len = false;
	uint64_t content_len = 0;
	size_t head;
	char v[64];
	int status;

	if (!end)
		return n > HTTP_UNIX_HEAD_MAX
			       ? error_set(e, -EPROTO, "the reply's headers exceed %d bytes",
					   HTTP_UNIX_HEAD_MAX)
			       : -EAGAIN;
	head = (size_t)(end - p) + 4;
	if (head > HTTP_UNIX_HEAD_MAX)
		return error_set(e, -EPROTO, "the reply's headers exceed %d bytes",
				 HTTP_UNIX_HEAD_MAX);
	/* "HTTP/1.x NNN" then a space or the line's end; the buffer holds the whole head. */
	if (head < 16 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) ||
	    p[8] != ' ' || !isdigit((unsigned char)p[9]) || p[9] == '0' ||
	    !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) ||
	    (p[12] != ' ' && p[12] != '\r'))
		return error_set(e, -EPROTO, "not an HTTP/1.x reply");
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	resp->status = status;
	line = memmem(p, head, "\r\n", 2) + 2;
	while (line < end + 2) {
		const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		size_t len = (size_t)(eol - line);

		if (header_value(line, len, "content-length:", v, sizeof(v))) {
			if (parse_u64(v, &content_len) < 0)
				return error_set(e, -EPROTO,
						 "malformed Content-Length in the reply");
			have_len = true;
		} else if (header_value(line, len, "transfer-encoding:", v, sizeof(v))) {
			chunked = strcasecmp(v, "chunked") == 0;
			if (!chunked)
				return error_set(e, -EPROTO, "unsupported Transfer-Encoding %s", v);
		} else if (header_value(line, len, "retry-after:", v, sizeof(v))) {
			if (http_retry_after(v) >= 0)
				resp->retry_after_s = http_retry_after(v);
		}
		line = eol + 2;
	}
	resp->body.len = 0;
	if (chunked)
		return parse_chunked(p + head, n - head, resp, e);
	if (have_len) {
		if (content_len > HTTP_RESPONSE_MAX)
			return error_set(e, -E2BIG, "the reply is larger than %d bytes",
					 HTTP_RESPONSE_MAX);
		if (n - head < content_len)
			return -EAGAIN;
	} else if (!eof && status >= 200 && status != 204 && status != 304) {
		return -EAGAIN;
	}
	if (!have_len)
		content_len = status >= 200 && status != 204 && status != 304 ? n - head : 0;
	if (secbuf_append(&resp->body, p + head, (size_t)content_len) < 0)
		return error_set(e, -E2BIG, "the reply is larger than %d bytes", HTTP_RESPONSE_MAX);
	return 0;
}

int http_unix_parse(const char *p, size_t n, struct http_response *resp, struct error *e)
{
	int r = parse(p, n, true, resp, e);

	return r == -EAGAIN ? error_set(e, -EAGAIN, "the reply is cut short") : r;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits for @events on @fd until @deadline (CLOCK_MONOTONIC ms). */
static int wait_fd(int fd, short events, long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int r;

	do {
		long left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
	} while ((r < 0 && errno == EINTR) || r == 0);
	return r < 0 ? -errno : 0;
}

/* "http://host/path?q" -> "/path?q" (the host is the socket's). */
static const char *url_path(const char *url)
{
	const char *s = strstr(url, "://"), *slash;

	if (!s)
		return NULL;
	slash = strchr(s + 3, '/');
	return slash ? slash : "/";
}

static int send_all(int fd, const char *p, size_t n, long deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);

			if (r < 0)
				return r;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int request(int fd, const struct http_request *req, const char *path, long deadline,
		   struct error *e)
{
	char head[HTTP_UNIX_REQ_HEAD_MAX];
	size_t len;
	int n, r;

	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: keyd/" KEYD_VERSION
		     "\r\nConnection: close\r\n",
		     req->method, path);
	for (const char *const *h = req->headers; h && *h && n >= 0 && (size_t)n < sizeof(head);
	     h++)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", *h);
	if (n >= 0 && (size_t)n < sizeof(head) && req->body)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n",
			      req->body_len);
	if (n >= 0 && (size_t)n < sizeof(head))
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (n < 0 || (size_t)n >= sizeof(head))
		return error_set(e, -E2BIG, "the request's headers exceed %d bytes",
				 HTTP_UNIX_REQ_HEAD_MAX);
	len = (size_t)n;
	r = send_all(fd, head, len, deadline);
	if (r >= 0 && req->body)
		r = send_all(fd, req->body, req->body_len, deadline);
	if (r < 0)
		return error_set(e, r == -EPIPE ? -ECONNRESET : r, "cannot send the request: %s",
				 strerror(-r));
	return 0;
}

static int reply(int fd, struct http_response *resp, long deadline, struct error *e)
{
	struct secbuf raw = {.max = HTTP_RESPONSE_MAX + HTTP_UNIX_HEAD_MAX};
	char buf[16384];
	int r = -EAGAIN;

	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0) {
				error_set(e, r, "no complete reply in time");
				break;
			}
			continue;
		}
		if (got < 0) {
			r = error_set(e, errno == EPIPE ? -ECONNRESET : -errno,
				      "cannot read the reply: %m");
			break;
		}
		if (got == 0 && raw.len == 0) {
			r = error_set(e, -ECONNRESET,
				      "the server closed the connection unanswered");
			break;
		}
		if (got > 0 && secbuf_append(&raw, buf, (size_t)got) < 0) {
			r = error_set(e, -E2BIG, "the reply is larger than %d bytes",
				      HTTP_RESPONSE_MAX);
			break;
		}
		r = parse((const char *)raw.data, raw.len, got == 0, resp, e);
		if (r == -EAGAIN && got == 0)
			r = error_set(e, -ECONNRESET, "the reply is cut short");
		if (r != -EAGAIN)
			break;
	}
	explicit_bzero(buf, sizeof(buf));
	secbuf_done(&raw);
	return r;
}

int http_unix_perform(const struct http_request *req, struct http_response *resp, struct error *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long deadline = now_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 30000L);
	const char *path = url_path(req->url);
	int fd, r;

	*resp = (struct http_response){.retry_after_s = -1, .body.max = HTTP_RESPONSE_MAX};
	if (!path)
		return error_set(e, -EINVAL, "not an http:// URL: %s", req->url);
	/* What the request line carries must not end it early (a space) or start a header. */
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return error_set(e, -EINVAL,
					 "a space or control character in the URL path");
	if (strlen(req->unix_socket) >= sizeof(sa.sun_path))
		return error_set(e, -ENAMETOOLONG, "socket path too long: %s", req->unix_socket);
	strcpy(sa.sun_path, req->unix_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(e, -errno, "cannot create a socket: %m");
	/* A connect to a listener whose backlog is full sleeps in the kernel until there is
	 * room: SO_SNDTIMEO bounds that wait by the request's deadline (EAGAIN when it ends). */
	{
		long left = deadline - now_ms();
		struct timeval tv = {.tv_sec = left / 1000, .tv_usec = left % 1000 * 1000};

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EAGAIN)
			r = error_set(e, -ETIMEDOUT,
				      "cannot connect to %s: it accepts no connection (its backlog "
				      "is full)",
				      req->unix_socket);
		else
			r = error_set(e, -ECONNREFUSED, "cannot connect to %s: %m",
				      req->unix_socket);
		if (e)
			e->retryable = true;
		goto out;
	}
	r = request(fd, req, path, deadline, e);
	if (r >= 0)
		r = reply(fd, resp, deadline, e);
	if (r < 0) {
		if (e)
			e->retryable = http_errno_retryable(r);
		secbuf_done(&resp->body);
	}
out:
	close(fd);
	return r < 0 ? r : 0;
}
