// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl's view of a re-encryption: the progress line or JSON progress, the signal that stops
 * it after the current step (the one global: a signal handler has nowhere else to write), and
 * the result. Never touches the header itself. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "reencrypt_ui.h"
#include "secmem.h"
#include "util.h"

static volatile sig_atomic_t ui_stop;

static void ui_signal(int sig)
{
	(void)sig;
	ui_stop = 1;
}

struct ui {
	const char *device;
	bool tty, drawn;
};

static int ui_progress(void *userdata, const struct reencrypt_progress *p)
{
	struct ui *ui = userdata;
	double rate = p->elapsed_us ? (double)p->run_done * 1e6 / (double)p->elapsed_us : 0;
	double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
	double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 0;

	if (ui->tty) {
		char a[32], b[32], r[32], t[32];
		uint64_t s = eta >= 0 && eta < 1e7 ? (uint64_t)eta : 0;

		format_bytes((double)p->done, a, sizeof(a));
		format_bytes((double)p->total, b, sizeof(b));
		format_bytes(rate, r, sizeof(r));
		if (eta < 0 || eta >= 1e7)
			snprintf(t, sizeof(t), "--:--");
		else
			snprintf(t, sizeof(t), "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
				 s / 60 % 60, s % 60);
		fprintf(stderr, "\r\033[K%s re-encrypt %5.1f%% %s/%s %s/s ETA %s%s", ui->device,
			pct, a, b, r, t, ui_stop ? " (stopping after this step)" : "");
		ui->drawn = true;
	} else {
		json_auto_t *o =
			json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I}", "type", "progress",
				  "device", ui->device, "phase", "reencrypt", "done",
				  (json_int_t)p->done, "total", (json_int_t)p->total, "percent",
				  pct, "rate_bps", (json_int_t)rate, "eta_s", (json_int_t)eta);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (s)
			fprintf(stderr, "%s\n", s);
		secmem_free(s); /* jansson allocates from the secure heap */
	}
	fflush(stderr);
	return ui_stop;
}

static void reencrypt_ui_print(const char *device, const struct reencrypt_result *res, bool json)
{
	double secs = (double)res->run_us / 1e6;
	double mib = (double)res->run_bytes / (1024 * 1024);
	char removed[160] = "";
	size_t n = 0;

	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++)
		if (res->removed & (UINT32_C(1) << s) && n + 8 < sizeof(removed))
			n += (size_t)snprintf(removed + n, sizeof(removed) - n, "%s%d",
					      n ? ", " : "", s);
	if (json) {
		json_auto_t *o = json_pack(
			"{s:s, s:s, s:s, s:b, s:s?, s:i, s:i, s:i, s:i, s:i, s:[], s:b, s:I, s:I, "
			"s:f, s:i}",
			"device", device, "mode", "reencrypt", "uuid", res->uuid, "online",
			res->mapping[0] != 0, "mapping", res->mapping[0] ? res->mapping : NULL,
			"token", res->token, "old_keyslot", res->old_keyslot, "new_keyslot",
			res->new_keyslot, "key_file_old_keyslot", res->keep_old,
			"key_file_new_keyslot", res->keep_new, "removed_keyslots", "resumed",
			res->resumed, "bytes", (json_int_t)res->total, "run_bytes",
			(json_int_t)res->run_bytes, "run_seconds", secs, "converged",
			res->converged);
		json_t *a = o ? json_object_get(o, "removed_keyslots") : NULL;

		for (int k = 0; a && k < LUKS_KEYSLOTS_MAX; k++)
			if (res->removed & (UINT32_C(1) << k))
				json_array_append_new(a, json_integer(k));
		if (o)
			ctl_print_json(o);
		return;
	}
	if (res->resumed && !res->run_bytes)
		printf("Re-encrypted %s with a new volume key: recovering the interrupted last step "
		       "finished it.\n",
		       device);
	else
		printf("Re-encrypted %s with a new volume key%s%s%s: %.1f MiB in %.1f s (%.1f "
		       "MiB/s)%s.\n",
		       device, res->mapping[0] ? ", online under /dev/mapper/" : ", offline",
		       res->mapping[0] ? res->mapping : "", res->resumed ? " (resumed)" : "", mib,
		       secs, secs > 0 ? mib / secs : 0.0, res->resumed ? " in this run" : "");
	printf("keyd token %d names keyslot %d, which the KMS unlocks.\n", res->token,
	       res->new_keyslot);
	if (res->keep_new >= 0)
		printf("The key file's passphrase moved from keyslot %d to keyslot %d.\n",
		       res->keep_old, res->keep_new);
	if (removed[0])
		printf("Removed with the old volume key: keyslot%s %s.\n",
		       strchr(removed, ',') ? "s" : "", removed);
	if (res->converged)
		printf("Finished an interrupted enrollment, re-key or re-encryption start first "
		       "(%d header changes).\n",
		       res->converged);
}

/* What the run undid or finished first (an interrupted enrollment, re-key or start). */
static void reencrypt_ui_log_tidy(const char *device, const struct reencrypt_result *res)
{
	ctl_log_changes(device, &res->changes);
	if (res->token_moved_to >= 0)
		log_info("%s: token %d back on keyslot %d (an interrupted re-encryption had moved "
			 "it to keyslot %d before starting)",
			 device, res->token, res->token_moved_to, res->token_moved_from);
	for (int s = 0; s < LUKS_KEYSLOTS_MAX; s++)
		if (res->unbound_removed & (UINT32_C(1) << s))
			log_info("%s: removing unbound keyslot %d (it encrypts no data; an "
				 "interrupted re-encryption left it)",
				 device, s);
}

int reencrypt_ui_run(struct ctl *c, const struct reencrypt_request *base,
		     struct reencrypt_result *res, struct error *err)
{
	struct reencrypt_request req = *base;
	struct ui ui = {.device = base->device, .tty = isatty(STDERR_FILENO)};
	/* A signal stops after the current step. Later ones change nothing: killing the run
	 * while libcryptsetup finishes is the one moment it cannot resume from (see
	 * docs/reencrypt.md). */
	struct sigaction sa = {.sa_handler = ui_signal, .sa_flags = SA_RESTART}, old_int, old_term;
	int r;

	req.progress = ui_progress;
	req.userdata = &ui;
	ui_stop = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	r = volume_reencrypt(&req, res, err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (ui.drawn)
		fputc('\n', stderr);
	reencrypt_ui_log_tidy(base->device, res);
	if (r == -EINTR)
		return ctl_fail(c, r, "rotate --reencrypt %s: %s", base->device, err->msg);
	if (r < 0)
		return ctl_fail(c, r, "rotate --reencrypt %s failed: %s", base->device, err->msg);
	reencrypt_ui_print(base->device, res, c->json);
	return 0;
}
