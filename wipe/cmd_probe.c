// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe probe: what each device is, can do, holds and whether it is in use, for people or as
 * JSON. Opens devices read-only; writes nothing and audits nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd_probe.h"
#include "log.h"
#include "safety.h"
#include "signatures.h"
#include "util.h"

/* One device's report; @status: what it means for the exit status. */
static json_t *probe_one(struct cli *c, const char *path, int *status)
{
	struct device_info d;
	struct safety_report rep;
	char luks[SIGNATURES_UUID_MAX], why[METHOD_WHY_MAX];
	const char *ids[DEVICE_CONFIRM_MAX];
	json_t *o, *sigs = NULL, *use, *methods, *confirm;
	size_t n;
	int r;

	r = device_probe(path, &d);
	if (r < 0) {
		char msg[CLI_ERROR_MAX];

		*status = exitcode_of_open_error(r);
		snprintf(msg, sizeof(msg), "%s: %s", path,
			 r == -ENOTBLK ? "not a block device" : strerror(-r));
		cli_error(c, *status, "%s", msg);
		return json_pack("{s:s, s:o}", "path", path, "error", cli_error_json(*status, msg));
	}
	o = device_json(&d);
	r = signatures_probe(d.path, &sigs, luks);
	if (r < 0)
		log_warning_errno(r, "%s: cannot probe signatures: %m", d.path);
	json_object_set_new(o, "signatures", sigs ? sigs : json_null());
	json_object_set_new(o, "luks_uuid", luks[0] ? json_string(luks) : json_null());
	use = json_array();
	r = safety_check(&d, false, NULL, &rep);
	if (r < 0)
		log_warning_errno(r, "%s: cannot tell whether it is in use: %m", d.path);
	for (size_t i = 0; i < rep.n; i++)
		json_array_append_new(use, json_pack("{s:s, s:s}", "reason",
						     safety_reason_name(rep.items[i].reason),
						     "message", rep.items[i].msg));
	json_object_set_new(o, "in_use", use);
	confirm = json_array();
	n = device_confirm_ids(&d, luks, ids);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(confirm, json_string(ids[i]));
	json_object_set_new(o, "confirm_with", confirm);
	methods = json_array();
	for (size_t i = 0; i < wipe_methods_count; i++) {
		const struct wipe_method *m = &wipe_methods[i];
		char level_why[METHOD_WHY_MAX];
		enum nist_level l = method_level(m, &d, level_why, sizeof(level_why));
		bool ok = method_check(m, &d, luks, why, sizeof(why)) == 0;

		/* The note says why it is unsupported, or else why it reaches no higher. */
		json_array_append_new(methods,
				      json_pack("{s:s, s:b, s:s, s:s}", "name", m->name,
						"supported", ok, "nist_level", nist_level_name(l),
						"note", ok ? level_why : why));
	}
	json_object_set_new(o, "methods", methods);
	return o;
}

static void probe_print(json_t *o)
{
	static const struct {
		const char *label, *key;
	} rows[] = {
		{"Device id", "id"},  {"Transport", "transport"}, {"Media", "media"},
		{"Vendor", "vendor"}, {"Model", "model"},	  {"Serial", "serial"},
		{"WWN", "wwn"},	      {"LUKS UUID", "luks_uuid"},
	};
	json_t *caps = json_object_get(o, "capabilities"), *v, *loop = json_object_get(o, "loop");
	char size[32], sigs[1024];
	size_t i;

	printf("%s\n", json_string_value(json_object_get(o, "path")));
	for (i = 0; i < ELEMENTSOF(rows); i++)
		if (json_is_string(json_object_get(o, rows[i].key)))
			printf("  %-18s %s\n", rows[i].label,
			       json_string_value(json_object_get(o, rows[i].key)));
	if (loop)
		printf("  %-18s %s (device %s, inode %lld)\n", "Backing file",
		       json_string_value(json_object_get(loop, "backing_file")),
		       json_string_value(json_object_get(loop, "backing_device")),
		       json_integer_value(json_object_get(loop, "backing_inode")));
	format_bytes((double)json_integer_value(json_object_get(o, "size")), size, sizeof(size));
	printf("  %-18s %lld bytes (%s), logical block %lld, physical block %lld, %s\n", "Size",
	       json_integer_value(json_object_get(o, "size")), size,
	       json_integer_value(json_object_get(o, "logical_block_size")),
	       json_integer_value(json_object_get(o, "physical_block_size")),
	       json_is_true(json_object_get(o, "rotational")) ? "rotational" : "non-rotational");
	printf("  %-18s discard %s, secure discard %s, write-zeroes %s, firmware sanitize: ",
	       "Supports", json_is_true(json_object_get(caps, "discard")) ? "yes" : "no",
	       json_is_true(json_object_get(caps, "secure_discard")) ? "yes" : "no",
	       json_is_true(json_object_get(caps, "write_zeroes")) ? "yes" : "no");
	json_array_foreach (json_object_get(caps, "firmware_sanitize"), i, v)
		printf("%s%s", i ? ", " : "", json_string_value(v));
	printf("%s\n", json_array_size(json_object_get(caps, "firmware_sanitize")) ? "" : "none");
	signatures_format(json_object_get(o, "signatures"), sigs, sizeof(sigs));
	printf("  %-18s %s\n", "Signatures", sigs);
	printf("  %-18s %s\n", "In use", json_array_size(json_object_get(o, "in_use")) ? "" : "no");
	json_array_foreach (json_object_get(o, "in_use"), i, v)
		printf("    %s\n", json_string_value(json_object_get(v, "message")));
	printf("  %-18s ", "Confirm with");
	json_array_foreach (json_object_get(o, "confirm_with"), i, v)
		printf("%s%s", i ? " | " : "", json_string_value(v));
	printf("\n  Methods:\n");
	json_array_foreach (json_object_get(o, "methods"), i, v)
		printf("    %-18s %-11s %s%s%s\n", json_string_value(json_object_get(v, "name")),
		       json_is_true(json_object_get(v, "supported")) ? "supported" : "unsupported",
		       json_is_true(json_object_get(v, "supported"))
			       ? json_string_value(json_object_get(v, "nist_level"))
			       : "",
		       json_is_true(json_object_get(v, "supported")) ? ": " : "",
		       json_string_value(json_object_get(v, "note")));
}

int cmd_probe(struct cli *c)
{
	json_t *all = json_array();
	int rc = EXIT_OK;

	cli_out_set(c, "devices", all);
	for (int i = 0; i < c->n_args; i++) {
		int status = EXIT_OK;
		json_t *o = probe_one(c, c->args[i], &status);

		rc = exitcode_worst(rc, status);
		if (status == EXIT_OK && !c->json)
			probe_print(o);
		json_array_append_new(all, o);
	}
	return rc;
}
