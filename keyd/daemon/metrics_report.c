// SPDX-License-Identifier: GPL-2.0-or-later
/* One Prometheus page of keyd's state and counters (docs/metrics.md lists every family), and
 * its atomic textfile. Takes the registry's lock only to copy what it reports. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomicfile.h"
#include "metrics_report.h"
#include "prom.h"
#include "util.h"

static double seconds_since(uint64_t then_us, uint64_t now_us)
{
	return then_us <= now_us ? (double)(now_us - then_us) / 1e6 : 0;
}

static void report_build(const struct metrics_env *env, struct prom *p)
{
	prom_family(p, "keyd_build_info", "gauge", "keyd's version; always 1.");
	prom_sample(p, "keyd_build_info", (const char *const[]){"version", KEYD_VERSION, NULL}, 1);
	prom_family(p, "keyd_ready", "gauge",
		    "1 once every required volume was open and keyd told systemd READY=1.");
	prom_sample(p, "keyd_ready", NULL, *env->ready ? 1 : 0);
}

/* Each writes one volume's samples of its family; registry lock held. */
typedef void (*volume_fn)(struct prom *p, const char *family, const struct volume *v,
			  uint64_t now_us);

static void volume_state(struct prom *p, const char *family, const struct volume *v,
			 uint64_t now_us)
{
	(void)now_us;
	for (int s = 0; s < _VOLUME_STATE_MAX; s++)
		prom_sample(p, family,
			    (const char *const[]){"volume", v->name, "kms", v->keys[0].kms->name,
						  "state", volume_state_names[s], NULL},
			    v->st.state == (enum volume_state)s);
}

static void volume_required(struct prom *p, const char *family, const struct volume *v,
			    uint64_t now_us)
{
	(void)now_us;
	prom_sample(p, family,
		    (const char *const[]){"volume", v->name, "kms", v->keys[0].kms->name, NULL},
		    v->required);
}

/* One sample per root key: a volume of several KMS has a key version at each. */
static void volume_key_version(struct prom *p, const char *family, const struct volume *v,
			       uint64_t now_us)
{
	(void)now_us;
	for (size_t k = 0; k < v->n_keys; k++)
		if (v->st.keys[k].key_version[0])
			prom_sample(p, family,
				    (const char *const[]){
					    "volume", v->name, "kms", v->keys[k].kms->name,
					    "key_id", registry_key_id_of_locked(v, k),
					    "key_version", v->st.keys[k].key_version, NULL},
				    1);
}

static void volume_key_age(struct prom *p, const char *family, const struct volume *v,
			   uint64_t now_us)
{
	if (v->st.key_rotated_us)
		prom_sample(p, family,
			    (const char *const[]){"volume", v->name, "kms", v->keys[0].kms->name,
						  "key_id", registry_key_id_locked(v), NULL},
			    seconds_since(v->st.key_rotated_us, now_us));
}

static void report_volumes(const struct metrics_env *env, struct prom *p)
{
	static const struct {
		const char *name, *help;
		volume_fn write;
	} families[] = {
		{"keyd_volume_state",
		 "The state each volume is in: 1 for the current state, 0 for the others.",
		 volume_state},
		{"keyd_volume_required", "1 for a volume READY=1 waits for (\"required\": true).",
		 volume_required},
		{"keyd_volume_key_version_info",
		 "The root key (KMS key id and version) the volume's token is wrapped with; always 1.",
		 volume_key_version},
		{"keyd_root_key_age_seconds",
		 "Seconds since the root key's newest version was made, as the KMS said when last "
		 "polled (absent while unknown).",
		 volume_key_age},
	};
	struct registry *reg = env->reg;
	uint64_t now = now_real_us();

	pthread_mutex_lock(&reg->lock);
	for (size_t f = 0; f < ELEMENTSOF(families); f++) {
		prom_family(p, families[f].name, "gauge", families[f].help);
		for (size_t i = 0; i < reg->n; i++)
			families[f].write(p, families[f].name, &reg->volumes[i], now);
	}
	pthread_mutex_unlock(&reg->lock);
}

/* The BYOK rule: a key may be used max_key_cache_age after the last successful contact. */
static void report_kms(const struct metrics_env *env, struct prom *p)
{
	const struct keyd_config *cfg = env->cfg;
	double max_age = (double)cfg->max_key_cache_age_s;

	prom_family(p, "keyd_kms_last_success_age_seconds", "gauge",
		    "Seconds since the KMS last answered a request successfully (+Inf: not since "
		    "keyd started).");
	for (size_t i = 0; i < cfg->n_kms; i++) {
		uint64_t silent = kms_silence_us(cfg->kms[i]);

		prom_sample(p, "keyd_kms_last_success_age_seconds",
			    (const char *const[]){"kms", cfg->kms[i]->name, "provider",
						  cfg->kms[i]->provider->name, NULL},
			    silent == UINT64_MAX ? INFINITY : (double)silent / 1e6);
	}
	prom_family(
		p, "keyd_key_cache_margin_seconds", "gauge",
		"Seconds left before max_key_cache_age_s of KMS silence applies on_revoke to its "
		"volumes (negative: past it; -Inf: the KMS never answered since keyd started).");
	for (size_t i = 0; i < cfg->n_kms; i++) {
		uint64_t silent = kms_silence_us(cfg->kms[i]);

		prom_sample(p, "keyd_key_cache_margin_seconds",
			    (const char *const[]){"kms", cfg->kms[i]->name, NULL},
			    silent == UINT64_MAX ? -INFINITY : max_age - (double)silent / 1e6);
	}
	prom_family(
		p, "keyd_key_cache_max_age_seconds", "gauge",
		"lifecycle.max_key_cache_age_s: how long a KMS may be silent before on_revoke.");
	prom_sample(p, "keyd_key_cache_max_age_seconds", NULL, max_age);
}

static void report_audit(const struct metrics_env *env, struct prom *p)
{
	struct audit_stats st;

	if (!env->audit || audit_stats(env->audit, &st) < 0)
		return;
	prom_family(p, "keyd_audit_log_size_bytes", "gauge", "Size of the audit log file.");
	prom_sample(p, "keyd_audit_log_size_bytes", NULL, (double)st.size);
	prom_family(p, "keyd_audit_last_checkpoint_age_seconds", "gauge",
		    "Seconds since the newest signed checkpoint of the audit log (+Inf: none seen "
		    "since keyd started).");
	prom_sample(p, "keyd_audit_last_checkpoint_age_seconds", NULL,
		    st.last_checkpoint_us ? seconds_since(st.last_checkpoint_us, now_real_us())
					  : INFINITY);
}

int metrics_report(const struct metrics_env *env, char **ret)
{
	struct prom p = {0};

	report_build(env, &p);
	report_volumes(env, &p);
	report_kms(env, &p);
	report_audit(env, &p);
	metrics_write(env->metrics, &p);
	return prom_finish(&p, ret);
}

int metrics_report_textfile(const struct metrics_env *env, const char *dir, struct error *err)
{
	_cleanup_free_ char *text = NULL;
	char path[4096];
	int r;

	r = metrics_report(env, &text);
	if (r < 0)
		return error_set(err, r, "metrics: cannot build the page: %s", strerror(-r));
	if (snprintf(path, sizeof(path), "%s/" METRICS_TEXTFILE_NAME, dir) >= (int)sizeof(path))
		return error_set(err, -ENAMETOOLONG, "metrics.textfile_dir: %s is too long", dir);
	/* 0644: node_exporter runs as its own user and only reads; the directory is its. */
	r = atomicfile_write(path, text, strlen(text), 0644, 0);
	return r < 0 ? error_set(err, r, "metrics: cannot write %s: %s", path, strerror(-r)) : 0;
}
