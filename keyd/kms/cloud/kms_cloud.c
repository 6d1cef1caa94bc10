// SPDX-License-Identifier: GPL-2.0-or-later
/* Credentials for the public-cloud providers: the INI-style credentials file parsed in secure
 * memory, the cache with its refresh rule, the metadata-service address check, and the UUID
 * of the encryption context. Never logs, never quotes a secret, a token or a file's values. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kms_cloud.h"
#include "kms_rest.h"
#include "secmem.h"
#include "util.h"

/* Refresh role credentials when a quarter of their life is left, but at least a minute and at
 * most 15 minutes before they expire (a request signed just before expiry may land after). */
#define CLOUD_REFRESH_MIN_US (60 * 1000000ULL)
#define CLOUD_REFRESH_MAX_US (15 * 60 * 1000000ULL)

void cloud_creds_done(struct cloud_creds *c)
{
	secmem_free(c->id);
	secmem_free(c->secret);
	secmem_free(c->token);
	*c = (struct cloud_creds){0};
}

int cloud_creds_set(struct cloud_creds *ret, const char *id, const char *secret, const char *token,
		    uint64_t expires_real_us, struct error *pe)
{
	*ret = (struct cloud_creds){.expires_real_us = expires_real_us};
	ret->id = secmem_strdup(id);
	ret->secret = secmem_strdup(secret);
	ret->token = secmem_strdup(token);
	if (!ret->id || !ret->secret || !ret->token) {
		cloud_creds_done(ret);
		return error_set(pe, -ENOMEM, "out of secure memory");
	}
	return 0;
}

static int creds_copy(const struct cloud_creds *from, struct cloud_creds *to)
{
	*to = (struct cloud_creds){.expires_real_us = from->expires_real_us};
	to->id = secmem_strdup(from->id);
	to->secret = secmem_strdup(from->secret);
	to->token = from->token ? secmem_strdup(from->token) : NULL;
	if (!to->id || !to->secret || (from->token && !to->token)) {
		cloud_creds_done(to);
		return -ENOMEM;
	}
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One value, printable ASCII without spaces, into secure memory. */
static int take_value(const char *v, size_t n, size_t max, char **ret)
{
	if (n == 0 || n > max)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7f)
			return -EINVAL;
	*ret = secmem_alloc(n + 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, v, n);
	(*ret)[n] = 0;
	return 0;
}

int cloud_creds_parse(const char *text, size_t n, const struct cloud_file_keys *keys,
		      struct cloud_creds *ret, struct error *pe)
{
	struct cloud_creds c = {0};
	bool section = false;
	unsigned line = 0;
	int r = 0;

	for (size_t pos = 0; pos < n && r >= 0;) {
		const char *l = text + pos, *eol = memchr(l, '\n', n - pos), *eq, *k, *v;
		size_t len = eol ? (size_t)(eol - l) : n - pos, klen, vlen;
		char **slot = NULL;
		size_t max = 0;

		pos += len + 1;
		line++;
		while (len > 0 && blank(l[len - 1]))
			len--;
		while (len > 0 && blank(*l))
			l++, len--;
		if (len == 0 || *l == '#' || *l == ';')
			continue;
		if (memchr(l, 0, len)) {
			r = error_set(pe, -EINVAL, "line %u: binary data", line);
			break;
		}
		if (*l == '[') {
			if (section || len != strlen("[default]") ||
			    memcmp(l, "[default]", len) != 0)
				r = error_set(pe, -EINVAL,
					      "line %u: only one section, [default], may be given",
					      line);
			section = true;
			continue;
		}
		eq = memchr(l, '=', len);
		if (!eq) {
			r = error_set(pe, -EINVAL, "line %u: not a 'key = value' line", line);
			break;
		}
		k = l;
		klen = (size_t)(eq - l);
		while (klen > 0 && blank(k[klen - 1]))
			klen--;
		v = eq + 1;
		vlen = len - (size_t)(v - l);
		while (vlen > 0 && blank(*v))
			v++, vlen--;
		if (klen == strlen(keys->id) && memcmp(k, keys->id, klen) == 0)
			slot = &c.id, max = CLOUD_ID_MAX;
		else if (klen == strlen(keys->secret) && memcmp(k, keys->secret, klen) == 0)
			slot = &c.secret, max = CLOUD_SECRET_MAX;
		else if (keys->token && klen == strlen(keys->token) &&
			 memcmp(k, keys->token, klen) == 0)
			slot = &c.token, max = CLOUD_TOKEN_MAX;
		if (!slot) {
			r = error_set(pe, -EINVAL, "line %u: unknown key (known: %s, %s%s%s)", line,
				      keys->id, keys->secret, keys->token ? ", " : "",
				      keys->token ? keys->token : "");
			break;
		}
		if (*slot) {
			r = error_set(pe, -EINVAL, "line %u: %.*s given twice", line, (int)klen, k);
			break;
		}
		r = take_value(v, vlen, max, slot);
		if (r == -EINVAL)
			r = error_set(pe, r,
				      "line %u: the value of %.*s is empty, longer than %zu "
				      "characters or has spaces or control characters",
				      line, (int)klen, k, max);
	}
	if (r >= 0 && (!c.id || !c.secret))
		r = error_set(pe, -EINVAL, "%s missing", !c.id ? keys->id : keys->secret);
	if (r < 0) {
		cloud_creds_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void cloud_auth_init(struct cloud_auth *a)
{
	pthread_mutex_init(&a->lock, NULL);
}

void cloud_auth_done(struct cloud_auth *a)
{
	cloud_creds_done(&a->creds);
	pthread_mutex_destroy(&a->lock);
	free(a->file);
	a->file = NULL;
}

static bool file_changed(const struct cloud_auth *a, struct stat *now)
{
	/* systemd credentials (relative names) do not change under a running service. */
	if (a->file[0] != '/' || stat(a->file, now) < 0)
		return false;
	return now->st_dev != a->file_st.st_dev || now->st_ino != a->file_st.st_ino ||
	       now->st_size != a->file_st.st_size ||
	       now->st_mtim.tv_sec != a->file_st.st_mtim.tv_sec ||
	       now->st_mtim.tv_nsec != a->file_st.st_mtim.tv_nsec;
}

static int read_file(struct kms *kms, struct cloud_auth *a, struct cloud_creds *ret,
		     struct error *e)
{
	_cleanup_secure_ uint8_t *d = NULL;
	struct error pe;
	struct stat st = {0};
	size_t n;
	int r;

	if (a->file[0] == '/')
		(void)stat(a->file, &st);
	r = kms_rest_credential(kms->name, a->file_key, a->file, &d, &n, e);
	if (r < 0)
		return r;
	r = cloud_creds_parse((const char *)d, n, a->keys, ret, &pe);
	if (r == -ENOMEM)
		return kms_fail(e, r, false, "kms.%s: out of secure memory for the credentials",
				kms->name);
	if (r < 0)
		return kms_fail(e, r, false, "kms.%s.%s: %s: %s", kms->name, a->file_key, a->file,
				pe.msg);
	a->file_st = st;
	return 0;
}

int cloud_auth_get(struct kms *kms, struct cloud_auth *a, uint64_t stale, struct cloud_creds *ret,
		   uint64_t *ret_gen, struct error *e)
{
	uint64_t now = now_real_us();
	struct cloud_creds fresh = {0};
	struct stat st;
	bool need;
	int r = 0;

	pthread_mutex_lock(&a->lock);
	need = !a->creds.id || a->gen == stale || now >= a->refresh_at_us ||
	       (a->file && file_changed(a, &st));
	if (need) {
		r = a->file ? read_file(kms, a, &fresh, e) : a->fetch(kms, &fresh, e);
		if (r >= 0) {
			uint64_t life = fresh.expires_real_us > now ? fresh.expires_real_us - now
								    : 0,
				 margin = life / 4;

			if (margin < CLOUD_REFRESH_MIN_US)
				margin = life / 2 < CLOUD_REFRESH_MIN_US ? life / 2
									 : CLOUD_REFRESH_MIN_US;
			if (margin > CLOUD_REFRESH_MAX_US)
				margin = CLOUD_REFRESH_MAX_US;
			cloud_creds_done(&a->creds);
			a->creds = fresh;
			a->gen++;
			a->refresh_at_us =
				fresh.expires_real_us ? fresh.expires_real_us - margin : UINT64_MAX;
		} else if (a->creds.id && a->gen != stale &&
			   (!a->creds.expires_real_us || now < a->creds.expires_real_us)) {
			/* A metadata-service hiccup need not stop us while these still work. */
			r = 0;
		}
	}
	if (r >= 0 && creds_copy(&a->creds, ret) < 0)
		r = kms_fail(e, -ENOMEM, false, "kms.%s: out of secure memory for the credentials",
			     kms->name);
	if (r >= 0)
		*ret_gen = a->gen;
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* The host[:port] of an http:// URL, if it is a metadata service's or loopback. */
static bool metadata_host_ok(const char *hostport, size_t n, const char *dns_name)
{
	static const char *const link_local[] = {"169.254.", "[fd00:ec2::254]"};
	char host[128];
	const char *colon;
	size_t hn = n;

	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, hostport, n);
	host[n] = 0;
	colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
	if (colon) {
		uint32_t port;

		hn = (size_t)(colon - host) + (host[0] == '[');
		if (parse_u32(colon + 1 + (host[0] == '['), &port) < 0 || port == 0 || port > 65535)
			return false;
		host[hn] = 0;
	}
	if (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	    strcmp(host, "[::1]") == 0 || (dns_name && strcmp(host, dns_name) == 0))
		return true;
	for (size_t i = 0; i < ELEMENTSOF(link_local); i++)
		if (strncmp(host, link_local[i], strlen(link_local[i])) == 0)
			return strspn(host, "0123456789.[]:abcdef") == strlen(host);
	return false;
}

int cloud_metadata_url(const char *s, const char *path, const char *dns_name, char **ret,
		       struct error *e)
{
	const char *h;
	size_t n;

	if (!s || strncmp(s, "http://", strlen("http://")) != 0)
		return jx_fail(e, "%s: must be an http:// URL of the instance metadata service",
			       path);
	h = s + strlen("http://");
	n = strlen(h);
	while (n > 0 && h[n - 1] == '/')
		n--;
	if (n > KMS_REST_URL_MAX || memchr(h, '/', n) || strpbrk(s, "?#@") ||
	    !metadata_host_ok(h, n, dns_name))
		return jx_fail(e,
			       "%s: must be http://HOST[:PORT] of the instance metadata service: a "
			       "link-local address%s%s, or loopback for tests (credentials travel "
			       "unencrypted there)",
			       path, dns_name ? ", " : "", dns_name ? dns_name : "");
	*ret = strndup(s, strlen("http://") + n);
	return *ret ? 0 : -ENOMEM;
}

int cloud_metadata_call(struct http_client *http, const char *method, const char *url,
			const char *const *headers, long timeout_ms, const char *where,
			struct http_response *resp, struct error *e)
{
	int r;

	r = kms_rest_perform(http,
			     &(struct http_request){.method = method,
						    .url = url,
						    .headers = headers,
						    .plain_http = true,
						    .timeout_ms = timeout_ms},
			     where, resp, e);
	if (r < 0)
		return r;
	if (resp->status == 200)
		return 0;
	r = kms_fail(e, resp->status == 404 ? -ENOENT : -EACCES, resp->status >= 500,
		     "%s: HTTP %ld%s", where, resp->status,
		     resp->status == 404   ? " (no such role, or no role attached to this instance)"
		     : resp->status == 401 ? " (the IMDSv2 session token was refused)"
					   : "");
	http_response_done(resp);
	return r;
}

int cloud_context_uuid(const char *aad, char *buf, size_t size)
{
	const char prefix[] = "keyd:v1:";
	const char *u;
	size_t n;

	if (!aad || strncmp(aad, prefix, strlen(prefix)) != 0)
		return -EINVAL;
	u = aad + strlen(prefix);
	n = strlen(u);
	if (n == 0 || n >= size || n > CLOUD_UUID_MAX || strspn(u, "0123456789abcdefABCDEF-") != n)
		return -EINVAL;
	memcpy(buf, u, n + 1);
	return 0;
}
