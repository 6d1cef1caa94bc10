// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe: the only place that parses wipe's argv. Two tables, options and commands, drive both
 * the parsing and --help; main sets up secure memory, signals and libcryptsetup, then hands the
 * parsed command line to the command's file. Exit: 0 done, 1 failed, 2 usage, 3 refused,
 * 130 interrupted. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "cli.h"
#include "cmd_cert.h"
#include "cmd_methods.h"
#include "cmd_probe.h"
#include "cmd_run.h"
#include "cmd_verify.h"
#include "cryptsetup_util.h"
#include "http.h"
#include "log.h"
#include "managed.h"
#include "secmem.h"
#include "sign.h"
#include "trust.h"
#include "util.h"

#define WIPE_SECURE_HEAP (4 * 1024 * 1024)
#define STR(x)		 #x
#define XSTR(x)		 STR(x)

/* What an option's setter returns besides 0 (go on) and -errno (a usage error it logged). */
#define OPTION_DONE 1 /* --help, --version: printed, exit 0 */

struct command {
	const char *name;
	const char *usage;
	const char *summary;
	int min_args;
	int (*run)(struct cli *c);
};

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
	 "check a certificate's record and that a trusted key signed it", 1, cmd_cert_verify},
	{"cert pubkey", "cert pubkey [--key FILE]", "print the node key's public half (PEM)", 0,
	 cmd_cert_pubkey},
	{"methods", "methods", "list methods and profiles", 0, cmd_methods},
};

struct cli_option {
	const char *name; /* --name */
	char letter;	  /* -l, or 0 */
	const char *arg;  /* the argument's name in --help; NULL: takes none */
	const char *help; /* lines after the first are indented under it */
	void (*help_more)(FILE *f);
	int (*set)(struct cli *c, const char *arg);
};

static volatile bool stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = true;
}

static int set_method(struct cli *c, const char *arg)
{
	c->opt.method = method_find(arg);
	if (!c->opt.method)
		return log_error("unknown method '%s' (see wipe methods)", arg), -EINVAL;
	return 0;
}

static int set_profile(struct cli *c, const char *arg)
{
	c->opt.profile = profile_find(arg);
	if (!c->opt.profile)
		return log_error("unknown profile '%s': clear or purge", arg), -EINVAL;
	return 0;
}

static int set_verify(struct cli *c, const char *arg)
{
	if (pass_verify_parse(arg, &c->opt.verify) < 0)
		return log_error("--verify: none, sample or full"), -EINVAL;
	c->opt.verify_given = true;
	return 0;
}

static int set_confirm(struct cli *c, const char *arg)
{
	if (c->n_confirm >= WIPE_CONFIRM_MAX || strlen(arg) > WIPE_INPUT_MAX)
		return log_error("--confirm: too many or too long"), -EINVAL;
	c->confirm[c->n_confirm++] = arg;
	return 0;
}

static int set_dry_run(struct cli *c, const char *arg)
{
	(void)arg;
	c->opt.dry_run = true;
	return 0;
}

static int set_resume(struct cli *c, const char *arg)
{
	(void)arg;
	c->opt.resume = true;
	return 0;
}

/* N, NK, NM or NG bytes per second. */
static int parse_rate(const char *s, uint64_t *ret)
{
	static const struct {
		char suffix;
		uint64_t mult;
	} units[] = {{0, 1},
		     {'K', 1ull << 10},
		     {'k', 1ull << 10},
		     {'M', 1ull << 20},
		     {'m', 1ull << 20},
		     {'G', 1ull << 30},
		     {'g', 1ull << 30}};
	char num[32];
	size_t n = strspn(s, "0123456789");
	uint64_t v, mult = 0;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = 0;
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (s[n] == units[i].suffix)
			mult = units[i].mult;
	if (!mult || (s[n] && s[n + 1]))
		return -EINVAL;
	if (parse_u64(num, &v) < 0 || v == 0 || v > UINT64_MAX / mult / 1000000)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

static int set_rate_limit(struct cli *c, const char *arg)
{
	if (parse_rate(arg, &c->rate_limit) < 0)
		return log_error("--rate-limit: bytes per second, e.g. 200M"), -EINVAL;
	return 0;
}

static int set_checkpoint_dir(struct cli *c, const char *arg)
{
	c->opt.checkpoint_dir = arg;
	return 0;
}

static int set_checkpoint(struct cli *c, const char *arg)
{
	c->opt.checkpoint_file = arg;
	return 0;
}

static int set_checkpoint_every(struct cli *c, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) < 0 || v == 0 || v > (1u << 24))
		return log_error("--checkpoint-every: MiB, 1 or more"), -EINVAL;
	c->opt.checkpoint_every = v << 20;
	return 0;
}

static int set_cert_dir(struct cli *c, const char *arg)
{
	c->opt.cert_dir = arg;
	return 0;
}

static int set_key(struct cli *c, const char *arg)
{
	c->key_path = arg;
	return 0;
}

static int set_trusted_keys(struct cli *c, const char *arg)
{
	c->trust_dir = arg;
	return 0;
}

static int set_audit_log(struct cli *c, const char *arg)
{
	c->audit_path = arg;
	return 0;
}

static int set_operator(struct cli *c, const char *arg)
{
	c->performer = arg;
	return 0;
}

static int set_field(struct cli *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char key[64];

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(key))
		goto bad;
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = 0;
	if (!cert_field_settable(key) || strlen(eq + 1) > CERT_FIELD_MAX)
		goto bad;
	if (json_object_set_new(c->opt.fields, key, json_string(eq + 1)) < 0)
		goto bad;
	return 0;
bad:
	return log_error("--field KEY=VALUE: KEY is one of the operator's Appendix G fields (see "
			 "--help), VALUE at most %d characters",
			 CERT_FIELD_MAX),
	       -EINVAL;
}

static int set_keyd_socket(struct cli *c, const char *arg)
{
	c->opt.keyd_socket = arg;
	return 0;
}

static int set_force_managed(struct cli *c, const char *arg)
{
	(void)arg;
	c->opt.force_managed = true;
	return 0;
}

static int set_no_progress(struct cli *c, const char *arg)
{
	(void)arg;
	c->progress = false;
	return 0;
}

static int set_progress_interval(struct cli *c, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) < 0 || v == 0 || v > 86400)
		return log_error("--progress-interval: seconds, 1 to 86400"), -EINVAL;
	c->progress_us = v * 1000000;
	return 0;
}

static int set_json(struct cli *c, const char *arg)
{
	(void)arg;
	c->json = true;
	return 0;
}

static int set_debug(struct cli *c, const char *arg)
{
	(void)c, (void)arg;
	log_set_max_level(LOG_DEBUG);
	return 0;
}

static int show_help(struct cli *c, const char *arg);

static int show_version(struct cli *c, const char *arg)
{
	(void)c, (void)arg;
	printf("wipe %s\n", KEYD_VERSION);
	return OPTION_DONE;
}

static const struct cli_option options[] = {
	{"method", 'm', "NAME", "wipe method (see wipe methods)", NULL, set_method},
	{"profile", 'p', "NAME", "clear or purge: the method follows NIST SP 800-88", NULL,
	 set_profile},
	{"verify", 0, "MODE", "none, sample (random blocks) or full", NULL, set_verify},
	{"confirm", 0, "ID",
	 "the device's serial, WWN or LUKS UUID (or a loop\n"
	 "device's backing file); repeat for several devices",
	 NULL, set_confirm},
	{"dry-run", 'n', NULL, "show what would be done; change nothing", NULL, set_dry_run},
	{"resume", 0, NULL, "finish an interrupted wipe from its checkpoint", NULL, set_resume},
	{"rate-limit", 0, "N[K|M|G]", "bytes per second for all devices together", NULL,
	 set_rate_limit},
	{"checkpoint-dir", 0, "DIR", "checkpoints (default " CHECKPOINT_DIR_DEFAULT ")", NULL,
	 set_checkpoint_dir},
	{"checkpoint", 0, "FILE", "this device's checkpoint (one device)", NULL, set_checkpoint},
	{"checkpoint-every", 0, "MiB",
	 "sync and checkpoint this often (default " XSTR(JOB_CHECKPOINT_EVERY_MIB) ")", NULL,
	 set_checkpoint_every},
	{"cert-dir", 0, "DIR", "certificates (default " CERT_DIR_DEFAULT ")", NULL, set_cert_dir},
	{"key", 0, "FILE",
	 "node key (default " SIGN_KEY_PATH_DEFAULT "); for cert verify, the\n"
	 "trusted key (public or private PEM)",
	 NULL, set_key},
	{"trusted-keys", 0, "DIR",
	 "for cert verify without --key: trusted public keys\n"
	 "(*.pem, default " TRUST_DIR_DEFAULT "), besides the node key",
	 NULL, set_trusted_keys},
	{"audit-log", 0, "FILE", "audit log (default " AUDIT_PATH_DEFAULT ")", NULL, set_audit_log},
	{"operator", 0, "NAME", "who performs the sanitization (certificate)", NULL, set_operator},
	{"field", 0, "KEY=VALUE", "SP 800-88 Appendix G field, KEY one of:", cert_fields_help,
	 set_field},
	{"keyd-socket", 0, "PATH", "keyd's control socket (default " MANAGED_SOCKET_DEFAULT ")",
	 NULL, set_keyd_socket},
	{"force-managed", 0, NULL,
	 "wipe a volume with a keyd token although keyd\n"
	 "cannot be asked (never one keyd says it manages)",
	 NULL, set_force_managed},
	{"no-progress", 0, NULL, "no progress output", NULL, set_no_progress},
	{"progress-interval", 0, "S", "seconds between progress reports", NULL,
	 set_progress_interval},
	{"json", 0, NULL, "machine-readable output", NULL, set_json},
	{"debug", 'd', NULL, "debug logging", NULL, set_debug},
	{"help", 'h', NULL, "this help", NULL, show_help},
	{"version", 0, NULL, "the version", NULL, show_version},
};

/* Where the text of an option starts; a longer flag pushes its first line further. */
#define HELP_INDENT 28

static void help_option(const struct cli_option *o)
{
	char flag[64];
	const char *line = o->help;

	snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
	printf("  %c%c%c %-20s  ", o->letter ? '-' : ' ', o->letter ? o->letter : ' ',
	       o->letter ? ',' : ' ', flag);
	for (;;) {
		size_t len = strcspn(line, "\n");

		printf("%.*s\n", (int)len, line);
		if (!line[len])
			break;
		line += len + 1;
		printf("%*s", HELP_INDENT, "");
	}
	if (o->help_more) {
		printf("%*s", HELP_INDENT, "");
		o->help_more(stdout);
		printf("\n");
	}
}

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
	printf("\n\nOptions:\n");
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		help_option(&options[i]);
	printf("\nExit status: 0 done, 1 failed, 2 usage, 3 refused, 130 interrupted.\n");
}

static int show_help(struct cli *c, const char *arg)
{
	(void)c, (void)arg;
	help();
	return OPTION_DONE;
}

/* getopt_long's tables from ours: a long-only option's value is its row + OPTION_LONG. */
#define OPTION_LONG 0x100

static void getopt_tables(struct option *longopts, char *shortopts, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		longopts[i] = (struct option){
			.name = options[i].name,
			.has_arg = options[i].arg ? required_argument : no_argument,
			.val = options[i].letter ? options[i].letter : (int)(OPTION_LONG + i),
		};
		if (options[i].letter && o + 3 < size) {
			shortopts[o++] = options[i].letter;
			if (options[i].arg)
				shortopts[o++] = ':';
		}
	}
	longopts[ELEMENTSOF(options)] = (struct option){0};
	shortopts[o] = 0;
}

static const struct cli_option *option_of(int val)
{
	if (val >= OPTION_LONG && (size_t)(val - OPTION_LONG) < ELEMENTSOF(options))
		return &options[val - OPTION_LONG];
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		if (options[i].letter && options[i].letter == val)
			return &options[i];
	return NULL;
}

/* 0: go on; OPTION_DONE; -EINVAL: a usage error (logged). getopt_long permutes: options may
 * come anywhere, operands end up after them (from optind). */
static int parse_options(struct cli *c, int argc, char **argv)
{
	struct option longopts[ELEMENTSOF(options) + 1];
	char shortopts[2 * ELEMENTSOF(options) + 1];
	const struct cli_option *opt;
	int val, r;

	getopt_tables(longopts, shortopts, sizeof(shortopts));
	while ((val = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
		opt = option_of(val);
		if (!opt)
			return -EINVAL; /* getopt said what */
		r = opt->set(c, optarg);
		if (r != 0)
			return r;
	}
	return 0;
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

/* Who performs the sanitization, for the certificate: --operator, else the sudo user, else
 * the user. */
static json_t *performer_json(const char *name)
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

/* The command and its operands from what getopt left; -EINVAL (logged) when there is none. */
static int pick_command(struct cli *c, int argc, char **argv, const struct command **ret)
{
	const struct command *cmd;
	int consumed = 0;

	cmd = find_command(argc, argv, &consumed);
	if (!cmd) {
		if (optind < argc)
			log_error("unknown command '%s' (see wipe --help)", argv[optind]);
		else
			help();
		return -EINVAL;
	}
	c->args = argv + optind + consumed;
	c->n_args = argc - optind - consumed;
	if (c->n_args < cmd->min_args)
		return log_error("usage: wipe %s", cmd->usage), -EINVAL;
	if (c->performer && strlen(c->performer) > CERT_FIELD_MAX)
		return log_error("--operator: at most %d characters", CERT_FIELD_MAX), -EINVAL;
	*ret = cmd;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = {
		.opt = {.checkpoint_dir = CHECKPOINT_DIR_DEFAULT,
			.cert_dir = CERT_DIR_DEFAULT,
			.checkpoint_every = JOB_CHECKPOINT_EVERY,
			.stop = &stop_requested},
		.audit_path = AUDIT_PATH_DEFAULT,
		.progress = true,
	};
	struct sigaction sa = {.sa_handler = on_signal};
	const struct command *cmd;
	int r;

	log_setup("wipe", LOG_INFO);
	/* Secure memory first: jansson allocates from it, and the keystream key lives there. */
	r = secmem_init(WIPE_SECURE_HEAP);
	if (r < 0) {
		log_error_errno(r,
				"cannot set up locked secure memory: %m (RLIMIT_MEMLOCK too low?)");
		return EXIT_FAILED;
	}
	c.opt.fields = json_object();
	r = parse_options(&c, argc, argv);
	if (r != 0)
		return r == OPTION_DONE ? EXIT_OK : EXIT_USAGE;
	if (pick_command(&c, argc, argv, &cmd) < 0)
		return EXIT_USAGE;
	c.opt.performed_by = performer_json(c.performer);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cryptsetup_setup();
	/* libcurl's global state, once, before any thread: wipe run asks keyd. */
	if (http_global_init() < 0) {
		log_error("cannot initialise libcurl");
		return EXIT_FAILED;
	}
	r = cmd->run(&c);
	if (c.opt.audit)
		audit_close(c.opt.audit);
	EVP_PKEY_free(c.opt.key);
	json_decref(c.opt.performed_by);
	json_decref(c.opt.fields);
	return r;
}
