// SPDX-License-Identifier: GPL-2.0-or-later
/* keydctl: the operator's command line. The only file that parses argv: options and
 * subcommands each come from one table, and --help is printed from the same two tables. The
 * commands themselves live in cmd_device.c (on the device) and cmd_daemon.c (via the daemon). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "cryptsetup_util.h"
#include "ctl.h"
#include "ctl_client.h"
#include "http.h"
#include "log.h"
#include "secmem.h"
#include "util.h"

#define CTL_SECURE_HEAP (1024 * 1024)

struct command {
	const char *name;
	const char *usage;
	const char *summary;
	int min_args, max_args;
	int (*run)(struct ctl *c);
};

static int cmd_help(struct ctl *c);

static const struct command commands[] = {
	{"status", "status [--quiet]",
	 "show every volume and its state; exits 3 if a required volume is not open", 0, 0,
	 cmd_status},
	{"metrics", "metrics", "print keyd's metrics in the Prometheus text format", 0, 0,
	 cmd_metrics},
	{"unlock", "unlock VOLUME", "unlock a volume through its KMS now", 1, 1, cmd_unlock},
	{"lock", "lock VOLUME", "close a volume's mapping", 1, 1, cmd_lock},
	{"release", "release VOLUME",
	 "decommissioning: close the mapping (refused if in use), "
	 "drop keyring keys and buffers; keyd forgets the volume's keys",
	 1, 1, cmd_release},
	{"suspend", "suspend [--no-wait] VOLUME",
	 "freeze a volume's I/O and drop its key from the kernel "
	 "(as on_revoke=suspend)",
	 1, 1, cmd_suspend},
	{"resume", "resume [--no-wait] VOLUME",
	 "unwrap the key again and resume (or reopen) the volume", 1, 1, cmd_resume},
	{"enroll",
	 "enroll [DEVICE] --kms NAME --key-id ID [--name VOLUME] [--format] [--key-file F|-]",
	 "bind a LUKS2 device to a KMS key (--format: make a blank device LUKS2 first)", 0, 1,
	 cmd_enroll},
	{"rotate",
	 "rotate --rewrap|--rekey [--key-id ID]|--reencrypt [--kms NAME] [--key-file F] "
	 "VOLUME|DEVICE",
	 "rewrap the data key to the root key's newest version, replace it (re-key), or "
	 "re-encrypt the data with a new volume key (resumable)",
	 1, 1, cmd_rotate},
	{"audit", "audit verify [FILE]", "check the audit log's hash chain and signed checkpoints",
	 1, 2, cmd_audit},
	{"inspect", "inspect DEVICE",
	 "show the keyslots and tokens of a device, flagging keyslots "
	 "not bound to the KMS",
	 1, 1, cmd_inspect},
	{"check", "check [--strict]",
	 "validate the config, reach every KMS, say each volume's root key state, check "
	 "device-mapper and what of a volume's plaintext the host keeps (swap, freed pages, "
	 "hibernation, core dumps)",
	 0, 0, cmd_check},
	{"unbind", "unbind [--force] VOLUME|DEVICE",
	 "remove keyd's keyslot and token (refused if no other keyslot opens the volume)", 1, 1,
	 cmd_unbind},
	{"help", "help [COMMAND]", "this help, or a command's", 0, 1, cmd_help},
};

/* What an option does to struct ctl. */
enum option_action {
	OPT_STRING, /* sets the string field at @field to the argument */
	OPT_TRUE,   /* sets the bool field at @field */
	OPT_ROTATE, /* rotate's mode: @mode */
	OPT_VERSION,
};

struct ctl_option {
	const char *name;
	char short_name; /* 0: none */
	const char *arg; /* the argument's name in --help; NULL: takes none */
	enum option_action action;
	size_t field;
	const char *mode;
	const char *help;
	const char *commands; /* the commands it applies to, space-separated; NULL: every one */
};

static const struct ctl_option options[] = {
	{"config", 'c', "FILE", OPT_STRING, offsetof(struct ctl, config_path), NULL,
	 "configuration (default " CONFIG_PATH_DEFAULT ")", NULL},
	{"socket", 0, "PATH", OPT_STRING, offsetof(struct ctl, socket), NULL,
	 "control socket (default: the config's, or " CTL_SOCKET_DEFAULT ")", NULL},
	{"json", 0, NULL, OPT_TRUE, offsetof(struct ctl, json), NULL,
	 "one JSON document on standard output, also on error (docs/json.md)", NULL},
	{"quiet", 'q', NULL, OPT_TRUE, offsetof(struct ctl, quiet), NULL,
	 "print nothing, only the exit code", "status"},
	{"no-wait", 0, NULL, OPT_TRUE, offsetof(struct ctl, no_wait), NULL,
	 "return once keyd accepted the request, without waiting for its result", "suspend resume"},
	{"force", 0, NULL, OPT_TRUE, offsetof(struct ctl, force), NULL,
	 "even if no other keyslot opens the volume (its data is then lost)", "unbind"},
	{"strict", 0, NULL, OPT_TRUE, offsetof(struct ctl, strict), NULL,
	 "a host finding that is not ok fails check too", "check"},
	{"kms", 0, "NAME", OPT_STRING, offsetof(struct ctl, kms), NULL,
	 "the KMS (rotate: only that KMS's wrap of a volume of several)", "enroll rotate"},
	{"key-id", 0, "ID", OPT_STRING, offsetof(struct ctl, key_id), NULL,
	 "the root key (rotate: with --rekey only)", "enroll rotate"},
	{"name", 0, "VOLUME", OPT_STRING, offsetof(struct ctl, name), NULL,
	 "the volume name (default: the config's, or the device's basename)", "enroll"},
	{"format", 0, NULL, OPT_TRUE, offsetof(struct ctl, format), NULL,
	 "make a blank device LUKS2 first", "enroll"},
	{"key-file", 0, "FILE|-", OPT_STRING, offsetof(struct ctl, key_file), NULL,
	 "an existing passphrase (every byte counts, as with cryptsetup --key-file)",
	 "enroll rotate"},
	{"rewrap", 0, NULL, OPT_ROTATE, 0, "rewrap", "rewrap to the newest key version", "rotate"},
	{"rekey", 0, NULL, OPT_ROTATE, 0, "rekey", "a new data key and keyslot", "rotate"},
	{"reencrypt", 0, NULL, OPT_ROTATE, 0, "reencrypt",
	 "re-encrypt the data with a new volume key", "rotate"},
	{"help", 'h', NULL, OPT_TRUE, offsetof(struct ctl, help), NULL,
	 "this help (after a command: that command's)", NULL},
	{"version", 0, NULL, OPT_VERSION, 0, NULL, "keydctl's version", NULL},
};

/* Whether option @o is one of @cmd's (NULL: keydctl's own help lists them all). */
static bool option_for(const struct ctl_option *o, const struct command *cmd)
{
	const char *p;
	size_t n;

	if (!o->commands || !cmd)
		return true;
	n = strlen(cmd->name);
	for (p = o->commands; (p = strstr(p, cmd->name)); p += n)
		if ((p == o->commands || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
			return true;
	return false;
}

static void help_options(const struct command *cmd)
{
	printf("\nOptions:\n");
	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		const struct ctl_option *o = &options[i];
		char flag[48];

		if (!option_for(o, cmd))
			continue;
		snprintf(flag, sizeof(flag), "%c%c%c --%s%s%s", o->short_name ? '-' : ' ',
			 o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		if (!cmd && o->commands)
			printf("  %-24s %s: %s\n", flag, o->commands, o->help);
		else
			printf("  %-24s %s\n", flag, o->help);
	}
}

static void help_exit_codes(void)
{
	printf("\nExit status:\n");
	for (unsigned i = 0; i < ctl_exit_table_len; i++)
		printf("  %3d  %-16s %s\n", ctl_exit_table[i].code, ctl_exit_table[i].name,
		       ctl_exit_table[i].meaning);
}

static void help(const struct command *cmd)
{
	if (cmd) {
		printf("Usage: keydctl [OPTIONS] %s\n\n%s\n", cmd->usage, cmd->summary);
	} else {
		printf("Usage: keydctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
		for (size_t i = 0; i < ELEMENTSOF(commands); i++)
			printf("  %-10s %s\n             %s\n", commands[i].name,
			       commands[i].summary, commands[i].usage);
	}
	help_options(cmd);
	help_exit_codes();
}

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* The tables as JSON (keydctl --json help): what scripts and the documentation tests read. */
static void help_json(const struct command *only)
{
	json_auto_t *j = json_pack("{s:[], s:[], s:[]}", "commands", "options", "exit_codes");

	for (size_t i = 0; j && i < ELEMENTSOF(commands); i++) {
		const struct command *cmd = &commands[i];
		json_t *opts = json_array();

		if (only && cmd != only)
			continue;
		for (size_t k = 0; k < ELEMENTSOF(options); k++)
			if (options[k].commands && option_for(&options[k], cmd))
				json_array_append_new(opts, json_string(options[k].name));
		json_array_append_new(json_object_get(j, "commands"),
				      json_pack("{s:s, s:s, s:s, s:i, s:i, s:o}", "name", cmd->name,
						"usage", cmd->usage, "summary", cmd->summary,
						"min_args", cmd->min_args, "max_args",
						cmd->max_args, "options", opts));
	}
	for (size_t k = 0; j && k < ELEMENTSOF(options); k++) {
		const struct ctl_option *o = &options[k];
		char s[2] = {o->short_name, 0};

		json_array_append_new(json_object_get(j, "options"),
				      json_pack("{s:s, s:s?, s:s?, s:s, s:s?}", "name", o->name,
						"short", o->short_name ? s : NULL, "argument",
						o->arg, "help", o->help, "commands", o->commands));
	}
	for (unsigned k = 0; j && k < ctl_exit_table_len; k++)
		json_array_append_new(json_object_get(j, "exit_codes"),
				      json_pack("{s:i, s:s, s:s}", "exit", ctl_exit_table[k].code,
						"code", ctl_exit_table[k].name, "meaning",
						ctl_exit_table[k].meaning));
	ctl_print_json(j);
}

static int cmd_help(struct ctl *c)
{
	const struct command *cmd = NULL;

	if (c->n_args && !(cmd = command_find(c->args[0])))
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "help: unknown command '%s' (see keydctl --help)", c->args[0]);
	if (c->json)
		help_json(cmd);
	else
		help(cmd);
	return 0;
}

/* Applies option @o (with @arg) to @c; 1 when keydctl should stop with success (version). */
static int apply_option(const struct ctl_option *o, const char *arg, struct ctl *c)
{
	switch (o->action) {
	case OPT_STRING:
		*(const char **)((char *)c + o->field) = arg;
		return 0;
	case OPT_TRUE:
		*(bool *)((char *)c + o->field) = true;
		return 0;
	case OPT_ROTATE:
		c->rotate_mode = o->mode;
		return 0;
	case OPT_VERSION:
		if (c->json) {
			json_auto_t *j = json_pack("{s:s, s:s}", "program", "keydctl", "version",
						   KEYD_VERSION);

			ctl_print_json(j);
		} else {
			printf("keydctl %s\n", KEYD_VERSION);
		}
		return 1;
	}
	return -EINVAL;
}

/* The option getopt stopped at, as the user wrote it: a letter inside a group ("-xq") is not
 * the word before optind, and a long-only option's optopt is its value (256 + row). */
static const char *option_given(char **argv, int ind, char *buf, size_t size)
{
	if (optopt >= 256 && (size_t)(optopt - 256) < ELEMENTSOF(options))
		snprintf(buf, size, "--%s", options[optopt - 256].name);
	else if (optopt > 0 && optopt < 256)
		snprintf(buf, size, "-%c", optopt);
	else
		snprintf(buf, size, "%s", argv[ind - 1]);
	return buf;
}

/* argv into @c; the command in *ret. Returns 0 to run it, 1 to stop with success, -EINVAL for
 * a usage error (recorded with ctl_fail). Options may come before or after the command. */
static int parse_argv(int argc, char **argv, struct ctl *c, const struct command **ret)
{
	struct option opts[ELEMENTSOF(options) + 1] = {0};
	char shorts[2 * ELEMENTSOF(options) + 2] = ":";
	const struct command *cmd = NULL;
	char given[64];
	int o, r;

	/* The error document of a usage error is JSON too, wherever --json stands. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		opts[i] = (struct option){options[i].name,
					  options[i].arg ? required_argument : no_argument, NULL,
					  (int)(256 + i)};
		if (options[i].short_name)
			snprintf(shorts + strlen(shorts), sizeof(shorts) - strlen(shorts), "%c%s",
				 options[i].short_name, options[i].arg ? ":" : "");
	}
	opterr = 0;
	while ((o = getopt_long(argc, argv, shorts, opts, NULL)) >= 0) {
		size_t i;

		if (o == ':')
			return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
					     "option '%s' needs an argument (see keydctl --help)",
					     option_given(argv, optind, given, sizeof(given)));
		for (i = 0; i < ELEMENTSOF(options); i++)
			if (o == (int)(256 + i) ||
			    (options[i].short_name && o == options[i].short_name))
				break;
		if (i == ELEMENTSOF(options))
			return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
					     "unknown option '%s' (see keydctl --help)",
					     option_given(argv, optind, given, sizeof(given)));
		r = apply_option(&options[i], optarg, c);
		if (r != 0)
			return r;
	}
	if (optind >= argc) {
		/* With --json and no --help, stdout holds only the error document. */
		if (c->help || !c->json)
			help(NULL);
		if (c->help)
			return 1;
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL, "no command given");
	}
	cmd = command_find(argv[optind]);
	if (!cmd)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
				     "unknown command '%s' (see keydctl --help)", argv[optind]);
	if (c->help) {
		help(cmd);
		return 1;
	}
	c->args = argv + optind + 1;
	c->n_args = argc - optind - 1;
	if (c->n_args < cmd->min_args || c->n_args > cmd->max_args)
		return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL, "usage: keydctl %s", cmd->usage);
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		if (options[i].commands && !option_for(&options[i], cmd) &&
		    (options[i].action == OPT_ROTATE
			     ? c->rotate_mode && strcmp(c->rotate_mode, options[i].mode) == 0
		     : options[i].action == OPT_TRUE
			     ? *(bool *)((char *)c + options[i].field)
			     : *(const char **)((char *)c + options[i].field) != NULL))
			return ctl_fail_code(c, CTL_EXIT_USAGE, -EINVAL,
					     "%s: --%s is not an option of this command (see "
					     "keydctl help %s)",
					     cmd->name, options[i].name, cmd->name);
	*ret = cmd;
	return 0;
}

/* What keydctl exits with after @cmd returned @r: its own code (> 0), or the one of the
 * failure it reported. */
static enum ctl_exit exit_code(const struct ctl *c, int r)
{
	if (r >= 0)
		return (enum ctl_exit)r;
	return c->exit_code ? c->exit_code : ctl_exit_from_errno(r);
}

int main(int argc, char **argv)
{
	struct ctl c = {.config_path = CONFIG_PATH_DEFAULT};
	const struct command *cmd = NULL;
	enum ctl_exit code;
	int r;

	log_setup("keydctl", LOG_INFO);
	r = parse_argv(argc, argv, &c, &cmd);
	if (r > 0)
		return CTL_EXIT_OK;
	if (r < 0) {
		if (c.json)
			ctl_print_error(&c, CTL_EXIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	r = secmem_init(CTL_SECURE_HEAP);
	if (r < 0)
		r = ctl_fail(&c, r, "cannot set up locked secure memory: %m");
	else if (cryptsetup_setup(), http_global_init() < 0)
		r = ctl_fail(&c, -ENOMEM, "cannot initialise libcurl");
	else
		r = cmd->run(&c);
	code = exit_code(&c, r);
	if (r < 0 && c.json)
		ctl_print_error(&c, code);
	json_decref(c.error_detail);
	config_free(c.cfg);
	return code;
}
