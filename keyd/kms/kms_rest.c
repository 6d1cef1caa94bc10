// SPDX-License-Identifier: GPL-2.0-or-later
/* HTTPS + JSON plumbing for the REST providers: what keyprotect and vault would otherwise each
 * write (endpoints, credential files, transport errors, reply parsing). Never logs, and never
 * quotes a request body, a reply body or a credential. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

bool kms_rest_charset(const char *s, const char *set)
{
	return s[strspn(s, set)] == 0;
}

void kms_rest_printable(char *buf, size_t size, const char *s)
{
	size_t n = 0;
	bool space = true; /* no leading space */

	if (size == 0)
		return;
	for (; s && *s && n + 1 < size; s++) {
		bool ws = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';

		if (ws) {
			if (!space)
				buf[n++] = ' ';
			space = true;
			continue;
		}
		buf[n++] = *s > 0x20 && *s < 0x7f ? *s : '?';
		space = false;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = 0;
}

int kms_rest_url(const char *s, const char *path, const char *suffix, char **ret, struct error *e)
{
	size_t n;

	if (!s || strncmp(s, "https://", strlen("https://")) != 0 || strpbrk(s, "?#"))
		return jx_fail(e, "%s: must be an https:// URL", path);
	for (const char *p = s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return jx_fail(e, "%s: must be an https:// URL", path);
	n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		n--;
	if (n <= strlen("https://"))
		return jx_fail(e, "%s: must be an https:// URL", path);
	if (n > KMS_REST_URL_MAX)
		return jx_fail(e, "%s: longer than %d characters", path, KMS_REST_URL_MAX);
	*ret = malloc(n + strlen(suffix) + 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, s, n);
	strcpy(*ret + n, suffix);
	return 0;
}

void kms_rest_endpoints_free(char **endpoints, size_t n)
{
	for (size_t i = 0; endpoints && i < n; i++)
		free(endpoints[i]);
	free(endpoints);
}

int kms_rest_endpoints(json_t *obj, const char *path, char ***ret, size_t *ret_n, struct error *e)
{
	json_t *eps = json_object_get(obj, "endpoints"), *v;
	char **out, p[KMS_NAME_MAX + 64];
	size_t i, n = 0;
	int r = 0;

	if (!eps)
		return jx_fail(e, "%s.endpoints: missing", path);
	if (!json_is_array(eps) || json_array_size(eps) == 0 ||
	    json_array_size(eps) > KMS_REST_ENDPOINTS_MAX)
		return jx_fail(e, "%s.endpoints: must be an array of 1 to %d https:// URLs", path,
			       KMS_REST_ENDPOINTS_MAX);
	out = calloc(json_array_size(eps), sizeof(*out));
	if (!out)
		return -ENOMEM;
	json_array_foreach (eps, i, v) {
		const char *s = json_string_value(v);

		snprintf(p, sizeof(p), "%s.endpoints[%zu]", path, i);
		r = kms_rest_url(s && strlen(s) == json_string_length(v) ? s : NULL, p, "", &out[i],
				 e);
		if (r < 0)
			break;
		n++;
	}
	if (r < 0) {
		kms_rest_endpoints_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

int kms_rest_credential(const char *kms, const char *key, const char *file, uint8_t **ret,
			size_t *ret_n, struct error *e)
{
	_cleanup_secure_ uint8_t *d = NULL;
	struct error ce;
	size_t n;
	int r;

	r = read_credential(file, true, &d, &n, &ce);
	if (r == -EPERM)
		return kms_fail(
			e, r, false,
			"kms.%s.%s: %s refused: %s (it must be a regular file owned by root "
			"with mode 0600)",
			kms, key, file, ce.msg);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s.%s: cannot read %s: %s", kms, key, file,
				ce.msg);
	if (n == 0 || memchr(d, 0, n))
		return kms_fail(e, -EINVAL, false, "kms.%s.%s: %s is empty or binary", kms, key,
				file);
	*ret = TAKE_PTR(d);
	*ret_n = n;
	return 0;
}

int kms_rest_ca_file(const char *kms, const char *ca_file, struct error *e)
{
	int r;

	if (!ca_file || access(ca_file, R_OK) >= 0)
		return 0;
	r = negative_errno();
	return kms_fail(e, r, false, "kms.%s.ca_file: cannot read %s: %s", kms, ca_file,
			strerror(-r));
}

int kms_rest_open(const char *kms, const char *ca_file, struct http_client *http, struct error *e)
{
	struct error why;
	int r;

	r = kms_rest_ca_file(kms, ca_file, e);
	if (r < 0)
		return r;
	r = http_client_init(http, &why);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s: cannot set up the HTTP client: %s", kms,
				why.msg);
	return 0;
}

/* Transport failures in keyd's words; libcurl's follow in parentheses. */
static const struct transport_failure {
	int error;
	const char *what;
} transport_failures[] = {
	{-ETIMEDOUT, "no whole reply within the per-try timeout"},
	{-ECONNRESET, "the connection broke before a whole reply arrived"},
	{-ECONNREFUSED, "nothing accepts connections there"},
	{-EHOSTUNREACH, "the host cannot be resolved or reached"},
	{-ECANCELED, "abandoned: another KMS answered first, or keyd is stopping"},
};

int kms_rest_perform(struct http_client *http, const struct http_request *req, const char *where,
		     struct http_response *resp, struct error *e)
{
	const char *what = NULL;
	struct error why;
	int r;

	r = http_perform(http, req, resp, &why);
	if (r >= 0)
		return 0;
	if (r == -EPROTO)
		return kms_fail(e, r, false,
				"%s: TLS failed, the server certificate could not be verified "
				"against %s%s: %s",
				where, req->ca_file ? "ca_file " : "the system trust store",
				req->ca_file ? req->ca_file : "", why.msg);
	if (r == -ECONNABORTED)
		return kms_fail(
			e, r, false,
			"%s: the TLS handshake failed: the server refused it (no common TLS "
			"version or cipher, or not a TLS server): %s",
			where, why.msg);
	if (r == -E2BIG)
		return kms_fail(e, r, false, "%s: reply larger than %d bytes", where,
				HTTP_RESPONSE_MAX);
	for (size_t i = 0; i < ELEMENTSOF(transport_failures); i++)
		if (transport_failures[i].error == r)
			what = transport_failures[i].what;
	r = what ? kms_fail(e, r, why.retryable, "%s: %s (%s)", where, what, why.msg)
		 : kms_fail(e, r, why.retryable, "%s: %s", where, why.msg);
	e->retry_after_s = -1;
	return r;
}

const char *kms_rest_body(const struct http_response *resp)
{
	return resp->body.data ? (const char *)resp->body.data : "";
}

int kms_rest_json(const struct http_response *resp, const char *where, json_t **ret,
		  struct error *e)
{
	json_auto_t *j = NULL;
	json_error_t jerr;

	j = json_loadb(kms_rest_body(resp), resp->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return kms_fail(e, -EPROTO, false,
				"%s: returned malformed JSON (%s at byte %d of %zu)", where,
				json_error_code(&jerr) == json_error_premature_end_of_input
					? "truncated"
					: "invalid",
				jerr.position, resp->body.len);
	if (!json_is_object(j))
		return kms_fail(e, -EPROTO, false, "%s: returned JSON that is not an object",
				where);
	*ret = TAKE_PTR(j);
	return 0;
}
