// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe cert show|verify|pubkey: certificates for people, their check against a trusted key,
 * and the node key's public half for auditors. Reads certificates; writes none. */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "cmd_cert.h"
#include "log.h"
#include "sign.h"
#include "trust.h"

int cmd_cert_show(struct cli *c)
{
	json_t *all = json_array();
	int rc = EXIT_OK;

	for (int i = 0; i < c->n_args; i++) {
		json_auto_t *cert = NULL;
		int r = cert_load(c->args[i], &cert);

		if (r < 0) {
			char msg[CLI_ERROR_MAX];

			snprintf(msg, sizeof(msg), "%s: %s", c->args[i], strerror(-r));
			rc = cli_error(c, EXIT_FAILED, "%s", msg);
			json_array_append_new(all,
					      json_pack("{s:s, s:o}", "file", c->args[i], "error",
							cli_error_json(EXIT_FAILED, msg)));
			continue;
		}
		if (c->json)
			json_array_append_new(all, json_pack("{s:s, s:O}", "file", c->args[i],
							     "certificate", cert));
		else
			cert_print(cert, stdout);
	}
	cli_out_set(c, "certificates", all);
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

/* The report of one certificate for --json; "error" only if not valid. */
static json_t *verify_json(const char *file, json_t *cert, int r, const struct trust *t,
			   const struct trusted_key *by, const struct error *err)
{
	json_t *sig = json_object_get(cert, "signature");
	json_t *o = json_pack(
		"{s:s, s:b, s:s?, s:s?, s:s?, s:s?, s:b, s:s?}", "file", file, "valid", r >= 0,
		"id", json_string_value(json_object_get(cert, "id")), "result",
		json_string_value(json_object_get(cert, "result")), "device",
		json_string_value(json_object_get(json_object_get(cert, "device"), "path")),
		"signer", json_string_value(json_object_get(sig, "key")), "trusted_key", t->n > 0,
		"trusted_by", by ? by->from : NULL);

	if (o && r < 0)
		json_object_set_new(
			o, "error",
			cli_error_json(r == -EIO ? EXIT_FAILED : EXIT_CERT_INVALID, err->msg));
	return o;
}

int cmd_cert_verify(struct cli *c)
{
	json_t *report = json_array();
	struct trust t;
	int rc = EXIT_OK, r;

	cli_out_set(c, "certificates", report);
	r = trust_load(&t, c->key_path, SIGN_KEY_PATH_DEFAULT,
		       c->trust_dir ? c->trust_dir : TRUST_DIR_DEFAULT);
	if (r < 0) {
		trust_done(&t);
		return cli_error(c, EXIT_FAILED, "cannot read the trusted key%s %s: %s",
				 c->key_path ? "" : "s",
				 c->key_path ? c->key_path : "(node key, trust directory)",
				 strerror(-r));
	}
	if (t.skipped[0])
		log_warning("trust directory: not trusted: %s", t.skipped);
	for (int i = 0; i < c->n_args; i++) {
		json_auto_t *cert = NULL;
		struct error err = {.msg = ""};
		const struct trusted_key *by = NULL;
		const char *signer, *result, *id, *path;
		int status;

		r = cert_load(c->args[i], &cert);
		if (r == 0)
			r = verify_one(&t, cert, &by, &err);
		else
			r = error_set(&err, -EIO, "%s", strerror(-r));
		signer = json_string_value(
			json_object_get(json_object_get(cert, "signature"), "key"));
		result = json_string_value(json_object_get(cert, "result"));
		id = json_string_value(json_object_get(cert, "id"));
		path = json_string_value(json_object_get(json_object_get(cert, "device"), "path"));
		json_array_append_new(report, verify_json(c->args[i], cert, r, &t, by, &err));
		status = r == -EIO ? EXIT_FAILED : r < 0 ? EXIT_CERT_INVALID : EXIT_OK;
		rc = exitcode_worst(rc, status);
		if (r == -ENOKEY)
			cli_error(c, status, "%s: NOT VERIFIED: %s", c->args[i], err.msg);
		else if (r < 0)
			cli_error(c, status, "%s: %s: %s", c->args[i],
				  r == -EIO ? "cannot read it" : "INVALID", err.msg);
		else if (!c->json)
			printf("%s: valid: %s certificate %s for %s, signed by key %s (trusted: %s)\n",
			       c->args[i], result, id, path, signer, by->from);
	}
	trust_done(&t);
	return rc;
}

/* The public half as PEM text. NULL when OpenSSL cannot write it. */
static char *pubkey_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (b && PEM_write_bio_PUBKEY(b, key) == 1 && (n = BIO_get_mem_data(b, &data)) > 0)
		pem = strndup(data, (size_t)n);
	BIO_free(b);
	return pem;
}

int cmd_cert_pubkey(struct cli *c)
{
	const char *path = c->key_path ? c->key_path : SIGN_KEY_PATH_DEFAULT;
	EVP_PKEY *key = NULL;
	char fp[65], *pem;
	int r;

	r = sign_key_load(path, &key);
	if (r < 0)
		return cli_error(c, EXIT_FAILED, "cannot load the node key %s: %s", path,
				 strerror(-r));
	pem = pubkey_pem(key);
	r = sign_key_fingerprint(key, fp);
	EVP_PKEY_free(key);
	if (!pem || r < 0) {
		free(pem);
		return cli_error(c, EXIT_FAILED, "cannot write the public key of %s", path);
	}
	if (c->json) {
		cli_out_set(c, "key", json_string(fp));
		cli_out_set(c, "public_key_pem", json_string(pem));
	} else {
		fputs(pem, stdout);
	}
	free(pem);
	return EXIT_OK;
}
