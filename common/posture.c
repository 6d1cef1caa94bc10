/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host's posture for memory beyond keyd's own: one probe per place a released volume's
 * plaintext can outlive the release, each reading what the kernel says and saying what to set.
 * Reads only; an absent file is a finding ("cannot tell"), never a failure. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "macro.h"
#include "posture.h"
#include "text.h"
#include "util.h"

const char *const posture_state_names[] = {
	[POSTURE_OK] = "ok",
	[POSTURE_WARN] = "warn",
	[POSTURE_UNKNOWN] = "unknown",
};

/* Block devices stacked deeper than this are not followed (cannot tell). */
#define POSTURE_STACK_MAX   8
#define POSTURE_DROPINS_MAX 64

#define SAY_PLAINTEXT                                                                              \
	"PostgreSQL's shared buffers and page cache among them, a released volume's plaintext"

static const char *at(const struct posture *p, const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", p->root, path);
	return buf;
}

static void posture_add(struct posture *p, const char *id, enum posture_state state,
			const char *path, const char *fmt, ...) _printf_(5, 6);
static void posture_add(struct posture *p, const char *id, enum posture_state state,
			const char *path, const char *fmt, ...)
{
	struct posture_finding *f;
	va_list ap;

	if (p->n >= ELEMENTSOF(p->findings))
		return;
	f = &p->findings[p->n++];
	*f = (struct posture_finding){.id = id, .state = state};
	snprintf(f->path, sizeof(f->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

/* Reads @path (of the host) under the root; "@path: reason" in @why on failure. */
static int read_at(const struct posture *p, const char *path, char *buf, size_t size, char *why,
		   size_t why_size)
{
	char full[PATH_MAX];
	int r = read_line_file(at(p, path, full, sizeof(full)), buf, size);

	if (r < 0)
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
	return r;
}

/* --- The kernel command line and build configuration. --- */

/* The last value of parameter @key on the kernel's own part of @cmdline (before "--"): 1 with
 * the value in @val ("" for a bare flag), 0 if absent. */
static int cmdline_get(const char *cmdline, const char *key, char *val, size_t size)
{
	size_t k = strlen(key);
	int found = 0;

	for (const char *s = cmdline; *s;) {
		size_t n;

		s += strspn(s, " \t\n");
		n = strcspn(s, " \t\n");
		if (n == 2 && strncmp(s, "--", 2) == 0)
			break;
		if (n >= k && strncmp(s, key, k) == 0 && (n == k || s[k] == '=')) {
			size_t v = n > k ? n - k - 1 : 0;

			snprintf(val, size, "%.*s", (int)v, s + k + (n > k));
			found = 1;
		}
		s += n;
	}
	return found;
}

/* As the kernel's kstrtobool: 1, 0, or -1 when @v is neither. */
static int word_bool(const char *v)
{
	if (strchr("yY1", v[0]) || strcasecmp(v, "on") == 0)
		return v[0] ? 1 : -1;
	if (strchr("nN0", v[0]) || strcasecmp(v, "off") == 0)
		return v[0] ? 0 : -1;
	return -1;
}

/* Boolean parameter @key: 1, 0, or -1 when absent or not a boolean. */
static int cmdline_bool(const char *cmdline, const char *key)
{
	char v[32];

	return cmdline_get(cmdline, key, v, sizeof(v)) ? word_bool(v) : -1;
}

/* Whether the running kernel's /boot/config-RELEASE sets @key=y: 1, 0, or -errno when there is
 * none (its path in @path either way). */
static int kernel_config_y(const struct posture *p, const char *key, char *path, size_t size)
{
	char rel[PATH_MAX], full[PATH_MAX], line[512];
	struct utsname u;
	size_t k = strlen(key);
	int r = 0;
	FILE *f;

	if (uname(&u) < 0)
		return negative_errno();
	snprintf(rel, sizeof(rel), "/boot/config-%s", u.release);
	snprintf(path, size, "%s", rel);
	f = fopen(at(p, rel, full, sizeof(full)), "re");
	if (!f)
		return negative_errno();
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, k) == 0 && strcmp(line + k, "=y\n") == 0)
			r = 1;
	fclose(f);
	return r;
}

/* --- Swap. --- */

/* The kernel name ("dm-1", "sda2") of block device @dev, from /sys/dev/block. */
static int block_name(const struct posture *p, dev_t dev, char *name, size_t size)
{
	char rel[64], link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(rel, sizeof(rel), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	n = readlink(at(p, rel, link, sizeof(link)), target, sizeof(target) - 1);
	if (n < 0)
		return negative_errno();
	target[n] = 0;
	if (snprintf(name, size, "%s", strrchr(target, '/') ? strrchr(target, '/') + 1 : target) >=
	    (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* Whether every path from block device @name down to the disks passes through a dm-crypt
 * mapping (DM UUID "CRYPT-…", as libcryptsetup and systemd-cryptsetup name theirs, plain and
 * LUKS alike): 1 with that mapping in @crypt, 0 if one does not, -errno when sysfs cannot
 * say. A partition is judged by its disk, a stacked device (LVM, md) by all its slaves. */
static int on_dm_crypt(const struct posture *p, const char *name, char *crypt, size_t size,
		       int depth)
{
	char rel[128], dir[PATH_MAX], path[PATH_MAX + 32], uuid[160], real[PATH_MAX];
	_cleanup_free_ char *parent = NULL;
	int r, worst = 1, n = 0;
	struct dirent *e;
	DIR *d;

	if (depth > POSTURE_STACK_MAX)
		return -ELOOP;
	snprintf(rel, sizeof(rel), "/sys/class/block/%.64s", name);
	at(p, rel, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return negative_errno();
	snprintf(path, sizeof(path), "%s/dm/uuid", dir);
	if (read_line_file(path, uuid, sizeof(uuid)) == 0 && strncmp(uuid, "CRYPT-", 6) == 0) {
		snprintf(crypt, size, "%s", name);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/partition", dir);
	if (access(path, F_OK) == 0) {
		char *slash;

		if (!realpath(dir, real) || !(slash = strrchr(real, '/')))
			return negative_errno();
		*slash = 0;
		slash = strrchr(real, '/');
		parent = strdup(slash ? slash + 1 : real);
		return parent ? on_dm_crypt(p, parent, crypt, size, depth + 1) : -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/slaves", dir);
	d = opendir(path);
	if (!d)
		return 0; /* a disk */
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		r = on_dm_crypt(p, e->d_name, crypt, size, depth + 1);
		if (r == 0 || (r < 0 && worst > 0))
			worst = r;
	}
	closedir(d);
	return n ? worst : 0;
}

/* One active swap area: its own finding. */
static void swap_area(struct posture *p, const char *id, const char *name, const char *type)
{
	char full[PATH_MAX], kname[80], crypt[80] = "", what[80], backing[64], why[PATH_MAX + 64];
	bool file;
	struct stat st;
	int r;

	if (stat(at(p, name, full, sizeof(full)), &st) < 0) {
		posture_add(p, id, POSTURE_UNKNOWN, name,
			    "swap %s (%s): cannot tell whether it is encrypted: %s", name, type,
			    strerror(errno));
		return;
	}
	file = !S_ISBLK(st.st_mode);
	snprintf(what, sizeof(what), "%s", file ? "the file system it is on" : "it");
	if ((r = block_name(p, file ? st.st_dev : st.st_rdev, kname, sizeof(kname))) < 0) {
		posture_add(p, id, POSTURE_UNKNOWN, name,
			    "swap %s (%s): cannot tell whether it is encrypted: %s has no block "
			    "device in /sys/dev/block (a file system on several devices?)",
			    name, type, what);
		return;
	}
	snprintf(full, sizeof(full), "/sys/class/block/%.64s/backing_dev", kname);
	if (!file && strncmp(kname, "zram", 4) == 0 &&
	    read_at(p, full, backing, sizeof(backing), why, sizeof(why)) == 0 &&
	    strcmp(backing, "none") == 0) {
		posture_add(p, id, POSTURE_OK, name,
			    "swap %s is compressed RAM (zram) with no backing device: nothing "
			    "swapped out reaches a disk",
			    name);
		return;
	}
	r = on_dm_crypt(p, kname, crypt, sizeof(crypt), 0);
	if (r > 0)
		posture_add(p, id, POSTURE_OK, name,
			    "swap %s (%s): %s is on dm-crypt (%s): what is swapped out stays "
			    "encrypted",
			    name, type, what, crypt);
	else if (r == 0)
		posture_add(
			p, id, POSTURE_WARN, name,
			"swap %s (%s) is not encrypted: %s (%s) is not on dm-crypt, so what is "
			"swapped out there, PostgreSQL's shared buffers with a released volume's "
			"plaintext among it, stays on that disk; encrypt swap "
			"(/etc/crypttab: a plain mapping keyed from /dev/urandom at each boot) "
			"or turn it off (swapoff, and out of /etc/fstab)",
			name, type, what, kname);
	else
		posture_add(p, id, POSTURE_UNKNOWN, name,
			    "swap %s (%s): cannot tell whether %s (%s) is on dm-crypt: %s", name,
			    type, what, kname, strerror(-r));
}

static void probe_swap(struct posture *p, const char *id)
{
	char path[PATH_MAX], line[PATH_MAX + 128];
	size_t n = 0;
	FILE *f;

	f = fopen(at(p, "/proc/swaps", path, sizeof(path)), "re");
	if (!f) {
		posture_add(p, id, POSTURE_UNKNOWN, NULL,
			    "cannot tell whether swap is active: /proc/swaps: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[PATH_MAX], type[32];

		if (sscanf(line, "%4095s %31s", name, type) != 2 || strcmp(name, "Filename") == 0)
			continue;
		proc_unescape(name);
		swap_area(p, id, name, type);
		n++;
	}
	fclose(f);
	if (!n)
		posture_add(p, id, POSTURE_OK, NULL, "no swap is active (/proc/swaps lists none)");
}

/* --- Freed pages. --- */

static void probe_init_on_free(struct posture *p, const char *id)
{
	const char *cmdline = p->cmdline;
	char config[PATH_MAX];
	int iof, r;

	if (!p->cmdline_read) {
		posture_add(p, id, POSTURE_UNKNOWN, NULL,
			    "cannot tell whether freed pages are zeroed: %s", p->cmdline_why);
		return;
	}
	iof = cmdline_bool(cmdline, "init_on_free");
	if (iof == 1) {
		posture_add(p, id, POSTURE_OK, NULL,
			    "init_on_free=1 is on the kernel command line: freed pages, page cache "
			    "included, are zeroed");
		return;
	}
	if (iof != 0 && cmdline_bool(cmdline, "page_poison") == 1) {
		posture_add(
			p, id, POSTURE_OK, NULL,
			"page_poison=1 is on the kernel command line: freed pages are filled "
			"with a pattern (if the kernel has CONFIG_PAGE_POISONING; init_on_free=1 "
			"needs nothing more)");
		return;
	}
	r = iof == 0 ? 0
		     : kernel_config_y(p, "CONFIG_INIT_ON_FREE_DEFAULT_ON", config, sizeof(config));
	if (r > 0)
		posture_add(p, id, POSTURE_OK, NULL,
			    "%s has CONFIG_INIT_ON_FREE_DEFAULT_ON=y and the kernel command line "
			    "does not turn it off: freed pages are zeroed",
			    config);
	else if (iof == 0)
		posture_add(p, id, POSTURE_WARN, NULL,
			    "init_on_free=0 is on the kernel command line: freed page-cache pages "
			    "keep a released volume's plaintext until reused; set init_on_free=1");
	else if (r == 0)
		posture_add(
			p, id, POSTURE_WARN, NULL,
			"neither init_on_free=1 nor page_poison=1 is on the kernel command line "
			"and %s lacks CONFIG_INIT_ON_FREE_DEFAULT_ON=y: freed page-cache pages "
			"keep a released volume's plaintext until reused; add init_on_free=1 to "
			"the kernel command line",
			config);
	else
		posture_add(p, id, POSTURE_UNKNOWN, NULL,
			    "init_on_free is not on the kernel command line and %s is absent, so "
			    "whether CONFIG_INIT_ON_FREE_DEFAULT_ON=y zeroes freed pages cannot be "
			    "told; if not, freed page-cache pages keep a released volume's "
			    "plaintext until reused; add init_on_free=1 to the kernel command line",
			    config);
}

/* --- Hibernation. --- */

/* Whether @word is one of the blank-separated words of @s. */
static bool has_word(const char *s, const char *word)
{
	size_t k = strlen(word);

	for (const char *w = s; (w = strstr(w, word)); w += k)
		if ((w == s || w[-1] == ' ') && (w[k] == ' ' || w[k] == 0 || w[k] == '\n'))
			return true;
	return false;
}

static void probe_hibernation(struct posture *p, const char *id)
{
	char state[256], disk[256], lock[128], v[8];
	char why[PATH_MAX + 64], note[200] = "";

	if (read_at(p, "/sys/power/state", state, sizeof(state), why, sizeof(why)) < 0) {
		posture_add(p, id, POSTURE_UNKNOWN, NULL,
			    "cannot tell whether this kernel can hibernate: %s", why);
		return;
	}
	if (p->cmdline_read &&
	    (cmdline_get(p->cmdline, "nohibernate", v, sizeof(v)) ||
	     (cmdline_get(p->cmdline, "hibernate", v, sizeof(v)) && strcmp(v, "no") == 0)))
		snprintf(note, sizeof(note), " (nohibernate is on the kernel command line)");
	else if (read_at(p, "/sys/kernel/security/lockdown", lock, sizeof(lock), why,
			 sizeof(why)) == 0 &&
		 !strstr(lock, "[none]"))
		snprintf(note, sizeof(note), " (the kernel is locked down: %s)", lock);
	if (!has_word(state, "disk")) {
		posture_add(p, id, POSTURE_OK, NULL,
			    "hibernation is not offered (/sys/power/state: \"%s\")%s", state, note);
		return;
	}
	if (read_at(p, "/sys/power/disk", disk, sizeof(disk), why, sizeof(why)) < 0)
		snprintf(disk, sizeof(disk), "unreadable");
	posture_add(p, id, POSTURE_WARN, NULL,
		    "/sys/power/state offers \"disk\" (/sys/power/disk: %s): a hibernation writes "
		    "all of RAM to swap, data keys and PostgreSQL's shared buffers with a released "
		    "volume's plaintext included; add nohibernate to the kernel command line",
		    disk);
}

/* --- Core dumps. --- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Storage= of [Coredump] in @path into @val, if the file sets it. */
static void coredump_conf_read(const char *path, char *val, size_t size)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t");

		if (strncmp(s, "Storage=", 8) == 0) {
			s += 8;
			s[strcspn(s, " \t\r\n")] = 0;
			snprintf(val, size, "%s", s);
		}
	}
	fclose(f);
}

/* systemd-coredump's Storage= (default "external"): coredump.conf, then its drop-ins in name
 * order, a name in /etc hiding the same name in /run and /usr/lib, as systemd reads them. */
static void coredump_storage(const struct posture *p, char *val, size_t size)
{
	static const char *const dirs[] = {"/etc/systemd/coredump.conf.d",
					   "/run/systemd/coredump.conf.d",
					   "/usr/lib/systemd/coredump.conf.d"};
	char *names[POSTURE_DROPINS_MAX], path[PATH_MAX], file[PATH_MAX + NAME_MAX + 2];
	size_t n = 0;

	snprintf(val, size, "external");
	coredump_conf_read(at(p, "/etc/systemd/coredump.conf", path, sizeof(path)), val, size);
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		DIR *d = opendir(at(p, dirs[i], path, sizeof(path)));
		struct dirent *e;

		while (d && (e = readdir(d)) && n < ELEMENTSOF(names)) {
			size_t len = strlen(e->d_name);
			bool seen = false;

			if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
				continue;
			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(names[j], e->d_name) == 0;
			if (!seen && (names[n] = strdup(e->d_name)))
				n++;
		}
		if (d)
			closedir(d);
	}
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
			snprintf(file, sizeof(file), "%s/%s", at(p, dirs[i], path, sizeof(path)),
				 names[j]);
			if (access(file, F_OK) == 0) {
				coredump_conf_read(file, val, size);
				break;
			}
		}
		free(names[j]);
	}
}

#define SAY_CORE_SET                                                                               \
	"a PostgreSQL process's dump carries its shared buffers, a released volume's plaintext "   \
	"among them; set kernel.core_pattern=|/bin/false (sysctl.d), or Storage=none for "         \
	"systemd-coredump"

static void probe_core_dumps(struct posture *p, const char *id)
{
	char pattern[256], shown[1100], suid[16], why[PATH_MAX + 64], storage[64], tail[96];
	char helper[256];
	enum posture_state state = POSTURE_WARN;
	const char *base;

	if (read_at(p, "/proc/sys/kernel/core_pattern", pattern, sizeof(pattern), why,
		    sizeof(why)) < 0) {
		posture_add(p, id, POSTURE_UNKNOWN, NULL,
			    "cannot tell whether core dumps are written: %s", why);
		return;
	}
	if (read_at(p, "/proc/sys/fs/suid_dumpable", suid, sizeof(suid), why, sizeof(why)) < 0)
		snprintf(suid, sizeof(suid), "unreadable");
	snprintf(tail, sizeof(tail), "; fs.suid_dumpable=%s%s", suid,
		 strcmp(suid, "1") == 0 ? " (processes that changed credentials dump too)" : "");
	text_escape(pattern, shown, sizeof(shown));
	/* A pipe's helper program: "|/usr/lib/systemd/systemd-coredump %P %u ..." */
	snprintf(helper, sizeof(helper), "%s", pattern + (pattern[0] == '|'));
	helper[strcspn(helper, " ")] = 0;
	base = strrchr(helper, '/') ? strrchr(helper, '/') + 1 : helper;
	if (!pattern[0]) {
		posture_add(p, id, POSTURE_OK, NULL,
			    "kernel.core_pattern is empty: no core dump is written%s", tail);
	} else if (pattern[0] == '|' && (strcmp(base, "false") == 0 || strcmp(base, "true") == 0)) {
		text_escape(helper, shown, sizeof(shown));
		posture_add(p, id, POSTURE_OK, NULL,
			    "kernel.core_pattern pipes core dumps to %s, which keeps nothing%s",
			    shown, tail);
	} else if (pattern[0] == '|' && strcmp(base, "systemd-coredump") == 0) {
		coredump_storage(p, storage, sizeof(storage));
		if (strcmp(storage, "none") == 0)
			state = POSTURE_OK;
		posture_add(p, id, state, NULL,
			    "kernel.core_pattern pipes core dumps to systemd-coredump, %s "
			    "(Storage=%s)%s%s",
			    state == POSTURE_OK ? "which keeps none" : "which keeps them", storage,
			    state == POSTURE_OK ? "" : ": " SAY_CORE_SET, tail);
	} else if (pattern[0] == '|' || pattern[0] == '@') {
		posture_add(
			p, id, POSTURE_WARN, NULL,
			"kernel.core_pattern hands core dumps to \"%s\", which may keep them: " SAY_CORE_SET
			"%s",
			shown, tail);
	} else {
		posture_add(p, id, POSTURE_WARN, NULL,
			    "kernel.core_pattern is \"%s\": a crashing process whose core limit "
			    "allows writes its dump there%s; " SAY_CORE_SET "%s",
			    shown,
			    pattern[0] == '/' ? ""
					      : " (in its working directory: PostgreSQL's, its "
						"data directory)",
			    tail);
	}
}

static const struct {
	const char *id;
	void (*probe)(struct posture *p, const char *id);
} posture_probes[] = {
	{"swap", probe_swap},
	{"init_on_free", probe_init_on_free},
	{"hibernation", probe_hibernation},
	{"core_dumps", probe_core_dumps},
};

void posture_probe(struct posture *p, const char *root)
{
	p->root = root;
	p->n = 0;
	p->cmdline_read = read_at(p, "/proc/cmdline", p->cmdline, sizeof(p->cmdline),
				  p->cmdline_why, sizeof(p->cmdline_why)) == 0;
	if (!p->cmdline_read)
		p->cmdline[0] = 0;
	for (size_t i = 0; i < ELEMENTSOF(posture_probes); i++)
		posture_probes[i].probe(p, posture_probes[i].id);
}

bool posture_ok(const struct posture *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->findings[i].state != POSTURE_OK)
			return false;
	return true;
}
