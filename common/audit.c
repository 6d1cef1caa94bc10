// SPDX-License-Identifier: GPL-2.0-or-later
/* The audit log's writer: hash-chained lines (their form from audit_record.c) appended under a
 * flock by every process (keyd, wipe), signed checkpoints, a copy to syslog, rotation keeping
 * the chain. Takes names, ids and results only; never a field meant for key material. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>

#include "audit.h"
#include "audit_anchor.h"
#include "audit_record.h"
#include "sign.h"
#include "util.h"

/* A signed checkpoint follows every record whose seq is a multiple of this. */
#define AUDIT_CHECKPOINT_EVERY 64
#define AUDIT_TYPE_MAX	       64
#define AUDIT_ERROR_MAX	       1024
/* Rotations raced in a row before a writer gives up (-EAGAIN). */
#define AUDIT_REOPEN_MAX 8
#define AUDIT_SYSLOG_TAG "keyd-audit: "

static const char *const audit_results[] = {"success", "failure", "refused"};

struct audit {
	pthread_mutex_t lock; /* threads share the fd, and with it the flock */
	int fd;
	pid_t pid; /* after fork() the inherited fd shares its flock with the parent */
	char *path;
	EVP_PKEY *key;
	char *anchor; /* where each checkpoint's position is sealed (NULL: nowhere) */
	uid_t uid;
	char user[LOGIN_NAME_MAX + 1];
	char host[HOST_NAME_MAX + 1];
	uint64_t checkpoint_us; /* wall clock of the newest checkpoint seen; 0: none yet */
	/* The last record read back, then the lines of one append (a record and its checkpoint). */
	char buf[2 * AUDIT_LINE_MAX];
};

/* What a new record chains to: the file's last record. */
struct audit_tail {
	off_t size;
	uint64_t seq; /* 0: empty file */
	char hash[AUDIT_HASH_LEN + 1];
	bool checkpoint;
};

struct audit_entry {
	const char *type, *result, *error;
	json_t *subject, *object;
};

/* jansson's one error mapping: pack fails on memory or on invalid UTF-8 in the caller's input. */
static int json_error_to_errno(const json_error_t *e)
{
	return json_error_code(e) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
}

/* Opens @path's directory, creating it with @mode if missing (its parent must exist). */
static int audit_open_dir(const char *path, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	char dir[PATH_MAX] = ".";
	int fd;

	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (n) {
		memcpy(dir, path, n);
		dir[n] = 0;
	}
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return negative_errno();
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? negative_errno() : fd;
}

/* Opens the log for appending, creating it 0640 (and its directory 0750) durably. */
static int audit_open_file(const char *path)
{
	const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
	_cleanup_close_ int dfd = -1, fd = -1;

	fd = open(path, flags);
	if (fd >= 0)
		return TAKE_FD(fd);
	if (errno != ENOENT)
		return negative_errno();
	dfd = audit_open_dir(path, 0750);
	if (dfd < 0)
		return dfd;
	fd = open(path, flags | O_CREAT | O_EXCL, 0640);
	if (fd < 0 && errno == EEXIST) /* another writer created it meanwhile */
		fd = open(path, flags);
	else if (fd >= 0 && (fchmod(fd, 0640) < 0 || fsync(dfd) < 0)) /* past the umask; durable */
		return negative_errno();
	if (fd < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

/* Takes the file lock on the file now at a->path: a writer that waited while the log was
 * rotated follows the path to the new file rather than append to the archive. */
static int audit_lock(struct audit *a)
{
	for (unsigned i = 0; i < AUDIT_REOPEN_MAX; i++) {
		struct stat held, named;

		if (a->pid != getpid()) {
			/* Closing our copy leaves the parent's lock alone; LOCK_UN would not. */
			closep(&a->fd);
			a->fd = -1;
			a->pid = getpid();
		}
		if (a->fd < 0) {
			a->fd = audit_open_file(a->path);
			if (a->fd < 0)
				return a->fd;
		}
		while (flock(a->fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return negative_errno();
		if (fstat(a->fd, &held) < 0) {
			int r = negative_errno();

			flock(a->fd, LOCK_UN);
			return r;
		}
		if (stat(a->path, &named) == 0 && named.st_dev == held.st_dev &&
		    named.st_ino == held.st_ino)
			return 0;
		flock(a->fd, LOCK_UN);
		closep(&a->fd);
		a->fd = -1;
	}
	return -EAGAIN;
}

static void audit_unlock(struct audit *a)
{
	flock(a->fd, LOCK_UN);
}

/* Reads the file's last record. -EBADMSG when the file does not end in a whole record (a torn
 * write or tampering): appending to it would bury the damage under a valid-looking chain. */
static int audit_read_tail(struct audit *a, struct audit_tail *t)
{
	json_auto_t *rec = NULL;
	const char *line, *type;
	json_int_t seq;
	struct stat st;
	size_t n;

	*t = (struct audit_tail){.hash = AUDIT_HASH_ZERO};
	if (fstat(a->fd, &st) < 0)
		return negative_errno();
	t->size = st.st_size;
	if (st.st_size == 0)
		return 0;
	n = st.st_size < AUDIT_LINE_MAX ? (size_t)st.st_size : AUDIT_LINE_MAX;
	if (pread(a->fd, a->buf, n, st.st_size - (off_t)n) != (ssize_t)n)
		return -EIO;
	if (a->buf[n - 1] != '\n')
		return -EBADMSG;
	line = memrchr(a->buf, '\n', n - 1);
	if (line)
		line++;
	else if (n == (size_t)st.st_size)
		line = a->buf;
	else
		return -EBADMSG; /* longer than AUDIT_LINE_MAX */
	n -= (size_t)(line - a->buf);
	rec = json_loadb(line, n, 0, NULL);
	if (json_unpack(rec, "{s:I, s:s}", "seq", &seq, "type", &type) < 0 || seq < 1)
		return -EBADMSG;
	t->seq = (uint64_t)seq;
	t->checkpoint = strcmp(type, AUDIT_TYPE_CHECKPOINT) == 0;
	/* Another writer (or our last run) may have closed the log with a checkpoint. */
	if (t->checkpoint) {
		const char *time = json_string_value(json_object_get(rec, "time"));
		uint64_t us;

		if (time && parse_rfc3339_us(time, &us) == 0 && us > a->checkpoint_us)
			a->checkpoint_us = us;
	}
	return audit_line_hash(line, n, t->hash);
}

/* The default subject: this process. */
static json_t *audit_self(const struct audit *a)
{
	return json_pack("{s:I, s:s*, s:I, s:s}", "uid", (json_int_t)a->uid, "user",
			 a->user[0] ? a->user : NULL, "pid", (json_int_t)getpid(), "comm",
			 program_invocation_short_name);
}

/* Appends the record after @t to a->buf at *used, and moves @t on to it. */
static int audit_format(struct audit *a, struct audit_tail *t, const struct audit_entry *e,
			size_t *used)
{
	json_auto_t *rec = NULL, *self = NULL, *none = NULL;
	bool checkpoint = strcmp(e->type, AUDIT_TYPE_CHECKPOINT) == 0;
	char *line = a->buf + *used;
	char now[32];
	json_error_t je;
	size_t n;
	int r;

	if ((!e->subject && !(self = audit_self(a))) || (!e->object && !(none = json_object())))
		return -ENOMEM;
	format_rfc3339_us(now_real_us(), now, sizeof(now));
	rec = audit_record_pack(&(struct audit_record){.seq = t->seq + 1,
						       .time = now,
						       .type = e->type,
						       .result = e->result,
						       .subject = e->subject ? e->subject : self,
						       .object = e->object ? e->object : none,
						       .error = e->error,
						       .host = a->host,
						       .prev = t->hash},
				&je);
	if (!rec)
		return json_error_to_errno(&je);
	if (checkpoint && (r = sign_json(a->key, rec)) < 0)
		return r;
	n = json_dumpb(rec, line, AUDIT_LINE_MAX - 1, JSON_COMPACT);
	if (n == 0)
		return -ENOMEM;
	if (n > AUDIT_LINE_MAX - 1)
		return -E2BIG;
	line[n++] = '\n';
	r = audit_line_hash(line, n, t->hash);
	if (r < 0)
		return r;
	t->seq++;
	t->checkpoint = checkpoint;
	*used += n;
	return 0;
}

static int audit_format_checkpoint(struct audit *a, struct audit_tail *t, size_t *used)
{
	json_auto_t *object = audit_checkpoint_pack(t->seq, t->hash);
	const struct audit_entry e = {
		.type = AUDIT_TYPE_CHECKPOINT, .result = "success", .object = object};

	return object ? audit_format(a, t, &e, used) : -ENOMEM;
}

/* One write() so that no reader sees half a record; a short write is cut off again (we hold
 * the lock, so the bytes past t->size are ours), leaving the file as it was. */
static int audit_commit(struct audit *a, const struct audit_tail *t, size_t used)
{
	ssize_t k = write(a->fd, a->buf, used);

	if (k != (ssize_t)used) {
		int r = k < 0 ? negative_errno() : -ENOSPC;

		if (k > 0 && ftruncate(a->fd, t->size) < 0)
			return negative_errno();
		return r;
	}
	return fsync(a->fd) < 0 ? negative_errno() : 0;
}

/* The copy to the journal (journald reads syslog): a second store, so that deleting or
 * rewriting the file does not delete the record. Not diagnostics: this is the record. */
static void audit_journal(const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len = (size_t)(nl - p);

		syslog(LOG_AUTHPRIV | LOG_INFO, AUDIT_SYSLOG_TAG "%.*s", (int)len, p);
		p += len + 1;
		n -= len + 1;
	}
}

/* Seals @t (a checkpoint just written) in the anchor file. */
static int audit_seal(struct audit *a, const struct audit_tail *t)
{
	struct audit_anchor an = {.seq = t->seq};

	memcpy(an.hash, t->hash, sizeof(an.hash));
	return audit_anchor_write(a->anchor, a->key, &an);
}

/* Under the file lock: appends @e (NULL: only the checkpoint that closes the log) and the
 * checkpoint that is due after it, durably; @t ends at the new last record. *written is what
 * a->buf holds for the journal copy, sent after the file lock is released (a stalled journal
 * must not stall other writers of the file). */
static int audit_append_locked(struct audit *a, const struct audit_entry *e, struct audit_tail *t,
			       size_t *written)
{
	struct audit_tail before;
	size_t used = 0;
	bool due;
	int r;

	r = audit_read_tail(a, t);
	if (r < 0)
		return r;
	before = *t;
	if (e && (r = audit_format(a, t, e, &used)) < 0)
		return r;
	due = e ? t->seq % AUDIT_CHECKPOINT_EVERY == 0 : t->seq > 0 && !t->checkpoint;
	if (a->key && due && (r = audit_format_checkpoint(a, t, &used)) < 0)
		return r;
	if (used == 0)
		return 0;
	r = audit_commit(a, &before, used);
	if (r < 0)
		return r;
	if (t->checkpoint)
		a->checkpoint_us = now_real_us();
	*written = used;
	/* The newest sealed position, kept outside the log: a later cut or restart shows. The
	 * record stands even if this fails; the next checkpoint tries again. */
	if (a->anchor && t->checkpoint)
		(void)audit_seal(a, t);
	return 0;
}

static bool audit_type_valid(const char *type)
{
	size_t n = strlen(type);

	/* "audit.*" records are this module's own (an unsigned "checkpoint" would be forgery). */
	return n > 0 && n <= AUDIT_TYPE_MAX &&
	       strncmp(type, AUDIT_TYPE_RESERVED, strlen(AUDIT_TYPE_RESERVED)) != 0 &&
	       strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool audit_result_valid(const char *result)
{
	for (size_t i = 0; i < ELEMENTSOF(audit_results); i++)
		if (strcmp(result, audit_results[i]) == 0)
			return true;
	return false;
}

int audit_write(struct audit *a, const char *type, const char *result, json_t *subject,
		json_t *object, const char *error)
{
	const struct audit_entry e = {.type = type,
				      .result = result,
				      .error = error,
				      .subject = subject,
				      .object = object};
	struct audit_tail t;
	size_t written = 0;
	int r;

	if (!a || !type || !result || !audit_type_valid(type) || !audit_result_valid(result) ||
	    (subject && !json_is_object(subject)) || (object && !json_is_object(object)))
		return -EINVAL;
	if (error && strlen(error) > AUDIT_ERROR_MAX)
		return -E2BIG;
	pthread_mutex_lock(&a->lock);
	r = audit_lock(a);
	if (r >= 0) {
		r = audit_append_locked(a, &e, &t, &written);
		audit_unlock(a);
	}
	if (r >= 0)
		audit_journal(a->buf, written);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int audit_stats(struct audit *a, struct audit_stats *ret)
{
	struct stat st;

	if (stat(a->path, &st) < 0)
		return negative_errno();
	pthread_mutex_lock(&a->lock);
	*ret = (struct audit_stats){.size = (uint64_t)st.st_size,
				    .last_checkpoint_us = a->checkpoint_us};
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int audit_open(const char *path, EVP_PKEY *key, struct audit **ret)
{
	struct audit *a;
	struct passwd pw, *found = NULL;
	char pwbuf[4096];
	struct audit_tail t;
	int r;

	if (!path || strlen(path) >= PATH_MAX || (key && EVP_PKEY_get_id(key) != EVP_PKEY_ED25519))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path))) {
		free(a);
		return -ENOMEM;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->fd = -1;
	a->pid = getpid();
	a->uid = getuid();
	if (getpwuid_r(a->uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found)
		snprintf(a->user, sizeof(a->user), "%s", found->pw_name);
	if (gethostname(a->host, sizeof(a->host) - 1) < 0)
		snprintf(a->host, sizeof(a->host), "unknown");
	/* Refuse a damaged tail now, not at the first record. */
	r = audit_lock(a);
	if (r >= 0) {
		r = audit_read_tail(a, &t);
		audit_unlock(a);
	}
	if (r >= 0 && key && !EVP_PKEY_up_ref(key))
		r = -ENOMEM;
	if (r < 0) {
		audit_close(a);
		return r;
	}
	a->key = key;
	*ret = a;
	return 0;
}

/* Under the file lock: the log @t ends before the position @an sealed (or the anchor cannot be
 * trusted): says so in an "audit.gap" record, sealed at once by a checkpoint. */
static int audit_record_gap(struct audit *a, struct audit_tail *t, const struct audit_anchor *an,
			    const char *reason, size_t *written)
{
	json_auto_t *object =
		json_pack("{s:I, s:s, s:I, s:s}", "anchor_seq", (json_int_t)an->seq, "anchor_hash",
			  an->hash, "log_last_seq", (json_int_t)t->seq, "reason", reason);
	const struct audit_entry e = {
		.type = AUDIT_TYPE_GAP, .result = "failure", .object = object};
	struct audit_tail before = *t;
	size_t used = 0;
	int r;

	if (!object)
		return -ENOMEM;
	if ((r = audit_format(a, t, &e, &used)) < 0 ||
	    (r = audit_format_checkpoint(a, t, &used)) < 0 ||
	    (r = audit_commit(a, &before, used)) < 0)
		return r;
	*written = used;
	return audit_seal(a, t);
}

int audit_set_anchor(struct audit *a, const char *anchor, struct audit_gap *gap)
{
	struct audit_anchor an = {0};
	struct audit_tail t;
	struct error err = {.msg = ""};
	const char *reason = NULL;
	size_t written = 0;
	int r, found = 0;

	if (!a || !a->key || !anchor || strlen(anchor) >= PATH_MAX)
		return -EINVAL;
	*gap = (struct audit_gap){0};
	pthread_mutex_lock(&a->lock);
	free(a->anchor);
	a->anchor = strdup(anchor);
	r = a->anchor ? audit_lock(a) : -ENOMEM;
	if (r >= 0) {
		r = audit_read_tail(a, &t);
		if (r >= 0) {
			r = audit_anchor_read(anchor, a->key, &an, &err);
			if (r == -ENOENT) {
				r = 0; /* first use: sealed at the next checkpoint */
			} else if (r == -EBADMSG) {
				reason = "the anchor is damaged or not signed by this node's key";
			} else if (r >= 0 && an.seq > t.seq) {
				reason = t.seq == 0 ? "the log is empty: deleted and begun anew"
						    : "the log ends before its last sealed "
						      "checkpoint: truncated";
			}
			if (reason) {
				gap->anchor_seq = an.seq;
				gap->log_last_seq = t.seq;
				snprintf(gap->reason, sizeof(gap->reason), "%s%s%.400s", reason,
					 err.msg[0] ? ": " : "", err.msg);
				r = audit_record_gap(a, &t, &an, gap->reason, &written);
				found = r >= 0;
			}
		}
		audit_unlock(a);
	}
	if (written)
		audit_journal(a->buf, written);
	pthread_mutex_unlock(&a->lock);
	return r < 0 ? r : found;
}

void audit_close(struct audit *a)
{
	struct audit_tail t;
	size_t written = 0;

	if (!a)
		return;
	if (a->key) {
		pthread_mutex_lock(&a->lock);
		if (audit_lock(a) >= 0) {
			if (audit_append_locked(a, NULL, &t, &written) < 0)
				written = 0;
			audit_unlock(a);
		}
		audit_journal(a->buf, written);
		pthread_mutex_unlock(&a->lock);
	}
	closep(&a->fd);
	EVP_PKEY_free(a->key);
	pthread_mutex_destroy(&a->lock);
	free(a->anchor);
	free(a->path);
	free(a);
}

/* Under the file lock of the old file: closes it with a checkpoint, then puts a new file in its
 * place whose first record chains to the old one's last. link() keeps the old inode as the
 * archive and rename() swaps the path in one step, so the path never names a missing file. */
static int audit_rotate_locked(struct audit *a, const char *archive)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	json_auto_t *object = NULL;
	struct audit_entry e = {.type = AUDIT_TYPE_ROTATED, .result = "success"};
	struct audit_tail t;
	char tmp[PATH_MAX];
	size_t used = 0;
	ssize_t k;
	int r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", a->path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	r = audit_append_locked(a, NULL, &t, &used);
	if (r < 0)
		return r;
	/* Rotation is rare: the closing checkpoint's journal copy may go out under the lock. */
	audit_journal(a->buf, used);
	used = 0;
	object = audit_rotated_pack(archive, t.seq, t.hash);
	if (!object)
		return -EINVAL;
	e.object = object;
	r = audit_format(a, &t, &e, &used);
	if (r < 0)
		return r;
	dfd = audit_open_dir(a->path, 0750);
	if (dfd < 0)
		return dfd;
	fd = mkostemp(tmp, O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	k = write(fd, a->buf, used);
	if (k != (ssize_t)used)
		r = k < 0 ? negative_errno() : -ENOSPC;
	else if (fchmod(fd, 0640) < 0 || fsync(fd) < 0 || link(a->path, archive) < 0)
		r = negative_errno();
	else if (rename(tmp, a->path) < 0) {
		r = negative_errno();
		unlink(archive);
	}
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	r = fsync(dfd) < 0 ? negative_errno() : 0;
	audit_journal(a->buf, used);
	/* Writers waiting for the old file's lock get it now, see the new file and follow. */
	audit_unlock(a);
	closep(&a->fd);
	a->fd = TAKE_FD(fd);
	return r;
}

int audit_rotate(struct audit *a, const char *archive)
{
	int r;

	if (!a || !archive || strlen(archive) >= PATH_MAX)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	r = audit_lock(a);
	if (r >= 0) {
		r = audit_rotate_locked(a, archive);
		audit_unlock(a); /* the old file after a failure; else a no-op on the new one */
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}
