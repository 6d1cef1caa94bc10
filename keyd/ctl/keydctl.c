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

static const struct command commands[] = {
	{"status", "status", "show every volume and its state", 0, 0, cmd_status},
	{"metrics", "metrics",
	 "print keyd's metrics in the Prometheus text format (docs/metrics.md)", 0, 0, cmd_metrics},
	{"unlock", "unlock VOLUME", "unlock a volume through its KMS now", 1, 1, cmd_unlock},
	{"lock", "lock VOLUME", "close a volume's mapping", 1, 1, cmd_lock},
	{"release", "release VOLUME",
	 "decommissioning: close the mapping (refused if in use), "
	 "drop keyring keys and buffers; keyd forgets the volume's keys",
	 1, 1, cmd_release},
	{"suspend", "suspend VOLUME",
	 "freeze a volume's I/O and drop its key from the kernel "
	 "(as on_revoke=suspend)",
	 1, 1, cmd_suspend},
	{"resume", "resume VOLUME", "unwrap the key again and resume (or reopen) the volume", 1, 1,
	 cmd_resume},
	{"enroll",
	 "enroll [DEVICE] --kms NAME --key-id ID [--name VOLUME] [--format] [--key-file F|-]",
	 "bind a LUKS2 device to a KMS key (--format: make a blank device LUKS2 first)", 0, 1,
	 cmd_enroll},
	{"rotate", "rotate --rewrap|--rekey [--key-id ID]|--reencrypt [--key-file F] VOLUME|DEVICE",
	 "rewrap the data key to the root key's newest version, replace it (re-key), or "
	 "re-encrypt the data with a new volume key (resumable)",
	 1, 1, cmd_rotate},
	{"audit", "audit verify [FILE]", "check the audit log's hash chain and signed checkpoints",
	 1, 2, cmd_audit},
	{"inspect", "inspect DEVICE",
	 "show the keyslots and tokens of a device, flagging keyslots "
	 "not bound to the KMS",
	 1, 1, cmd_inspect},
	{"check", "check", "validate the config, reach every KMS, check device-mapper", 0, 0,
	 cmd_check},
};

/* What an option does to struct ctl. */
enum option_action {
	OPT_STRING, /* sets the string field at @field to the argument */
	OPT_TRUE,   /* sets the bool field at @field */
	OPT_ROTATE, /* rotate's mode: @mode */
	OPT_HELP,
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
};

static const struct ctl_option options[] = {
	{"config", 'c', "FILE", OPT_STRING, offsetof(struct ctl, config_path), NULL,
	 "configuration (default " CONFIG_PATH_DEFAULT ")"},
	{"socket", 0, "PATH", OPT_STRING, offsetof(struct ctl, socket), NULL,
	 "control socket (default: the config's, or " CTL_SOCKET_DEFAULT ")"},
	{"json", 0, NULL, OPT_TRUE, offsetof(struct ctl, json), NULL, "machine-readable output"},
	{"kms", 0, "NAME", OPT_STRING, offsetof(struct ctl, kms), NULL, "enroll: the KMS"},
	{"key-id", 0, "ID", OPT_STRING, offsetof(struct ctl, key_id), NULL,
	 "enroll, rotate --rekey: the root key"},
	{"name", 0, "VOLUME", OPT_STRING, offsetof(struct ctl, name), NULL,
	 "enroll: the volume name (default: the config's, or the device's basename)"},
	{"format", 0, NULL, OPT_TRUE, offsetof(struct ctl, format), NULL,
	 "enroll: make a blank device LUKS2 first"},
	{"key-file", 0, "FILE|-", OPT_STRING, offsetof(struct ctl, key_file), NULL,
	 "an existing passphrase (every byte counts, as with cryptsetup --key-file)"},
	{"rewrap", 0, NULL, OPT_ROTATE, 0, "rewrap", "rotate: rewrap to the newest key version"},
	{"rekey", 0, NULL, OPT_ROTATE, 0, "rekey", "rotate: a new data key and keyslot"},
	{"reencrypt", 0, NULL, OPT_ROTATE, 0, "reencrypt",
	 "rotate: re-encrypt the data with a new volume key"},
	{"help", 'h', NULL, OPT_HELP, 0, NULL, "this help"},
	{"version", 0, NULL, OPT_VERSION, 0, NULL, "keydctl's version"},
};

static void help(void)
{
	printf("Usage: keydctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		printf("  %-10s %s\n             %s\n", commands[i].name, commands[i].summary,
		       commands[i].usage);
	printf("\nOptions:\n");
	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		const struct ctl_option *o = &options[i];
		char flag[48];

		snprintf(flag, sizeof(flag), "%c%c%c --%s%s%s", o->short_name ? '-' : ' ',
			 o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		printf("  %-24s %s\n", flag, o->help);
	}
}

/* Applies option @o (with @arg) to @c; 1 when keydctl should stop with success (help,
 * version). */
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
	case OPT_HELP:
		help();
		return 1;
	case OPT_VERSION:
		printf("keydctl %s\n", KEYD_VERSION);
		return 1;
	}
	return -EINVAL;
}

/* argv into @c; the command in *ret. Returns 0 to run it, 1 to stop with success, -EINVAL for
 * a usage error (already said). */
static int parse_argv(int argc, char **argv, struct ctl *c, const struct command **ret)
{
	struct option opts[ELEMENTSOF(options) + 1] = {0};
	char shorts[2 * ELEMENTSOF(options) + 1] = "";
	const struct command *cmd = NULL;
	int o, r;

	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		opts[i] = (struct option){options[i].name,
					  options[i].arg ? required_argument : no_argument, NULL,
					  (int)(256 + i)};
		if (options[i].short_name)
			snprintf(shorts + strlen(shorts), sizeof(shorts) - strlen(shorts), "%c%s",
				 options[i].short_name, options[i].arg ? ":" : "");
	}
	while ((o = getopt_long(argc, argv, shorts, opts, NULL)) >= 0) {
		size_t i;

		for (i = 0; i < ELEMENTSOF(options); i++)
			if (o == (int)(256 + i) ||
			    (options[i].short_name && o == options[i].short_name))
				break;
		if (i == ELEMENTSOF(options))
			return -EINVAL; /* getopt said what was wrong */
		r = apply_option(&options[i], optarg, c);
		if (r != 0)
			return r;
	}
	if (optind >= argc) {
		help();
		return -EINVAL;
	}
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, argv[optind]) == 0)
			cmd = &commands[i];
	if (!cmd)
		return log_error("unknown command '%s' (see keydctl --help)", argv[optind]),
		       -EINVAL;
	c->args = argv + optind + 1;
	c->n_args = argc - optind - 1;
	if (c->n_args < cmd->min_args || c->n_args > cmd->max_args)
		return log_error("usage: keydctl %s", cmd->usage), -EINVAL;
	*ret = cmd;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = {.config_path = CONFIG_PATH_DEFAULT};
	const struct command *cmd = NULL;
	int r;

	log_setup("keydctl", LOG_INFO);
	r = parse_argv(argc, argv, &c, &cmd);
	if (r != 0)
		return r > 0 ? 0 : 2;
	r = secmem_init(CTL_SECURE_HEAP);
	if (r < 0) {
		log_error_errno(r, "cannot set up locked secure memory: %m");
		return 1;
	}
	cryptsetup_setup();
	if (http_global_init() < 0) {
		log_error("cannot initialise libcurl");
		return 1;
	}
	r = cmd->run(&c);
	config_free(c.cfg);
	return r < 0 ? 1 : 0;
}
