// SPDX-License-Identifier: GPL-2.0-or-later
/* A wipe of one device. The order matters: the "before" record and the checkpoint are durable
 * before the first write; the checkpoint never claims more than the device holds; the
 * certificate states what happened, success only after verification and the after-probe.
 * Reports through the job struct and the audit log; never logs, never exits. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cryptoerase.h"
#include "job.h"
#include "managed.h"
#include "secmem.h"
#include "util.h"

const char *job_result_name(enum job_result r)
{
	static const char *const names[] = {
		[JOB_PENDING] = "pending", [JOB_SUCCESS] = "success",
		[JOB_FAILURE] = "failure", [JOB_INTERRUPTED] = "interrupted",
		[JOB_REFUSED] = "refused",
	};
	return names[r];
}

const char *job_phase_name(enum job_phase p)
{
	static const char *const names[] = {
		[JOB_PLANNED] = "planned",  [JOB_WRITING] = "write", [JOB_VERIFYING] = "verify",
		[JOB_FINISHING] = "finish", [JOB_DONE] = "done",
	};
	return names[p];
}

const char *job_verify_name(enum job_verify v)
{
	static const char *const names[] = {
		[JOB_VERIFY_NOT_REQUESTED] = "not-requested",
		[JOB_VERIFY_NOT_RUN] = "not-run",
		[JOB_VERIFY_PASSED] = "passed",
		[JOB_VERIFY_FAILED] = "failed",
		[JOB_VERIFY_INCOMPLETE] = "incomplete",
	};
	return names[v];
}

static int job_set(struct wipe_job *j, enum job_result result, int error, const char *fmt,
		   va_list ap)
{
	j->result = result;
	j->error = error;
	vsnprintf(j->message, sizeof(j->message), fmt, ap);
	return error;
}

static int job_say(struct wipe_job *j, enum job_result result, int error, const char *fmt, ...)
	_printf_(4, 5);
static int job_say(struct wipe_job *j, enum job_result result, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_set(j, result, error, fmt, ap);
	va_end(ap);
	return error;
}
#define job_fail(j, error, ...) job_say(j, JOB_FAILURE, error, __VA_ARGS__)

static void job_note(struct wipe_job *j, const char *fmt, ...) _printf_(2, 3);
static void job_note(struct wipe_job *j, const char *fmt, ...)
{
	char buf[JOB_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(j->notes, json_string(buf));
}

static json_t *audit_object(const struct wipe_job *j)
{
	json_t *o = json_pack("{s:s, s:s, s:s?}", "device", j->dev.path[0] ? j->dev.path : "?",
			      "device_id", j->dev.id, "method", j->method ? j->method->name : NULL);

	if (o && j->luks_uuid[0])
		json_object_set_new(o, "luks_uuid", json_string(j->luks_uuid));
	if (o && j->cert_id[0]) {
		json_object_set_new(o, "certificate", json_string(j->cert_path));
		json_object_set_new(o, "certificate_id", json_string(j->cert_id));
	}
	return o;
}

static void job_audit(struct wipe_job *j, const char *type, const char *result, const char *error)
{
	json_auto_t *o = NULL;

	if (!j->opt->audit)
		return;
	o = audit_object(j);
	/* A failed audit write must not turn a finished wipe into an unreported one: the
	 * certificate exists either way, and the caller sees the job's own outcome. */
	if (audit_write(j->opt->audit, type, result, NULL, o, error) < 0)
		job_note(j, "the audit record %s (%s) could not be written", type, result);
}

int job_refuse(struct wipe_job *j, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	job_set(j, JOB_REFUSED, error, fmt, ap);
	va_end(ap);
	job_audit(j, "wipe.run", "refused", j->message);
	return error;
}

void job_init(struct wipe_job *j, const char *path, const struct wipe_options *opt)
{
	*j = (struct wipe_job){.opt = opt, .notes = json_array(), .io = {.fd = -1}};
	pattern_zero(&j->pattern);
	snprintf(j->dev.path, sizeof(j->dev.path), "%s", path);
}

/* "/proc/self/fd/N": how libcryptsetup, which wants a path, reaches the device we hold. */
static const char *job_fd_path(const struct wipe_job *j, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", j->io.fd);
	return buf;
}

static int before_record(struct wipe_job *j, json_t *sigs)
{
	j->before = json_pack("{s:o, s:O, s:s}", "device", device_json(&j->dev), "signatures", sigs,
			      "luks_uuid", j->luks_uuid);
	return j->before ? 0 : -ENOMEM;
}

/* An existing checkpoint: resume it (when asked and it is this device), else refuse. */
static int plan_checkpoint(struct wipe_job *j)
{
	const struct wipe_options *o = j->opt;
	struct error e;
	const char *uuid;
	int r;

	r = checkpoint_load(j->checkpoint_path, &j->cp, &e);
	if (r == -ESTALE) {
		/* The run that wrote it ended (and certified) before shredding it: nothing of
		 * it is left to resume, and the zeros are ours to remove. */
		if (!o->dry_run && (r = checkpoint_remove(j->checkpoint_path)) < 0)
			return job_refuse(j, r, "%s: cannot remove the shredded checkpoint %s: %s",
					  j->dev.path, j->checkpoint_path, strerror(-r));
		if (o->resume)
			return job_refuse(
				j, -ENOENT,
				"%s: nothing to resume: %s was the shredded checkpoint of "
				"a wipe that had ended, kept by a crash before its removal "
				"reached the disk (%s); that wipe's certificate is in %s",
				j->dev.path, j->checkpoint_path,
				o->dry_run ? "left in place: --dry-run" : "now removed",
				o->cert_dir);
		job_note(j,
			 "%s was the shredded checkpoint of an earlier wipe that had ended, kept "
			 "by a crash before its removal reached the disk; %s",
			 j->checkpoint_path, o->dry_run ? "left in place (--dry-run)" : "removed");
		return 0;
	}
	if (r == -ENOENT) {
		if (o->resume)
			return job_refuse(j, -ENOENT, "%s: nothing to resume (no checkpoint at %s)",
					  j->dev.path, j->checkpoint_path);
		return 0;
	}
	if (r == -EINVAL)
		return job_refuse(j, r,
				  "%s: checkpoint %s is unusable: %s; remove it to start over",
				  j->dev.path, j->checkpoint_path, e.msg);
	if (r < 0)
		return job_refuse(j, r, "%s: cannot read checkpoint %s: %s", j->dev.path,
				  j->checkpoint_path,
				  r == -EPERM ? "it must be root's with mode 0600" : strerror(-r));
	if (!o->resume)
		return job_refuse(
			j, -EEXIST,
			"%s: an interrupted wipe (method %s, %" PRIu64 "%% written) has a "
			"checkpoint at %s: run again with --resume to finish it, or remove "
			"the checkpoint to start over",
			j->dev.path, j->cp.method, j->cp.offset * 100 / j->cp.end,
			j->checkpoint_path);
	if (strcmp(j->cp.device_id, j->dev.id) || j->cp.device_size != j->dev.size)
		return job_refuse(j, -ENODEV,
				  "%s: checkpoint %s belongs to device %s (%" PRIu64
				  " bytes), not this one (%s, %" PRIu64 " bytes)",
				  j->dev.path, j->checkpoint_path, j->cp.device_id,
				  j->cp.device_size, j->dev.id, j->dev.size);
	if (o->method && strcmp(o->method->name, j->cp.method))
		return job_refuse(j, -EINVAL, "%s: the interrupted wipe used method %s, not %s",
				  j->dev.path, j->cp.method, o->method->name);
	j->method = method_find(j->cp.method);
	if (!j->method)
		return job_refuse(j, -EINVAL, "%s: checkpoint names an unknown method %s",
				  j->dev.path, j->cp.method);
	/* What the device was before the first write: its LUKS UUID still confirms the wipe. */
	uuid = json_string_value(json_object_get(j->cp.before, "luks_uuid"));
	snprintf(j->luks_uuid, sizeof(j->luks_uuid), "%s", uuid ? uuid : "");
	j->before = json_incref(j->cp.before);
	j->resuming = true;
	return 0;
}

static int plan_region(struct wipe_job *j)
{
	struct cryptoerase_region reg;
	char fdp[32];
	int r;

	if (j->resuming) {
		/* The header may be overwritten already: the checkpoint knows the range. */
		j->end = j->cp.end;
		j->keyslots = json_incref(json_object_get(j->before, "keyslots"));
		return 0;
	}
	j->end = j->dev.size;
	if (j->method->kind != METHOD_CRYPTO)
		return 0;
	r = cryptoerase_plan(job_fd_path(j, fdp, sizeof(fdp)), PASS_SAMPLE_UNIT, &reg);
	if (r == -EINVAL)
		return job_refuse(j, r,
				  "%s: the LUKS2 header says the data starts at offset 0 "
				  "(detached header?): wipe the header device instead",
				  j->dev.path);
	if (r < 0)
		return job_refuse(j, r, "%s: cannot read the LUKS2 header: %s", j->dev.path,
				  strerror(-r));
	j->end = reg.end < j->dev.size ? reg.end : j->dev.size;
	j->keyslots = json_incref(reg.keyslots);
	json_object_set(j->before, "keyslots", reg.keyslots);
	cryptoerase_region_done(&reg);
	return 0;
}

/* The one open of the device: O_EXCL, read-write unless @write is false, kept until
 * job_done. Every later check and every write goes through this descriptor; the path is never
 * opened again, so a path that comes to name another device meanwhile changes nothing. When
 * the exclusive open fails, a plain read-only open still lets the plan say why (j->held stays
 * false and the job is refused). -errno when the device cannot be opened or probed at all. */
static int job_open(struct wipe_job *j, const char *path, bool write)
{
	int r, fd;

	r = io_open(path, write, &j->io);
	j->held = r == 0;
	if (!j->held) {
		j->open_error = r;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return negative_errno();
		j->io = (struct io_dev){.fd = fd, .ops = &io_ops_system};
	}
	if (j->opt->io_ops)
		j->io.ops = j->opt->io_ops;
	/* libblkid and libcryptsetup read unaligned; the passes switch O_DIRECT back on. */
	r = io_set_direct(&j->io, false);
	if (r < 0)
		return r;
	return device_probe_fd(j->io.fd, &j->dev);
}

static int plan_device(struct wipe_job *j, const char *path, json_t **sigs)
{
	int r;

	r = job_open(j, path, !j->opt->dry_run);
	if (r < 0) {
		/* The probe cleared it; the audit record still names what was asked for. */
		snprintf(j->dev.path, sizeof(j->dev.path), "%s", path);
		return job_refuse(j, r, "%s: %s", path,
				  r == -ENOTBLK ? "not a block device" : strerror(-r));
	}
	r = signatures_probe_fd(j->io.fd, sigs, j->luks_uuid);
	if (r < 0)
		return job_refuse(j, r, "%s: cannot probe signatures: %s", j->dev.path,
				  strerror(-r));
	if (j->opt->checkpoint_file)
		snprintf(j->checkpoint_path, sizeof(j->checkpoint_path), "%s",
			 j->opt->checkpoint_file);
	else if (checkpoint_path(j->opt->checkpoint_dir, j->dev.id, j->checkpoint_path,
				 sizeof(j->checkpoint_path)) < 0)
		return job_refuse(j, -ENAMETOOLONG, "%s: checkpoint path too long", j->dev.path);
	return 0;
}

static int plan_method(struct wipe_job *j, const char *path)
{
	const struct wipe_options *opt = j->opt;
	char why[METHOD_WHY_MAX];

	if (!j->method && opt->method)
		j->method = opt->method;
	if (!j->method && opt->profile &&
	    profile_choose(opt->profile, &j->dev, j->luks_uuid, &j->method, why, sizeof(why)) < 0)
		return job_refuse(j, -EOPNOTSUPP, "%s", why);
	if (!j->method)
		return job_refuse(j, -EINVAL, "%s: no method (give --method or --profile)", path);
	if (method_check(j->method, &j->dev, j->luks_uuid, why, sizeof(why)) < 0)
		return job_refuse(j, -EOPNOTSUPP, "method %s is not supported here: %s",
				  j->method->name, why);
	j->level = method_level(j->method, &j->dev, j->level_note, sizeof(j->level_note));
	if (opt->profile && j->level < opt->profile->level)
		return job_refuse(j, -EOPNOTSUPP, "method %s reaches only %s on %s, not %s: %s",
				  j->method->name, nist_level_name(j->level), j->dev.path,
				  opt->profile->name, j->level_note);
	j->verify = j->resuming && !opt->verify_given ? j->cp.verify
		    : opt->verify_given		      ? opt->verify
						      : j->method->verify_default;
	if (j->verify != PASS_VERIFY_NONE &&
	    !method_verifiable(j->method, &j->dev, why, sizeof(why)))
		return job_refuse(
			j, -EINVAL,
			"method %s cannot be verified by reading back (%s): use --verify none",
			j->method->name, why);
	return 0;
}

static int plan_safety(struct wipe_job *j)
{
	char msg[JOB_MSG_MAX] = "";
	struct safety_report rep;
	bool busy_only = true;
	int r;

	r = safety_check(&j->dev, j->held, NULL, &rep);
	if (r < 0)
		return job_refuse(j, r, "%s: cannot tell whether it is in use: %s", j->dev.path,
				  strerror(-r));
	for (size_t i = 0; i < rep.n; i++)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%s%s", i ? "; " : "",
			 rep.items[i].msg);
	/* Only "open elsewhere" is busy (it may pass); the rest is a safety refusal. */
	for (size_t i = 0; i < rep.n; i++)
		busy_only &= rep.items[i].reason == SAFETY_BUSY;
	if (rep.n)
		return job_refuse(j, busy_only ? -EBUSY : -EPERM, "refusing to wipe: %s", msg);
	if (!j->held)
		return job_refuse(j, j->open_error, "%s: cannot open it exclusively%s: %s",
				  j->dev.path, j->opt->dry_run ? "" : " for writing",
				  strerror(-j->open_error));
	return 0;
}

/* A volume keyd still manages is not wiped until `keydctl release` ran. keyd's own answer
 * decides when it gives one (no flag overrides it); when keyd cannot be asked, a keyd token
 * in the header is a refusal unless --force-managed. */
static int plan_managed(struct wipe_job *j)
{
	const char *sock = j->opt->keyd_socket ? j->opt->keyd_socket : MANAGED_SOCKET_DEFAULT;
	struct managed m = {0};
	char fdp[32];

	/* Without a LUKS2 header there is nothing keyd could open. */
	if (!j->luks_uuid[0])
		return 0;
	/* A header we cannot read carries no token we could find; keyd is still asked. */
	(void)managed_read_token(job_fd_path(j, fdp, sizeof(fdp)), &m);
	managed_ask_keyd(sock, j->luks_uuid, j->dev.devnum, &m);
	if (managed_by_keyd(&m))
		return job_refuse(j, -EBUSY,
				  "%s: keyd still manages this volume as '%s' (state %s): run "
				  "keydctl release %s first; nothing was written",
				  j->dev.path, m.name, m.state, m.name);
	if (m.asked && m.listed)
		job_note(j, "keyd had released volume '%s' before the wipe", m.name);
	else if (m.asked && m.token)
		job_note(j,
			 "the header carried a keyd token (volume '%s'); keyd at %s did not "
			 "manage it",
			 m.token_name, sock);
	if (m.asked || !m.token)
		return 0;
	if (!j->opt->force_managed)
		return job_refuse(
			j, -EBUSY,
			"%s: the LUKS2 header carries a keyd token (volume '%s') and keyd "
			"cannot be asked whether it still manages it (%s): run keydctl "
			"release %s where keyd runs it, or give --force-managed if no keyd "
			"uses this volume any more; nothing was written",
			j->dev.path, m.token_name, m.why_not, m.token_name);
	job_note(j,
		 "--force-managed: the header carried a keyd token (volume '%s') and keyd could "
		 "not be asked (%s)",
		 m.token_name, m.why_not);
	return 0;
}

static void plan_progress(struct wipe_job *j);

int job_plan(struct wipe_job *j, const char *path, const struct wipe_options *opt)
{
	json_auto_t *sigs = NULL;
	int r;

	job_init(j, path, opt);
	if (!j->notes)
		return -ENOMEM;
	r = plan_device(j, path, &sigs);
	if (r < 0)
		return r;
	r = plan_checkpoint(j);
	if (r < 0)
		return r;
	if (!j->before && (r = before_record(j, sigs)) < 0)
		return r;
	r = plan_method(j, path);
	if (r < 0)
		return r;
	r = plan_region(j);
	if (r < 0)
		return r;
	r = plan_safety(j);
	if (r < 0)
		return r;
	r = plan_managed(j);
	if (r < 0)
		return r;
	j->phase = JOB_PLANNED;
	plan_progress(j);
	return 0;
}

json_t *job_plan_json(const struct wipe_job *j)
{
	const char *ids[DEVICE_CONFIRM_MAX];
	size_t n = device_confirm_ids(&j->dev, j->luks_uuid, ids);
	json_t *confirm = json_array(), *o;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(confirm, json_string(ids[i]));
	o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s?, s:I, s:I, s:s, s:b, s:s, s:o, s:O}",
		      "device", j->dev.path, "device_id", j->dev.id, "result",
		      job_result_name(j->result), "method", j->method ? j->method->name : NULL,
		      "verify", pass_verify_name(j->verify), "nist_level",
		      j->method ? nist_level_name(j->level) : NULL, "range_end", (json_int_t)j->end,
		      "resume_from", (json_int_t)(j->resuming ? j->cp.offset : 0), "checkpoint",
		      j->checkpoint_path, "resuming", j->resuming, "message", j->message,
		      "confirm_with", confirm, "before", j->before ?: json_null());
	if (o && j->level_note[0])
		json_object_set_new(o, "nist_note", json_string(j->level_note));
	if (o && j->method)
		json_object_set_new(o, "summary", json_string(j->method->summary));
	return o;
}

static int save_checkpoint(void *userdata, uint64_t off, const struct pass_stats *st)
{
	struct wipe_job *j = userdata;

	j->cp.offset = off;
	j->cp.write = *st;
	return checkpoint_save(j->checkpoint_path, &j->cp);
}

static int start_checkpoint(struct wipe_job *j)
{
	if (j->resuming) {
		j->cp.resumes++;
		j->cp.verify = j->verify;
		j->write = j->cp.write;
		return checkpoint_save(j->checkpoint_path, &j->cp);
	}
	j->cp = (struct checkpoint){
		.device_size = j->dev.size,
		.verify = j->verify,
		.phase = CHECKPOINT_WRITE,
		.end = j->end,
		.started_us = j->started_us,
		.before = json_incref(j->before),
	};
	snprintf(j->cp.device_id, sizeof(j->cp.device_id), "%s", j->dev.id);
	snprintf(j->cp.method, sizeof(j->cp.method), "%s", j->method->name);
	pass_stats_init(&j->cp.write);
	pass_stats_init(&j->write);
	if (j->pattern.key && !(j->cp.key = secmem_dup(j->pattern.key, PATTERN_KEY_LEN)))
		return -ENOMEM;
	return checkpoint_save(j->checkpoint_path, &j->cp);
}

static int make_pattern(struct wipe_job *j)
{
	enum pattern_kind kind =
		j->method->kind == METHOD_OVERWRITE || j->method->kind == METHOD_CRYPTO
			? j->method->pattern
			: PATTERN_ZERO;

	if (kind == PATTERN_ZERO) {
		pattern_zero(&j->pattern);
		return 0;
	}
	if (j->resuming)
		return j->cp.key ? pattern_set_keystream(&j->pattern, j->cp.key, PATTERN_KEY_LEN)
				 : -EINVAL;
	return pattern_new_keystream(&j->pattern);
}

static void firmware_progress(void *userdata, double fraction)
{
	struct wipe_job *j = userdata;

	atomic_store(&j->done, (uint64_t)(fraction * (double)atomic_load(&j->total)));
}

static struct pass job_pass(struct wipe_job *j, struct io_dev *dev, uint64_t start)
{
	return (struct pass){
		.dev = dev,
		.pattern = &j->pattern,
		.start = start,
		.end = j->end,
		.throttle = j->opt->throttle,
		.stop = j->opt->stop,
		.progress = &j->done,
		.sync_every = j->opt->checkpoint_every ?: JOB_CHECKPOINT_EVERY,
		.on_synced = save_checkpoint,
		.userdata = j,
	};
}

/* What the verify pass will read, for the progress display's ETA. */
static uint64_t verify_bytes(struct wipe_job *j, struct io_dev *dev)
{
	struct pass p = job_pass(j, dev, 0);

	return j->verify == PASS_VERIFY_NONE ? 0 : pass_verify_bytes(&p, j->verify);
}

/* The whole run's work before it starts, so the display's first line shows the real total. */
static void plan_progress(struct wipe_job *j)
{
	bool written = j->resuming && j->cp.phase != CHECKPOINT_WRITE;

	atomic_store(&j->base, written ? j->end : 0);
	atomic_store(&j->done, written ? 0 : j->resuming ? j->cp.offset : 0);
	atomic_store(&j->total, written ? verify_bytes(j, &j->io) : j->end);
	atomic_store(&j->later, written ? 0 : verify_bytes(j, &j->io));
}

static int write_phase(struct wipe_job *j, struct io_dev *dev)
{
	struct pass p = job_pass(j, dev, j->cp.offset);
	int r;

	atomic_store(&j->base, 0);
	atomic_store(&j->later, verify_bytes(j, dev));
	atomic_store(&j->total, j->end);
	atomic_store(&j->done, j->cp.offset);
	atomic_store(&j->phase, JOB_WRITING);
	switch (j->method->kind) {
	case METHOD_OVERWRITE:
	case METHOD_CRYPTO:
		return pass_write(&p, &j->write);
	case METHOD_IOCTL:
		r = pass_ioctl(&p, j->method->ioctl, &j->write);
		if (r != -EOPNOTSUPP)
			return r;
		if (j->method->ioctl != BLKZEROOUT)
			return job_fail(j, r,
					"%s: the device does not support %s; nothing was done",
					j->dev.path, j->method->name);
		/* The explicit fallback: the kernel refused BLKZEROOUT, so write the zeros. */
		job_note(j, "BLKZEROOUT is not supported by %s: fell back to writing zeros",
			 j->dev.path);
		return pass_write(&p, &j->write);
	case METHOD_FIRMWARE:
		r = sanitize_run(dev->fd, j->dev.transport, j->method->action, j->resuming,
				 firmware_progress, j, &j->firmware);
		if (r == 0) {
			j->write.bytes = j->end;
			save_checkpoint(j, j->end, &j->write);
		} else if (j->firmware.text[0]) {
			return job_fail(j, r, "%s: %s failed: %s", j->dev.path, j->method->name,
					j->firmware.text);
		}
		return r;
	}
	return -EINVAL;
}

static const char *describe_stats(const struct pass_stats *st, char *buf, size_t size)
{
	if (st->first_bad == UINT64_MAX)
		snprintf(buf, size, "no failed block");
	else
		snprintf(buf, size, "first at byte %" PRIu64 "%s%s", st->first_bad,
			 st->first_error ? ": " : "",
			 st->first_error ? strerror(-st->first_error) : "");
	return buf;
}

/* After the passes, on the same descriptor with the page cache dropped: what libblkid (and
 * libcryptsetup) find now. */
static int after_checks(struct wipe_job *j)
{
	char uuid[SIGNATURES_UUID_MAX], list[512], fdp[32];
	int r;

	r = io_set_direct(&j->io, false);
	if (r == 0)
		r = signatures_probe_fd(j->io.fd, &j->sigs_after, uuid);
	if (r < 0)
		return job_fail(j, r, "%s: cannot probe the device after the wipe: %s", j->dev.path,
				strerror(-r));
	if (j->method->kind == METHOD_CRYPTO &&
	    cryptoerase_check_gone(job_fd_path(j, fdp, sizeof(fdp))) == -EEXIST)
		return job_fail(j, -EEXIST, "%s: a LUKS header still loads after the erase",
				j->dev.path);
	if (json_array_size(j->sigs_after) == 0)
		return 0;
	signatures_format(j->sigs_after, list, sizeof(list));
	if (j->method->kind == METHOD_IOCTL && j->method->ioctl != BLKZEROOUT) {
		job_note(j, "signatures still found after %s: %s", j->method->name, list);
		return 0;
	}
	return job_fail(j, -EEXIST, "%s: signatures still found after the wipe: %s", j->dev.path,
			list);
}

static int run_phases(struct wipe_job *j)
{
	struct io_dev *dev = &j->io;
	char detail[256];
	struct pass p;
	uint64_t t0, size;
	int r, rc;

	r = io_set_direct(dev, true);
	if (r == 0)
		r = io_size_now(dev, &size);
	if (r < 0)
		return job_fail(j, r, "%s: cannot prepare the device for writing: %s", j->dev.path,
				strerror(-r));
	if (size != j->dev.size)
		return job_fail(j, -ENODEV, "%s: size changed since the probe", j->dev.path);

	if (j->cp.phase == CHECKPOINT_WRITE) {
		t0 = now_mono_us();
		r = write_phase(j, dev);
		j->write_us = now_mono_us() - t0;
		if (r == -EINTR) {
			job_say(j, JOB_INTERRUPTED, r,
				"%s: interrupted at byte %" PRIu64 " of %" PRIu64
				"; run again with "
				"--resume to finish",
				j->dev.path, j->cp.offset, j->end);
		} else if (r < 0 && j->result != JOB_FAILURE) {
			job_fail(j, r,
				 "%s: %s failed: %" PRIu64 " block(s) could not be written (%s)",
				 j->dev.path, j->method->name, j->write.io_errors,
				 j->write.io_errors
					 ? describe_stats(&j->write, detail, sizeof(detail))
					 : strerror(-r));
		}
		if (r == 0) {
			j->cp.phase = CHECKPOINT_VERIFY;
			r = checkpoint_save(j->checkpoint_path, &j->cp);
			if (r < 0)
				job_fail(j, r, "%s: cannot save the checkpoint %s: %s", j->dev.path,
					 j->checkpoint_path, strerror(-r));
		}
	}
	if (r == 0 && j->verify != PASS_VERIFY_NONE) {
		p = job_pass(j, dev, 0);
		p.on_synced = NULL;
		atomic_store(&j->later, 0);
		atomic_store(&j->done, 0);
		atomic_store(&j->base, j->end);
		atomic_store(&j->total, pass_verify_bytes(&p, j->verify));
		atomic_store(&j->phase, JOB_VERIFYING);
		pass_stats_init(&j->check);
		t0 = now_mono_us();
		r = pass_verify(&p, j->verify, &j->check);
		j->verify_us = now_mono_us() - t0;
		j->verified = r == 0	      ? JOB_VERIFY_PASSED
			      : r == -EINTR   ? JOB_VERIFY_INCOMPLETE
			      : r == -EBADMSG ? JOB_VERIFY_FAILED
					      : JOB_VERIFY_NOT_RUN;
		if (r == -EINTR) {
			job_say(j, JOB_INTERRUPTED, r,
				"%s: interrupted while verifying; run again "
				"with --resume to verify",
				j->dev.path);
		} else if (r == -EBADMSG) {
			job_fail(j, r,
				 "%s: verification failed: %" PRIu64 " block(s) differ from "
				 "what was written, %" PRIu64 " unreadable; %s",
				 j->dev.path, j->check.mismatches, j->check.io_errors,
				 describe_stats(&j->check, detail, sizeof(detail)));
		} else if (r < 0) {
			job_fail(j, r, "%s: verification could not run: %s", j->dev.path,
				 strerror(-r));
		}
	}
	atomic_store(&j->phase, JOB_FINISHING);
	io_drop_cache(dev);
	if (r == 0)
		r = after_checks(j);
	rc = io_close(dev);
	if (rc < 0 && r == 0)
		r = job_fail(j, rc, "%s: close failed: %s", j->dev.path, strerror(-rc));
	return r;
}

/* What the certificate states, from the job as it ends. */
static struct cert_facts job_cert_facts(const struct wipe_job *j)
{
	return (struct cert_facts){
		.result = job_result_name(j->result),
		.summary = j->message,
		.dev = &j->dev,
		.before = j->before,
		.sigs_after = j->sigs_after,
		.keyslots = j->keyslots,
		.notes = j->notes,
		.method = j->method,
		.firmware =
			j->firmware.command[0] ? &j->firmware : NULL, /* a firmware method ran */
		.profile = j->opt->profile ? j->opt->profile->name : NULL,
		.pattern = j->pattern.kind,
		.end = j->end,
		.level = j->level,
		.level_note = j->level_note,
		.verify = j->verify,
		.verified = job_verify_name(j->verified),
		.write = j->write,
		.check = j->check,
		.resumes = j->cp.resumes,
		.started_us = j->started_us,
		.ended_us = j->ended_us,
		.write_us = j->write_us,
		.verify_us = j->verify_us,
		.performed_by = j->opt->performed_by,
		.fields = j->opt->fields,
	};
}

static int job_certify(struct wipe_job *j)
{
	struct cert_facts f = job_cert_facts(j);
	struct cert_issued issued;
	int r;

	r = cert_issue(&f, j->opt->key, j->opt->cert_dir, &issued);
	snprintf(j->cert_id, sizeof(j->cert_id), "%s", issued.id);
	snprintf(j->cert_path, sizeof(j->cert_path), "%s", issued.path);
	return r;
}

int job_run(struct wipe_job *j)
{
	int r, rc;

	j->started_us = j->resuming ? j->cp.started_us : now_real_us();
	job_audit(j, j->resuming ? "wipe.resume" : "wipe.start", "success", NULL);
	r = make_pattern(j);
	if (r < 0)
		job_fail(j, r, "%s: cannot set up the keystream: %s; nothing was written",
			 j->dev.path, strerror(-r));
	else if ((r = start_checkpoint(j)) < 0)
		job_fail(j, r, "%s: cannot write the checkpoint %s: %s; nothing was written",
			 j->dev.path, j->checkpoint_path, strerror(-r));
	if (r < 0) {
		job_audit(j, "wipe.run", "failure", j->message);
		return r;
	}
	if (j->resuming)
		job_note(j,
			 "resumed from byte %" PRIu64 " (resume %" PRIu64 ") after an interruption",
			 j->cp.offset, j->cp.resumes);

	j->verified = j->verify == PASS_VERIFY_NONE ? JOB_VERIFY_NOT_REQUESTED : JOB_VERIFY_NOT_RUN;
	r = run_phases(j);
	if (r == 0) {
		job_say(j, JOB_SUCCESS, 0, "%s: %s complete, verification %s", j->dev.path,
			j->method->name,
			j->verify == PASS_VERIFY_NONE ? "not requested" : "passed");
	}
	j->ended_us = now_real_us();
	rc = job_certify(j);
	if (rc < 0) {
		/* The checkpoint stays: --resume re-verifies and issues the certificate. */
		if (j->result == JOB_SUCCESS)
			job_fail(j, rc,
				 "%s: wiped, but the certificate could not be written to %s: %s",
				 j->dev.path, j->opt->cert_dir, strerror(-rc));
		r = r < 0 ? r : rc;
	} else if (j->result != JOB_INTERRUPTED) {
		rc = checkpoint_remove(j->checkpoint_path);
		if (rc < 0)
			job_note(j, "the checkpoint %s could not be removed: %s",
				 j->checkpoint_path, strerror(-rc));
	}
	atomic_store(&j->phase, JOB_DONE);
	job_audit(j, "wipe.run", j->result == JOB_SUCCESS ? "success" : "failure",
		  j->result == JOB_SUCCESS ? NULL : j->message);
	pattern_done(&j->pattern);
	return j->result == JOB_SUCCESS ? 0 : r < 0 ? r : -EIO;
}

/* wipe verify of zeros: every block (or a sample) read back with O_DIRECT. */
static int verify_zeros(struct wipe_job *j)
{
	char detail[256];
	struct pass p;
	int r;

	if (!j->held)
		return job_fail(j, j->open_error, "%s: cannot open: %s", j->dev.path,
				strerror(-j->open_error));
	r = io_set_direct(&j->io, true);
	if (r < 0)
		return job_fail(j, r, "%s: cannot open: %s", j->dev.path, strerror(-r));
	p = (struct pass){.dev = &j->io,
			  .pattern = &j->pattern,
			  .end = j->io.size,
			  .throttle = j->opt->throttle,
			  .stop = j->opt->stop,
			  .progress = &j->done};
	pass_stats_init(&j->check);
	atomic_store(&j->total, pass_verify_bytes(&p, j->verify));
	atomic_store(&j->phase, JOB_VERIFYING);
	r = pass_verify(&p, j->verify, &j->check);
	if (r == -EBADMSG)
		return job_fail(j, r,
				"%s: %" PRIu64 " block(s) are not zero, %" PRIu64 " unreadable; %s",
				j->dev.path, j->check.mismatches, j->check.io_errors,
				describe_stats(&j->check, detail, sizeof(detail)));
	if (r < 0)
		return job_fail(j, r, "%s: verification could not run: %s", j->dev.path,
				strerror(-r));
	return 0;
}

int job_verify_device(struct wipe_job *j, const char *path, const struct wipe_options *opt)
{
	int r;

	job_init(j, path, opt);
	j->method = opt->method;
	j->verify = opt->verify;
	/* Every outcome, a device that cannot be read included, gets its one record. A device
	 * someone holds exclusively can still be checked for signatures, not read back. */
	r = job_open(j, path, false);
	if (r < 0) {
		snprintf(j->dev.path, sizeof(j->dev.path), "%s", path);
		job_fail(j, r, "%s: %s", path, r == -ENOTBLK ? "not a block device" : strerror(-r));
	} else if (j->method->kind == METHOD_CRYPTO) {
		r = after_checks(j);
	} else if (j->method->pattern != PATTERN_ZERO ||
		   (j->method->kind != METHOD_OVERWRITE && j->method->ioctl != BLKZEROOUT)) {
		r = job_fail(j, -EINVAL,
			     "%s: only zero, zeroout and crypto can be checked "
			     "afterwards (random's key is destroyed when its wipe ends: it is "
			     "verified during the run)",
			     path);
	} else {
		r = verify_zeros(j);
	}
	io_close(&j->io);
	atomic_store(&j->phase, JOB_DONE);
	if (r == 0) {
		job_say(j, JOB_SUCCESS, 0, "%s: %s", j->dev.path,
			j->method->kind == METHOD_CRYPTO
				? "no LUKS header loads and libblkid finds no signature"
				: "every block read back is zero");
	}
	job_audit(j, "wipe.verify", r == 0 ? "success" : "failure", r == 0 ? NULL : j->message);
	return r;
}

json_t *job_result_json(const struct wipe_job *j)
{
	return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I}", "device", j->dev.path,
			 "device_id", j->dev.id, "result", job_result_name(j->result), "message",
			 j->message, "method", j->method ? j->method->name : NULL, "certificate",
			 j->cert_path[0] ? j->cert_path : NULL, "bytes_written",
			 (json_int_t)j->write.bytes, "verified_bytes", (json_int_t)j->check.bytes);
}

void job_done(struct wipe_job *j)
{
	io_close(&j->io);
	pattern_done(&j->pattern);
	checkpoint_done(&j->cp);
	json_decref(j->before);
	json_decref(j->sigs_after);
	json_decref(j->keyslots);
	json_decref(j->notes);
	j->before = j->sigs_after = j->keyslots = j->notes = NULL;
}
