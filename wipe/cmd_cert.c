// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe cert show|verify|pubkey: certificates for people, their check against a trusted key,
 * and the node key's public half for auditors. Reads certificates; writes none. */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cmd_cert.h"
#include "log.h"
#include "sign.h"
#include "trust.h"

int cmd_cert_show(struct cli *c)
{
	int rc = EXIT_OK;

	for (int i = 0; i < c->n_args; i++) {
		json_auto_t *cert = NULL;
		int r = cert_load(c->args[i], &cert);

		if (r < 0) {
			log_error_errno(r, "%s: %m", c->args[i]);
			rc = EXIT_FAILED;
			continue;
		}
		if (c->json)
			cli_print_json(cert);
		else
			cert_print(cert, stdout);
	}
	return rc;
}

/* One certificate against the trusted keys: 0 valid (@by: the key that signed it); -ENOKEY
 * there is no trusted key at all (the record may be intact, but nobody vouches for it);
 * -EBADMSG invalid or signed by a key that is not trusted; other -errno. @err says why. */
static int verify_one(const struct trust *t, json_t *cert, const struct trusted_key **by,
		      struct error *err)
{
	const char *signer =
		json_string_value(json_object_get(json_object_get(cert, "signature"), "key"));
	int r;

	*by = NULL;
	if (t->n == 0) {
		/* The embedded key proves only that nobody edited what its holder signed. */
		r = cert_check(cert, NULL, err);
		if (r < 0)
			return r;
		return error_set(err, -ENOKEY,
				 "signed by key %s, but no trusted key to check it against: give "
				 "--key with the signer's public key (wipe cert pubkey on the host "
				 "that wiped), or put it in %s",
				 signer, TRUST_DIR_DEFAULT);
	}
	*by = trust_find(t, signer);
	/* One explicit key: its own check says whose key signed instead. */
	if (!*by && t->explicit)
		return cert_check(cert, t->keys[0].key, err);
	if (!*by)
		return error_set(err, -EBADMSG,
				 "signed by key %s, which is not a trusted key (the node key and "
				 "the keys in the trust directory; or give --key)",
				 signer ? signer : "(none)");
	return cert_check(cert, (*by)->key, err);
}

int cmd_cert_verify(struct cli *c)
{
	json_auto_t *report = json_array();
	struct trust t;
	int rc = EXIT_OK, r;

	r = trust_load(&t, c->key_path, SIGN_KEY_PATH_DEFAULT,
		       c->trust_dir ? c->trust_dir : TRUST_DIR_DEFAULT);
	if (r < 0) {
		trust_done(&t);
		return log_error_errno(r, "cannot read the trusted key%s %s: %m",
				       c->key_path ? "" : "s",
				       c->key_path ? c->key_path : "(node key, trust directory)"),
		       EXIT_FAILED;
	}
	if (t.skipped[0])
		log_warning("trust directory: not trusted: %s", t.skipped);
	for (int i = 0; i < c->n_args; i++) {
		json_auto_t *cert = NULL;
		struct error err = {.msg = ""};
		const struct trusted_key *by = NULL;
		const char *signer, *result, *id, *path;

		r = cert_load(c->args[i], &cert);
		if (r == 0)
			r = verify_one(&t, cert, &by, &err);
		else
			error_set(&err, -EIO, "%s", strerror(-r));
		signer = json_string_value(
			json_object_get(json_object_get(cert, "signature"), "key"));
		result = json_string_value(json_object_get(cert, "result"));
		id = json_string_value(json_object_get(cert, "id"));
		path = json_string_value(json_object_get(json_object_get(cert, "device"), "path"));
		if (r < 0)
			rc = EXIT_FAILED;
		if (c->json) {
			/* One object per certificate, in the order given; "error" only if not
			 * valid. */
			json_auto_t *o =
				json_pack("{s:s, s:b, s:s?, s:s?, s:s?, s:s?, s:b, s:s?}", "file",
					  c->args[i], "valid", r >= 0, "id", id, "result", result,
					  "device", path, "signer", signer, "trusted_key", t.n > 0,
					  "trusted_by", by ? by->from : NULL);

			if (o && r < 0)
				json_object_set_new(o, "error", json_string(err.msg));
			if (o)
				json_array_append(report, o);
		} else if (r == -ENOKEY) {
			log_error("%s: NOT VERIFIED: %s", c->args[i], err.msg);
		} else if (r < 0) {
			log_error("%s: INVALID: %s", c->args[i], err.msg);
		} else {
			printf("%s: valid: %s certificate %s for %s, signed by key %s (trusted: %s)\n",
			       c->args[i], result, id, path, signer, by->from);
		}
	}
	if (c->json)
		cli_print_json(report);
	trust_done(&t);
	return rc;
}

int cmd_cert_pubkey(struct cli *c)
{
	EVP_PKEY *key = NULL;
	int r;

	r = sign_key_load(c->key_path ? c->key_path : SIGN_KEY_PATH_DEFAULT, &key);
	if (r < 0)
		return log_error_errno(r, "cannot load the node key: %m"), EXIT_FAILED;
	r = PEM_write_PUBKEY(stdout, key);
	EVP_PKEY_free(key);
	return r == 1 ? EXIT_OK : EXIT_FAILED;
}
