// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe run: plans every device, asks for (or checks) each confirmation, runs the jobs (one
 * thread per device, with the progress display) and reports. The jobs decide and audit; this
 * file talks to the operator. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_run.h"
#include "log.h"
#include "textfile.h"
#include "progress.h"
#include "safety.h"
#include "util.h"

#define WIPE_DEVICES_MAX PROGRESS_DEVICES_MAX

#define CONFIRM_BELOW_MAX 64

/* The identity a --confirm names @j by, or NULL. */
static const char *confirm_by_option(const struct cli *c, const struct wipe_job *j)
{
	const char *id;

	for (size_t i = 0; i < c->n_confirm; i++)
		if ((id = device_confirm_match(&j->dev, j->luks_uuid, c->confirm[i])))
			return id;
	return NULL;
}

/* A confirmation identifies one device: a --confirm that names several devices of this run (a
 * LUKS UUID on two disks) confirms none of them. Every device it names is refused, and the
 * message names them all. */
static void refuse_shared_confirms(const struct cli *c, struct wipe_job **jobs, size_t n)
{
	for (size_t i = 0; i < c->n_confirm; i++) {
		char names[JOB_MSG_MAX / 2] = "";
		size_t hits = 0;

		for (size_t k = 0; k < n; k++) {
			if (!jobs[k]->dev.devnum ||
			    !device_confirm_matches(&jobs[k]->dev, jobs[k]->luks_uuid,
						    c->confirm[i]))
				continue;
			hits++;
			if (snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				     names[0] ? " and " : "", jobs[k]->dev.path) < 0)
				names[0] = 0;
		}
		for (size_t k = 0; hits > 1 && k < n; k++)
			if (jobs[k]->result == JOB_PENDING &&
			    device_confirm_matches(&jobs[k]->dev, jobs[k]->luks_uuid,
						   c->confirm[i]))
				job_refuse(
					jobs[k], -ENOTUNIQ,
					"%s: --confirm %s names %s: one confirmation must identify "
					"one device (confirm each by its serial, WWN or backing "
					"file); nothing was written",
					jobs[k]->dev.path, c->confirm[i], names);
	}
}

/* A LUKS UUID confirms a device only while no other device of this host carries it (a header
 * restored or cloned onto another disk): a duplicated UUID is ambiguous, as blkid and systemd
 * treat it. The device's own stack (multipath paths, a loop device's backing) does not count. */
static int confirm_uuid_unique(struct wipe_job *j)
{
	dev_t below[CONFIRM_BELOW_MAX];
	char others[JOB_MSG_MAX / 2];
	size_t n = 0;
	int r;

	r = safety_below(&j->dev, below, ELEMENTSOF(below), &n);
	if (r == 0)
		r = device_luks_uuid_elsewhere(j->luks_uuid, below, n, others, sizeof(others));
	if (r < 0)
		return job_refuse(j, r,
				  "%s: cannot check that LUKS UUID %s is on this device only: %s; "
				  "confirm by its serial, WWN or backing file",
				  j->dev.path, j->luks_uuid, strerror(-r));
	if (others[0])
		return job_refuse(j, -ENOTUNIQ,
				  "%s: LUKS UUID %s is also on %s, so it does not identify one "
				  "device: confirm by the serial, WWN or backing file; nothing was "
				  "written",
				  j->dev.path, j->luks_uuid, others);
	return 0;
}

/* On a terminal without --confirm: show the plan and ask for the device's identity; the
 * identity the answer matched, or NULL. */
static const char *confirm_by_prompt(struct wipe_job *j)
{
	char line[WIPE_INPUT_MAX], size[32], sigs[1024], what[2 * DEVICE_FIELD_MAX + 4];

	format_bytes((double)j->dev.size, size, sizeof(size));
	signatures_format(json_object_get(j->before, "signatures"), sigs, sizeof(sigs));
	/* "vendor model, " with what sysfs has; a loop device has neither. */
	snprintf(what, sizeof(what), "%s%s%s%s", j->dev.vendor,
		 j->dev.vendor[0] && j->dev.model[0] ? " " : "", j->dev.model,
		 j->dev.vendor[0] || j->dev.model[0] ? ", " : "");
	fprintf(stderr,
		"\nAbout to wipe %s: %s%s, serial %s, WWN %s%s%s\n"
		"  signatures: %s\n  method %s (%s), verification %s%s\n"
		"Type the device's serial, WWN or LUKS UUID%s to confirm: ",
		j->dev.path, what, size, j->dev.serial[0] ? j->dev.serial : "-",
		j->dev.wwn[0] ? j->dev.wwn : "-", j->dev.loop_file[0] ? ", backing file " : "",
		j->dev.loop_file, sigs, j->method->name, nist_level_name(j->level),
		pass_verify_name(j->verify), j->resuming ? " (resuming)" : "",
		j->dev.serial[0] || j->dev.wwn[0] ? "" : " (or its backing file / device id)");
	if (!fgets(line, sizeof(line), stdin))
		return NULL;
	line[strcspn(line, "\r\n")] = 0;
	return device_confirm_match(&j->dev, j->luks_uuid, line);
}

static int run_confirm(struct cli *c, struct wipe_job *j)
{
	bool tty = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
	const char *id;

	if ((id = confirm_by_option(c, j)))
		return id == j->luks_uuid ? confirm_uuid_unique(j) : 0;
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
	if (!(id = confirm_by_prompt(j)))
		return job_refuse(j, -EPERM,
				  "%s: the confirmation did not match; nothing was written",
				  j->dev.path);
	return id == j->luks_uuid ? confirm_uuid_unique(j) : 0;
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

/* The worst outcome of the run, recorded for the JSON error. */
static int run_exit_code(struct cli *c, struct wipe_job **jobs, size_t n)
{
	int rc = EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		int status = exitcode_of_job(jobs[i]);

		cli_record(c, status, jobs[i]->message);
		rc = exitcode_worst(rc, status);
	}
	return rc;
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

static void run_report(struct cli *c, struct wipe_job **jobs, size_t n)
{
	json_t *all = json_array();

	for (size_t i = 0; i < n; i++) {
		int status = exitcode_of_job(jobs[i]);
		json_t *o;

		if (!c->json) {
			if (c->opt.dry_run)
				print_plan(jobs[i]);
			else
				print_result(jobs[i]);
			continue;
		}
		/* The document is for scripts; people still read why on stderr. */
		if (status != EXIT_OK)
			log_error("%s", jobs[i]->message);
		o = c->opt.dry_run ? job_plan_json(jobs[i]) : job_result_json(jobs[i]);
		if (o && status != EXIT_OK)
			json_object_set_new(o, "error", cli_error_json(status, jobs[i]->message));
		json_array_append_new(all, o);
	}
	cli_out_set(c, "dry_run", json_boolean(c->opt.dry_run));
	cli_out_set(c, "devices", all);
}

/* --metrics-textfile: each device's outcome for node_exporter. The certificate is the record;
 * a file that cannot be written is said, and changes no exit status. */
static void run_metrics(struct cli *c, struct wipe_job **jobs, size_t n)
{
	char path[PATH_MAX];

	for (size_t i = 0; c->metrics_dir && i < n; i++) {
		int r;

		if (!jobs[i]->dev.id[0])
			continue; /* never probed: nothing names it across runs */
		r = textfile_write(c->metrics_dir, jobs[i], path, sizeof(path));
		if (r < 0)
			log_warning_errno(r, "%s: cannot write the metrics file %s: %m",
					  jobs[i]->dev.path, path);
	}
}

/* A device already planned under another name: the first job holds it exclusively, so the
 * second could only be refused as busy; say what really happened. */
static bool named_before(struct wipe_job **jobs, size_t n, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	for (size_t k = 0; k < n; k++)
		if (jobs[k]->dev.devnum == st.st_rdev)
			return true;
	return false;
}

int cmd_run(struct cli *c)
{
	struct wipe_job *jobs[WIPE_DEVICES_MAX] = {NULL};
	size_t n = (size_t)c->n_args;
	struct io_throttle throttle;
	int rc;

	if (!c->opt.method && !c->opt.profile && !c->opt.resume)
		return cli_error(
			c, EXIT_USAGE,
			"run: give --method M or --profile clear|purge (see wipe methods)");
	if (n > WIPE_DEVICES_MAX || (c->opt.checkpoint_file && n > 1))
		return cli_error(
			c, EXIT_USAGE,
			"run: at most %d devices, and --checkpoint FILE names one device's",
			WIPE_DEVICES_MAX);
	if (c->metrics_dir && (rc = textfile_check_dir(c->metrics_dir)) < 0)
		return cli_error(c, EXIT_USAGE, "--metrics-textfile %s: %s", c->metrics_dir,
				 strerror(-rc));
	if (!c->opt.dry_run && cli_setup_signing(c) < 0)
		return EXIT_FAILED;
	io_throttle_init(&throttle, c->rate_limit);
	c->opt.throttle = &throttle;

	for (size_t i = 0; i < n; i++) {
		jobs[i] = calloc(1, sizeof(*jobs[i]));
		if (!jobs[i])
			return cli_error(c, EXIT_FAILED, "out of memory");
		if (named_before(jobs, i, c->args[i])) {
			job_init(jobs[i], c->args[i], &c->opt);
			job_refuse(jobs[i], -EINVAL, "%s is named twice", c->args[i]);
		} else {
			job_plan(jobs[i], c->args[i], &c->opt);
		}
	}
	if (!c->opt.dry_run) {
		refuse_shared_confirms(c, jobs, n);
		for (size_t i = 0; i < n; i++)
			if (jobs[i]->result == JOB_PENDING)
				run_confirm(c, jobs[i]);
		run_jobs(c, jobs, n);
		run_metrics(c, jobs, n);
	}
	run_report(c, jobs, n);
	rc = run_exit_code(c, jobs, n);
	for (size_t i = 0; i < n; i++) {
		job_done(jobs[i]);
		free(jobs[i]);
	}
	return rc;
}
