// SPDX-License-Identifier: GPL-2.0-or-later
/* One request to one Vault endpoint: the headers Vault's CLI sends, a 200 with a JSON object or
 * a failure classified by Vault's status and its own words (retryable or not, with a hint).
 * Backoff and failover are the callers'; never puts a token in a message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"
#include "kms_vault_client.h"
#include "util.h"

/* What Vault's HTTP status means here (developer.hashicorp.com/vault/api-docs, "HTTP status
 * codes", and sys/health). Unlisted 5xx are retryable -EIO, anything else a final -EIO. */
static const struct vault_status {
	long status;
	int error;
	bool retryable;
	const char *hint;
} vault_statuses[] = {
	{307, -EAGAIN, true,
	 "a standby node redirecting to the active node; keyd does not follow redirects: list "
	 "the active node, or a load balancer in front of it, in endpoints"},
	{400, -EINVAL, false, NULL},
	{403, -EPERM, false,
	 "the token is invalid or expired, or its policies do not allow this request"},
	{404, -ENOENT, false, NULL},
	{405, -EOPNOTSUPP, false, NULL},
	{412, -EAGAIN, true, "this node has not caught up with a recent write yet"},
	{429, -EBUSY, true, "rate limited, or an unsealed standby node"},
	{473, -EAGAIN, true, "a performance standby node"},
	{500, -EIO, true, NULL},
	{502, -EIO, true, NULL},
	{503, -EAGAIN, true, "Vault is sealed or down for maintenance"},
};

/* Vault's own words (its "errors" array) that say more than the status. */
static const struct vault_message {
	const char *text;
	int error;
	bool retryable;
	const char *hint;
} vault_messages[] = {
	{"Vault is sealed", -EAGAIN, true, "an operator must unseal it; keyd keeps trying"},
	{"encryption key not found", -ENOENT, false, "no Transit key of that name on this mount"},
	{"no handler for route", -ENOENT, false,
	 "no such path: check mount (and namespace) in the configuration"},
	{"cipher: message authentication failed", -EBADMSG, false,
	 "the WDEK does not open with this key and this volume's associated data (another key "
	 "of the same name, a WDEK copied from another volume, or a damaged token)"},
	{"disallowed by policy (too old)", -EKEYEXPIRED, false, NULL},
	{"version is too new", -EBADMSG, false,
	 "the WDEK names a version this key does not have (another key of the same name?)"},
	{"invalid role or secret ID", -EACCES, false,
	 "check approle.role_id_file and approle.secret_id_file (a secret ID may have expired "
	 "or used up its uses)"},
	{"invalid secret id", -EACCES, false,
	 "check approle.secret_id_file (it may have expired or used up its uses)"},
	{"invalid role ID", -EACCES, false, "check approle.role_id_file"},
	{"does not support encryption", -EOPNOTSUPP, false,
	 "keyd needs an aes256-gcm96 (or other AEAD) key"},
};

const char *vault_where(char *buf, size_t size, const struct vault *v, const char *endpoint,
			const struct vault_req *req)
{
	int n = snprintf(buf, size, "Vault %s%s%s: %s", endpoint, v->namespace ? " namespace " : "",
			 v->namespace ? v->namespace : "", req->what);

	if (req->key_id && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - n, " key %s/%s", v->mount, req->key_id);
	return buf;
}

/* Vault says why in {"errors": [...]}; the first two are quoted, as printable text. */
static int fail_status(struct error *e, const struct http_response *resp, const char *where)
{
	json_auto_t *j = json_loadb(kms_rest_body(resp), resp->body.len, 0, NULL);
	json_t *errs = json_object_get(j, "errors");
	const struct vault_status *s = NULL;
	const struct vault_message *m = NULL;
	char e0[KMS_REST_DETAIL_MAX], e1[KMS_REST_DETAIL_MAX / 2];
	const char *hint;
	int r;

	kms_rest_printable(e0, sizeof(e0), json_string_value(json_array_get(errs, 0)));
	kms_rest_printable(e1, sizeof(e1), json_string_value(json_array_get(errs, 1)));
	for (size_t i = 0; i < ELEMENTSOF(vault_statuses); i++)
		if (vault_statuses[i].status == resp->status)
			s = &vault_statuses[i];
	for (size_t i = 0; i < ELEMENTSOF(vault_messages) && !m; i++)
		if (strstr(e0, vault_messages[i].text) || strstr(e1, vault_messages[i].text))
			m = &vault_messages[i];
	hint = m && m->hint ? m->hint : s ? s->hint : NULL;
	r = kms_fail(e,
		     m	 ? m->error
		     : s ? s->error
			 : -EIO,
		     m	 ? m->retryable
		     : s ? s->retryable
			 : resp->status >= 500,
		     "%s: HTTP %ld%s%s%s%s%s%s", where, resp->status, e0[0] ? " " : "", e0,
		     e1[0] ? "; " : "", e1, hint ? ": " : "", hint ? hint : "");
	e->http_status = resp->status;
	if (e->retryable)
		e->retry_after_s = resp->retry_after_s;
	return r;
}

int vault_send(struct kms *kms, const struct vault_req *req, const char *endpoint, const char *auth,
	       long *ret_status, json_t **ret, struct error *e)
{
	struct vault *v = kms->data;
	_cleanup_(http_response_done) struct http_response resp = {0};
	const char *headers[6] = {0};
	char url[VAULT_URL_MAX], where[VAULT_WHERE_MAX];
	size_t h = 0;
	int r;

	if (auth)
		headers[h++] = auth;
	if (v->ns_header)
		headers[h++] = v->ns_header;
	/* What the Vault CLI sends; Vault Agent's listener may insist on it. */
	headers[h++] = "X-Vault-Request: true";
	headers[h++] = "Accept: application/json";
	if (req->body)
		headers[h++] = "Content-Type: application/json";
	snprintf(url, sizeof(url), "%s%s", endpoint, req->path);
	vault_where(where, sizeof(where), v, endpoint, req);
	*ret_status = 0;
	r = kms_rest_perform(&v->http,
			     &(struct http_request){.method = req->method,
						    .url = url,
						    .headers = headers,
						    .body = req->body,
						    .body_len = req->body ? strlen(req->body) : 0,
						    .ca_file = v->ca_file,
						    .timeout_ms = (long)kms->retry.try_timeout_ms},
			     where, &resp, e);
	if (r < 0)
		return r;
	*ret_status = resp.status;
	if (resp.status != 200)
		return fail_status(e, &resp, where);
	return kms_rest_json(&resp, where, ret, e);
}

int vault_fail_reply(struct error *e, const struct vault *v, const char *endpoint,
		     const struct vault_req *req, const char *why)
{
	char where[VAULT_WHERE_MAX];

	return kms_fail(e, -EPROTO, false, "%s: unexpected reply: %s",
			vault_where(where, sizeof(where), v, endpoint, req), why);
}

json_t *vault_reply_object(json_t *reply, const char *key, struct error *jxe)
{
	json_t *o = json_object_get(reply, key);

	if (!json_is_object(o))
		jx_fail(jxe, "reply.%s: missing or not an object", key);
	return json_is_object(o) ? o : NULL;
}
