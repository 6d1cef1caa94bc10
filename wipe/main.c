// SPDX-License-Identifier: GPL-2.0-or-later
/* wipe: the only place that parses wipe's argv. Two tables, options and commands (which
 * option applies to which command), drive the parsing, --help and `wipe help COMMAND`; main
 * sets up secure memory, signals and libcryptsetup, hands the parsed command line to the
 * command's file and ends with cli_finish (the exit statuses: exitcode.c). */
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

/* Which commands an option applies to (wipe help COMMAND lists those). */
enum {
	CMD_PROBE = 1 << 0,
	CMD_RUN = 1 << 1,
	CMD_VERIFY = 1 << 2,
	CMD_CERT_SHOW = 1 << 3,
	CMD_CERT_VERIFY = 1 << 4,
	CMD_CERT_PUBKEY = 1 << 5,
	CMD_METHODS = 1 << 6,
	CMD_HELP = 1 << 7,
	CMD_ALL = (1 << 8) - 1,
};

struct command {
	const char *name;
	unsigned mask;
	const char *usage;
	const char *summary;
	int min_args;
	int (*run)(struct cli *c);
};

static int cmd_help(struct cli *c);

static const struct command commands[] = {
	{"probe", CMD_PROBE, "probe DEVICE...",
	 "identity, capabilities, signatures, whether in use", 1, cmd_probe},
	{"run", CMD_RUN,
	 "run DEVICE... --method M|--profile P [--verify none|sample|full] [--confirm ID]...",
	 "wipe, verify and certify (several devices in parallel)", 1, cmd_run},
	{"verify", CMD_VERIFY,
	 "verify DEVICE... --method zero|zeroout|crypto [--verify sample|full]",
	 "check afterwards that a device holds what the method leaves", 1, cmd_verify},
	{"cert show", CMD_CERT_SHOW, "cert show FILE...", "render a certificate for people", 1,
	 cmd_cert_show},
	{"cert verify", CMD_CERT_VERIFY, "cert verify FILE... [--key PEM]",
	 "check a certificate's record and that a trusted key signed it", 1, cmd_cert_verify},
	{"cert pubkey", CMD_CERT_PUBKEY, "cert pubkey [--key FILE]",
	 "print the node key's public half (PEM)", 0, cmd_cert_pubkey},
	{"methods", CMD_METHODS, "methods", "list methods and profiles", 0, cmd_methods},
	{"help", CMD_HELP, "help [COMMAND]", "this help, or one command's", 0, cmd_help},
};

struct cli_option {
	const char *name;  /* --name */
	char letter;	   /* -l, or 0 */
	const char *arg;   /* the argument's name in --help; NULL: takes none */
	unsigned commands; /* CMD_*: where it applies; 0: only before a command (--version) */
	const char *help;  /* lines after the first are indented under it */
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
		return cli_error(c, EXIT_USAGE, "unknown method '%s' (see wipe methods)", arg),
		       -EINVAL;
	return 0;
}

static int set_profile(struct cli *c, const char *arg)
{
	c->opt.profile = profile_find(arg);
	if (!c->opt.profile)
		return cli_error(c, EXIT_USAGE, "unknown profile '%s': clear or purge", arg),
		       -EINVAL;
	return 0;
}

static int set_verify(struct cli *c, const char *arg)
{
	if (pass_verify_parse(arg, &c->opt.verify) < 0)
		return cli_error(c, EXIT_USAGE, "--verify: none, sample or full"), -EINVAL;
	c->opt.verify_given = true;
	return 0;
}

static int set_confirm(struct cli *c, const char *arg)
{
	if (c->n_confirm >= WIPE_CONFIRM_MAX || strlen(arg) > WIPE_INPUT_MAX)
		return cli_error(c, EXIT_USAGE, "--confirm: too many or too long"), -EINVAL;
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
		return cli_error(c, EXIT_USAGE, "--rate-limit: bytes per second, e.g. 200M"),
		       -EINVAL;
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
		return cli_error(c, EXIT_USAGE, "--checkpoint-every: MiB, 1 or more"), -EINVAL;
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
	return cli_error(c, EXIT_USAGE,
			 "--field KEY=VALUE: KEY is one of the operator's Appendix G fields (see "
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
		return cli_error(c, EXIT_USAGE, "--progress-interval: seconds, 1 to 86400"),
		       -EINVAL;
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

static int set_metrics_textfile(struct cli *c, const char *arg)
{
	c->metrics_dir = arg;
	return 0;
}

static int show_help(struct cli *c, const char *arg);

static int show_version(struct cli *c, const char *arg)
{
	(void)arg;
	c->version = true;
	if (c->json) {
		cli_out_set(c, "program", json_string("wipe"));
		cli_out_set(c, "version", json_string(KEYD_VERSION));
	} else {
		printf("wipe %s\n", KEYD_VERSION);
	}
	return OPTION_DONE;
}

#define RUN_VERIFY (CMD_RUN | CMD_VERIFY)
#define SIGNING	   (CMD_RUN | CMD_VERIFY | CMD_CERT_VERIFY | CMD_CERT_PUBKEY)

static const struct cli_option options[] = {
	{"method", 'm', "NAME", RUN_VERIFY, "wipe method (see wipe methods)", NULL, set_method},
	{"profile", 'p', "NAME", CMD_RUN, "clear or purge: the method follows NIST SP 800-88", NULL,
	 set_profile},
	{"verify", 0, "MODE", RUN_VERIFY, "none, sample (random blocks) or full", NULL, set_verify},
	{"confirm", 0, "ID", CMD_RUN,
	 "the device's serial, WWN or LUKS UUID (or a loop\n"
	 "device's backing file); repeat for several devices",
	 NULL, set_confirm},
	{"dry-run", 'n', NULL, CMD_RUN, "show what would be done; change nothing", NULL,
	 set_dry_run},
	{"resume", 0, NULL, CMD_RUN, "finish an interrupted wipe from its checkpoint", NULL,
	 set_resume},
	{"rate-limit", 0, "N[K|M|G]", CMD_RUN, "bytes per second for all devices together", NULL,
	 set_rate_limit},
	{"checkpoint-dir", 0, "DIR", CMD_RUN, "checkpoints (default " CHECKPOINT_DIR_DEFAULT ")",
	 NULL, set_checkpoint_dir},
	{"checkpoint", 0, "FILE", CMD_RUN, "this device's checkpoint (one device)", NULL,
	 set_checkpoint},
	{"checkpoint-every", 0, "MiB", CMD_RUN,
	 "sync and checkpoint this often (default " XSTR(JOB_CHECKPOINT_EVERY_MIB) ")", NULL,
	 set_checkpoint_every},
	{"cert-dir", 0, "DIR", CMD_RUN, "certificates (default " CERT_DIR_DEFAULT ")", NULL,
	 set_cert_dir},
	{"key", 0, "FILE", SIGNING,
	 "node key (default " SIGN_KEY_PATH_DEFAULT "); for cert verify, the\n"
	 "trusted key (public or private PEM)",
	 NULL, set_key},
	{"trusted-keys", 0, "DIR", CMD_CERT_VERIFY,
	 "for cert verify without --key: trusted public keys\n"
	 "(*.pem, default " TRUST_DIR_DEFAULT "), besides the node key",
	 NULL, set_trusted_keys},
	{"audit-log", 0, "FILE", RUN_VERIFY, "audit log (default " AUDIT_PATH_DEFAULT ")", NULL,
	 set_audit_log},
	{"operator", 0, "NAME", CMD_RUN, "who performs the sanitization (certificate)", NULL,
	 set_operator},
	{"field", 0, "KEY=VALUE", CMD_RUN,
	 "SP 800-88 Appendix G field, KEY one of:", cert_fields_help, set_field},
	{"keyd-socket", 0, "PATH", CMD_RUN,
	 "keyd's control socket (default " MANAGED_SOCKET_DEFAULT ")", NULL, set_keyd_socket},
	{"force-managed", 0, NULL, CMD_RUN,
	 "wipe a volume with a keyd token although keyd\n"
	 "cannot be asked (never one keyd says it manages)",
	 NULL, set_force_managed},
	{"metrics-textfile", 0, "DIR", CMD_RUN,
	 "write each device's outcome as wipe-DEVICE-ID.prom\n"
	 "into node_exporter's textfile directory",
	 NULL, set_metrics_textfile},
	{"no-progress", 0, NULL, CMD_RUN, "no progress output", NULL, set_no_progress},
	{"progress-interval", 0, "S", CMD_RUN, "seconds between progress reports", NULL,
	 set_progress_interval},
	{"json", 0, NULL, CMD_ALL, "one JSON document on stdout, also on error", NULL, set_json},
	{"debug", 'd', NULL, CMD_ALL, "debug logging", NULL, set_debug},
	{"help", 'h', NULL, CMD_ALL, "this help", NULL, show_help},
	{"version", 0, NULL, 0, "the version", NULL, show_version},
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

static void help_exit_statuses(void)
{
	printf("\nExit status:\n");
	for (size_t i = 0; i < exitcodes_count; i++)
		printf("  %3d %-20s %s\n", exitcodes[i].status, exitcodes[i].name,
		       exitcodes[i].summary);
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
	help_exit_statuses();
	printf("\nwipe help COMMAND (or wipe COMMAND --help): one command's options.\n");
}

/* wipe help COMMAND, wipe COMMAND --help: its usage and the options that apply to it. */
static void help_command(const struct command *cmd)
{
	printf("Usage: wipe %s\n\n%s\n\nOptions:\n", cmd->usage, cmd->summary);
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		if (options[i].commands & cmd->mask)
			help_option(&options[i]);
	help_exit_statuses();
	printf("\nSee wipe(8).\n");
}

static int show_help(struct cli *c, const char *arg)
{
	(void)arg;
	c->help = true;
	return 0;
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

/* The option getopt stopped at, as the user wrote it. */
static const char *option_given(int argc, char **argv, char *buf, size_t size)
{
	/* A long-only option's optopt is its value (OPTION_LONG + row), not a letter. */
	if (optopt >= OPTION_LONG && (size_t)(optopt - OPTION_LONG) < ELEMENTSOF(options))
		snprintf(buf, size, "--%s", options[optopt - OPTION_LONG].name);
	else if (optopt)
		snprintf(buf, size, "-%c", optopt);
	else
		snprintf(buf, size, "%s", optind > 0 && optind <= argc ? argv[optind - 1] : "?");
	return buf;
}

/* 0: go on; OPTION_DONE; -EINVAL: a usage error (logged and recorded). getopt_long permutes:
 * options may come anywhere, operands end up after them (from optind). */
static int parse_options(struct cli *c, int argc, char **argv)
{
	struct option longopts[ELEMENTSOF(options) + 1];
	char shortopts[2 * ELEMENTSOF(options) + 2], given[64];
	const struct cli_option *opt;
	int val, r;

	/* ':' first: a missing argument is told from an unknown option, and we say which. */
	shortopts[0] = ':';
	getopt_tables(longopts, shortopts + 1, sizeof(shortopts) - 1);
	opterr = 0;
	while ((val = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
		if (val == ':')
			return cli_error(c, EXIT_USAGE,
					 "option %s needs an argument (see wipe --help)",
					 option_given(argc, argv, given, sizeof(given))),
			       -EINVAL;
		opt = option_of(val);
		if (!opt)
			return cli_error(c, EXIT_USAGE, "unknown option %s (see wipe --help)",
					 option_given(argc, argv, given, sizeof(given))),
			       -EINVAL;
		r = opt->set(c, optarg);
		if (r != 0)
			return r;
	}
	return 0;
}

/* The command @args start with ("cert verify" takes two words); NULL if none. */
static const struct command *find_command(char **args, int n, int *consumed)
{
	char two[64];

	if (n <= 0)
		return NULL;
	snprintf(two, sizeof(two), "%s %s", args[0], n > 1 ? args[1] : "");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
		if (strcmp(commands[i].name, args[0]) == 0) {
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

/* wipe help [COMMAND]. */
static int cmd_help(struct cli *c)
{
	const struct command *cmd;
	int consumed = 0;

	c->help = true;
	if (c->n_args == 0) {
		help();
		return EXIT_OK;
	}
	cmd = find_command(c->args, c->n_args, &consumed);
	if (!cmd || consumed != c->n_args)
		return cli_error(c, EXIT_USAGE, "help: no command '%s' (see wipe --help)",
				 c->args[0]);
	help_command(cmd);
	return EXIT_OK;
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

/* The command and its operands from what getopt left; -EINVAL (logged) when there is none.
 * --help with a command: that command's help, as wipe help COMMAND. */
static int pick_command(struct cli *c, int argc, char **argv, const struct command **ret)
{
	const struct command *cmd;
	int consumed = 0;

	cmd = find_command(argv + optind, argc - optind, &consumed);
	if (c->help) {
		if (cmd)
			help_command(cmd);
		else
			help();
		return OPTION_DONE;
	}
	if (!cmd) {
		if (optind < argc)
			return cli_error(c, EXIT_USAGE, "unknown command '%s' (see wipe --help)",
					 argv[optind]),
			       -EINVAL;
		if (!c->json)
			help();
		return cli_error(c, EXIT_USAGE, "no command given (see wipe --help)"), -EINVAL;
	}
	c->args = argv + optind + consumed;
	c->n_args = argc - optind - consumed;
	if (c->n_args < cmd->min_args)
		return cli_error(c, EXIT_USAGE, "usage: wipe %s", cmd->usage), -EINVAL;
	if (c->performer && strlen(c->performer) > CERT_FIELD_MAX)
		return cli_error(c, EXIT_USAGE, "--operator: at most %d characters",
				 CERT_FIELD_MAX),
		       -EINVAL;
	*ret = cmd;
	return 0;
}

/* --json before anything else: a usage error is reported in JSON too. "--" ends options. */
static bool json_asked(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}

/* Secure heap, options, signals, libcryptsetup and libcurl, then the command. */
static int wipe_main(struct cli *c, int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	const struct command *cmd;
	int r;

	/* Secure memory first: jansson allocates from it, and the keystream key lives there. */
	r = secmem_init(WIPE_SECURE_HEAP);
	if (r < 0)
		return cli_error(c, EXIT_FAILED,
				 "cannot set up locked secure memory: %s (RLIMIT_MEMLOCK too low?)",
				 strerror(-r));
	c->opt.fields = json_object();
	r = parse_options(c, argc, argv);
	if (r == 0)
		r = pick_command(c, argc, argv, &cmd);
	if (r != 0)
		return r == OPTION_DONE ? EXIT_OK : EXIT_USAGE;
	c->opt.performed_by = performer_json(c->performer);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cryptsetup_setup();
	/* libcurl's global state, once, before any thread: wipe run asks keyd. */
	if (http_global_init() < 0)
		return cli_error(c, EXIT_FAILED, "cannot initialise libcurl");
	return cmd->run(c);
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
		.json = json_asked(argc, argv),
	};
	int r;

	log_setup("wipe", LOG_INFO);
	r = wipe_main(&c, argc, argv);
	/* --help prints text, not a JSON document (--version prints one with --json). */
	if (r == EXIT_OK && c.help)
		c.json = false;
	r = cli_finish(&c, r);
	if (c.opt.audit)
		audit_close(c.opt.audit);
	EVP_PKEY_free(c.opt.key);
	json_decref(c.opt.performed_by);
	json_decref(c.opt.fields);
	json_decref(c.out);
	return r;
}
