// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe cert show|verify|pubkey: certificates for people, their check against a trusted key,
 * and the node key's public half for auditors. Reads certificates; writes none. */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "cmd_cert.h"
#include "log.h"
#include "sign.h"

static int load_trusted(const char *path, EVP_PKEY **ret)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (!f)
		return negative_errno();
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!k) {
		rewind(f);
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	}
	fclose(f);
	if (!k)
		return -EBADMSG;
	*ret = k;
	return 0;
}

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

int cmd_cert_verify(struct cli *c)
{
	json_auto_t *report = json_array();
	EVP_PKEY *trusted = NULL;
	const char *key = c->key_path;
	char fp[65] = "";
	int rc = EXIT_OK, r;

	/* Without --key, the node's own key if it has one; else the embedded key, which proves
	 * integrity but not who signed. */
	if (!key && access(SIGN_KEY_PATH_DEFAULT, F_OK) == 0)
		key = SIGN_KEY_PATH_DEFAULT;
	if (key) {
		r = load_trusted(key, &trusted);
		if (r < 0)
			return log_error_errno(r, "cannot read key %s: %m", key), EXIT_FAILED;
		sign_key_fingerprint(trusted, fp);
	}
	for (int i = 0; i < c->n_args; i++) {
		json_auto_t *cert = NULL;
		struct error err = {.msg = ""};
		const char *signer, *result, *id, *path;

		r = cert_load(c->args[i], &cert);
		if (r == 0)
			r = cert_check(cert, trusted, &err);
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
			/* One object per certificate, in the order given; "error" only if invalid. */
			json_auto_t *o = json_pack("{s:s, s:b, s:s?, s:s?, s:s?, s:s?, s:b}",
						   "file", c->args[i], "valid", r >= 0, "id", id,
						   "result", result, "device", path, "signer",
						   signer, "trusted_key", trusted != NULL);

			if (o && r < 0)
				json_object_set_new(o, "error", json_string(err.msg));
			if (o)
				json_array_append(report, o);
		} else if (r < 0) {
			log_error("%s: INVALID: %s", c->args[i], err.msg);
		} else {
			printf("%s: valid: %s certificate %s for %s, signed by key %s%s\n",
			       c->args[i], result, id, path, signer,
			       trusted ? " (the trusted key)"
				       : " (embedded key: integrity only; give --key to "
					 "check who signed)");
		}
	}
	if (c->json)
		cli_print_json(report);
	EVP_PKEY_free(trusted);
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
