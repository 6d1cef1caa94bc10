// SPDX-License-Identifier: GPL-2.0-or-later
/* libcurl wrapper: one mapping of CURLcode to -errno, replies into capped secure buffers.
 * libcurl is dlopen'd on the first HTTPS client or request, so a program that only speaks to
 * keyd's control socket (http_unix.c) never pays for its dependency chain.
 * Never disables certificate verification and never logs request or reply bodies. */
#define CURL_DISABLE_TYPECHECK /* calls go through the table below, not curl's macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "util.h"

/* libcurl4's soname (libcurl4-openssl-dev links the same one; debian/control depends on it). */
#define HTTP_LIBCURL "libcurl.so.4"

/* The libcurl functions keyd calls, resolved once; one row per symbol. */
static struct {
	CURLcode (*global_init_mem)(long, curl_malloc_callback, curl_free_callback,
				    curl_realloc_callback, curl_strdup_callback,
				    curl_calloc_callback);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
	CURLSHcode (*share_cleanup)(CURLSH *);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	void (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} curl;

#define CURL_SYM(field, name)                                                                      \
	{                                                                                          \
		offsetof(__typeof__(curl), field), name                                            \
	}
static const struct {
	size_t offset;
	const char *name;
} curl_syms[] = {
	CURL_SYM(global_init_mem, "curl_global_init_mem"),
	CURL_SYM(share_init, "curl_share_init"),
	CURL_SYM(share_setopt, "curl_share_setopt"),
	CURL_SYM(share_cleanup, "curl_share_cleanup"),
	CURL_SYM(easy_init, "curl_easy_init"),
	CURL_SYM(easy_setopt, "curl_easy_setopt"),
	CURL_SYM(easy_perform, "curl_easy_perform"),
	CURL_SYM(easy_getinfo, "curl_easy_getinfo"),
	CURL_SYM(easy_strerror, "curl_easy_strerror"),
	CURL_SYM(easy_cleanup, "curl_easy_cleanup"),
	CURL_SYM(slist_append, "curl_slist_append"),
	CURL_SYM(slist_free_all, "curl_slist_free_all"),
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_status = -EIO;
static char curl_why[256];

/* libcurl copies what passes through it (request bodies holding a DEK or an API key, the
 * bearer token header, reply buffers): every block it frees is wiped first. */
static void wiping_free(void *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static void *wiping_realloc(void *p, size_t n)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q;

	if (n == 0) {
		wiping_free(p);
		return NULL;
	}
	q = malloc(n);
	if (q && p)
		memcpy(q, p, old < n ? old : n);
	if (q)
		wiping_free(p);
	return q;
}

/* Loads libcurl and sets up its global state, once. The handle is kept for the process. */
static void curl_load(void)
{
	void *h = dlopen(HTTP_LIBCURL, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(curl_why, sizeof(curl_why), "cannot load %s: %s", HTTP_LIBCURL, dlerror());
		curl_status = -ELIBACC;
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(curl_syms); i++) {
		void *f = dlsym(h, curl_syms[i].name);

		if (!f) {
			snprintf(curl_why, sizeof(curl_why), "%s has no %s", HTTP_LIBCURL,
				 curl_syms[i].name);
			curl_status = -ELIBBAD;
			return;
		}
		memcpy((char *)&curl + curl_syms[i].offset, &f, sizeof(f));
	}
	if (curl.global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup,
				 calloc) != CURLE_OK) {
		snprintf(curl_why, sizeof(curl_why), "cannot initialise libcurl");
		curl_status = -EIO;
		return;
	}
	curl_status = 0;
}

static int curl_ready(struct error *e)
{
	pthread_once(&curl_once, curl_load);
	return curl_status < 0 ? error_set(e, curl_status, "%s", curl_why) : 0;
}

int http_global_init(void)
{
	/* Nothing to do before threads: libcurl is loaded and set up under pthread_once on the
	 * first HTTPS use, and the control socket needs no libcurl at all. */
	return 0;
}

/* OpenSSL wipes decrypted TLS records once they are read: a KMS reply carries a DEK. */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *u)
{
	(void)h;
	(void)u;
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
	struct http_client *c = u;
	(void)h;
	(void)a;
	pthread_mutex_lock(&c->locks[(unsigned)data % ELEMENTSOF(c->locks)]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
	struct http_client *c = u;
	(void)h;
	pthread_mutex_unlock(&c->locks[(unsigned)data % ELEMENTSOF(c->locks)]);
}

int http_client_init(struct http_client *c, struct error *e)
{
	CURLSH *sh;
	int r = curl_ready(e);

	if (r < 0)
		return r;
	sh = curl.share_init();
	if (!sh)
		return error_set(e, -ENOMEM, "out of memory for libcurl's share");
	for (size_t i = 0; i < ELEMENTSOF(c->locks); i++)
		pthread_mutex_init(&c->locks[i], NULL);
	curl.share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl.share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl.share_setopt(sh, CURLSHOPT_USERDATA, c);
	curl.share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl.share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl.share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	c->share = sh;
	return 0;
}

void http_client_done(struct http_client *c)
{
	if (!c->share)
		return;
	curl.share_cleanup(c->share);
	c->share = NULL;
	for (size_t i = 0; i < ELEMENTSOF(c->locks); i++)
		pthread_mutex_destroy(&c->locks[i]);
}

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
	struct http_response *resp = u;

	/* Returning less than given makes libcurl fail with CURLE_WRITE_ERROR. */
	return secbuf_append(&resp->body, p, size * n) < 0 ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *u)
{
	struct http_response *resp = u;
	size_t len = size * n;
	const char name[] = "retry-after:";

	if (len > sizeof(name) - 1 && len < 64 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		char v[64];

		memcpy(v, p + sizeof(name) - 1, len - (sizeof(name) - 1));
		v[len - (sizeof(name) - 1)] = 0;
		v[strcspn(v, "\r\n")] = 0;
		if (http_retry_after(v) >= 0)
			resp->retry_after_s = http_retry_after(v);
	}
	return len;
}

long http_retry_after(const char *v)
{
	uint64_t s;

	return parse_u64(v + strspn(v, " \t"), &s) == 0 && s < 86400 ? (long)s : -1;
}

static int curl_to_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EPROTO;
	case CURLE_SSL_CONNECT_ERROR:
		return -ECONNABORTED;
	case CURLE_WRITE_ERROR:
		return -E2BIG;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

bool http_errno_retryable(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET || r == -EHOSTUNREACH;
}

/* The calling thread's stop flag: a request in flight is abandoned once it is set. */
static __thread const volatile bool *http_stop;

void http_set_stop(const volatile bool *stop)
{
	http_stop = stop;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const volatile bool *stop = userdata;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return *stop ? 1 : 0;
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp,
		 struct error *e)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	CURL *h;
	int r;

	if (req->unix_socket)
		return error_set(e, -EINVAL, "a Unix socket is http_unix_perform's");
	*resp = (struct http_response){.retry_after_s = -1, .body.max = HTTP_RESPONSE_MAX};
	r = curl_ready(e);
	if (r < 0)
		return r;
	h = curl.easy_init();
	if (!h)
		return -ENOMEM;
	for (const char *const *p = req->headers; p && *p; p++) {
		struct curl_slist *n = curl.slist_append(hdrs, *p);

		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		hdrs = n;
	}
	if (c && c->share)
		curl.easy_setopt(h, CURLOPT_SHARE, c->share);
	curl.easy_setopt(h, CURLOPT_URL, req->url);
	curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, req->plain_http ? "http,https" : "https");
	curl.easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
	curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 req->timeout_ms > 0 && req->timeout_ms < 10000 ? req->timeout_ms : 10000L);
	curl.easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl.easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl.easy_setopt(h, CURLOPT_HEADERDATA, resp);
	curl.easy_setopt(h, CURLOPT_USERAGENT, "keyd/" KEYD_VERSION);
	if (http_stop) {
		curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl.easy_setopt(h, CURLOPT_XFERINFODATA, (void *)http_stop);
		curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (req->ca_file)
		curl.easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	curl.easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	if (req->aws_sigv4) {
		curl.easy_setopt(h, CURLOPT_AWS_SIGV4, req->aws_sigv4);
		curl.easy_setopt(h, CURLOPT_USERNAME, req->aws_key_id);
		curl.easy_setopt(h, CURLOPT_PASSWORD, req->aws_secret);
	}
	if (req->body) {
		curl.easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	cc = curl.easy_perform(h);
	r = curl_to_errno(cc);
	if (r == -ECONNABORTED) {
		long os_errno = 0;

		/* A handshake cut off by the network (reset, EOF) is a transport failure; one the
		 * server refused (an alert, no common version or cipher) is not. */
		curl.easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno != 0 || strstr(ebuf, "unexpected eof") || strstr(ebuf, "SYSCALL"))
			r = -ECONNRESET;
	}
	if (r < 0) {
		/* libcurl keeps a transfer's first message: when a pooled connection had died and
		 * it tried again on a fresh one that then timed out, the code is the timeout's and
		 * the message the dead connection's. Say both. */
		if (cc == CURLE_OPERATION_TIMEDOUT && ebuf[0] && !strstr(ebuf, "timed out"))
			error_set(e, r, "%s, after an earlier failure: %s", curl.easy_strerror(cc),
				  ebuf);
		else
			error_set(e, r, "%s", ebuf[0] ? ebuf : curl.easy_strerror(cc));
		if (e)
			e->retryable = http_errno_retryable(r);
		secbuf_done(&resp->body);
		goto out;
	}
	curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
out:
	curl.slist_free_all(hdrs);
	curl.easy_cleanup(h);
	return r;
}

void http_response_done(struct http_response *resp)
{
	secbuf_done(&resp->body);
}
