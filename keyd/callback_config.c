// SPDX-License-Identifier: GPL-2.0-or-later
/* The event endpoint's configuration and addresses: keyd.json's "callback" object, CIDR
 * allow-lists, peer addresses. Apart from the server (callback.c) so that whatever loads the
 * configuration (the token plugin included) does not need libevent. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_config.h"
#include "util.h"

#define CALLBACK_LISTEN_MAX	      64
#define CALLBACK_FILE_MAX	      4095
#define CALLBACK_BODY_MIN	      256
#define CALLBACK_WINDOW_MAX	      3600
#define CALLBACK_LOCKOUT_FAILURES_MAX 1000
#define CALLBACK_LOCKOUT_S_MAX	      86400
#define CALLBACK_TIMEOUT_S_MAX	      300

/* ---- addresses ---- */

int callback_addr_key(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

void callback_addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int family = AF_INET;
	unsigned port = 0;
	uint8_t a[16];

	if (callback_addr_key(sa, &family, a) == 0) {
		inet_ntop(family, a, ip, sizeof(ip));
		port = ntohs(sa->sa_family == AF_INET
				     ? ((const struct sockaddr_in *)sa)->sin_port
				     : ((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	snprintf(buf, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

int callback_cidr_parse(const char *s, struct callback_cidr *ret)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	struct callback_cidr c = {0};
	unsigned bits;
	uint32_t prefix;

	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	if (inet_pton(AF_INET, host, c.addr) == 1) {
		c.family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, host, c.addr) == 1) {
		/* Peers in that range are matched as IPv4: the IPv6 spelling would never match. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)c.addr))
			return -EINVAL;
		c.family = AF_INET6;
		bits = 128;
	} else {
		return -EINVAL;
	}
	prefix = bits;
	if (slash && (slash[1] < '0' || slash[1] > '9' || parse_u32(slash + 1, &prefix) < 0 ||
		      prefix > bits))
		return -EINVAL;
	c.prefix = prefix;
	/* Host bits set ("10.0.0.1/8") is almost always a typo for a narrower range. */
	for (unsigned i = prefix; i < bits; i++)
		if (c.addr[i / 8] & (0x80 >> (i % 8)))
			return -EINVAL;
	*ret = c;
	return 0;
}

bool callback_cidr_match(const struct callback_cidr *c, const struct sockaddr *sa)
{
	uint8_t a[16];
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	int family;

	if (callback_addr_key(sa, &family, a) < 0 || family != c->family)
		return false;
	if (memcmp(a, c->addr, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* ---- configuration ---- */

/* "127.0.0.1:8443" or "[::1]:8443"; IP literals only, so nothing is resolved. */
static int listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s, *end;
	uint32_t port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		port_s = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		n = (size_t)(end - s);
		port_s = end + 1;
	}
	if (n == 0 || n >= sizeof(host) || port_s[0] < '0' || port_s[0] > '9' ||
	    parse_u32(port_s, &port) < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s[0] == '[' ? s + 1 : s, n);
	host[n] = 0;
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
	}
}

/* Certificates are read by OpenSSL from a path; credentials may also be systemd credential
 * names (no slash), which read_credential() looks up in $CREDENTIALS_DIRECTORY. */
static int file_key(json_t *obj, const char *path, const char *key, bool required, bool credential,
		    char **ret, struct error *e)
{
	const char *s = NULL;
	int r;

	r = jx_string(obj, path, key, required, CALLBACK_FILE_MAX, &s, e);
	if (r < 0 || !s)
		return r;
	if (s[0] != '/' && (!credential || strchr(s, '/')))
		return jx_fail(e, "%s.%s: must be an absolute path%s", path, key,
			       credential ? " or a systemd credential name" : "");
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int allow_parse(json_t *arr, const char *path, struct callback_config *c, struct error *e)
{
	if (!json_is_array(arr))
		return jx_fail(e, "%s.allow: must be an array of CIDRs", path);
	if (json_array_size(arr) == 0)
		return jx_fail(e, "%s.allow: must not be empty (leave it out for loopback only)",
			       path);
	if (json_array_size(arr) > CALLBACK_ALLOW_MAX)
		return jx_fail(e, "%s.allow: more than %d entries", path, CALLBACK_ALLOW_MAX);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);

		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    callback_cidr_parse(json_string_value(v), &c->allow[i]) < 0)
			return jx_fail(e,
				       "%s.allow[%zu]: must be an IPv4 or IPv6 network such as "
				       "\"10.0.0.0/8\" or \"fd00::/8\", with no host bits set",
				       path, i);
	}
	c->n_allow = json_array_size(arr);
	return 0;
}

static int lockout_parse(json_t *obj, const char *path, struct callback_config *c, struct error *e)
{
	static const char *const keys[] = {"failures", "window_s", "duration_s", NULL};
	uint64_t failures = 5, window_s = 60, duration_s = 300;
	char p[64];
	int r;

	snprintf(p, sizeof(p), "%s.lockout", path);
	if (obj &&
	    ((r = jx_only_keys(obj, p, keys, e)) < 0 ||
	     (r = jx_uint(obj, p, "failures", 1, CALLBACK_LOCKOUT_FAILURES_MAX, &failures, e)) <
		     0 ||
	     (r = jx_uint(obj, p, "window_s", 1, CALLBACK_LOCKOUT_S_MAX, &window_s, e)) < 0 ||
	     (r = jx_uint(obj, p, "duration_s", 1, CALLBACK_LOCKOUT_S_MAX, &duration_s, e)) < 0))
		return r;
	c->lockout = (struct callback_lockout_policy){.failures = (unsigned)failures,
						      .window_us = window_s * 1000000,
						      .duration_us = duration_s * 1000000};
	return 0;
}

static int config_parse(json_t *obj, const char *path, struct callback_config *c, struct error *e)
{
	static const char *const keys[] = {"listen",
					   "cert_file",
					   "key_file",
					   "client_ca_file",
					   "hmac_secret_file",
					   "allow",
					   "max_body_bytes",
					   "replay_window_s",
					   "lockout",
					   "request_timeout_s",
					   "max_connections",
					   "max_connections_per_source",
					   NULL};
	const char *listen = NULL;
	json_t *allow;
	int r;

	if ((r = jx_only_keys(obj, path, keys, e)) < 0 ||
	    (r = jx_string(obj, path, "listen", true, CALLBACK_LISTEN_MAX, &listen, e)) < 0 ||
	    (r = file_key(obj, path, "cert_file", true, false, &c->cert_file, e)) < 0 ||
	    (r = file_key(obj, path, "key_file", true, true, &c->key_file, e)) < 0 ||
	    (r = file_key(obj, path, "client_ca_file", false, false, &c->client_ca_file, e)) < 0 ||
	    (r = file_key(obj, path, "hmac_secret_file", true, true, &c->hmac_secret_file, e)) <
		    0 ||
	    (r = jx_uint(obj, path, "max_body_bytes", CALLBACK_BODY_MIN, CALLBACK_BODY_MAX,
			 &c->max_body_bytes, e)) < 0 ||
	    (r = jx_uint(obj, path, "replay_window_s", 1, CALLBACK_WINDOW_MAX, &c->replay_window_s,
			 e)) < 0 ||
	    (r = jx_uint(obj, path, "request_timeout_s", 1, CALLBACK_TIMEOUT_S_MAX,
			 &c->request_timeout_s, e)) < 0 ||
	    (r = jx_uint(obj, path, "max_connections", 1, CALLBACK_CONNECTIONS_MAX,
			 &c->max_connections, e)) < 0 ||
	    (r = jx_uint(obj, path, "max_connections_per_source", 1, CALLBACK_CONNECTIONS_MAX,
			 &c->max_connections_per_source, e)) < 0 ||
	    (r = lockout_parse(json_object_get(obj, "lockout"), path, c, e)) < 0)
		return r;
	if (c->max_connections_per_source > c->max_connections)
		return jx_fail(
			e, "%s.max_connections_per_source: must not exceed max_connections (%llu)",
			path, (unsigned long long)c->max_connections);
	if (listen_parse(listen, &c->addr, &c->addr_len) < 0)
		return jx_fail(e, "%s.listen: \"%s\" must be IPv4:PORT or [IPv6]:PORT", path,
			       listen);
	c->listen = strdup(listen);
	if (!c->listen)
		return -ENOMEM;
	allow = json_object_get(obj, "allow");
	if (allow)
		return allow_parse(allow, path, c, e);
	/* Loopback only: a forwarding agent on the host, or a tunnel ending here. */
	if (callback_cidr_parse("127.0.0.0/8", &c->allow[0]) < 0 ||
	    callback_cidr_parse("::1/128", &c->allow[1]) < 0)
		return -EINVAL;
	c->n_allow = 2;
	return 0;
}

int callback_config_parse(json_t *obj, const char *path, struct callback_config **ret,
			  struct error *e)
{
	struct callback_config *c;
	int r;

	if (!json_is_object(obj))
		return jx_fail(e, "%s: must be an object", path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max_body_bytes = 65536;
	c->replay_window_s = 300;
	c->request_timeout_s = 10;
	c->max_connections = 64;
	c->max_connections_per_source = 8;
	r = config_parse(obj, path, c, e);
	if (r < 0) {
		if (r == -ENOMEM)
			jx_fail(e, "out of memory");
		callback_config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void callback_config_free(struct callback_config *c)
{
	if (!c)
		return;
	free(c->listen);
	free(c->cert_file);
	free(c->key_file);
	free(c->client_ca_file);
	free(c->hmac_secret_file);
	free(c);
}

bool callback_config_allows(const struct callback_config *c, const struct sockaddr *sa)
{
	for (size_t i = 0; i < c->n_allow; i++)
		if (callback_cidr_match(&c->allow[i], sa))
			return true;
	return false;
}
