// SPDX-License-Identifier: GPL-2.0-or-later
/* libcryptsetup-token-keyd.so: the LUKS2 token plugin through which `cryptsetup open` and
 * systemd-cryptsetup (crypttab) unlock keyd volumes without keyd running. It reads keyd's
 * configuration for the KMS the token names, unwraps the WDEK bound to this header's UUID and
 * hands the DEK to libcryptsetup as the keyslot passphrase, in secure memory that is wiped
 * when libcryptsetup gives it back. It never writes the header: finishing an interrupted
 * re-key or storing a rewrapped WDEK stays keyd's job. Each open is audited when the log can
 * be written. Only the cryptsetup_token_* symbols are exported (token-plugin.sym). */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "config.h"
#include "http.h"
#include "kms.h"
#include "luks.h"
#include "secmem.h"
#include "text.h"
#include "token.h"
#include "unwrap_any.h"

/* The plugin's share of its host's secure heap: one DEK, KMS replies, jansson documents. */
#define PLUGIN_SECURE_HEAP (1024 * 1024)

/* The ABI libcryptsetup looks up (with dlvsym, version CRYPTSETUP_TOKEN_1.0). */
int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr);
void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
void cryptsetup_token_dump(struct crypt_device *cd, const char *json);
const char *cryptsetup_token_version(void);

/* libcryptsetup loads a plugin once and keeps it: libcurl is set up on first use. */
static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static int http_status;

static void http_init_once(void)
{
	http_status = http_global_init();
}

/* KEYD_CONFIG names another configuration (tests, non-default installs); a set-uid host
 * ignores it. */
static const char *config_path(void)
{
	const char *p = secure_getenv("KEYD_CONFIG");

	return p && p[0] ? p : CONFIG_PATH_DEFAULT;
}

/* One line to libcryptsetup's log (luksDump, cryptsetup's terminal): @lead as given, the rest
 * with unsafe characters escaped, since it quotes the token and the KMS. */
static void plugin_say(struct crypt_device *cd, int level, const char *lead, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void plugin_say(struct crypt_device *cd, int level, const char *lead, const char *fmt, ...)
{
	char msg[ERROR_MAX + 256], safe[4 * sizeof(msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	crypt_logf(cd, level, "%s%s\n", lead, text_escape(msg, safe, sizeof(safe)));
}

static void say_wait(void *userdata, const struct kms *kms, unsigned attempt, uint64_t pause_ms,
		     const struct error *e)
{
	struct crypt_device *cd = userdata;

	plugin_say(cd, CRYPT_LOG_NORMAL,
		   "keyd: ", "KMS '%s' attempt %u failed (%s); retrying in %.1f s", kms->name,
		   attempt, e->msg, (double)pause_ms / 1000);
}

/* The configured KMS of @t's wraps, of the provider that made each: any of them will do. */
static int plugin_keys(const struct keyd_config *cfg, const struct keyd_token *t, const char *path,
		       struct kms_key *keys, size_t *n, struct error *err)
{
	int r = -ENOENT;

	*n = 0;
	error_set(err, -EIO, "token %d names KMS '%s'%s, which %s does not define", t->id, t->kms,
		  t->n_wraps > 1 ? " and others" : "", path);
	for (unsigned i = 0; i < t->n_wraps; i++) {
		const struct token_wrap *w = &t->wrap[i];
		struct kms *kms = config_find_kms(cfg, w->kms);

		if (!kms)
			continue;
		if (strcmp(kms->provider->name, w->provider) != 0) {
			r = -EXDEV;
			error_set(err, -EIO,
				  "token %d was wrapped by a %s KMS, but KMS '%s' in %s is %s",
				  t->id, w->provider, w->kms, path, kms->provider->name);
			continue;
		}
		keys[(*n)++] = (struct kms_key){.kms = kms};
	}
	return *n ? 0 : r;
}

/* One audit record per open, success or not. An initramfs may have no writable log: then the
 * unlock goes on and the operator is told that it is not recorded. */
static void plugin_audit(struct crypt_device *cd, const struct keyd_config *cfg,
			 const struct keyd_token *t, const struct token_wrap *w, int token, int r,
			 const char *error)
{
	json_auto_t *o = NULL;
	struct audit *a = NULL;
	int q;

	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "volume", t->name, "device",
		      crypt_get_device_name(cd), "luks_uuid", crypt_get_uuid(cd), "kms", w->kms,
		      "key_id", w->key_id, "key_version", w->key_version ? w->key_version : "",
		      "token", token, "via", "token plugin");
	q = o ? audit_open(cfg->audit_path, NULL, &a) : -ENOMEM;
	if (q >= 0)
		q = audit_write(a, "token.open", r < 0 ? "failure" : "success", NULL, o, error);
	audit_close(a);
	if (q < 0)
		plugin_say(cd, CRYPT_LOG_ERROR,
			   "keyd: ", "this unlock is not in the audit log %s: %s", cfg->audit_path,
			   strerror(-q));
}

int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr)
{
	_cleanup_secure_ uint8_t *dek = NULL;
	struct keyd_config *cfg = NULL;
	struct keyd_token t = {.id = -1, .keyslot = -1};
	struct unwrap_any_result any = {.key = -1, .wrap = -1};
	struct kms_key keys[KMS_KEYS_MAX];
	struct error err = {.msg = ""};
	const char *json = NULL, *path = config_path();
	struct error je;
	size_t n_keys = 0;
	int r;

	(void)usrptr;
	/* Key material goes to locked memory only, and a process that held it dumps no core. */
	r = secmem_init(PLUGIN_SECURE_HEAP);
	if (r < 0) {
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "no secure memory for the key: %s",
			   strerror(-r));
		return r;
	}
	pthread_once(&http_once, http_init_once);
	if (http_status < 0) {
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "cannot initialise libcurl");
		return http_status;
	}
	r = crypt_token_json_get(cd, token, &json);
	if (r < 0)
		return r;
	r = token_from_json(json, token, &t, &je);
	if (r < 0) {
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "%s", je.msg);
		return r;
	}
	if (t.state != TOKEN_ACTIVE || t.keyslot < 0) {
		plugin_say(cd, CRYPT_LOG_NORMAL, "keyd: ",
			   "token %d belongs to an interrupted enrollment or re-key; "
			   "keyd finishes or rolls it back at its next start",
			   token);
		token_done(&t);
		return -ENOENT;
	}

	r = config_load(path, &cfg, &je);
	if (r < 0) {
		/* No configuration, no audit log to write to: stderr is all there is. */
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "%s: %s", path, je.msg);
		token_done(&t);
		return r;
	}
	r = plugin_keys(cfg, &t, path, keys, &n_keys, &err);
	if (r < 0)
		goto out;
	/* Bound to this header's UUID, never the token's own "aad"; every KMS of the token asked
	 * at once, the first to answer wins. A ciphertext Key Protect rewrapped is keyd's to
	 * store; the plugin stays read-only. */
	r = unwrap_any(keys, n_keys, &t, crypt_get_uuid(cd), &dek, &any, say_wait, cd, NULL, &err);
	kms_wrapped_done(&any.rewrapped);
	if (r < 0)
		goto out;
	*buffer = (char *)TAKE_PTR(dek);
	*buffer_len = LUKS_DEK_LEN;
	r = 0;
out:
	if (r < 0)
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "%s: %s", crypt_get_device_name(cd),
			   err.msg);
	/* Success means the KMS released the key; whether it opens the keyslot, libcryptsetup
	 * says next (and a wrong key cannot come back: the AEAD tag binds it to this header). */
	plugin_audit(cd, cfg, &t, any.wrap >= 0 ? &t.wrap[any.wrap] : &t.wrap[0], token, r,
		     r < 0 ? err.msg : NULL);
	token_done(&t);
	config_free(cfg);
	return r;
}

void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	(void)buffer_len;
	secmem_free(buffer);
}

int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	struct keyd_token t;
	struct error je;
	int r;

	r = token_from_json(json, -1, &t, &je);
	if (r < 0)
		plugin_say(cd, CRYPT_LOG_ERROR, "keyd: ", "invalid token: %s", je.msg);
	token_done(&t);
	return r;
}

/* luksDump shows what a disk says of itself: which KMS and key open it, never the WDEK. */
void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	struct keyd_token t;
	struct error je;

	if (token_from_json(json, -1, &t, &je) < 0) {
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "invalid keyd token: %s", je.msg);
		return;
	}
	plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "volume:      %s", t.name);
	plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "state:       %s (generation %u)",
		   t.state == TOKEN_ACTIVE ? "active" : "pending", t.generation);
	for (unsigned i = 0; i < t.n_wraps; i++) {
		const struct token_wrap *w = &t.wrap[i];

		if (t.n_wraps > 1)
			plugin_say(cd, CRYPT_LOG_NORMAL, "\t",
				   "wrap %u of %u (any of them opens it)", i + 1, t.n_wraps);
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "provider:    %s", w->provider);
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "kms:         %s", w->kms);
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "key id:      %s", w->key_id);
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "key version: %s",
			   w->key_version ? w->key_version : "-");
		plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "wrapped key: %zu characters",
			   strlen(w->wdek));
	}
	plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "created:     %s", t.created);
	plugin_say(cd, CRYPT_LOG_NORMAL, "\t", "updated:     %s", t.updated ? t.updated : "-");
	token_done(&t);
}

const char *cryptsetup_token_version(void)
{
	return KEYD_VERSION;
}
