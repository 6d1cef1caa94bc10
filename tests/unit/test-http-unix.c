// SPDX-License-Identifier: GPL-2.0-or-later
/* HTTP over keyd's control socket without libcurl: the request a server receives, replies by
 * Content-Length, chunked and up to the end, a reply that arrives in pieces, and clear errors
 * for what is not HTTP, is cut short, is oversized or has no server behind the socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_unix.h"
#include "secmem.h"

static int parse(const char *reply, struct http_response *resp, struct error *e)
{
	*resp = (struct http_response){.retry_after_s = -1, .body.max = HTTP_RESPONSE_MAX};
	return http_unix_parse(reply, strlen(reply), resp, e);
}

static void test_content_length(void **state)
{
	struct http_response resp;
	struct error e;

	(void)state;
	assert_int_equal(parse("HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
			       "content-length:  9\r\nRetry-After: 7\r\n\r\n{\"a\": 1}\n",
			       &resp, &e),
			 0);
	assert_int_equal(resp.status, 409);
	assert_int_equal(resp.retry_after_s, 7);
	assert_int_equal(resp.body.len, 9);
	assert_string_equal((char *)resp.body.data, "{\"a\": 1}\n");
	http_response_done(&resp);
	/* Bytes past Content-Length are not the body. */
	assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", &resp, &e),
			 0);
	assert_string_equal((char *)resp.body.data, "ok");
	http_response_done(&resp);
}

static void test_chunked_and_eof(void **state)
{
	struct http_response resp;
	struct error e;

	(void)state;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "4\r\n{\"x\"\r\na;ext=1\r\n: [1, 2]}\n\r\n0\r\n\r\n",
			       &resp, &e),
			 0);
	assert_string_equal((char *)resp.body.data, "{\"x\": [1, 2]}\n");
	http_response_done(&resp);
	/* Neither length nor chunks: the body runs to the end of the connection. */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\n\r\nall of it", &resp, &e), 0);
	assert_string_equal((char *)resp.body.data, "all of it");
	http_response_done(&resp);
}

static void test_bad_replies(void **state)
{
	static const struct {
		const char *reply;
		int r;
		const char *says;
	} cases[] = {
		{"SSH-2.0-OpenSSH\r\n\r\n", -EPROTO, "not an HTTP/1.x reply"},
		{"HTTP/2 200\r\n\r\n", -EPROTO, "not an HTTP/1.x reply"},
		{"HTTP/1.1 20 OK\r\n\r\n", -EPROTO, "not an HTTP/1.x reply"},
		{"\r\n\r\n", -EPROTO, "not an HTTP/1.x reply"},
		{"HTTP/1.1 099 x\r\n\r\n", -EPROTO, "not an HTTP/1.x reply"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", -EAGAIN, "cut short"},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EPROTO, "Content-Length"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", -E2BIG, "larger than"},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", -EPROTO, "gzip"},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EPROTO,
		 "chunk size"},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", -EAGAIN,
		 "cut short"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", -EAGAIN, "cut short"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_response resp;
		struct error e = {.msg = ""};
		int r = parse(cases[i].reply, &resp, &e);

		if (r != cases[i].r || !strstr(e.msg, cases[i].says))
			fail_msg("case %zu: got %d '%s', expected %d '%s'", i, r, e.msg, cases[i].r,
				 cases[i].says);
		http_response_done(&resp);
	}
}

struct server {
	int fd;
	char request[4096];
	const char *const *pieces;
};

/* Accepts one connection, keeps what it was sent, answers in pieces, closes. */
static void *serve(void *u)
{
	struct server *s = u;
	int c = accept(s->fd, NULL, NULL);
	size_t got = 0;

	if (c < 0)
		return NULL;
	while (got < sizeof(s->request) - 1) {
		ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = 0;
		if (strstr(s->request, "\r\n\r\n{}") || strstr(s->request, "GET "))
			if (strstr(s->request, "\r\n\r\n"))
				break;
	}
	for (const char *const *p = s->pieces; *p; p++) {
		if (write(c, *p, strlen(*p)) < 0)
			break;
		usleep(20000);
	}
	close(c);
	return NULL;
}

static void test_round_trip(void **state)
{
	static const char *const pieces[] = {"HTTP/1.1 200 OK\r\nContent-", "Length: 12\r\n\r\n",
					     "{\"ok\": ", "true}", NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/test-http-unix.XXXXXX";
	const char *line = "POST /v1/volumes/vol1/unlock?wait=1 HTTP/1.1\r\n";
	struct server s = {.pieces = pieces};
	struct http_response resp;
	struct error e = {.msg = ""};
	pthread_t t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	s.fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s.fd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, serve, &s), 0);
	assert_int_equal(
		http_unix_perform(
			&(struct http_request){.method = "POST",
					       .url = "http://keyd/v1/volumes/vol1/unlock?wait=1",
					       .unix_socket = sa.sun_path,
					       .headers = (const char *const[]){"Content-Type: "
										"application/json",
										NULL},
					       .body = "{}",
					       .body_len = 2},
			&resp, &e),
		0);
	pthread_join(t, NULL);
	assert_int_equal(resp.status, 200);
	assert_string_equal((char *)resp.body.data, "{\"ok\": true}");
	http_response_done(&resp);
	if (strncmp(s.request, line, strlen(line)) != 0 ||
	    !strstr(s.request, "\r\nContent-Type: application/json\r\n") ||
	    !strstr(s.request, "\r\nContent-Length: 2\r\n") ||
	    !strstr(s.request, "\r\nConnection: close\r\n") || !strstr(s.request, "\r\n\r\n{}"))
		fail_msg("request as the server saw it:\n%s", s.request);

	/* A path that would split the request line or add a header never leaves. */
	assert_int_equal(http_unix_perform(&(struct http_request){.method = "GET",
								  .url = "http://keyd/v1/a\r\nX: y",
								  .unix_socket = sa.sun_path},
					   &resp, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "control character"));

	/* A server that closes without a word, then no server at all. */
	s.pieces = (const char *const[]){NULL};
	assert_int_equal(pthread_create(&t, NULL, serve, &s), 0);
	assert_int_equal(http_unix_perform(&(struct http_request){.method = "GET",
								  .url = "http://keyd/v1/status",
								  .unix_socket = sa.sun_path},
					   &resp, &e),
			 -ECONNRESET);
	pthread_join(t, NULL);
	assert_non_null(strstr(e.msg, "closed the connection"));
	close(s.fd);
	unlink(sa.sun_path);
	assert_int_equal(http_unix_perform(&(struct http_request){.method = "GET",
								  .url = "http://keyd/v1/status",
								  .unix_socket = sa.sun_path},
					   &resp, &e),
			 -ECONNREFUSED);
	assert_non_null(strstr(e.msg, "No such file or directory"));
	assert_true(e.retryable);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked_and_eof),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_round_trip),
	};

	if (secmem_init(1 << 20) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
