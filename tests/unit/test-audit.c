// SPDX-License-Identifier: GPL-2.0-or-later
/* The audit log as `keydctl audit verify` sees it: two processes appending keep one valid
 * chain, and each way of tampering with the file is found and named by its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "audit.h"
#include "audit_anchor.h"
#include "audit_verify.h"
#include "secmem.h"
#include "sign.h"

#define BASE_WRITES 100
/* 100 records, a checkpoint after seq 64 (line 65) and one at close (line 102). */
#define BASE_LINES 102

static char dir[] = "/tmp/test-audit.XXXXXX";
static char base[PATH_MAX];
static EVP_PKEY *key;

struct lines {
	char **v;
	size_t n;
};

static void path_of(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

static void write_records(struct audit *a, const char *writer, int n)
{
	for (int i = 0; i < n; i++) {
		json_t *obj =
			json_pack("{s:s, s:s, s:i}", "volume", "pgdata", "writer", writer, "i", i);

		assert_int_equal(audit_write(a, "keyd.unlock", "success", NULL, obj, NULL), 0);
		json_decref(obj);
	}
}

static void read_lines(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t k;

	assert_non_null(f);
	*l = (struct lines){0};
	while ((k = getline(&line, &cap, f)) > 0) {
		l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
		assert_non_null(l->v);
		l->v[l->n++] = strndup(line, (size_t)k);
	}
	free(line);
	fclose(f);
}

static void write_lines(const char *path, const struct lines *l)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	for (size_t i = 0; i < l->n; i++)
		fputs(l->v[i], f);
	assert_int_equal(fclose(f), 0);
}

static void free_lines(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static json_t *parse_line(const char *line)
{
	json_t *j = json_loads(line, 0, NULL);

	assert_non_null(j);
	return j;
}

static char *dump_line(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT), *line;

	assert_non_null(s);
	assert_true(asprintf(&line, "%s\n", s) > 0);
	secmem_free(s);
	return line;
}

/* Runs the verifier, printing what it said. */
static int verify(const char *path, EVP_PKEY *trusted, json_t **report, struct error *err)
{
	char *text;
	int r;

	r = audit_verify(path, NULL, trusted, report, err);
	text = json_dumps(*report, JSON_INDENT(1));
	printf("verify %s: %d '%s'\n%s\n", path, r, err->msg, text ? text : "(no report)");
	secmem_free(text);
	return r;
}

static json_int_t report_int(json_t *report, const char *key)
{
	json_t *v = json_object_get(report, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static int setup(void **state)
{
	struct audit *a;

	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!key)
		return -1;
	path_of(base, "base.jsonl");
	if (audit_open(base, key, &a) < 0)
		return -1;
	write_records(a, "base", BASE_WRITES);
	audit_close(a);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	EVP_PKEY_free(key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_record_format(void **state)
{
	char path[PATH_MAX], fp[65], hash[65];
	const char *time, *user, *comm, *host, *prev, *chain, *kid;
	json_int_t seq, uid, pid, covers;
	struct audit *a;
	struct lines l;
	struct stat st;
	json_t *r;

	(void)state;
	read_lines(base, &l);
	printf("line 1: %sline 65: %s", l.v[0], l.v[64]);
	assert_int_equal(l.n, BASE_LINES);
	r = parse_line(l.v[0]);
	assert_int_equal(json_unpack(r, "{s:I, s:s, s:s, s:{s:I, s:s, s:I, s:s}, s:s}", "seq", &seq,
				     "time", &time, "prev", &prev, "subject", "uid", &uid, "user",
				     &user, "pid", &pid, "comm", &comm, "host", &host),
			 0);
	assert_int_equal(seq, 1);
	assert_int_equal(strspn(prev, "0"), 64);
	assert_int_equal(strlen(prev), 64);
	assert_int_equal(strlen(time), strlen("2025-01-01T00:00:00.000000Z"));
	assert_int_equal(time[strlen(time) - 1], 'Z');
	assert_int_equal(uid, getuid());
	assert_int_equal(pid, getpid());
	assert_string_equal(comm, "test-audit");
	assert_true(host[0] != 0);
	json_decref(r);

	/* The checkpoint after seq 64 vouches for line 64 by its hash. */
	r = parse_line(l.v[64]);
	assert_int_equal(json_unpack(r, "{s:I, s:{s:I, s:s}, s:{s:s}}", "seq", &seq, "object",
				     "covers_seq", &covers, "chain", &chain, "signature", "key",
				     &kid),
			 0);
	assert_int_equal(seq, 65);
	assert_int_equal(covers, 64);
	assert_int_equal(sign_sha256_hex(l.v[63], strlen(l.v[63]), hash), 0);
	assert_string_equal(chain, hash);
	assert_int_equal(sign_key_fingerprint(key, fp), 0);
	assert_string_equal(kid, fp);
	json_decref(r);
	free_lines(&l);

	/* A new log and its directory are created 0640 and 0750. */
	path_of(path, "logs");
	strcat(path, "/audit.jsonl");
	assert_int_equal(audit_open(path, NULL, &a), 0);
	audit_close(a);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	*strrchr(path, '/') = 0;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
}

static void test_clean_log_verifies(void **state)
{
	json_t *report = NULL;
	struct error err;
	char fp[65];

	(void)state;
	assert_int_equal(verify(base, key, &report, &err), 0);
	assert_int_equal(sign_key_fingerprint(key, fp), 0);
	assert_int_equal(report_int(report, "records"), BASE_LINES);
	assert_int_equal(report_int(report, "checkpoints"), 2);
	assert_int_equal(report_int(report, "last_seq"), BASE_LINES);
	assert_int_equal(report_int(report, "last_checkpoint_seq"), BASE_LINES);
	assert_int_equal(report_int(report, "unvouched_records"), 0);
	assert_string_equal(json_string_value(json_object_get(report, "key")), fp);
	assert_true(json_is_true(json_object_get(report, "ok")));
	json_decref(report);

	/* Without a trusted key the embedded one is used, and named. */
	assert_int_equal(verify(base, NULL, &report, &err), 0);
	assert_string_equal(json_string_value(json_object_get(report, "key")), fp);
	json_decref(report);
}

static void test_two_processes(void **state)
{
	char path[PATH_MAX];
	struct error err;
	int next[2] = {0, 0}, status;
	json_t *report = NULL;
	struct audit *a;
	struct lines l;
	size_t checkpoints = 0;
	pid_t child;

	(void)state;
	path_of(path, "two.jsonl");
	/* The child inherits the handle: it must not share the parent's lock through it. */
	assert_int_equal(audit_open(path, key, &a), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		write_records(a, "child", 100);
		audit_close(a);
		_exit(0);
	}
	write_records(a, "parent", 100);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	audit_close(a);

	assert_int_equal(verify(path, key, &report, &err), 0);
	read_lines(path, &l);
	for (size_t i = 0; i < l.n; i++) {
		json_t *r = parse_line(l.v[i]);
		const char *type, *writer = NULL;
		json_int_t n = -1, pid;

		assert_int_equal(json_unpack(r, "{s:s, s:{s:I}, s:{s?s, s?I}}", "type", &type,
					     "subject", "pid", &pid, "object", "writer", &writer,
					     "i", &n),
				 0);
		if (strcmp(type, "audit.checkpoint") == 0)
			checkpoints++;
		else {
			int w = strcmp(writer, "child") == 0;

			assert_int_equal(pid, w ? child : getpid());
			/* Each writer's records are all there, in its order. */
			assert_int_equal(n, next[w]);
			next[w]++;
		}
		json_decref(r);
	}
	printf("%zu lines, %zu checkpoints\n", l.n, checkpoints);
	assert_int_equal(next[0], 100);
	assert_int_equal(next[1], 100);
	assert_int_equal(l.n, 200 + checkpoints);
	assert_true(checkpoints >= 3);
	assert_int_equal(report_int(report, "records"), l.n);
	assert_int_equal(report_int(report, "checkpoints"), checkpoints);
	json_decref(report);
	free_lines(&l);
}

/* Tampering, done the way someone with write access to the file would. */
static void edit_line_10(struct lines *l)
{
	char *p = strstr(l->v[9], "pgdata");

	assert_non_null(p);
	memcpy(p, "pgdbta", 6);
}

static void delete_line_20(struct lines *l)
{
	free(l->v[19]);
	memmove(&l->v[19], &l->v[20], (l->n - 20) * sizeof(*l->v));
	l->n--;
}

static void insert_at_31(struct lines *l, char *line)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	memmove(&l->v[31], &l->v[30], (l->n - 30) * sizeof(*l->v));
	l->v[30] = line;
	l->n++;
}

/* A copy of line 30 placed after it. */
static void insert_copy(struct lines *l)
{
	insert_at_31(l, strdup(l->v[29]));
}

/* A forger who knows the format: right seq, right prev, so the forged line itself fits. */
static void insert_forged(struct lines *l)
{
	json_t *r = parse_line(l->v[29]);
	char hash[65];

	assert_int_equal(sign_sha256_hex(l->v[29], strlen(l->v[29]), hash), 0);
	json_object_set_new(r, "seq", json_integer(31));
	json_object_set_new(r, "prev", json_string(hash));
	json_object_set_new(r, "result", json_string("refused"));
	insert_at_31(l, dump_line(r));
	json_decref(r);
}

static void swap_40_41(struct lines *l)
{
	char *t = l->v[39];

	l->v[39] = l->v[40];
	l->v[40] = t;
}

static void truncate_in_line_80(struct lines *l)
{
	for (size_t i = 80; i < l->n; i++)
		free(l->v[i]);
	l->n = 80;
	l->v[79][strlen(l->v[79]) / 2] = 0;
}

/* Edit line 10, then recompute every later prev (and the checkpoints' "chain"): the chain is
 * whole again, but the checkpoint's signature covered the old prev. */
static void edit_and_rehash(struct lines *l)
{
	edit_line_10(l);
	for (size_t i = 10; i < l->n; i++) {
		json_t *r = parse_line(l->v[i]), *object = json_object_get(r, "object");
		char hash[65];

		assert_int_equal(sign_sha256_hex(l->v[i - 1], strlen(l->v[i - 1]), hash), 0);
		json_object_set_new(r, "prev", json_string(hash));
		if (json_object_get(object, "chain"))
			json_object_set_new(object, "chain", json_string(hash));
		free(l->v[i]);
		l->v[i] = dump_line(r);
		json_decref(r);
	}
}

static void test_tampering_detected(void **state)
{
	static const struct {
		const char *name;
		void (*apply)(struct lines *l);
		unsigned line;
		const char *kind;
	} cases[] = {
		{"edit a field", edit_line_10, 10, "edited"},
		{"delete a line", delete_line_20, 20, "deleted"},
		{"insert a copied line", insert_copy, 31, "inserted"},
		{"insert a forged line", insert_forged, 31, "inserted"},
		{"swap two lines", swap_40_41, 40, "reordered"},
		{"truncate mid-line", truncate_in_line_80, 80, "truncated"},
		{"edit and rehash the chain", edit_and_rehash, 65, "signature"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[PATH_MAX], want[64];
		struct error err = {.msg = ""};
		json_t *report = NULL, *first;
		struct lines l;
		int r;

		printf("--- %s\n", cases[i].name);
		read_lines(base, &l);
		cases[i].apply(&l);
		path_of(path, "tampered.jsonl");
		write_lines(path, &l);
		free_lines(&l);

		r = verify(path, key, &report, &err);
		assert_int_equal(r, -EBADMSG);
		snprintf(want, sizeof(want), "line %u: %s:", cases[i].line, cases[i].kind);
		if (strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("%s: expected '%s...', got '%s'", cases[i].name, want, err.msg);
		first = json_array_get(json_object_get(report, "problems"), 0);
		assert_int_equal(report_int(first, "line"), cases[i].line);
		assert_string_equal(json_string_value(json_object_get(first, "kind")),
				    cases[i].kind);
		assert_true(json_is_false(json_object_get(report, "ok")));
		json_decref(report);
	}
}

/* A cut at a line boundary leaves a valid chain: what shows is the records after the last
 * checkpoint, and a last seq lower than the journal's copy. */
static void test_truncated_at_line_boundary(void **state)
{
	char path[PATH_MAX];
	struct error err;
	json_t *report = NULL;
	struct lines l;

	(void)state;
	read_lines(base, &l);
	for (size_t i = 90; i < l.n; i++)
		free(l.v[i]);
	l.n = 90;
	path_of(path, "cut.jsonl");
	write_lines(path, &l);
	free_lines(&l);

	assert_int_equal(verify(path, key, &report, &err), 0);
	assert_int_equal(report_int(report, "last_seq"), 90);
	assert_int_equal(report_int(report, "last_checkpoint_seq"), 65);
	assert_int_equal(report_int(report, "unvouched_records"), 25);
	json_decref(report);
}

/* The first problem the verifier named, as "kind: detail". */
static const char *first_kind(json_t *report)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(report, "problems"), 0), "kind"));
}

/* A log written with its anchor: 100 records, sealed at its closing checkpoint (seq 102). */
static void anchored_log(const char *name, char *path, char *anchor)
{
	struct audit_gap gap;
	struct audit *a;

	path_of(path, name);
	assert_int_equal(audit_anchor_path(path, base, anchor, PATH_MAX), 0);
	assert_int_equal(audit_open(path, key, &a), 0);
	assert_int_equal(audit_set_anchor(a, anchor, &gap), 0);
	write_records(a, "anchored", BASE_WRITES);
	audit_close(a);
}

/* Issue 10 item 16: a log cut back to its first checkpoint, or deleted and begun anew,
 * verified clean; the anchor beside the node key makes both fail, and the writer records the
 * gap it finds when it opens the log again. */
static void test_anchor_truncated(void **state)
{
	char path[PATH_MAX], anchor[PATH_MAX];
	struct audit_anchor an;
	struct error err;
	json_t *report = NULL;
	struct audit_gap gap;
	struct audit *a;
	struct lines l;

	(void)state;
	anchored_log("anchored.jsonl", path, anchor);
	assert_int_equal(audit_anchor_read(anchor, key, &an, &err), 0);
	assert_int_equal(an.seq, BASE_LINES);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), 0);
	json_decref(report);

	/* Cut back to the first checkpoint: a valid prefix, which alone verifies clean. */
	read_lines(path, &l);
	for (size_t i = 65; i < l.n; i++)
		free(l.v[i]);
	l.n = 65;
	write_lines(path, &l);
	free_lines(&l);
	assert_int_equal(verify(path, key, &report, &err), 0);
	json_decref(report);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), -EBADMSG);
	printf("with the anchor: %s\n", err.msg);
	assert_string_equal(first_kind(report), "truncated");
	assert_non_null(strstr(err.msg, "the log ends at seq 65, but its anchor"));
	json_decref(report);

	/* The next writer notices, and records it for good. */
	assert_int_equal(audit_open(path, key, &a), 0);
	assert_int_equal(audit_set_anchor(a, anchor, &gap), 1);
	assert_int_equal(gap.anchor_seq, BASE_LINES);
	assert_int_equal(gap.log_last_seq, 65);
	assert_non_null(strstr(gap.reason, "truncated"));
	write_records(a, "after", 3);
	audit_close(a);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), -EBADMSG);
	assert_string_equal(first_kind(report), "gap");
	json_decref(report);
}

static void test_anchor_deleted(void **state)
{
	char path[PATH_MAX], anchor[PATH_MAX];
	struct error err;
	json_t *report = NULL;
	struct audit_gap gap;
	struct audit *a;

	(void)state;
	anchored_log("deleted.jsonl", path, anchor);
	assert_int_equal(unlink(path), 0);
	/* keyd restarted: a new log from seq 1, which alone verifies clean. */
	assert_int_equal(audit_open(path, key, &a), 0);
	write_records(a, "anew", 3);
	assert_int_equal(verify(path, key, &report, &err), 0);
	json_decref(report);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), -EBADMSG);
	assert_string_equal(first_kind(report), "truncated");
	json_decref(report);
	audit_close(a);

	/* Deleted again, and a writer opening it with its anchor says so at once. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(audit_open(path, key, &a), 0);
	assert_int_equal(audit_set_anchor(a, anchor, &gap), 1);
	assert_int_equal(gap.log_last_seq, 0);
	assert_non_null(strstr(gap.reason, "deleted and begun anew"));
	audit_close(a);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), -EBADMSG);
	assert_string_equal(first_kind(report), "gap");
	json_decref(report);
}

static void test_anchor_forged(void **state)
{
	char path[PATH_MAX], anchor[PATH_MAX];
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct audit_anchor an = {.seq = 1, .hash = AUDIT_HASH_ZERO};
	struct error err;
	json_t *report = NULL;

	(void)state;
	assert_non_null(other);
	anchored_log("forged.jsonl", path, anchor);
	/* An anchor moved back by someone without the node key does not verify. */
	assert_int_equal(audit_anchor_write(anchor, other, &an), 0);
	assert_int_equal(audit_verify(path, anchor, key, &report, &err), -EBADMSG);
	assert_string_equal(first_kind(report), "anchor");
	json_decref(report);
	EVP_PKEY_free(other);
}

static void test_wrong_trusted_key(void **state)
{
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	json_t *report = NULL;
	struct error err;

	(void)state;
	assert_int_equal(verify(base, other, &report, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "line 65: signature:"));
	assert_non_null(strstr(err.msg, "not by the trusted key"));
	assert_int_equal(report_int(report, "checkpoints"), 0);
	json_decref(report);
	EVP_PKEY_free(other);
}

static void test_rotation_keeps_chain(void **state)
{
	char path[PATH_MAX], archive[PATH_MAX], all[PATH_MAX];
	struct error err;
	json_t *old = NULL, *cur = NULL, *both = NULL, *prev;
	struct audit *a, *b;
	struct lines l1, l2;

	(void)state;
	path_of(path, "rot.jsonl");
	path_of(archive, "rot.jsonl.1");
	path_of(all, "rot-all.jsonl");
	assert_int_equal(audit_open(path, key, &a), 0);
	/* Another writer (its own open file, as in another process) opened before rotation. */
	assert_int_equal(audit_open(path, key, &b), 0);
	write_records(a, "a", 5);
	assert_int_equal(audit_rotate(a, archive), 0);
	assert_int_equal(audit_rotate(a, archive), -EEXIST);
	write_records(b, "b", 2);
	write_records(a, "a", 2);
	audit_close(b);
	audit_close(a);

	/* The archive ends vouched for; the new file starts where it ended. */
	assert_int_equal(verify(archive, key, &old, &err), 0);
	assert_int_equal(report_int(old, "unvouched_records"), 0);
	assert_int_equal(report_int(old, "records"), 6);
	assert_int_equal(verify(path, key, &cur, &err), 0);
	prev = json_object_get(cur, "previous");
	assert_int_equal(report_int(prev, "seq"), report_int(old, "last_seq"));
	assert_string_equal(json_string_value(json_object_get(prev, "hash")),
			    json_string_value(json_object_get(old, "last_hash")));
	assert_string_equal(json_string_value(json_object_get(prev, "file")), archive);
	assert_int_equal(report_int(cur, "records"), 7); /* rotated, 4 records, 2 checkpoints */

	/* Both files together are one chain. */
	read_lines(archive, &l1);
	read_lines(path, &l2);
	l1.v = realloc(l1.v, (l1.n + l2.n) * sizeof(*l1.v));
	assert_non_null(l1.v);
	memcpy(&l1.v[l1.n], l2.v, l2.n * sizeof(*l2.v));
	l1.n += l2.n;
	write_lines(all, &l1);
	free(l2.v);
	free_lines(&l1);
	assert_int_equal(verify(all, key, &both, &err), 0);
	assert_int_equal(report_int(both, "records"), 13);
	json_decref(old);
	json_decref(cur);
	json_decref(both);
}

static void test_refusals(void **state)
{
	char path[PATH_MAX], big[20000];
	json_t *obj;
	struct audit *a;
	struct stat st;
	int fd;

	(void)state;
	path_of(path, "refuse.jsonl");
	assert_int_equal(audit_open(path, key, &a), 0);
	assert_int_equal(audit_write(a, "keyd.unlock", "maybe", NULL, NULL, NULL), -EINVAL);
	assert_int_equal(audit_write(a, "audit.checkpoint", "success", NULL, NULL, NULL), -EINVAL);
	assert_int_equal(audit_write(a, "Keyd Unlock", "success", NULL, NULL, NULL), -EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(audit_write(a, "keyd.unlock", "failure", NULL, NULL, big), -E2BIG);
	obj = json_pack("{s:s}", "note", big);
	assert_int_equal(audit_write(a, "keyd.unlock", "failure", NULL, obj, NULL), -E2BIG);
	json_decref(obj);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);

	/* A log that ends in half a record is not appended to. */
	assert_int_equal(audit_write(a, "keyd.unlock", "success", NULL, NULL, NULL), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":2,", 9), 9);
	close(fd);
	assert_int_equal(audit_write(a, "keyd.unlock", "success", NULL, NULL, NULL), -EBADMSG);
	audit_close(a);
	assert_int_equal(audit_open(path, key, &a), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_format),
		cmocka_unit_test(test_clean_log_verifies),
		cmocka_unit_test(test_two_processes),
		cmocka_unit_test(test_tampering_detected),
		cmocka_unit_test(test_truncated_at_line_boundary),
		cmocka_unit_test(test_anchor_truncated),
		cmocka_unit_test(test_anchor_deleted),
		cmocka_unit_test(test_anchor_forged),
		cmocka_unit_test(test_wrong_trusted_key),
		cmocka_unit_test(test_rotation_keeps_chain),
		cmocka_unit_test(test_refusals),
	};

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
