// SPDX-License-Identifier: GPL-2.0-or-later
/* The audit log's verifier: walks a log file line by line, checks each record's form and the
 * chain of hashes and signed checkpoints, and names what was edited, deleted, inserted,
 * reordered or truncated. Reads the file only; never writes to it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit_anchor.h"
#include "audit_record.h"
#include "audit_verify.h"
#include "sign.h"
#include "util.h"

/* Problems listed in a verify report; the rest are only counted. */
#define AUDIT_PROBLEMS_MAX 100
#define AUDIT_DETAIL_MAX   256

/* One line as the verifier sees it. */
struct audit_line {
	unsigned long no; /* from 1 */
	bool hashed;	  /* hash holds the line's digest (not when over AUDIT_LINE_MAX) */
	bool parsed;	  /* seq and prev come from a well-formed record */
	bool complete;	  /* ends in a newline */
	bool rotated;	  /* a consistent "audit.rotated" record */
	uint64_t seq;
	char hash[AUDIT_HASH_LEN + 1]; /* of the line's bytes, newline included */
	char prev[AUDIT_HASH_LEN + 1];
	/* What is wrong with the line by itself, reported when the walk reaches it. */
	const char *kind;
	char detail[AUDIT_DETAIL_MAX];
};

struct audit_verify {
	FILE *f;
	EVP_PKEY *trusted;
	unsigned long lines;
	bool incomplete;   /* the last line has no newline */
	uint64_t last_seq; /* of the last complete record */
	char last_hash[AUDIT_HASH_LEN + 1];
	unsigned long checkpoints;
	unsigned long last_checkpoint_line;
	uint64_t last_checkpoint_seq;
	char key[AUDIT_HASH_LEN + 1]; /* the trusted key's fingerprint, or the first checkpoint's */
	json_t *previous;	      /* where a rotated file's chain came from */
	const char *anchor_path;      /* NULL: no anchor to compare with */
	bool have_anchor;
	struct audit_anchor anchor; /* the newest sealed position, kept outside the log */
	json_t *problems;
	unsigned long n_problems;
	bool oom;
	struct error *err;
	char buf[AUDIT_LINE_MAX];
};

static void line_problem(struct audit_line *l, const char *kind, const char *fmt, ...)
	_printf_(3, 4);
static void line_problem(struct audit_line *l, const char *kind, const char *fmt, ...)
{
	va_list ap;

	l->kind = kind;
	va_start(ap, fmt);
	vsnprintf(l->detail, sizeof(l->detail), fmt, ap);
	va_end(ap);
}

static void verify_problem(struct audit_verify *v, unsigned long line, const char *kind,
			   const char *fmt, ...) _printf_(4, 5);
static void verify_problem(struct audit_verify *v, unsigned long line, const char *kind,
			   const char *fmt, ...)
{
	char detail[AUDIT_DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (v->n_problems++ == 0)
		error_set(v->err, -EBADMSG, "line %lu: %s: %s", line, kind, detail);
	if (json_array_size(v->problems) < AUDIT_PROBLEMS_MAX &&
	    json_array_append_new(v->problems,
				  json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "kind",
					    kind, "detail", detail)) < 0)
		v->oom = true;
}

static void verify_checkpoint(struct audit_verify *v, struct audit_line *l, json_t *rec,
			      json_t *object)
{
	struct error err;
	const char *chain, *key;
	uint64_t covers;

	if (audit_checkpoint_unpack(object, &covers, &chain) < 0 || covers + 1 != l->seq ||
	    strcmp(chain, l->prev) != 0)
		return line_problem(l, "edited", "checkpoint does not cover the record before it");
	if (sign_json_verify(rec, v->trusted, &err) < 0)
		return line_problem(l, "signature", "checkpoint: %s", err.msg);
	key = json_string_value(json_object_get(json_object_get(rec, "signature"), "key"));
	if (!v->key[0])
		snprintf(v->key, sizeof(v->key), "%s", key);
	else if (strcmp(key, v->key) != 0)
		return line_problem(l, "signature",
				    "checkpoint signed by key %s, earlier ones by %s", key, v->key);
	v->checkpoints++;
	v->last_checkpoint_line = l->no;
	v->last_checkpoint_seq = l->seq;
}

/* Checks what a line can show by itself: a well-formed record, a valid checkpoint. */
static void verify_record(struct audit_verify *v, struct audit_line *l, const char *p, size_t n)
{
	json_auto_t *rec = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
	struct audit_record r;
	const char *prev_hash;
	json_t *prev_file;
	uint64_t prev_seq;

	if (audit_record_unpack(rec, &r) < 0)
		return line_problem(l, "edited", "not an audit record");
	l->parsed = true;
	l->seq = r.seq;
	memcpy(l->prev, r.prev, sizeof(l->prev));
	if (strcmp(r.type, AUDIT_TYPE_CHECKPOINT) == 0)
		verify_checkpoint(v, l, rec, r.object);
	else if (strcmp(r.type, AUDIT_TYPE_GAP) == 0)
		line_problem(l, "gap", "a writer found records missing here: %s",
			     json_string_value(json_object_get(r.object, "reason"))
				     ?: "(no reason given)");
	else if (strcmp(r.type, AUDIT_TYPE_ROTATED) == 0 && l->no == 1 &&
		 audit_rotated_unpack(r.object, &prev_file, &prev_seq, &prev_hash) == 0 &&
		 prev_seq + 1 == r.seq && strcmp(prev_hash, r.prev) == 0) {
		l->rotated = true;
		v->previous = json_pack("{s:O?, s:I, s:s}", "file", prev_file, "seq",
					(json_int_t)prev_seq, "hash", prev_hash);
	}
}

/* Reads the next line into @l: 1, or 0 at the end of the file. */
static int verify_read(struct audit_verify *v, struct audit_line *l)
{
	size_t n = 0;
	int c = 0;

	while (c != '\n' && (c = getc_unlocked(v->f)) != EOF) {
		if (n < sizeof(v->buf))
			v->buf[n] = (char)c;
		n++;
	}
	if (ferror(v->f))
		return -EIO;
	if (n == 0)
		return 0;
	*l = (struct audit_line){.no = ++v->lines, .complete = c == '\n'};
	if (n > sizeof(v->buf)) {
		line_problem(l, "edited", "longer than %d bytes", AUDIT_LINE_MAX);
		return 1;
	}
	if (audit_line_hash(v->buf, n, l->hash) < 0)
		return -EIO;
	l->hashed = true;
	v->incomplete = !l->complete;
	if (v->incomplete) {
		line_problem(l, "truncated",
			     "incomplete last line (no newline): the file was cut mid-record");
		return 1;
	}
	verify_record(v, l, v->buf, n);
	if (l->parsed && v->have_anchor && l->seq == v->anchor.seq && !l->kind &&
	    strcmp(l->hash, v->anchor.hash) != 0)
		line_problem(l, "rewritten",
			     "seq %llu is not the checkpoint the anchor sealed: the log was begun "
			     "anew or rewritten from here",
			     (unsigned long long)l->seq);
	if (l->parsed) {
		v->last_seq = l->seq;
		memcpy(v->last_hash, l->hash, sizeof(v->last_hash));
	}
	return 1;
}

/* Whether @b is the record right after @a. */
static bool links(const struct audit_line *a, const struct audit_line *b)
{
	return a->hashed && b->parsed && b->seq == a->seq + 1 && strcmp(b->prev, a->hash) == 0;
}

/* The walk's memory: the last line accepted into the chain and the one before it. */
struct audit_walk {
	struct audit_line last, before;
	bool have_last, have_before;
	bool last_blamed; /* a problem already names the last line */
};

static void walk_accept(struct audit_walk *w, const struct audit_line *l, bool blamed)
{
	w->before = w->last;
	w->have_before = w->have_last;
	w->last = *l;
	w->have_last = true;
	w->last_blamed = blamed;
}

/* Places @cur in the chain, naming what broke when it does not follow the last line; @next
 * (may be NULL) tells an inserted or swapped line from an edit. Returns true when @next was
 * consumed too. */
static bool verify_step(struct audit_verify *v, struct audit_walk *w, struct audit_line *cur,
			const struct audit_line *next)
{
	struct audit_line *last = &w->last;
	bool blamed = cur->kind != NULL;

	if (cur->kind)
		verify_problem(v, cur->no, cur->kind, "%s", cur->detail);
	if (!cur->complete)
		return false;
	if (!cur->parsed) /* assume its place, so that the next line is judged on its own */
		cur->seq = w->have_last ? last->seq + 1 : 1;

	if (!w->have_last) {
		if (cur->parsed && !cur->rotated &&
		    (cur->seq != 1 || strcmp(cur->prev, AUDIT_HASH_ZERO) != 0))
			verify_problem(v, cur->no, "deleted",
				       "the chain starts at seq %llu without an audit.rotated "
				       "record: the records before it are missing",
				       (unsigned long long)cur->seq);
	} else if (!cur->parsed || links(last, cur)) {
		/* in place (an unparsable line was reported above) */
	} else if (next && links(last, next) && cur->seq == next->seq + 1 &&
		   strcmp(cur->prev, next->hash) == 0) {
		verify_problem(v, cur->no, "reordered",
			       "lines %lu and %lu are swapped (seq %llu "
			       "before %llu)",
			       cur->no, next->no, (unsigned long long)cur->seq,
			       (unsigned long long)next->seq);
		if (next->kind)
			verify_problem(v, next->no, next->kind, "%s", next->detail);
		walk_accept(w, next, true);
		walk_accept(w, cur, true);
		return true;
	} else if (next && links(last, next)) {
		verify_problem(v, cur->no, "inserted",
			       "not part of the chain: line %lu follows line %lu", next->no,
			       last->no);
		return false;
	} else if (w->have_before && links(&w->before, cur)) {
		verify_problem(v, last->no, "inserted",
			       "not part of the chain: line %lu follows line %lu", cur->no,
			       w->before.no);
		*last = w->before;
		w->have_before = false;
	} else if (strcmp(cur->prev, last->hash) == 0) {
		verify_problem(v, cur->no, "edited", "seq %llu, expected %llu",
			       (unsigned long long)cur->seq, (unsigned long long)last->seq + 1);
		cur->seq = last->seq + 1; /* in the right place, with a wrong seq field */
		blamed = true;
	} else if (cur->seq == last->seq + 1) {
		if (!w->last_blamed)
			verify_problem(v, last->no, "edited",
				       "its hash is not the prev of line %lu: the line was changed",
				       cur->no);
	} else if (cur->seq == last->seq + 2) {
		verify_problem(v, cur->no, "deleted", "seq %llu is missing before this line",
			       (unsigned long long)last->seq + 1);
		blamed = true;
	} else if (cur->seq > last->seq + 2) {
		verify_problem(v, cur->no, "deleted", "seq %llu..%llu are missing before this line",
			       (unsigned long long)last->seq + 1, (unsigned long long)cur->seq - 1);
		blamed = true;
	} else {
		verify_problem(v, cur->no, "reordered",
			       "seq %llu after seq %llu: out of order or duplicated",
			       (unsigned long long)cur->seq, (unsigned long long)last->seq);
		blamed = true;
	}
	walk_accept(w, cur, blamed);
	return false;
}

static int verify_walk(struct audit_verify *v, struct audit_walk *w)
{
	struct audit_line cur, next;
	int r;

	r = verify_read(v, &next);
	while (r > 0) {
		cur = next;
		r = verify_read(v, &next);
		if (r < 0)
			break;
		if (verify_step(v, w, &cur, r > 0 ? &next : NULL))
			r = verify_read(v, &next);
	}
	return r;
}

static int verify_report(struct audit_verify *v, json_t **report)
{
	unsigned long records = v->lines - (v->incomplete ? 1 : 0);
	json_t *r;

	r = json_pack("{s:I, s:I, s:o?, s:o?, s:o?, s:I, s:o?, s:b, s:O?, s:o?, s:b, s:O}",
		      "records", (json_int_t)records, "checkpoints", (json_int_t)v->checkpoints,
		      "last_seq", v->last_seq ? json_integer((json_int_t)v->last_seq) : NULL,
		      "last_hash", v->last_seq ? json_string(v->last_hash) : NULL,
		      "last_checkpoint_seq",
		      v->checkpoints ? json_integer((json_int_t)v->last_checkpoint_seq) : NULL,
		      "unvouched_records", (json_int_t)(records - v->last_checkpoint_line), "key",
		      v->key[0] ? json_string(v->key) : NULL, "trusted", v->trusted != NULL,
		      "previous", v->previous, "anchor",
		      v->have_anchor ? json_pack("{s:s, s:I, s:s}", "file", v->anchor_path, "seq",
						 (json_int_t)v->anchor.seq, "hash", v->anchor.hash)
				     : NULL,
		      "ok", v->n_problems == 0, "problems", v->problems);
	if (!r || v->oom)
		return -ENOMEM;
	if (v->n_problems > AUDIT_PROBLEMS_MAX &&
	    json_object_set_new(r, "problems_omitted",
				json_integer((json_int_t)(v->n_problems - AUDIT_PROBLEMS_MAX))) < 0)
		return -ENOMEM;
	*report = r;
	return 0;
}

/* The anchor, when there is one: a log that ends before the position it sealed was cut back,
 * or deleted and begun anew. */
static void verify_anchor_end(struct audit_verify *v)
{
	if (v->have_anchor && v->last_seq < v->anchor.seq)
		verify_problem(v, v->lines ? v->lines : 1, "truncated",
			       "the log ends at seq %llu, but its anchor %s sealed seq %llu: the "
			       "records after it were cut off, or the log was deleted and begun "
			       "anew",
			       (unsigned long long)v->last_seq, v->anchor_path,
			       (unsigned long long)v->anchor.seq);
}

/* Reads the anchor at @path into @v; a missing one is none, a bad one a problem. */
static int verify_anchor_load(struct audit_verify *v, const char *path)
{
	struct error ae = {.msg = ""};
	int r;

	v->anchor_path = path;
	r = audit_anchor_read(path, v->trusted, &v->anchor, &ae);
	if (r == -ENOENT)
		return 0;
	if (r == -EBADMSG) {
		verify_problem(v, 1, "anchor", "%s", ae.msg);
		return 0;
	}
	if (r < 0)
		return error_set(v->err, r, "%s", ae.msg[0] ? ae.msg : strerror(-r));
	v->have_anchor = true;
	return 0;
}

int audit_verify(const char *path, const char *anchor, EVP_PKEY *trusted, json_t **report,
		 struct error *err)
{
	struct audit_walk w = {};
	struct audit_verify *v;
	json_t *r = NULL;
	int ret;

	if (err)
		err->msg[0] = 0;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->trusted = trusted;
	v->err = err;
	/* With a trusted key, every checkpoint must be signed by it: name it in the report. */
	if (trusted && sign_key_fingerprint(trusted, v->key) < 0) {
		ret = -EINVAL;
		goto out;
	}
	v->problems = json_array();
	if (!v->problems) {
		ret = -ENOMEM;
		goto out;
	}
	if (anchor && (ret = verify_anchor_load(v, anchor)) < 0)
		goto out;
	v->f = fopen(path, "re");
	if (!v->f) {
		ret = negative_errno();
		goto out;
	}
	ret = verify_walk(v, &w);
	if (ret >= 0)
		verify_anchor_end(v);
	if (ret >= 0)
		ret = verify_report(v, &r);
	if (ret >= 0) {
		if (report)
			*report = TAKE_PTR(r);
		ret = v->n_problems ? -EBADMSG : 0;
	}
out:
	if (v->f)
		fclose(v->f);
	json_decref(r);
	json_decref(v->problems);
	json_decref(v->previous);
	free(v);
	return ret;
}
