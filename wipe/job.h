/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One device's wipe from plan to certificate: probe, safety checks, method choice, checkpointed
 * passes, verification, the after-state, the signed certificate, the audit records. The outcome
 * lives in the job; the caller reports it. Never exits, never prompts, logs nothing. */
#pragma once

#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "cert.h"
#include "checkpoint.h"
#include "device.h"
#include "io.h"
#include "method.h"
#include "pass.h"
#include "pattern.h"
#include "safety.h"
#include "signatures.h"

#define JOB_MSG_MAX		 1024
#define JOB_CHECKPOINT_EVERY_MIB 1024
#define JOB_CHECKPOINT_EVERY	 ((uint64_t)JOB_CHECKPOINT_EVERY_MIB << 20)
#define CERT_DIR_DEFAULT	 "/var/lib/wipe/certs"

/* What the command line decided; shared read-only by every job of a run. */
struct wipe_options {
	const struct wipe_method *method;   /* NULL: the profile decides */
	const struct wipe_profile *profile; /* NULL: none asked */
	enum pass_verify verify;
	bool verify_given;
	bool dry_run, resume;
	const char *checkpoint_dir;
	const char *checkpoint_file; /* overrides the directory (one device only) */
	uint64_t checkpoint_every;
	const char *cert_dir;
	json_t *performed_by; /* who performs the sanitization: {"name", "uid", "user", ...} */
	json_t *fields;	      /* Appendix G fields given with --field */
	EVP_PKEY *key;	      /* signs certificates */
	struct audit *audit;  /* NULL: no audit (dry run) */
	struct io_throttle *throttle;
	const volatile bool *stop;
	const struct io_ops *io_ops; /* NULL: the system's (tests inject faults here) */
	const char *keyd_socket;     /* NULL: MANAGED_SOCKET_DEFAULT */
	bool force_managed;	     /* a keyd token may be wiped when keyd cannot be asked */
};

enum job_phase {
	JOB_PLANNED,
	JOB_WRITING,
	JOB_VERIFYING,
	JOB_FINISHING,
	JOB_DONE,
};

enum job_result {
	JOB_PENDING,
	JOB_SUCCESS,
	JOB_FAILURE,
	JOB_INTERRUPTED,
	JOB_REFUSED,
};

enum job_verify {
	JOB_VERIFY_NOT_REQUESTED,
	JOB_VERIFY_NOT_RUN, /* the wipe did not get that far */
	JOB_VERIFY_PASSED,
	JOB_VERIFY_FAILED,
	JOB_VERIFY_INCOMPLETE, /* interrupted */
};

struct wipe_job {
	const struct wipe_options *opt;
	struct io_dev io; /* the one descriptor of the device, from plan to end */
	bool held;	  /* io is open O_EXCL (else the job was refused) */
	int open_error;	  /* why the exclusive open failed */
	struct device_info dev;
	json_t *before; /* {"device", "signatures", "luks_uuid"} before the first write */
	json_t *sigs_after;
	char luks_uuid[SIGNATURES_UUID_MAX]; /* the LUKS UUID as first found (confirmation) */
	const struct wipe_method *method;
	enum nist_level level;
	char level_note[METHOD_WHY_MAX];
	enum pass_verify verify;
	uint64_t end;	  /* the method covers [0, end) */
	json_t *keyslots; /* crypto: the keyslot areas destroyed */
	char checkpoint_path[PATH_MAX];
	struct checkpoint cp;
	bool resuming;
	struct pattern pattern;
	json_t *notes;			  /* caveats and fallbacks, for the certificate */
	struct sanitize_outcome firmware; /* how the device answered a firmware method */

	/* Read by the progress display while the job runs: bytes done and to do in the current
	 * phase, and of the phases before it (base) and after it (later: a verify pass to come),
	 * so an ETA covers the whole run. */
	_Atomic int phase;
	_Atomic uint64_t done, total;
	_Atomic uint64_t base, later;

	/* Outcome. */
	enum job_result result;
	int error;
	char message[JOB_MSG_MAX];
	struct pass_stats write, check;
	enum job_verify verified;
	uint64_t started_us, ended_us;
	uint64_t write_us, verify_us; /* time spent in each phase by this run */
	char cert_path[PATH_MAX];
	char cert_id[CERT_ID_MAX];
};

/* An empty job for @path (what job_plan and job_verify_device start from; a caller may refuse
 * it with job_refuse without planning). */
void job_init(struct wipe_job *j, const char *path, const struct wipe_options *opt);

/* Opens @path once, O_EXCL, and keeps that descriptor to the end; probes it, finds its
 * checkpoint, picks the method and checks on that descriptor that it may be wiped. 0: ready to
 * run; -errno: refused (j->result JOB_REFUSED, j->message says why, audited). */
int job_plan(struct wipe_job *j, const char *path, const struct wipe_options *opt);

/* What job_run would do, for --dry-run and for the confirmation prompt. */
json_t *job_plan_json(const struct wipe_job *j);

/* Refuses a planned job (e.g. confirmation mismatch): sets the outcome, writes the audit record,
 * returns @error. */
int job_refuse(struct wipe_job *j, int error, const char *fmt, ...) _printf_(3, 4);

/* Wipes, verifies, certifies. 0 on a complete, verified wipe; else -errno with j->result
 * JOB_FAILURE or JOB_INTERRUPTED. Either way a certificate says what happened once any write
 * was attempted. */
int job_run(struct wipe_job *j);

/* Reads a device back after the fact (wipe verify): all zeros for zero/zeroout, no LUKS header
 * and no signature for crypto. 0 passes; -EBADMSG differs; j->message says what was found. */
int job_verify_device(struct wipe_job *j, const char *path, const struct wipe_options *opt);

/* The outcome as JSON (device, result, message, certificate). */
json_t *job_result_json(const struct wipe_job *j);
const char *job_result_name(enum job_result r);
const char *job_phase_name(enum job_phase p);
const char *job_verify_name(enum job_verify v);

void job_done(struct wipe_job *j);
