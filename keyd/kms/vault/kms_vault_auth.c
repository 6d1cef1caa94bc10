// SPDX-License-Identifier: GPL-2.0-or-later
/* The `vault` provider's login: a token from token_file (looked up, renewed, re-read when Vault
 * Agent or an operator replaces it) or from AppRole, cached in secure memory and handed out
 * per request. Never puts a token, a role ID or a secret ID in a message. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "kms_vault_auth.h"
#include "secmem.h"
#include "util.h"

/* "X-Vault-Token: <token>" in secure memory, from @token of @len bytes. */
static char *vault_token_header(const char *token, size_t len)
{
	char *h;

	if (len == 0 || len > VAULT_TOKEN_MAX || strnlen(token, len) != len)
		return NULL;
	h = secmem_alloc(strlen(VAULT_TOKEN_HEADER) + len + 1);
	if (!h)
		return NULL;
	strcpy(h, VAULT_TOKEN_HEADER);
	memcpy(h + strlen(VAULT_TOKEN_HEADER), token, len);
	if (!kms_rest_charset(h + strlen(VAULT_TOKEN_HEADER), CHARS_TOKEN)) {
		secmem_free(h);
		return NULL;
	}
	return h;
}

/* Caches a new token header (taking @auth) valid for @ttl_s seconds from @start (0: no
 * expiry), renewed or replaced once 2/3 of it has passed. Caller holds v->lock. */
static void vault_token_set(struct vault *v, char *auth, uint64_t start, uint64_t ttl_s,
			    bool renewable)
{
	if (auth) {
		secmem_free(v->auth);
		v->auth = auth;
		v->auth_gen++;
	}
	v->renewable = renewable;
	if (ttl_s == 0) {
		v->expires_at_us = v->renew_at_us = VAULT_NEVER;
		return;
	}
	v->full_ttl_us = ttl_s * 1000000;
	v->expires_at_us = start + v->full_ttl_us;
	v->renew_at_us = v->expires_at_us - v->full_ttl_us / 3;
}

/* Reads token_file; *ret is its token header, secure memory. */
static int vault_token_read(struct kms *kms, struct vault *v, char **ret, struct error *e)
{
	_cleanup_secure_ uint8_t *token = NULL;
	size_t n;
	int r;

	r = kms_rest_credential(kms->name, "token_file", v->token_file, &token, &n, e);
	if (r < 0)
		return r;
	*ret = vault_token_header((const char *)token, n);
	if (!*ret)
		return kms_fail(e, -EINVAL, false,
				"kms.%s.token_file: %s does not hold a Vault token (1 to %d "
				"letters, digits and -._~+/=)",
				kms->name, v->token_file, VAULT_TOKEN_MAX);
	return 0;
}

/* lookup-self: how long the token lives and whether it may be renewed. A token whose lookup
 * is refused (403: invalid, expired, or no default policy) is kept: the request it is for
 * will say. Caller holds v->lock. */
static int vault_token_lookup(struct kms *kms, struct vault *v, const char *endpoint,
			      struct error *e)
{
	struct vault_req req = {
		.what = "token lookup", .method = "GET", .path = "/v1/auth/token/lookup-self"};
	json_auto_t *reply = NULL;
	uint64_t start = now_mono_us(), ttl = 0, creation_ttl = 0;
	bool renewable = false;
	struct error jxe;
	json_t *data;
	long status;
	int r;

	r = vault_send(kms, &req, endpoint, v->auth, &status, &reply, e);
	if (status == 403) {
		vault_token_set(v, NULL, start, 0, false);
		return 0;
	}
	if (r < 0)
		return r;
	data = vault_reply_object(reply, "data", &jxe);
	r = data ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_uint(data, "reply.data", "ttl", 0, VAULT_TTL_MAX, &ttl, &jxe);
	if (r >= 0)
		r = jx_uint(data, "reply.data", "creation_ttl", 0, VAULT_TTL_MAX, &creation_ttl,
			    &jxe);
	if (r >= 0)
		r = jx_bool(data, "reply.data", "renewable", &renewable, &jxe);
	if (r < 0)
		return vault_fail_reply(e, v, endpoint, &req, jxe.msg);
	vault_token_set(v, NULL, start, ttl, renewable);
	/* Past 2/3 of the whole TTL, not of what is left of it. */
	if (ttl && creation_ttl > ttl) {
		v->full_ttl_us = creation_ttl * 1000000;
		v->renew_at_us = v->expires_at_us > v->full_ttl_us / 3
					 ? v->expires_at_us - v->full_ttl_us / 3
					 : 0;
	}
	return 0;
}

/* renew-self. A failure is not fatal while the token lives: the next call tries again a
 * little later. A renewal that no longer extends the token (max TTL) stops renewing. Caller
 * holds v->lock. */
static void vault_token_renew(struct kms *kms, struct vault *v, const char *endpoint)
{
	struct vault_req req = {.what = "token renewal",
				.method = "POST",
				.path = "/v1/auth/token/renew-self",
				.body = "{}"};
	json_auto_t *reply = NULL;
	uint64_t start = now_mono_us(), lease = 0, full = v->full_ttl_us, old = v->expires_at_us;
	bool renewable = false;
	struct error e;
	struct error jxe;
	json_t *auth;
	long status;
	int r;

	r = vault_send(kms, &req, endpoint, v->auth, &status, &reply, &e);
	auth = r >= 0 ? vault_reply_object(reply, "auth", &jxe) : NULL;
	if (auth &&
	    jx_uint(auth, "reply.auth", "lease_duration", 0, VAULT_TTL_MAX, &lease, &jxe) >= 0 &&
	    jx_bool(auth, "reply.auth", "renewable", &renewable, &jxe) >= 0) {
		vault_token_set(v, NULL, start, lease, renewable);
		if (lease && full > v->full_ttl_us) {
			v->full_ttl_us = full;
			v->renew_at_us =
				v->expires_at_us > full / 3 ? v->expires_at_us - full / 3 : 0;
		}
		if (lease && old != VAULT_NEVER && v->expires_at_us <= old + 1000000)
			v->renew_at_us = VAULT_NEVER;
		return;
	}
	v->renew_at_us = start + VAULT_RENEW_RETRY_US;
	if (v->renew_at_us > v->expires_at_us)
		v->renew_at_us = v->expires_at_us;
}

/* AppRole login: a new client token for role_id and secret_id. Caller holds v->lock. */
static int vault_approle_login(struct kms *kms, struct vault *v, const char *endpoint,
			       struct error *e)
{
	_cleanup_secure_ char *role = NULL, *secret = NULL, *body = NULL;
	struct vault_req req = {.what = "AppRole login", .method = "POST"};
	json_auto_t *reply = NULL, *j = NULL;
	uint64_t start = now_mono_us(), lease = 0;
	const char *token = NULL;
	bool renewable = false;
	struct error jxe;
	char *header;
	json_t *auth;
	long status;
	int r;

	snprintf(req.path, sizeof(req.path), "%s", v->login_path);
	role = secmem_alloc(v->role_id_len + 1);
	secret = secmem_alloc(v->secret_id_len + 1);
	if (role && secret) {
		memcpy(role, v->role_id, v->role_id_len);
		memcpy(secret, v->secret_id, v->secret_id_len);
		j = json_pack("{s:s, s:s}", "role_id", role, "secret_id", secret);
	}
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!body)
		return kms_fail(e, -ENOMEM, false, "Vault: out of secure memory for the login");
	req.body = body;
	r = vault_send(kms, &req, endpoint, NULL, &status, &reply, e);
	if (r < 0)
		return r;
	auth = vault_reply_object(reply, "auth", &jxe);
	r = auth ? 0 : -EINVAL;
	if (r >= 0)
		r = jx_string(auth, "reply.auth", "client_token", true, VAULT_TOKEN_MAX, &token,
			      &jxe);
	if (r >= 0)
		r = jx_uint(auth, "reply.auth", "lease_duration", 0, VAULT_TTL_MAX, &lease, &jxe);
	if (r >= 0)
		r = jx_bool(auth, "reply.auth", "renewable", &renewable, &jxe);
	if (r < 0)
		return vault_fail_reply(e, v, endpoint, &req, jxe.msg);
	header = vault_token_header(token, strlen(token));
	if (!header)
		return vault_fail_reply(e, v, endpoint, &req,
					"reply.auth.client_token: not a token");
	vault_token_set(v, header, start, lease, renewable);
	return 0;
}

/* Token auth: reads token_file when nothing is cached, when the cached token expired, or
 * when it is the one of generation @stale (Vault refused it): Vault Agent and operators
 * replace that file. *ret_fresh: a token other than the cached one is in use. Caller holds
 * v->lock. */
static int vault_token_auth(struct kms *kms, struct vault *v, const char *endpoint, uint64_t stale,
			    bool *ret_fresh, struct error *e)
{
	uint64_t now = now_mono_us();
	char *header = NULL;
	int r;

	if (!v->auth || v->auth_gen == stale || now >= v->expires_at_us) {
		r = vault_token_read(kms, v, &header, e);
		if (r < 0)
			return r;
		if (v->auth && strcmp(header, v->auth) == 0) {
			secmem_free(header);
			if (v->auth_gen != stale)
				return kms_fail(e, -EACCES, false,
						"kms.%s.token_file: the Vault token in %s expired "
						"(not renewable, or at its max TTL): write a new "
						"one there",
						kms->name, v->token_file);
		} else {
			vault_token_set(v, header, now, 0, false);
			v->checked = false;
			*ret_fresh = true;
		}
	}
	if (!v->checked) {
		r = vault_token_lookup(kms, v, endpoint, e);
		if (r < 0)
			return r;
		v->checked = true;
	}
	if (v->renewable && now >= v->renew_at_us)
		vault_token_renew(kms, v, endpoint);
	return 0;
}

int vault_auth(struct kms *kms, const char *endpoint, uint64_t stale, char **ret, uint64_t *ret_gen,
	       bool *ret_fresh, struct error *e)
{
	struct vault *v = kms->data;
	uint64_t now = now_mono_us();
	char *copy = NULL;
	int r = 0;

	*ret_fresh = false;
	pthread_mutex_lock(&v->lock);
	if (v->token_file)
		r = vault_token_auth(kms, v, endpoint, stale, ret_fresh, e);
	else if (!v->auth || now >= v->renew_at_us || v->auth_gen == stale) {
		r = vault_approle_login(kms, v, endpoint, e);
		*ret_fresh = r >= 0;
		/* A failed early re-login need not stop us while the token still lives. */
		if (r < 0 && v->auth && v->auth_gen != stale && now < v->expires_at_us)
			r = 0;
	}
	if (r >= 0) {
		copy = secmem_strdup(v->auth);
		*ret_gen = v->auth_gen;
	}
	pthread_mutex_unlock(&v->lock);
	if (r < 0)
		return r;
	if (!copy)
		return kms_fail(e, -ENOMEM, false, "Vault: out of secure memory for the token");
	*ret = copy;
	return 0;
}
