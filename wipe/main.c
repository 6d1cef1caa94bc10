// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe: the only place that parses wipe's argv. Subcommands come from one table; it sets up
 * secure memory, the signing key, the audit log and signals, asks for confirmation, runs jobs
 * (in parallel, one thread per device) and reports. Exit: 0 done, 1 failed, 2 usage,
 * 3 refused, 130 interrupted. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "job.h"
#include "log.h"
#include "cryptsetup_util.h"
#include "progress.h"
#include "secmem.h"
#include "sign.h"
#include "util.h"

#define WIPE_SECURE_HEAP (4 * 1024 * 1024)
#define WIPE_DEVICES_MAX PROGRESS_DEVICES_MAX
#define WIPE_CONFIRM_MAX 64
#define WIPE_INPUT_MAX	 256

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 3,
	EXIT_INTERRUPTED = 130,
};

struct cli {
	struct wipe_options opt;
	const char *key_path, *audit_path;
	const char *confirm[WIPE_CONFIRM_MAX];
	size_t n_confirm;
	uint64_t rate_limit;
	uint64_t progress_us;
	bool json, progress;
	char **args;
	int n_args;
};

struct command {
	const char *name;
	const char *usage;
	const char *summary;
	int min_args;
	int (*run)(struct cli *c);
};

static volatile bool stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = true;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));

	if (s)
		printf("%s\n", s);
	secmem_free(s);
}

/* ---- probe ---- */

static json_t *probe_one(const char *path, int *rc)
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
		*rc = log_error_errno(r, "%s: %m", path);
		return NULL;
	}
	o = device_json(&d);
	r = signatures_probe(d.path, &sigs, luks);
	if (r < 0)
		log_warning_errno(r, "%s: cannot probe signatures: %m", d.path);
	json_object_set_new(o, "signatures", sigs ? sigs : json_null());
	json_object_set_new(o, "luks_uuid", luks[0] ? json_string(luks) : json_null());
	use = json_array();
	r = safety_check(&d, NULL, &rep);
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

static int cmd_probe(struct cli *c)
{
	json_auto_t *all = json_array();
	int rc = 0;

	for (int i = 0; i < c->n_args; i++) {
		json_t *o = probe_one(c->args[i], &rc);

		if (!o)
			continue;
		if (!c->json)
			probe_print(o);
		json_array_append_new(all, o);
	}
	if (c->json)
		print_json(all);
	return rc < 0 ? EXIT_FAILED : EXIT_OK;
}

/* ---- run ---- */

static bool confirm_given(const struct cli *c, const struct wipe_job *j)
{
	for (size_t i = 0; i < c->n_confirm; i++)
		if (device_confirm_matches(&j->dev, j->luks_uuid, c->confirm[i]))
			return true;
	return false;
}

/* On a terminal without --confirm: show the plan and ask for the device's identity. */
static bool confirm_interactive(struct wipe_job *j)
{
	char line[WIPE_INPUT_MAX], size[32], sigs[1024];

	format_bytes((double)j->dev.size, size, sizeof(size));
	signatures_format(json_object_get(j->before, "signatures"), sigs, sizeof(sigs));
	fprintf(stderr,
		"\nAbout to wipe %s: %s %s, %s, serial %s, WWN %s%s%s\n"
		"  signatures: %s\n  method %s (%s), verification %s%s\n"
		"Type the device's serial, WWN or LUKS UUID%s to confirm: ",
		j->dev.path, j->dev.vendor, j->dev.model, size,
		j->dev.serial[0] ? j->dev.serial : "-", j->dev.wwn[0] ? j->dev.wwn : "-",
		j->dev.loop_file[0] ? ", backing file " : "", j->dev.loop_file, sigs,
		j->method->name, nist_level_name(j->level), pass_verify_name(j->verify),
		j->resuming ? " (resuming)" : "",
		j->dev.serial[0] || j->dev.wwn[0] ? "" : " (or its backing file / device id)");
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = 0;
	return device_confirm_matches(&j->dev, j->luks_uuid, line);
}

static int confirm(struct cli *c, struct wipe_job *j)
{
	bool tty = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);

	if (confirm_given(c, j))
		return 0;
	if (c->n_confirm)
		return job_refuse(j, -EPERM,
				  "%s: --confirm matches neither its serial, WWN nor LUKS UUID "
				  "(see wipe probe %s); nothing was written",
				  j->dev.path, j->dev.path);
	if (!tty)
		return job_refuse(
			j, -EPERM,
			"%s: not interactive, so --confirm with the device's serial, WWN or "
			"LUKS UUID is required (see wipe probe %s)",
			j->dev.path, j->dev.path);
	if (!confirm_interactive(j))
		return job_refuse(j, -EPERM,
				  "%s: the confirmation did not match; nothing was written",
				  j->dev.path);
	return 0;
}

static void *run_thread(void *u)
{
	job_run(u);
	return NULL;
}

static int run_jobs(struct cli *c, struct wipe_job **jobs, size_t n)
{
	pthread_t threads[WIPE_DEVICES_MAX];
	bool started[WIPE_DEVICES_MAX] = {false};
	struct progress prog = {0};
	size_t runnable = 0;

	for (size_t i = 0; i < n; i++)
		runnable += jobs[i]->result == JOB_PENDING;
	if (!runnable)
		return 0;
	if (c->progress)
		progress_start(&prog, jobs, n, isatty(STDERR_FILENO), c->progress_us, stderr);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->result != JOB_PENDING)
			continue;
		/* One device runs in this thread; several get one thread each. */
		if (runnable == 1)
			job_run(jobs[i]);
		else if (pthread_create(&threads[i], NULL, run_thread, jobs[i]) == 0)
			started[i] = true;
		else
			job_run(jobs[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (started[i])
			pthread_join(threads[i], NULL);
	progress_stop(&prog);
	return 0;
}

static int exit_code(struct wipe_job **jobs, size_t n)
{
	bool failed = false, interrupted = false, refused = false;

	for (size_t i = 0; i < n; i++) {
		failed |= jobs[i]->result == JOB_FAILURE;
		interrupted |= jobs[i]->result == JOB_INTERRUPTED;
		refused |= jobs[i]->result == JOB_REFUSED;
	}
	return failed	     ? EXIT_FAILED
	       : interrupted ? EXIT_INTERRUPTED
	       : refused     ? EXIT_REFUSED
			     : EXIT_OK;
}

/* --dry-run for people: what would run on each device, or why it would not. */
static void print_plan(const struct wipe_job *j)
{
	const char *ids[DEVICE_CONFIRM_MAX];
	size_t n = device_confirm_ids(&j->dev, j->luks_uuid, ids);
	char sigs[1024];

	if (j->result == JOB_REFUSED) {
		log_error("%s", j->message);
		return;
	}
	signatures_format(json_object_get(j->before, "signatures"), sigs, sizeof(sigs));
	printf("%s: would run %s (%s) over bytes 0-%" PRIu64 "%s, verification %s\n"
	       "  found: %s\n  checkpoint: %s\n  confirm with:",
	       j->dev.path, j->method->name, nist_level_name(j->level), j->end,
	       j->resuming ? " (resuming)" : "", pass_verify_name(j->verify), sigs,
	       j->checkpoint_path);
	for (size_t i = 0; i < n; i++)
		printf("%s %s", i ? " |" : "", ids[i]);
	printf("\n");
}

static void print_result(const struct wipe_job *j)
{
	if (j->result == JOB_SUCCESS)
		printf("%s: wiped (%s, %s, verification %s)\n  certificate %s\n", j->dev.path,
		       j->method->name, nist_level_name(j->level), job_verify_name(j->verified),
		       j->cert_path);
	else
		log_error("%s%s%s", j->message, j->cert_path[0] ? "; certificate " : "",
			  j->cert_path);
}

static void report(struct cli *c, struct wipe_job **jobs, size_t n)
{
	json_auto_t *all = json_array();

	for (size_t i = 0; i < n; i++) {
		if (c->json)
			json_array_append_new(all, c->opt.dry_run ? job_plan_json(jobs[i])
								  : job_result_json(jobs[i]));
		else if (c->opt.dry_run)
			print_plan(jobs[i]);
		else
			print_result(jobs[i]);
	}
	if (c->json)
		print_json(all);
}

static json_t *operator_json(const char *name)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	const char *user = pw ? pw->pw_name : "";

	return json_pack("{s:s, s:i, s:s, s:s?}", "name",
			 name	? name
			 : sudo ? sudo
				: user,
			 "uid", (int)getuid(), "user", user, "sudo_user", sudo);
}

static int setup_signing(struct cli *c)
{
	const char *key = c->key_path ? c->key_path : SIGN_KEY_PATH_DEFAULT;
	int r;

	r = sign_key_load(key, &c->opt.key);
	if (r < 0)
		return log_error_errno(r, "cannot load the node key %s: %m%s", key,
				       r == -EPERM ? " (must be root's, mode 0600)" : "");
	r = audit_open(c->audit_path, c->opt.key, &c->opt.audit);
	if (r < 0)
		return log_error_errno(r, "cannot open the audit log %s: %m", c->audit_path);
	return 0;
}

static int cmd_run(struct cli *c)
{
	struct wipe_job *jobs[WIPE_DEVICES_MAX] = {NULL};
	size_t n = (size_t)c->n_args;
	struct io_throttle throttle;
	int r, rc;

	if (!c->opt.method && !c->opt.profile && !c->opt.resume) {
		log_error("run: give --method M or --profile clear|purge (see wipe methods)");
		return EXIT_USAGE;
	}
	if (n > WIPE_DEVICES_MAX || (c->opt.checkpoint_file && n > 1)) {
		log_error("run: at most %d devices, and --checkpoint FILE names one device's",
			  WIPE_DEVICES_MAX);
		return EXIT_USAGE;
	}
	if (!c->opt.dry_run && setup_signing(c) < 0)
		return EXIT_FAILED;
	io_throttle_init(&throttle, c->rate_limit);
	c->opt.throttle = &throttle;

	for (size_t i = 0; i < n; i++) {
		jobs[i] = calloc(1, sizeof(*jobs[i]));
		if (!jobs[i]) {
			log_error("out of memory");
			return EXIT_FAILED;
		}
		r = job_plan(jobs[i], c->args[i], &c->opt);
		for (size_t k = 0; r >= 0 && k < i; k++)
			if (jobs[k]->dev.devnum == jobs[i]->dev.devnum)
				r = job_refuse(jobs[i], -EINVAL, "%s is named twice", c->args[i]);
		if (r >= 0 && !c->opt.dry_run)
			confirm(c, jobs[i]);
	}
	if (!c->opt.dry_run)
		run_jobs(c, jobs, n);
	report(c, jobs, n);
	rc = exit_code(jobs, n);
	for (size_t i = 0; i < n; i++) {
		job_done(jobs[i]);
		free(jobs[i]);
	}
	return rc;
}

/* ---- verify ---- */

static int cmd_verify(struct cli *c)
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
	if (setup_signing(c) < 0)
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
		print_json(all);
	return rc;
}

/* ---- cert ---- */

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

static int cmd_cert_show(struct cli *c)
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
			print_json(cert);
		else
			cert_print(cert, stdout);
	}
	return rc;
}

static int cmd_cert_verify(struct cli *c)
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
		print_json(report);
	EVP_PKEY_free(trusted);
	return rc;
}

static int cmd_cert_pubkey(struct cli *c)
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

static int cmd_methods(struct cli *c)
{
	(void)c;
	printf("Methods:\n");
	for (size_t i = 0; i < wipe_methods_count; i++)
		printf("  %-19s %s\n", wipe_methods[i].name, wipe_methods[i].summary);
	printf("Profiles (NIST SP 800-88):\n");
	for (size_t i = 0; i < wipe_profiles_count; i++)
		printf("  %-19s %s\n", wipe_profiles[i].name, wipe_profiles[i].summary);
	return EXIT_OK;
}

static const struct command commands[] = {
	{"probe", "probe DEVICE...", "identity, capabilities, signatures, whether in use", 1,
	 cmd_probe},
	{"run",
	 "run DEVICE... --method M|--profile P [--verify none|sample|full] [--confirm ID]...",
	 "wipe, verify and certify (several devices in parallel)", 1, cmd_run},
	{"verify", "verify DEVICE... --method zero|zeroout|crypto [--verify sample|full]",
	 "check afterwards that a device holds what the method leaves", 1, cmd_verify},
	{"cert show", "cert show FILE...", "render a certificate for people", 1, cmd_cert_show},
	{"cert verify", "cert verify FILE... [--key PEM]",
	 "check a certificate's signature and record", 1, cmd_cert_verify},
	{"cert pubkey", "cert pubkey [--key FILE]", "print the node key's public half (PEM)", 0,
	 cmd_cert_pubkey},
	{"methods", "methods", "list methods and profiles", 0, cmd_methods},
};

static void help(void)
{
	printf("Usage: wipe COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		printf("  %-12s %s\n               %s\n", commands[i].name, commands[i].summary,
		       commands[i].usage);
	printf("\nMethods:");
	for (size_t i = 0; i < wipe_methods_count; i++)
		printf(" %s", wipe_methods[i].name);
	printf("\nProfiles:");
	for (size_t i = 0; i < wipe_profiles_count; i++)
		printf(" %s", wipe_profiles[i].name);
	printf("\n\nOptions:\n"
	       "  -m, --method NAME         wipe method (see wipe methods)\n"
	       "  -p, --profile NAME        clear or purge: the method follows NIST SP 800-88\n"
	       "      --verify MODE         none, sample (random blocks) or full\n"
	       "      --confirm ID          the device's serial, WWN or LUKS UUID (or a loop\n"
	       "                            device's backing file); repeat for several devices\n"
	       "  -n, --dry-run             show what would be done; change nothing\n"
	       "      --resume              finish an interrupted wipe from its checkpoint\n"
	       "      --rate-limit N[K|M|G] bytes per second for all devices together\n"
	       "      --checkpoint-dir DIR  checkpoints (default %s)\n"
	       "      --checkpoint FILE     this device's checkpoint (one device)\n"
	       "      --checkpoint-every MiB  sync and checkpoint this often (default %llu)\n"
	       "      --cert-dir DIR        certificates (default %s)\n"
	       "      --key FILE            node key (default %s); for cert verify, the\n"
	       "                            trusted key (public or private PEM)\n"
	       "      --audit-log FILE      audit log (default %s)\n"
	       "      --operator NAME       who performs the sanitization (certificate)\n"
	       "      --field KEY=VALUE     SP 800-88 Appendix G field, KEY one of:\n"
	       "                            ",
	       CHECKPOINT_DIR_DEFAULT, JOB_CHECKPOINT_EVERY >> 20, CERT_DIR_DEFAULT,
	       SIGN_KEY_PATH_DEFAULT, AUDIT_PATH_DEFAULT);
	cert_fields_help(stdout);
	printf("\n      --no-progress         no progress output\n"
	       "      --progress-interval S  seconds between progress reports\n"
	       "      --json                machine-readable output\n"
	       "  -d, --debug               debug logging\n"
	       "\nExit status: 0 done, 1 failed, 2 usage, 3 refused, 130 interrupted.\n");
}

static int parse_rate(const char *s, uint64_t *ret)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	uint64_t v, mult = 1;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = 0;
	switch (s[n]) {
	case 0:
		break;
	case 'K':
	case 'k':
		mult = 1ull << 10;
		break;
	case 'M':
	case 'm':
		mult = 1ull << 20;
		break;
	case 'G':
	case 'g':
		mult = 1ull << 30;
		break;
	default:
		return -EINVAL;
	}
	if (s[n] && s[n + 1])
		return -EINVAL;
	if (parse_u64(num, &v) < 0 || v == 0 || v > UINT64_MAX / mult / 1000000)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

static int parse_field(struct cli *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char key[64];

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(key))
		return -EINVAL;
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = 0;
	if (!cert_field_settable(key) || strlen(eq + 1) > CERT_FIELD_MAX)
		return -EINVAL;
	return json_object_set_new(c->opt.fields, key, json_string(eq + 1)) < 0 ? -EINVAL : 0;
}

static const struct command *find_command(int argc, char **argv, int *consumed)
{
	char two[64];

	if (optind >= argc)
		return NULL;
	snprintf(two, sizeof(two), "%s %s", argv[optind],
		 optind + 1 < argc ? argv[optind + 1] : "");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
		if (strcmp(commands[i].name, argv[optind]) == 0) {
			*consumed = 1;
			return &commands[i];
		}
		if (strcmp(commands[i].name, two) == 0) {
			*consumed = 2;
			return &commands[i];
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	enum {
		OPT_VERIFY = 0x100,
		OPT_CONFIRM,
		OPT_RESUME,
		OPT_RATE,
		OPT_CPDIR,
		OPT_CP,
		OPT_CPEVERY,
		OPT_CERTDIR,
		OPT_KEY,
		OPT_AUDIT,
		OPT_OPERATOR,
		OPT_FIELD,
		OPT_NOPROGRESS,
		OPT_PROGRESS_IV,
		OPT_JSON,
		OPT_VERSION,
	};
	static const struct option opts[] = {
		{"method", required_argument, NULL, 'm'},
		{"profile", required_argument, NULL, 'p'},
		{"verify", required_argument, NULL, OPT_VERIFY},
		{"confirm", required_argument, NULL, OPT_CONFIRM},
		{"dry-run", no_argument, NULL, 'n'},
		{"resume", no_argument, NULL, OPT_RESUME},
		{"rate-limit", required_argument, NULL, OPT_RATE},
		{"checkpoint-dir", required_argument, NULL, OPT_CPDIR},
		{"checkpoint", required_argument, NULL, OPT_CP},
		{"checkpoint-every", required_argument, NULL, OPT_CPEVERY},
		{"cert-dir", required_argument, NULL, OPT_CERTDIR},
		{"key", required_argument, NULL, OPT_KEY},
		{"audit-log", required_argument, NULL, OPT_AUDIT},
		{"operator", required_argument, NULL, OPT_OPERATOR},
		{"field", required_argument, NULL, OPT_FIELD},
		{"no-progress", no_argument, NULL, OPT_NOPROGRESS},
		{"progress-interval", required_argument, NULL, OPT_PROGRESS_IV},
		{"json", no_argument, NULL, OPT_JSON},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{},
	};
	struct cli c = {
		.opt = {.checkpoint_dir = CHECKPOINT_DIR_DEFAULT,
			.cert_dir = CERT_DIR_DEFAULT,
			.checkpoint_every = JOB_CHECKPOINT_EVERY,
			.stop = &stop_requested},
		.audit_path = AUDIT_PATH_DEFAULT,
		.progress = true,
	};
	struct sigaction sa = {.sa_handler = on_signal};
	const char *operator= NULL;
	const struct command *cmd;
	uint64_t v;
	int o, r, consumed = 0;

	log_setup("wipe", LOG_INFO);
	/* Secure memory first: jansson allocates from it, and the keystream key lives there. */
	r = secmem_init(WIPE_SECURE_HEAP);
	if (r < 0) {
		log_error_errno(r,
				"cannot set up locked secure memory: %m (RLIMIT_MEMLOCK too low?)");
		return EXIT_FAILED;
	}
	c.opt.fields = json_object();
	/* getopt_long permutes: options may come anywhere, operands end up after them. */
	while ((o = getopt_long(argc, argv, "m:p:ndh", opts, NULL)) >= 0) {
		switch (o) {
		case 'm':
			c.opt.method = method_find(optarg);
			if (!c.opt.method)
				return log_error("unknown method '%s' (see wipe methods)", optarg),
				       EXIT_USAGE;
			break;
		case 'p':
			c.opt.profile = profile_find(optarg);
			if (!c.opt.profile)
				return log_error("unknown profile '%s': clear or purge", optarg),
				       EXIT_USAGE;
			break;
		case OPT_VERIFY:
			if (pass_verify_parse(optarg, &c.opt.verify) < 0)
				return log_error("--verify: none, sample or full"), EXIT_USAGE;
			c.opt.verify_given = true;
			break;
		case OPT_CONFIRM:
			if (c.n_confirm >= WIPE_CONFIRM_MAX || strlen(optarg) > WIPE_INPUT_MAX)
				return log_error("--confirm: too many or too long"), EXIT_USAGE;
			c.confirm[c.n_confirm++] = optarg;
			break;
		case 'n':
			c.opt.dry_run = true;
			break;
		case OPT_RESUME:
			c.opt.resume = true;
			break;
		case OPT_RATE:
			if (parse_rate(optarg, &c.rate_limit) < 0)
				return log_error("--rate-limit: bytes per second, e.g. 200M"),
				       EXIT_USAGE;
			break;
		case OPT_CPDIR:
			c.opt.checkpoint_dir = optarg;
			break;
		case OPT_CP:
			c.opt.checkpoint_file = optarg;
			break;
		case OPT_CPEVERY:
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > (1u << 24))
				return log_error("--checkpoint-every: MiB, 1 or more"), EXIT_USAGE;
			c.opt.checkpoint_every = v << 20;
			break;
		case OPT_CERTDIR:
			c.opt.cert_dir = optarg;
			break;
		case OPT_KEY:
			c.key_path = optarg;
			break;
		case OPT_AUDIT:
			c.audit_path = optarg;
			break;
		case OPT_OPERATOR:
			operator= optarg;
			break;
		case OPT_FIELD:
			if (parse_field(&c, optarg) < 0) {
				log_error("--field KEY=VALUE: KEY is one of the operator's "
					  "Appendix G "
					  "fields (see --help), VALUE at most %d characters",
					  CERT_FIELD_MAX);
				return EXIT_USAGE;
			}
			break;
		case OPT_NOPROGRESS:
			c.progress = false;
			break;
		case OPT_PROGRESS_IV:
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > 86400)
				return log_error("--progress-interval: seconds, 1 to 86400"),
				       EXIT_USAGE;
			c.progress_us = v * 1000000;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case 'd':
			log_set_max_level(LOG_DEBUG);
			break;
		case 'h':
			help();
			return EXIT_OK;
		case OPT_VERSION:
			printf("wipe %s\n", KEYD_VERSION);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	cmd = find_command(argc, argv, &consumed);
	if (!cmd) {
		if (optind < argc)
			log_error("unknown command '%s' (see wipe --help)", argv[optind]);
		else
			help();
		return EXIT_USAGE;
	}
	c.args = argv + optind + consumed;
	c.n_args = argc - optind - consumed;
	if (c.n_args < cmd->min_args) {
		log_error("usage: wipe %s", cmd->usage);
		return EXIT_USAGE;
	}
	if (operator&& strlen(operator) > CERT_FIELD_MAX)
		return log_error("--operator: at most %d characters", CERT_FIELD_MAX), EXIT_USAGE;
	c.opt.operator= operator_json(operator);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cryptsetup_setup();
	r = cmd->run(&c);
	if (c.opt.audit)
		audit_close(c.opt.audit);
	EVP_PKEY_free(c.opt.key);
	json_decref(c.opt.operator);
	json_decref(c.opt.fields);
	return r;
}
