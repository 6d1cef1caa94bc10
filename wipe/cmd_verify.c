// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe verify: reads devices back after the fact (zeros, or no LUKS header and no signature)
 * and reports each; the job module does the reading and the audit record. */
#include <stdio.h>

#include "cmd_verify.h"
#include "log.h"

int cmd_verify(struct cli *c)
{
	json_auto_t *all = json_array();
	int rc = EXIT_OK;

	if (!c->opt.method) {
		log_error(
			"verify: give --method zero|zeroout|crypto (what the device should hold)");
		return EXIT_USAGE;
	}
	if (!c->opt.verify_given)
		c->opt.verify = PASS_VERIFY_FULL;
	if (c->opt.verify == PASS_VERIFY_NONE) {
		log_error("verify: --verify none checks nothing");
		return EXIT_USAGE;
	}
	if (cli_setup_signing(c) < 0)
		return EXIT_FAILED;
	for (int i = 0; i < c->n_args; i++) {
		struct wipe_job j;
		int r = job_verify_device(&j, c->args[i], &c->opt);

		if (r < 0)
			rc = EXIT_FAILED;
		if (c->json)
			json_array_append_new(
				all,
				json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "device", c->args[i],
					  "result", job_result_name(j.result), "message", j.message,
					  "bytes_read", (json_int_t)j.check.bytes,
					  "mismatched_blocks", (json_int_t)j.check.mismatches,
					  "unreadable_blocks", (json_int_t)j.check.io_errors));
		else if (r < 0)
			log_error("%s", j.message);
		else
			printf("%s\n", j.message);
		job_done(&j);
	}
	if (c->json)
		cli_print_json(all);
	return rc;
}
