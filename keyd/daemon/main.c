// SPDX-License-Identifier: GPL-2.0-or-later
/* keyd: the only place that parses keyd's argv. Sets up secure memory before anything can
 * hold a key, then hands over to the daemon core. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "luks.h"
#include "messages.h"
#include "secmem.h"

#define KEYD_SECURE_HEAP (8 * 1024 * 1024)

static void help(void)
{
	printf("Usage: keyd [--config FILE] [--debug]\n\n"
	       "Unlocks the LUKS2 volumes of FILE (default %s) with keys wrapped by a KMS, serves\n"
	       "the control API, and tells systemd when every required volume is open.\n\n"
	       "  -c, --config FILE  configuration file\n"
	       "  -d, --debug        debug logging (also KEYD_LOG_LEVEL=debug)\n"
	       "  -h, --help         this help\n"
	       "      --version      print the version\n",
	       CONFIG_PATH_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{},
	};
	const char *config_path = CONFIG_PATH_DEFAULT;
	struct keyd_config *cfg = NULL;
	struct keyd k = {0};
	struct error je;
	int c, r;

	log_setup("keyd", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:dh", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			log_set_max_level(LOG_DEBUG);
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("keyd %s\n", KEYD_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return 2;
	}

	/* A client that goes away mid-reply must cost a write error, not the daemon. */
	signal(SIGPIPE, SIG_IGN);
	r = secmem_init(KEYD_SECURE_HEAP);
	if (r < 0) {
		log_error_errno(r,
				"cannot set up locked secure memory: %m (RLIMIT_MEMLOCK too low?)");
		return 1;
	}
	cryptsetup_setup();
	r = http_global_init();
	if (r < 0) {
		log_error("cannot initialise libcurl");
		return 1;
	}
	r = config_load(config_path, &cfg, &je);
	if (r < 0) {
		log_error("%s: %s", config_path, je.msg);
		return 1;
	}
	r = keyd_setup(&k, cfg, &je);
	if (r < 0) {
		log_error("cannot start: %s", je.msg);
		goto out;
	}
	log_struct(LOG_INFO, 0, MESSAGE_KEYD_STARTED, NULL, "keyd %s started: %zu volume(s)",
		   KEYD_VERSION, k.reg.n);
	r = keyd_run(&k);
out:
	keyd_done(&k);
	config_free(cfg);
	return r < 0 ? 1 : 0;
}
