// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe verify: reads devices back after the fact (zeros, or no LUKS header and no signature)
 * and reports each; the job module does the reading and the audit record. */
#include <stdio.h>

#include "cmd_verify.h"
#include "log.h"

int cmd_verify(struct cli *c)
{
	json_t *all = json_array();
	int rc = EXIT_OK;

	cli_out_set(c, "devices", all);
	if (!c->opt.method)
		return cli_error(c, EXIT_USAGE,
				 "verify: give --method zero|zeroout|crypto (what the device "
				 "should hold)");
	if (!c->opt.verify_given)
		c->opt.verify = PASS_VERIFY_FULL;
	if (c->opt.verify == PASS_VERIFY_NONE)
		return cli_error(c, EXIT_USAGE, "verify: --verify none checks nothing");
	if (cli_setup_signing(c) < 0)
		return EXIT_FAILED;
	for (int i = 0; i < c->n_args; i++) {
		struct wipe_job j;
		int r = job_verify_device(&j, c->args[i], &c->opt), status = exitcode_of_job(&j);
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "device", c->args[i],
				      "result", job_result_name(j.result), "message", j.message,
				      "bytes_read", (json_int_t)j.check.bytes, "mismatched_blocks",
				      (json_int_t)j.check.mismatches, "unreadable_blocks",
				      (json_int_t)j.check.io_errors);

		rc = exitcode_worst(rc, status);
		if (o && r < 0)
			json_object_set_new(o, "error", cli_error_json(status, j.message));
		json_array_append_new(all, o);
		if (r < 0)
			cli_error(c, status, "%s", j.message);
		else if (!c->json)
			printf("%s\n", j.message);
		job_done(&j);
	}
	return rc;
}
