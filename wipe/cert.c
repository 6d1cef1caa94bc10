// SPDX-License-Identifier: GPL-2.0-or-later
/* Certificates. One table lists the SP 800-88 Rev. 1 Appendix G fields: where each value comes
 * from, and which the operator supplies; building, rendering and --field checking all read it.
 * Signing and verification are common/sign's (canonical JSON, Ed25519). Never logs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cert.h"
#include "secmem.h"
#include "sign.h"
#include "signatures.h"
#include "util.h"

struct appendix_g_field {
	const char *key;
	const char *label;
	const char *section;
	bool settable;
	const char *fallback; /* settable fields left out by the operator */
	const char *(*value)(const struct cert_facts *f, char *buf, size_t size);
};

static const char *g_person(const struct cert_facts *f, char *buf, size_t size)
{
	snprintf(buf, size, "%s",
		 json_string_value(json_object_get(f->performed_by, "name")) ?: "");
	return buf;
}

static const char *g_vendor(const struct cert_facts *f, char *buf, size_t size)
{
	(void)buf, (void)size;
	return f->dev->vendor[0] ? f->dev->vendor : "unknown";
}

static const char *g_model(const struct cert_facts *f, char *buf, size_t size)
{
	(void)buf, (void)size;
	return f->dev->model[0] ? f->dev->model : "unknown";
}

static const char *g_serial(const struct cert_facts *f, char *buf, size_t size)
{
	if (f->dev->serial[0])
		return f->dev->serial;
	snprintf(buf, size, "none (device id %s)", f->dev->id);
	return buf;
}

static const char *g_media(const struct cert_facts *f, char *buf, size_t size)
{
	static const char *const types[] = {
		[DEVICE_MEDIA_MAGNETIC] = "Magnetic",
		[DEVICE_MEDIA_FLASH] = "Flash Memory",
		[DEVICE_MEDIA_VIRTUAL] = "Other",
	};
	enum device_media m = device_media(f->dev);

	snprintf(buf, size, "%s (%s, %s)", types[m], f->dev->transport, device_media_name(m));
	return buf;
}

static bool succeeded(const struct cert_facts *f)
{
	return streq_ptr(f->result, "success");
}

static const char *g_method_type(const struct cert_facts *f, char *buf, size_t size)
{
	static const char *const levels[] = {
		[NIST_NONE] = "None",
		[NIST_CLEAR] = "Clear",
		[NIST_PURGE] = "Purge",
	};

	if (succeeded(f))
		return levels[f->level];
	snprintf(buf, size, "None (the %s of a %s failed or was interrupted)", f->result,
		 levels[f->level]);
	return buf;
}

static const char *g_method_used(const struct cert_facts *f, char *buf, size_t size)
{
	(void)buf, (void)size;
	return f->method->technique;
}

static const char *g_method_details(const struct cert_facts *f, char *buf, size_t size)
{
	snprintf(buf, size, "wipe --method %s: %s; one pass over bytes 0-%" PRIu64, f->method->name,
		 f->method->summary, f->end);
	return buf;
}

static const char *g_tool(const struct cert_facts *f, char *buf, size_t size)
{
	(void)f;
	snprintf(buf, size, "wipe %s (keyd project)", KEYD_VERSION);
	return buf;
}

static const char *g_verification(const struct cert_facts *f, char *buf, size_t size)
{
	static const char *const names[] = {
		[PASS_VERIFY_NONE] = "None",
		[PASS_VERIFY_SAMPLE] = "Quick Sampling",
		[PASS_VERIFY_FULL] = "Full",
	};
	(void)buf, (void)size;
	return names[f->verify];
}

static const char *g_date(const struct cert_facts *f, char *buf, size_t size)
{
	format_rfc3339_us(f->ended_us, buf, size);
	return buf;
}

static const struct appendix_g_field appendix_g[] = {
	{.key = "name",
	 .label = "Name",
	 .section = "Person Performing Sanitization",
	 .value = g_person},
	{.key = "title", .label = "Title", .settable = true},
	{.key = "organization", .label = "Organization", .settable = true},
	{.key = "location", .label = "Location", .settable = true},
	{.key = "phone", .label = "Phone", .settable = true},
	{.key = "make", .label = "Make/Vendor", .section = "Media Information", .value = g_vendor},
	{.key = "model", .label = "Model Number", .value = g_model},
	{.key = "serial", .label = "Serial Number", .value = g_serial},
	{.key = "property_number", .label = "Media Property Number", .settable = true},
	{.key = "media_type", .label = "Media Type", .value = g_media},
	{.key = "source", .label = "Source", .settable = true},
	{.key = "classification", .label = "Classification", .settable = true},
	{.key = "data_backed_up",
	 .label = "Data Backed Up",
	 .settable = true,
	 .fallback = "Unknown"},
	{.key = "backup_location", .label = "Backup Location", .settable = true},
	{.key = "method_type",
	 .label = "Method Type",
	 .section = "Sanitization Details",
	 .value = g_method_type},
	{.key = "method_used", .label = "Method Used", .value = g_method_used},
	{.key = "method_details", .label = "Method Details", .value = g_method_details},
	{.key = "tool_used", .label = "Tool Used", .value = g_tool},
	{.key = "verification_method", .label = "Verification Method", .value = g_verification},
	{.key = "post_sanitization_classification",
	 .label = "Post-Sanitization Classification",
	 .settable = true},
	{.key = "notes", .label = "Notes", .settable = true},
	{.key = "destination",
	 .label = "Media Destination",
	 .section = "Media Destination",
	 .settable = true},
	{.key = "date", .label = "Date", .section = "Signature", .value = g_date},
};

bool cert_field_settable(const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(appendix_g); i++)
		if (appendix_g[i].settable && strcmp(appendix_g[i].key, key) == 0)
			return true;
	return false;
}

void cert_fields_help(FILE *f)
{
	const char *sep = "";

	for (size_t i = 0; i < ELEMENTSOF(appendix_g); i++)
		if (appendix_g[i].settable) {
			fprintf(f, "%s%s", sep, appendix_g[i].key);
			sep = ", ";
		}
}

static json_t *appendix_g_json(const struct cert_facts *cf)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < ELEMENTSOF(appendix_g); i++) {
		const struct appendix_g_field *f = &appendix_g[i];
		char buf[CERT_FIELD_MAX * 2];
		const char *v = f->value ? f->value(cf, buf, sizeof(buf))
					 : json_string_value(json_object_get(cf->fields, f->key));

		json_object_set_new(o, f->key, json_string(v ? v : f->fallback ? f->fallback : ""));
	}
	return o;
}

static void cert_new_id(char *buf, size_t size)
{
	uint8_t u[16];

	RAND_bytes(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(buf, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static json_t *host_json(void)
{
	char host[256] = "", machine[64] = "";
	struct utsname u;
	FILE *f;

	gethostname(host, sizeof(host) - 1);
	f = fopen("/etc/machine-id", "re");
	if (f) {
		if (!fgets(machine, sizeof(machine), f))
			machine[0] = 0;
		machine[strcspn(machine, "\n")] = 0;
		fclose(f);
	}
	if (uname(&u) < 0)
		u.release[0] = 0;
	return json_pack("{s:s, s:s, s:s}", "hostname", host, "machine_id", machine, "kernel",
			 u.release);
}

static json_t *verification_json(const struct cert_facts *f)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "method", pass_verify_name(f->verify),
			 "result", f->verified, "bytes_read", (json_int_t)f->check.bytes,
			 "mismatched_blocks", (json_int_t)f->check.mismatches, "unreadable_blocks",
			 (json_int_t)f->check.io_errors, "first_bad_offset",
			 f->check.first_bad == UINT64_MAX ? (json_int_t)-1
							  : (json_int_t)f->check.first_bad);
}

static json_t *method_json(const struct cert_facts *f)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:s?}", "name", f->method->name,
			 "summary", f->method->summary, "technique", f->method->technique,
			 "pattern", pattern_name(f->pattern), "passes", 1, "range_start",
			 (json_int_t)0, "range_end", (json_int_t)f->end, "profile", f->profile);
}

/* The device's own completion status of a firmware method: the command, its NVMe status field
 * (-1: none, e.g. ATA) and the Sanitize Status log's SSTAT (-1: not read), and in words. */
static json_t *firmware_json(const struct sanitize_outcome *o)
{
	return json_pack("{s:s, s:i, s:i, s:s}", "command", o->command, "status", o->status,
			 "sanitize_status", o->sanitize_sstat, "completion", o->text);
}

static json_t *errors_json(const struct cert_facts *f)
{
	return json_pack(
		"{s:I, s:I, s:s?}", "write_failed_blocks", (json_int_t)f->write.io_errors,
		"first_write_error_offset",
		f->write.first_bad == UINT64_MAX ? (json_int_t)-1 : (json_int_t)f->write.first_bad,
		"first_write_error", f->write.first_error ? strerror(-f->write.first_error) : NULL);
}

json_t *cert_build(const struct cert_facts *f)
{
	char started[40], ended[40];
	json_t *c;

	format_rfc3339_us(f->started_us, started, sizeof(started));
	format_rfc3339_us(f->ended_us, ended, sizeof(ended));
	c = json_pack("{s:s, s:s, s:s, s:o, s:O, s:O, s:O?}", "format", CERT_FORMAT, "result",
		      f->result, "summary", f->summary, "device", device_json(f->dev), "before",
		      f->before, "signatures_after", f->sigs_after ?: json_null(),
		      "keyslots_destroyed", f->keyslots);
	if (!c)
		return NULL;
	json_object_set_new(c, "method", method_json(f));
	if (f->firmware)
		json_object_set_new(c, "firmware", firmware_json(f->firmware));
	json_object_set_new(c, "nist",
			    json_pack("{s:s, s:s, s:s, s:s}", "standard", "NIST SP 800-88 Rev. 2",
				      "level", succeeded(f) ? nist_level_name(f->level) : "none",
				      "method_level", nist_level_name(f->level), "note",
				      f->level_note));
	json_object_set_new(c, "verification", verification_json(f));
	json_object_set_new(c, "errors", errors_json(f));
	json_object_set_new(c, "bytes_written", json_integer((json_int_t)f->write.bytes));
	json_object_set_new(c, "resumes", json_integer((json_int_t)f->resumes));
	json_object_set_new(c, "started", json_string(started));
	json_object_set_new(c, "ended", json_string(ended));
	/* Integers only: a signed record must re-serialise byte for byte. */
	json_object_set_new(c, "duration_ms",
			    json_integer((json_int_t)((f->ended_us - f->started_us) / 1000)));
	json_object_set_new(c, "timing",
			    json_pack("{s:I, s:I}", "write_ms", (json_int_t)(f->write_us / 1000),
				      "verify_ms", (json_int_t)(f->verify_us / 1000)));
	json_object_set_new(c, "tool",
			    json_pack("{s:s, s:s}", "name", "wipe", "version", KEYD_VERSION));
	json_object_set(c, "operator", f->performed_by);
	json_object_set_new(c, "host", host_json());
	json_object_set_new(c, "sp800_88_rev1_appendix_g", appendix_g_json(f));
	json_object_set(c, "notes", f->notes);
	return c;
}

int cert_issue(const struct cert_facts *f, EVP_PKEY *key, const char *dir, struct cert_issued *ret)
{
	_cleanup_secure_ char *text = NULL; /* jansson allocates from the secure heap */
	json_auto_t *c = NULL;
	char path[PATH_MAX], stamp[32];
	time_t t = (time_t)(f->ended_us / 1000000);
	struct tm tm;
	int r;

	*ret = (struct cert_issued){0};
	c = cert_build(f);
	if (!c)
		return -ENOMEM;
	/* The id is the caller's to record even when writing fails. */
	cert_new_id(ret->id, sizeof(ret->id));
	json_object_set_new(c, "id", json_string(ret->id));
	r = sign_json(key, c);
	if (r < 0)
		return r;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	if (snprintf(path, sizeof(path), "%s/%s-%s.%06" PRIu64 "Z.json", dir, f->dev->id, stamp,
		     f->ended_us % 1000000) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	r = atomicfile_write(path, text, strlen(text), 0644, 0755);
	if (r < 0)
		return r;
	snprintf(ret->path, sizeof(ret->path), "%s", path);
	return 0;
}

int cert_load(const char *path, json_t **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_secure_ uint8_t *buf = NULL;
	json_error_t je;
	size_t n = 0;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = read_file_fd(fd, CERT_FILE_MAX, &buf, &n);
	if (r < 0)
		return r;
	*ret = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
	return *ret ? 0 : -EBADMSG;
}

/* "a.b.c" in nested objects. */
static json_t *cert_member(json_t *o, const char *path)
{
	char key[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		o = json_object_get(o, key);
		path += n + (path[n] == '.');
	}
	return o;
}

static const struct {
	const char *path;
	json_type type;
} cert_schema[] = {
	{"format", JSON_STRING},
	{"id", JSON_STRING},
	{"result", JSON_STRING},
	{"summary", JSON_STRING},
	{"device", JSON_OBJECT},
	{"device.path", JSON_STRING},
	{"device.id", JSON_STRING},
	{"device.size", JSON_INTEGER},
	{"before", JSON_OBJECT},
	{"method", JSON_OBJECT},
	{"method.name", JSON_STRING},
	{"nist", JSON_OBJECT},
	{"nist.level", JSON_STRING},
	{"verification", JSON_OBJECT},
	{"verification.method", JSON_STRING},
	{"verification.result", JSON_STRING},
	{"verification.mismatched_blocks", JSON_INTEGER},
	{"verification.unreadable_blocks", JSON_INTEGER},
	{"errors", JSON_OBJECT},
	{"errors.write_failed_blocks", JSON_INTEGER},
	{"bytes_written", JSON_INTEGER},
	{"started", JSON_STRING},
	{"ended", JSON_STRING},
	{"tool", JSON_OBJECT},
	{"operator", JSON_OBJECT},
	{"host", JSON_OBJECT},
	{"sp800_88_rev1_appendix_g", JSON_OBJECT},
};

static int check_record(json_t *c, struct error *err)
{
	const char *result, *verified;

	for (size_t i = 0; i < ELEMENTSOF(cert_schema); i++) {
		json_t *v = cert_member(c, cert_schema[i].path);

		if (!v || json_typeof(v) != cert_schema[i].type) {
			return error_set(err, -EBADMSG,
					 "record: %s is missing or of the wrong type",
					 cert_schema[i].path);
		}
	}
	if (strcmp(json_string_value(cert_member(c, "format")), CERT_FORMAT)) {
		return error_set(err, -EBADMSG, "record: format is not %s", CERT_FORMAT);
	}
	result = json_string_value(cert_member(c, "result"));
	verified = json_string_value(cert_member(c, "verification.result"));
	if (strcmp(result, "success") && strcmp(result, "failure") &&
	    strcmp(result, "interrupted")) {
		return error_set(err, -EBADMSG,
				 "record: result \"%s\" is not success, failure or interrupted",
				 result);
	}
	if (!method_find(json_string_value(cert_member(c, "method.name")))) {
		return error_set(err, -EBADMSG, "record: unknown method");
	}
	if (strcmp(json_string_value(cert_member(c, "ended")),
		   json_string_value(cert_member(c, "started"))) < 0) {
		return error_set(err, -EBADMSG, "record: ended before it started");
	}
	if (strcmp(result, "success") == 0 &&
	    ((strcmp(verified, "passed") && strcmp(verified, "not-requested")) ||
	     json_integer_value(cert_member(c, "errors.write_failed_blocks")) ||
	     json_integer_value(cert_member(c, "verification.mismatched_blocks")) ||
	     json_integer_value(cert_member(c, "verification.unreadable_blocks")))) {
		return error_set(err, -EBADMSG,
				 "record: says success but records failed blocks or a "
				 "verification that did not pass");
	}
	if (strcmp(result, "success") &&
	    strcmp(json_string_value(cert_member(c, "nist.level")), "none")) {
		return error_set(err, -EBADMSG, "record: a %s claims a NIST level", result);
	}
	return 0;
}

int cert_check(json_t *cert, EVP_PKEY *trusted, struct error *err)
{
	int r = sign_json_verify(cert, trusted, err);

	if (r < 0)
		return r;
	return check_record(cert, err);
}

static void print_value(FILE *f, const char *label, json_t *v)
{
	if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
		return;
	fprintf(f, "  %-22s ", label);
	if (json_is_string(v))
		fprintf(f, "%s\n", json_string_value(v));
	else if (json_is_integer(v))
		fprintf(f, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
	else if (json_is_real(v))
		fprintf(f, "%.1f\n", json_real_value(v));
	else if (json_is_boolean(v))
		fprintf(f, "%s\n", json_is_true(v) ? "yes" : "no");
	else
		fprintf(f, "(%zu entries)\n",
			json_is_array(v) ? json_array_size(v) : json_object_size(v));
}

static const struct {
	const char *label, *path;
} cert_rows[] = {
	{"Certificate", "id"},
	{"Summary", "summary"},
	{"Device", "device.path"},
	{"Device id", "device.id"},
	{"Model", "device.model"},
	{"Serial", "device.serial"},
	{"WWN", "device.wwn"},
	{"Backing file", "device.loop.backing_file"},
	{"Size (bytes)", "device.size"},
	{"Media", "device.media"},
	{"Method", "method.name"},
	{"Profile", "method.profile"},
	{"NIST SP 800-88 level", "nist.level"},
	{"Level of the method", "nist.method_level"},
	{"Why not higher", "nist.note"},
	{"Bytes written", "bytes_written"},
	{"Failed blocks", "errors.write_failed_blocks"},
	{"First write error", "errors.first_write_error"},
	{"Verification", "verification.method"},
	{"Verification result", "verification.result"},
	{"Bytes read back", "verification.bytes_read"},
	{"Mismatched blocks", "verification.mismatched_blocks"},
	{"Unreadable blocks", "verification.unreadable_blocks"},
	{"Resumes", "resumes"},
	{"Started", "started"},
	{"Ended", "ended"},
	{"Duration (ms)", "duration_ms"},
	{"Tool version", "tool.version"},
	{"Operator", "operator.name"},
	{"Host", "host.hostname"},
	{"Machine id", "host.machine_id"},
	{"Signed by key", "signature.key"},
};

void cert_print(json_t *c, FILE *f)
{
	const char *result = json_string_value(cert_member(c, "result"));
	const char *section = NULL;
	char sigs[1024];
	json_t *v;
	size_t i;

	fprintf(f, "CERTIFICATE OF SANITIZATION — %s\n",
		streq_ptr(result, "success")	   ? "SUCCESS"
		: streq_ptr(result, "interrupted") ? "INTERRUPTED: NOT SANITIZED"
						   : "FAILURE: NOT SANITIZED");
	for (i = 0; i < ELEMENTSOF(cert_rows); i++)
		print_value(f, cert_rows[i].label, cert_member(c, cert_rows[i].path));
	signatures_format(cert_member(c, "before.signatures"), sigs, sizeof(sigs));
	fprintf(f, "  %-22s %s\n", "Signatures before", sigs);
	if (json_is_array(cert_member(c, "signatures_after"))) {
		signatures_format(cert_member(c, "signatures_after"), sigs, sizeof(sigs));
		fprintf(f, "  %-22s %s\n", "Signatures after", sigs);
	}
	json_array_foreach (cert_member(c, "notes"), i, v)
		fprintf(f, "  Note: %s\n", json_string_value(v));
	fprintf(f, "NIST SP 800-88 Rev. 1 Appendix G\n");
	for (i = 0; i < ELEMENTSOF(appendix_g); i++) {
		if (appendix_g[i].section && appendix_g[i].section != section) {
			section = appendix_g[i].section;
			fprintf(f, " %s\n", section);
		}
		v = cert_member(cert_member(c, "sp800_88_rev1_appendix_g"), appendix_g[i].key);
		fprintf(f, "  %-33s %s\n", appendix_g[i].label,
			json_string_value(v) && json_string_value(v)[0] ? json_string_value(v)
									: "-");
	}
}
