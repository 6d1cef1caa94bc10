// SPDX-License-Identifier: GPL-2.0-or-later
/* The KMIP messages keyd speaks, in the field order of KMIP 1.4 (sections 4 and 7), and the
 * checks on their replies. Builds and reads; never sends, logs or decides what a failure
 * means. Values read from a reply stay in the reply buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kmip.h"
#include "macro.h"

static const struct kmip_name {
	uint32_t value;
	const char *name;
} operation_names[] =
	{
		{KMIP_OP_CREATE, "Create"},
		{KMIP_OP_REKEY, "Re-key"},
		{KMIP_OP_GET, "Get"},
		{KMIP_OP_GET_ATTRIBUTES, "Get Attributes"},
		{KMIP_OP_ACTIVATE, "Activate"},
		{KMIP_OP_REVOKE, "Revoke"},
		{KMIP_OP_DESTROY, "Destroy"},
		{KMIP_OP_QUERY, "Query"},
		{KMIP_OP_DISCOVER_VERSIONS, "Discover Versions"},
		{KMIP_OP_ENCRYPT, "Encrypt"},
		{KMIP_OP_DECRYPT, "Decrypt"},
},
  reason_names[] =
	  {
		  {KMIP_REASON_ITEM_NOT_FOUND, "Item Not Found"},
		  {KMIP_REASON_RESPONSE_TOO_LARGE, "Response Too Large"},
		  {KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL, "Authentication Not Successful"},
		  {KMIP_REASON_INVALID_MESSAGE, "Invalid Message"},
		  {KMIP_REASON_OPERATION_NOT_SUPPORTED, "Operation Not Supported"},
		  {KMIP_REASON_MISSING_DATA, "Missing Data"},
		  {KMIP_REASON_INVALID_FIELD, "Invalid Field"},
		  {KMIP_REASON_FEATURE_NOT_SUPPORTED, "Feature Not Supported"},
		  {KMIP_REASON_OPERATION_CANCELED, "Operation Canceled By Requester"},
		  {KMIP_REASON_CRYPTOGRAPHIC_FAILURE, "Cryptographic Failure"},
		  {KMIP_REASON_ILLEGAL_OPERATION, "Illegal Operation"},
		  {KMIP_REASON_PERMISSION_DENIED, "Permission Denied"},
		  {KMIP_REASON_OBJECT_ARCHIVED, "Object archived"},
		  {KMIP_REASON_INDEX_OUT_OF_BOUNDS, "Index Out of Bounds"},
		  {KMIP_REASON_NAMESPACE_NOT_SUPPORTED, "Application Namespace Not Supported"},
		  {KMIP_REASON_KEY_FORMAT_NOT_SUPPORTED, "Key Format Type Not Supported"},
		  {KMIP_REASON_KEY_COMPRESSION_NOT_SUPPORTED, "Key Compression Type Not Supported"},
		  {KMIP_REASON_ENCODING_OPTION_ERROR, "Encoding Option Error"},
		  {KMIP_REASON_KEY_VALUE_NOT_PRESENT, "Key Value Not Present"},
		  {KMIP_REASON_ATTESTATION_REQUIRED, "Attestation Required"},
		  {KMIP_REASON_ATTESTATION_FAILED, "Attestation Failed"},
		  {KMIP_REASON_SENSITIVE, "Sensitive"},
		  {KMIP_REASON_NOT_EXTRACTABLE, "Not Extractable"},
		  {KMIP_REASON_OBJECT_ALREADY_EXISTS, "Object Already Exists"},
		  {KMIP_REASON_GENERAL_FAILURE, "General Failure"},
},
  state_names[] = {
	  {KMIP_STATE_PRE_ACTIVE, "Pre-Active"},
	  {KMIP_STATE_ACTIVE, "Active"},
	  {KMIP_STATE_DEACTIVATED, "Deactivated"},
	  {KMIP_STATE_COMPROMISED, "Compromised"},
	  {KMIP_STATE_DESTROYED, "Destroyed"},
	  {KMIP_STATE_DESTROYED_COMPROMISED, "Destroyed Compromised"},
};

static const char *name_of(const struct kmip_name *t, size_t n, uint32_t v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == v)
			return t[i].name;
	return NULL;
}

const char *kmip_operation_name(uint32_t op)
{
	return name_of(operation_names, ELEMENTSOF(operation_names), op);
}

const char *kmip_reason_name(uint32_t reason)
{
	return name_of(reason_names, ELEMENTSOF(reason_names), reason);
}

const char *kmip_state_name(uint32_t state)
{
	return name_of(state_names, ELEMENTSOF(state_names), state);
}

bool kmip_uid_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KMIP_UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

/* ---- requests ---- */

static void put_version(struct ttlv_enc *e, const struct kmip_version *v)
{
	ttlv_begin(e, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_int(e, KMIP_TAG_PROTOCOL_VERSION_MAJOR, v->major);
	ttlv_int(e, KMIP_TAG_PROTOCOL_VERSION_MINOR, v->minor);
	ttlv_end(e);
}

/* Request Message, Request Header, one Batch Item with @op, and an open Request Payload. */
static void begin_request(struct ttlv_enc *e, const struct kmip_header *h, uint32_t op)
{
	ttlv_begin(e, KMIP_TAG_REQUEST_MESSAGE);
	ttlv_begin(e, KMIP_TAG_REQUEST_HEADER);
	put_version(e, &h->version);
	if (h->username) {
		ttlv_begin(e, KMIP_TAG_AUTHENTICATION);
		ttlv_begin(e, KMIP_TAG_CREDENTIAL);
		ttlv_enum(e, KMIP_TAG_CREDENTIAL_TYPE, KMIP_CREDENTIAL_USER_PASS);
		ttlv_begin(e, KMIP_TAG_CREDENTIAL_VALUE);
		ttlv_text(e, KMIP_TAG_USERNAME, h->username);
		if (h->password)
			ttlv_text(e, KMIP_TAG_PASSWORD, h->password);
		ttlv_end(e);
		ttlv_end(e);
		ttlv_end(e);
	}
	ttlv_int(e, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(e);
	ttlv_begin(e, KMIP_TAG_BATCH_ITEM);
	ttlv_enum(e, KMIP_TAG_OPERATION, op);
	ttlv_begin(e, KMIP_TAG_REQUEST_PAYLOAD);
}

static void end_request(struct ttlv_enc *e)
{
	ttlv_end(e); /* Request Payload */
	ttlv_end(e); /* Batch Item */
	ttlv_end(e); /* Request Message */
}

void kmip_req_discover_versions(struct ttlv_enc *e, const struct kmip_header *h,
				const struct kmip_version *versions, size_t n)
{
	begin_request(e, h, KMIP_OP_DISCOVER_VERSIONS);
	for (size_t i = 0; i < n; i++)
		put_version(e, &versions[i]);
	end_request(e);
}

void kmip_req_get_attributes(struct ttlv_enc *e, const struct kmip_header *h, const char *uid,
			     const char *const *names)
{
	begin_request(e, h, KMIP_OP_GET_ATTRIBUTES);
	ttlv_text(e, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
	for (size_t i = 0; names && names[i]; i++)
		ttlv_text(e, KMIP_TAG_ATTRIBUTE_NAME, names[i]);
	end_request(e);
}

void kmip_req_get(struct ttlv_enc *e, const struct kmip_header *h, const char *uid)
{
	begin_request(e, h, KMIP_OP_GET);
	ttlv_text(e, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
	ttlv_enum(e, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_FORMAT_RAW);
	end_request(e);
}

/* Cryptographic Parameters in the order of KMIP 1.4 section 3.6. */
static void put_crypt_params(struct ttlv_enc *e, const struct kmip_crypt *c)
{
	ttlv_begin(e, KMIP_TAG_CRYPTO_PARAMETERS);
	ttlv_enum(e, KMIP_TAG_BLOCK_CIPHER_MODE, c->mode);
	if (c->mode == KMIP_MODE_CBC)
		ttlv_enum(e, KMIP_TAG_PADDING_METHOD, KMIP_PADDING_PKCS5);
	ttlv_enum(e, KMIP_TAG_CRYPTO_ALGORITHM, KMIP_ALGORITHM_AES);
	if (c->mode == KMIP_MODE_GCM)
		ttlv_int(e, KMIP_TAG_TAG_LENGTH, (int32_t)c->tag_len);
	ttlv_end(e);
}

static void put_crypt(struct ttlv_enc *e, const struct kmip_header *h, uint32_t op,
		      const struct kmip_crypt *c)
{
	begin_request(e, h, op);
	ttlv_text(e, KMIP_TAG_UNIQUE_IDENTIFIER, c->uid);
	put_crypt_params(e, c);
	ttlv_bytes(e, KMIP_TAG_DATA, c->data, c->data_len);
	if (c->iv_len)
		ttlv_bytes(e, KMIP_TAG_IV_COUNTER_NONCE, c->iv, c->iv_len);
	if (c->aad_len)
		ttlv_bytes(e, KMIP_TAG_AEAD_ADDITIONAL_DATA, c->aad, c->aad_len);
	if (op == KMIP_OP_DECRYPT && c->tag && c->tag_len)
		ttlv_bytes(e, KMIP_TAG_AEAD_TAG, c->tag, c->tag_len);
	end_request(e);
}

void kmip_req_encrypt(struct ttlv_enc *e, const struct kmip_header *h, const struct kmip_crypt *c)
{
	put_crypt(e, h, KMIP_OP_ENCRYPT, c);
}

void kmip_req_decrypt(struct ttlv_enc *e, const struct kmip_header *h, const struct kmip_crypt *c)
{
	put_crypt(e, h, KMIP_OP_DECRYPT, c);
}

/* ---- replies ---- */

static int bad(struct error *e, const char *fmt, ...) _printf_(2, 3);
static int bad(struct error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_setv(e, -EBADMSG, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* The child of @parent with @tag and @type; NULL (and a message) if missing and @required. */
static const struct ttlv_item *field(const struct ttlv_doc *d, const struct ttlv_item *parent,
				     uint32_t tag, bool required, int *r, struct error *e)
{
	const struct ttlv_item *it = ttlv_child(d, parent, tag);

	if (!it && required && *r >= 0)
		*r = bad(e, "%s: missing %s", ttlv_tag_name(parent->tag), ttlv_tag_name(tag));
	return it;
}

static void printable(char *buf, size_t size, const uint8_t *p, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < size; i++)
		buf[j++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	buf[j] = 0;
}

static int read_version(const struct ttlv_doc *d, const struct ttlv_item *pv,
			struct kmip_version *v, struct error *e)
{
	const struct ttlv_item *maj, *min;
	int r = 0;

	maj = field(d, pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, true, &r, e);
	min = field(d, pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, true, &r, e);
	if (r < 0)
		return r;
	*v = (struct kmip_version){(int32_t)maj->num, (int32_t)min->num};
	return 0;
}

int kmip_parse_response(const uint8_t *p, size_t n, uint32_t op, struct kmip_response *r,
			struct error *e)
{
	const struct ttlv_doc *d = &r->doc;
	const struct ttlv_item *msg, *hdr, *pv, *ts, *count, *item, *o, *st, *rs, *rm;
	int q;

	*r = (struct kmip_response){0};
	q = ttlv_parse(p, n, &r->doc, e);
	if (q < 0)
		return q;
	msg = &d->items[0];
	if (msg->tag != KMIP_TAG_RESPONSE_MESSAGE || msg->type != TTLV_STRUCTURE)
		return bad(e, "not a Response Message (tag 0x%06X)", msg->tag);
	hdr = field(d, msg, KMIP_TAG_RESPONSE_HEADER, true, &q, e);
	pv = hdr ? field(d, hdr, KMIP_TAG_PROTOCOL_VERSION, true, &q, e) : NULL;
	ts = hdr ? field(d, hdr, KMIP_TAG_TIME_STAMP, true, &q, e) : NULL;
	count = hdr ? field(d, hdr, KMIP_TAG_BATCH_COUNT, true, &q, e) : NULL;
	item = field(d, msg, KMIP_TAG_BATCH_ITEM, true, &q, e);
	if (q < 0)
		return q;
	q = read_version(d, pv, &r->version, e);
	if (q < 0)
		return q;
	r->time_stamp = ts->num;
	if (count->num != 1 || ttlv_next_of(d, item))
		return bad(e, "Batch Count %lld: keyd sent one Batch Item", (long long)count->num);
	o = field(d, item, KMIP_TAG_OPERATION, false, &q, e);
	st = field(d, item, KMIP_TAG_RESULT_STATUS, true, &q, e);
	if (q < 0)
		return q;
	if (o && o->num != op)
		return bad(e, "a reply to %s, not to %s",
			   kmip_operation_name((uint32_t)o->num) ?: "another operation",
			   kmip_operation_name(op) ?: "the request");
	r->operation = o ? (uint32_t)o->num : 0;
	r->status = (uint32_t)st->num;
	rs = ttlv_child(d, item, KMIP_TAG_RESULT_REASON);
	rm = ttlv_child(d, item, KMIP_TAG_RESULT_MESSAGE);
	r->reason = rs ? (uint32_t)rs->num : 0;
	if (rm)
		printable(r->message, sizeof(r->message), rm->value, rm->len);
	r->payload = ttlv_child(d, item, KMIP_TAG_RESPONSE_PAYLOAD);
	if (r->status == KMIP_STATUS_SUCCESS && !r->payload && op != KMIP_OP_DISCOVER_VERSIONS)
		return bad(e, "a successful %s without a Response Payload",
			   kmip_operation_name(op) ?: "reply");
	return 0;
}

int kmip_resp_versions(const struct kmip_response *r, struct kmip_version *ret, size_t max,
		       size_t *ret_n, struct error *e)
{
	const struct ttlv_doc *d = &r->doc;
	size_t n = 0;
	int q;

	for (const struct ttlv_item *v =
		     r->payload ? ttlv_child(d, r->payload, KMIP_TAG_PROTOCOL_VERSION) : NULL;
	     v; v = ttlv_next_of(d, v)) {
		if (n >= max)
			return bad(e, "more than %zu protocol versions", max);
		q = read_version(d, v, &ret[n++], e);
		if (q < 0)
			return q;
	}
	*ret_n = n;
	return 0;
}

/* The reply's Unique Identifier must be the one asked about (when @uid is given). */
static int check_uid(const struct ttlv_doc *d, const struct ttlv_item *payload, const char *uid,
		     char *copy, struct error *e)
{
	const struct ttlv_item *u = ttlv_child(d, payload, KMIP_TAG_UNIQUE_IDENTIFIER);

	if (!u)
		return uid ? bad(e, "Response Payload: missing Unique Identifier") : 0;
	if (u->len > KMIP_UID_MAX)
		return bad(e, "Unique Identifier longer than %d characters", KMIP_UID_MAX);
	if (uid && (u->len != strlen(uid) || memcmp(u->value, uid, u->len) != 0))
		return bad(e, "a reply about another object than %s", uid);
	if (copy) {
		memcpy(copy, u->value, u->len);
		copy[u->len] = 0;
	}
	return 0;
}

/* The attributes keyd reads, with the type of their Attribute Value. */
enum attr_id {
	ATTR_STATE,
	ATTR_ALGORITHM,
	ATTR_LENGTH,
	ATTR_USAGE,
	ATTR_INITIAL_DATE,
	ATTR_LINK
};
static const struct {
	const char *name;
	uint8_t type;
} attr_types[] = {
	[ATTR_STATE] = {"State", TTLV_ENUM},
	[ATTR_ALGORITHM] = {"Cryptographic Algorithm", TTLV_ENUM},
	[ATTR_LENGTH] = {"Cryptographic Length", TTLV_INTEGER},
	[ATTR_USAGE] = {"Cryptographic Usage Mask", TTLV_INTEGER},
	[ATTR_INITIAL_DATE] = {"Initial Date", TTLV_DATETIME},
	[ATTR_LINK] = {"Link", TTLV_STRUCTURE},
};

static int read_link(const struct ttlv_doc *d, const struct ttlv_item *v, struct kmip_attrs *a,
		     struct error *e)
{
	const struct ttlv_item *type, *id;
	int q = 0;

	type = field(d, v, KMIP_TAG_LINK_TYPE, true, &q, e);
	id = field(d, v, KMIP_TAG_LINKED_OBJECT_ID, true, &q, e);
	if (q < 0)
		return q;
	if (type->num != KMIP_LINK_REPLACEMENT)
		return 0;
	if (id->len == 0 || id->len > KMIP_UID_MAX)
		return bad(e, "Link: Linked Object Identifier of %u characters", id->len);
	memcpy(a->replacement, id->value, id->len);
	a->replacement[id->len] = 0;
	if (!kmip_uid_valid(a->replacement))
		return bad(e, "Link: Linked Object Identifier is not printable");
	return 0;
}

int kmip_resp_attributes(const struct kmip_response *r, const char *uid, struct kmip_attrs *a,
			 struct error *e)
{
	const struct ttlv_doc *d = &r->doc;
	int q;

	*a = (struct kmip_attrs){0};
	if (!r->payload)
		return bad(e, "Get Attributes: no Response Payload");
	q = check_uid(d, r->payload, uid, a->uid, e);
	if (q < 0)
		return q;
	for (const struct ttlv_item *at = ttlv_child(d, r->payload, KMIP_TAG_ATTRIBUTE); at;
	     at = ttlv_next_of(d, at)) {
		const struct ttlv_item *name, *value;
		char nm[64];
		size_t id;

		name = field(d, at, KMIP_TAG_ATTRIBUTE_NAME, true, &q, e);
		value = field(d, at, KMIP_TAG_ATTRIBUTE_VALUE, true, &q, e);
		if (q < 0)
			return q;
		printable(nm, sizeof(nm), name->value, name->len);
		for (id = 0; id < ELEMENTSOF(attr_types); id++)
			if (name->len == strlen(attr_types[id].name) &&
			    memcmp(name->value, attr_types[id].name, name->len) == 0)
				break;
		if (id == ELEMENTSOF(attr_types))
			continue; /* an attribute keyd did not ask for */
		if (value->type != attr_types[id].type)
			return bad(e, "attribute %s: type %s, expected %s", nm,
				   ttlv_type_name(value->type),
				   ttlv_type_name(attr_types[id].type));
		switch ((enum attr_id)id) {
		case ATTR_STATE:
			a->has_state = true;
			a->state = (uint32_t)value->num;
			break;
		case ATTR_ALGORITHM:
			a->has_algorithm = true;
			a->algorithm = (uint32_t)value->num;
			break;
		case ATTR_LENGTH:
			a->has_length = true;
			a->length = (int32_t)value->num;
			break;
		case ATTR_USAGE:
			a->has_usage = true;
			a->usage = (int32_t)value->num;
			break;
		case ATTR_INITIAL_DATE:
			a->has_initial_date = true;
			a->initial_date = value->num;
			break;
		case ATTR_LINK:
			q = read_link(d, value, a, e);
			if (q < 0)
				return q;
			break;
		}
	}
	return 0;
}

int kmip_resp_key(const struct kmip_response *r, const char *uid, const uint8_t **ret_key,
		  size_t *ret_len, uint32_t *ret_algorithm, struct error *e)
{
	const struct ttlv_doc *d = &r->doc;
	const struct ttlv_item *ot, *sk, *kb, *fmt, *kv, *km, *alg;
	int q = 0;

	if (!r->payload)
		return bad(e, "Get: no Response Payload");
	ot = field(d, r->payload, KMIP_TAG_OBJECT_TYPE, true, &q, e);
	if (q < 0)
		return q;
	if (ot->num != KMIP_OBJECT_SYMMETRIC_KEY)
		return bad(e, "the object is not a Symmetric Key (Object Type %lld)",
			   (long long)ot->num);
	q = check_uid(d, r->payload, uid, NULL, e);
	sk = field(d, r->payload, KMIP_TAG_SYMMETRIC_KEY, true, &q, e);
	kb = sk ? field(d, sk, KMIP_TAG_KEY_BLOCK, true, &q, e) : NULL;
	fmt = kb ? field(d, kb, KMIP_TAG_KEY_FORMAT_TYPE, true, &q, e) : NULL;
	kv = kb ? field(d, kb, KMIP_TAG_KEY_VALUE, true, &q, e) : NULL;
	alg = kb ? field(d, kb, KMIP_TAG_CRYPTO_ALGORITHM, true, &q, e) : NULL;
	if (q < 0)
		return q;
	if (ttlv_child(d, kb, KMIP_TAG_KEY_WRAPPING_DATA) || kv->type != TTLV_STRUCTURE)
		return bad(e, "the server returned the key wrapped; keyd asked for it "
			      "in the clear (Raw)");
	if (ttlv_child(d, kb, KMIP_TAG_KEY_COMPRESSION_TYPE))
		return bad(e, "the server returned a compressed key");
	km = field(d, kv, KMIP_TAG_KEY_MATERIAL, true, &q, e);
	if (q < 0)
		return q;
	if (fmt->num == KMIP_FORMAT_TRANSPARENT_SYM && km->type == TTLV_STRUCTURE)
		km = field(d, km, KMIP_TAG_KEY, true, &q, e);
	else if (fmt->num != KMIP_FORMAT_RAW || km->type != TTLV_BYTES)
		return bad(e,
			   "Key Format Type %lld with a %s Key Material: keyd takes "
			   "Raw bytes",
			   (long long)fmt->num, ttlv_type_name(km->type));
	if (q < 0)
		return q;
	*ret_key = km->value;
	*ret_len = km->len;
	*ret_algorithm = (uint32_t)alg->num;
	return 0;
}

int kmip_resp_crypt(const struct kmip_response *r, const char *uid, struct kmip_crypt_reply *ret,
		    struct error *e)
{
	const struct ttlv_doc *d = &r->doc;
	const struct ttlv_item *data, *iv, *tag;
	int q = 0;

	*ret = (struct kmip_crypt_reply){0};
	if (!r->payload)
		return bad(e, "no Response Payload");
	q = check_uid(d, r->payload, uid, NULL, e);
	data = field(d, r->payload, KMIP_TAG_DATA, true, &q, e);
	if (q < 0)
		return q;
	iv = ttlv_child(d, r->payload, KMIP_TAG_IV_COUNTER_NONCE);
	tag = ttlv_child(d, r->payload, KMIP_TAG_AEAD_TAG);
	ret->data = data->value;
	ret->data_len = data->len;
	if (iv) {
		ret->iv = iv->value;
		ret->iv_len = iv->len;
	}
	if (tag) {
		ret->tag = tag->value;
		ret->tag_len = tag->len;
	}
	return 0;
}
