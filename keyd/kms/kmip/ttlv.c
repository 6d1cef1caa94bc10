// SPDX-License-Identifier: GPL-2.0-or-later
/* TTLV, KMIP's binary encoding: a bounded encoder and a parser that checks every tag, type,
 * length, padding byte and nesting level against named limits and the tag dictionary before
 * anything reads a value. Never allocates, never logs, never copies a value out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ttlv.h"

/* The dictionary: KMIP's name and type of each tag keyd writes or reads (KMIP 1.4 section
 * 9.1.3.1 and the object and attribute sections), sorted by tag for bsearch. */
static const struct ttlv_tag_info {
	uint32_t tag;
	uint8_t type;
	const char *name;
} tag_infos[] = {
	{KMIP_TAG_ASYNC_CORRELATION, TTLV_BYTES, "Asynchronous Correlation Value"},
	{KMIP_TAG_ATTRIBUTE, TTLV_STRUCTURE, "Attribute"},
	{KMIP_TAG_ATTRIBUTE_INDEX, TTLV_INTEGER, "Attribute Index"},
	{KMIP_TAG_ATTRIBUTE_NAME, TTLV_TEXT, "Attribute Name"},
	{KMIP_TAG_ATTRIBUTE_VALUE, TTLV_ANY, "Attribute Value"},
	{KMIP_TAG_AUTHENTICATION, TTLV_STRUCTURE, "Authentication"},
	{KMIP_TAG_BATCH_COUNT, TTLV_INTEGER, "Batch Count"},
	{KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE, "Batch Item"},
	{KMIP_TAG_BLOCK_CIPHER_MODE, TTLV_ENUM, "Block Cipher Mode"},
	{KMIP_TAG_CREDENTIAL, TTLV_STRUCTURE, "Credential"},
	{KMIP_TAG_CREDENTIAL_TYPE, TTLV_ENUM, "Credential Type"},
	{KMIP_TAG_CREDENTIAL_VALUE, TTLV_ANY, "Credential Value"},
	{KMIP_TAG_CRYPTO_ALGORITHM, TTLV_ENUM, "Cryptographic Algorithm"},
	{KMIP_TAG_CRYPTO_LENGTH, TTLV_INTEGER, "Cryptographic Length"},
	{KMIP_TAG_CRYPTO_PARAMETERS, TTLV_STRUCTURE, "Cryptographic Parameters"},
	{KMIP_TAG_CRYPTO_USAGE_MASK, TTLV_INTEGER, "Cryptographic Usage Mask"},
	{KMIP_TAG_INITIAL_DATE, TTLV_DATETIME, "Initial Date"},
	{KMIP_TAG_IV_COUNTER_NONCE, TTLV_BYTES, "IV/Counter/Nonce"},
	{KMIP_TAG_KEY, TTLV_BYTES, "Key"},
	{KMIP_TAG_KEY_BLOCK, TTLV_STRUCTURE, "Key Block"},
	{KMIP_TAG_KEY_COMPRESSION_TYPE, TTLV_ENUM, "Key Compression Type"},
	{KMIP_TAG_KEY_FORMAT_TYPE, TTLV_ENUM, "Key Format Type"},
	{KMIP_TAG_KEY_MATERIAL, TTLV_ANY, "Key Material"}, /* bytes, or a Transparent structure */
	{KMIP_TAG_KEY_VALUE, TTLV_ANY, "Key Value"},	   /* a structure, bytes when wrapped */
	{KMIP_TAG_KEY_WRAPPING_DATA, TTLV_STRUCTURE, "Key Wrapping Data"},
	{KMIP_TAG_LINK, TTLV_STRUCTURE, "Link"},
	{KMIP_TAG_LINK_TYPE, TTLV_ENUM, "Link Type"},
	{KMIP_TAG_LINKED_OBJECT_ID, TTLV_TEXT, "Linked Object Identifier"},
	{KMIP_TAG_MAX_RESPONSE_SIZE, TTLV_INTEGER, "Maximum Response Size"},
	{KMIP_TAG_OBJECT_TYPE, TTLV_ENUM, "Object Type"},
	{KMIP_TAG_OPERATION, TTLV_ENUM, "Operation"},
	{KMIP_TAG_PADDING_METHOD, TTLV_ENUM, "Padding Method"},
	{KMIP_TAG_PROTOCOL_VERSION, TTLV_STRUCTURE, "Protocol Version"},
	{KMIP_TAG_PROTOCOL_VERSION_MAJOR, TTLV_INTEGER, "Protocol Version Major"},
	{KMIP_TAG_PROTOCOL_VERSION_MINOR, TTLV_INTEGER, "Protocol Version Minor"},
	{KMIP_TAG_REQUEST_HEADER, TTLV_STRUCTURE, "Request Header"},
	{KMIP_TAG_REQUEST_MESSAGE, TTLV_STRUCTURE, "Request Message"},
	{KMIP_TAG_REQUEST_PAYLOAD, TTLV_STRUCTURE, "Request Payload"},
	{KMIP_TAG_RESPONSE_HEADER, TTLV_STRUCTURE, "Response Header"},
	{KMIP_TAG_RESPONSE_MESSAGE, TTLV_STRUCTURE, "Response Message"},
	{KMIP_TAG_RESPONSE_PAYLOAD, TTLV_STRUCTURE, "Response Payload"},
	{KMIP_TAG_RESULT_MESSAGE, TTLV_TEXT, "Result Message"},
	{KMIP_TAG_RESULT_REASON, TTLV_ENUM, "Result Reason"},
	{KMIP_TAG_RESULT_STATUS, TTLV_ENUM, "Result Status"},
	{KMIP_TAG_STATE, TTLV_ENUM, "State"},
	{KMIP_TAG_SYMMETRIC_KEY, TTLV_STRUCTURE, "Symmetric Key"},
	{KMIP_TAG_TIME_STAMP, TTLV_DATETIME, "Time Stamp"},
	{KMIP_TAG_UNIQUE_BATCH_ITEM_ID, TTLV_BYTES, "Unique Batch Item ID"},
	{KMIP_TAG_UNIQUE_IDENTIFIER, TTLV_TEXT, "Unique Identifier"},
	{KMIP_TAG_USERNAME, TTLV_TEXT, "Username"},
	{KMIP_TAG_PASSWORD, TTLV_TEXT, "Password"},
	{KMIP_TAG_DATA, TTLV_BYTES, "Data"},
	{KMIP_TAG_TAG_LENGTH, TTLV_INTEGER, "Tag Length"},
	{KMIP_TAG_AEAD_ADDITIONAL_DATA, TTLV_BYTES, "Authenticated Encryption Additional Data"},
	{KMIP_TAG_AEAD_TAG, TTLV_BYTES, "Authenticated Encryption Tag"},
};

/* What each type's value may look like: a fixed length (0: variable) and whether a variable
 * length must be a multiple of 8 (Big Integer, Structure). */
static const struct ttlv_type_info {
	const char *name;
	uint32_t fixed_len;
	bool multiple_of_8;
} type_infos[_TTLV_TYPE_MAX] = {
	[TTLV_STRUCTURE] = {"Structure", 0, true}, [TTLV_INTEGER] = {"Integer", 4, false},
	[TTLV_LONG] = {"Long Integer", 8, false},  [TTLV_BIG_INTEGER] = {"Big Integer", 0, true},
	[TTLV_ENUM] = {"Enumeration", 4, false},   [TTLV_BOOL] = {"Boolean", 8, false},
	[TTLV_TEXT] = {"Text String", 0, false},   [TTLV_BYTES] = {"Byte String", 0, false},
	[TTLV_DATETIME] = {"Date-Time", 8, false}, [TTLV_INTERVAL] = {"Interval", 4, false},
};

static int tag_cmp(const void *key, const void *elem)
{
	uint32_t a = *(const uint32_t *)key, b = ((const struct ttlv_tag_info *)elem)->tag;

	return a < b ? -1 : a > b;
}

static const struct ttlv_tag_info *tag_info(uint32_t tag)
{
	return bsearch(&tag, tag_infos, ELEMENTSOF(tag_infos), sizeof(tag_infos[0]), tag_cmp);
}

const char *ttlv_tag_name(uint32_t tag)
{
	const struct ttlv_tag_info *t = tag_info(tag);

	return t ? t->name : NULL;
}

const char *ttlv_type_name(uint8_t type)
{
	return type > 0 && type < _TTLV_TYPE_MAX ? type_infos[type].name : "unknown type";
}

static size_t padded(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- encoding ---- */

void ttlv_enc_init(struct ttlv_enc *e, uint8_t *buf, size_t cap)
{
	*e = (struct ttlv_enc){.buf = buf, .cap = cap < TTLV_MSG_MAX ? cap : TTLV_MSG_MAX};
}

/* Reserves the header and padded value of one item; NULL (and e->err) if it does not fit. */
static uint8_t *put_item(struct ttlv_enc *e, uint32_t tag, uint8_t type, size_t len)
{
	uint8_t *p;

	if (e->err)
		return NULL;
	if (len > TTLV_VALUE_MAX && type != TTLV_STRUCTURE) {
		e->err = -EINVAL;
		return NULL;
	}
	if (e->cap - e->len < TTLV_HEADER_LEN || e->cap - e->len - TTLV_HEADER_LEN < padded(len)) {
		e->err = -E2BIG;
		return NULL;
	}
	p = e->buf + e->len;
	put_be(p, tag, 3);
	p[3] = type;
	put_be(p + 4, len, 4);
	memset(p + TTLV_HEADER_LEN, 0, padded(len));
	e->len += TTLV_HEADER_LEN + padded(len);
	return p + TTLV_HEADER_LEN;
}

void ttlv_begin(struct ttlv_enc *e, uint32_t tag)
{
	size_t at = e->len;

	if (!e->err && e->depth >= TTLV_DEPTH_MAX)
		e->err = -E2BIG;
	if (put_item(e, tag, TTLV_STRUCTURE, 0))
		e->open[e->depth++] = at;
}

void ttlv_end(struct ttlv_enc *e)
{
	size_t at;

	if (e->err)
		return;
	if (e->depth == 0) {
		e->err = -EINVAL;
		return;
	}
	at = e->open[--e->depth];
	put_be(e->buf + at + 4, e->len - at - TTLV_HEADER_LEN, 4);
}

static void put_number(struct ttlv_enc *e, uint32_t tag, uint8_t type, uint64_t v)
{
	unsigned len = type_infos[type].fixed_len;
	uint8_t *p = put_item(e, tag, type, len);

	if (p)
		put_be(p, v, len);
}

void ttlv_int(struct ttlv_enc *e, uint32_t tag, int32_t v)
{
	put_number(e, tag, TTLV_INTEGER, (uint32_t)v);
}

void ttlv_long(struct ttlv_enc *e, uint32_t tag, int64_t v)
{
	put_number(e, tag, TTLV_LONG, (uint64_t)v);
}

void ttlv_enum(struct ttlv_enc *e, uint32_t tag, uint32_t v)
{
	put_number(e, tag, TTLV_ENUM, v);
}

void ttlv_bool(struct ttlv_enc *e, uint32_t tag, bool v)
{
	put_number(e, tag, TTLV_BOOL, v ? 1 : 0);
}

void ttlv_datetime(struct ttlv_enc *e, uint32_t tag, int64_t unix_s)
{
	put_number(e, tag, TTLV_DATETIME, (uint64_t)unix_s);
}

void ttlv_interval(struct ttlv_enc *e, uint32_t tag, uint32_t seconds)
{
	put_number(e, tag, TTLV_INTERVAL, seconds);
}

void ttlv_bytes(struct ttlv_enc *e, uint32_t tag, const void *p, size_t n)
{
	uint8_t *d = put_item(e, tag, TTLV_BYTES, n);

	if (d && n)
		memcpy(d, p, n);
}

void ttlv_text(struct ttlv_enc *e, uint32_t tag, const char *s)
{
	size_t n = strlen(s);
	uint8_t *d = put_item(e, tag, TTLV_TEXT, n);

	if (d && n)
		memcpy(d, s, n);
}

int ttlv_finish(struct ttlv_enc *e, size_t *ret_len)
{
	if (e->err)
		return e->err;
	if (e->depth)
		return -EINVAL;
	*ret_len = e->len;
	return 0;
}

/* ---- parsing ---- */

struct parser {
	const uint8_t *base;
	struct ttlv_doc *doc;
	struct error *e;
};

static int parse_fail(struct parser *ps, int r, const uint8_t *at, uint32_t tag, const char *fmt,
		      ...) _printf_(5, 6);
static int parse_fail(struct parser *ps, int r, const uint8_t *at, uint32_t tag, const char *fmt,
		      ...)
{
	const char *name = ttlv_tag_name(tag);
	char what[ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!tag)
		return error_set(ps->e, r, "byte %zu: %s", (size_t)(at - ps->base), what);
	if (name)
		return error_set(ps->e, r, "byte %zu: %s (0x%06X): %s", (size_t)(at - ps->base),
				 name, tag, what);
	return error_set(ps->e, r, "byte %zu: tag 0x%06X: %s", (size_t)(at - ps->base), tag, what);
}

static bool tag_in_range(uint32_t tag)
{
	/* 0x42xxxx: KMIP's own tags; 0x54xxxx: extensions. */
	return (tag >> 16) == 0x42 || (tag >> 16) == 0x54;
}

static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Checks the value of a scalar item and stores its number. */
static int parse_scalar(struct parser *ps, const uint8_t *at, struct ttlv_item *it)
{
	const struct ttlv_type_info *ti = &type_infos[it->type];

	if (ti->fixed_len && it->len != ti->fixed_len)
		return parse_fail(ps, -EBADMSG, at, it->tag, "%s of %u bytes, not %u", ti->name,
				  it->len, ti->fixed_len);
	if (!ti->fixed_len && it->len > TTLV_VALUE_MAX)
		return parse_fail(ps, -E2BIG, at, it->tag,
				  "%s of %u bytes, more than TTLV_VALUE_MAX (%d)", ti->name,
				  it->len, TTLV_VALUE_MAX);
	if (ti->multiple_of_8 && (it->len == 0 || it->len % 8))
		return parse_fail(ps, -EBADMSG, at, it->tag, "%s of %u bytes, not a multiple of 8",
				  ti->name, it->len);
	if (!zeros(it->value + it->len, padded(it->len) - it->len))
		return parse_fail(ps, -EBADMSG, at, it->tag, "padding bytes are not zero");
	switch (it->type) {
	case TTLV_INTEGER:
		it->num = (int32_t)get_be(it->value, 4);
		break;
	case TTLV_ENUM:
	case TTLV_INTERVAL:
		it->num = (int64_t)get_be(it->value, 4);
		break;
	case TTLV_LONG:
	case TTLV_DATETIME:
		it->num = (int64_t)get_be(it->value, 8);
		break;
	case TTLV_BOOL:
		it->num = (int64_t)get_be(it->value, 8);
		if (it->num != 0 && it->num != 1)
			return parse_fail(ps, -EBADMSG, at, it->tag, "Boolean neither 0 nor 1");
		break;
	case TTLV_TEXT:
		if (memchr(it->value, 0, it->len))
			return parse_fail(ps, -EBADMSG, at, it->tag, "Text String with a NUL byte");
		break;
	default:
		break;
	}
	return 0;
}

/* Parses the items in [p, end) as the children of @parent (SIZE_MAX: the top level, which
 * must be exactly one item). Recursion is bounded by TTLV_DEPTH_MAX. */
static int parse_items(struct parser *ps, const uint8_t *p, const uint8_t *end, size_t parent,
		       unsigned depth)
{
	struct ttlv_doc *doc = ps->doc;
	size_t prev = 0;
	int r;

	if (depth >= TTLV_DEPTH_MAX)
		return parse_fail(ps, -E2BIG, p, 0, "nested deeper than TTLV_DEPTH_MAX (%d)",
				  TTLV_DEPTH_MAX);
	while (p < end) {
		const struct ttlv_tag_info *known;
		struct ttlv_item *it;
		size_t idx = doc->n, span;

		if ((size_t)(end - p) < TTLV_HEADER_LEN)
			return parse_fail(ps, -EBADMSG, p, 0, "truncated item header");
		if (doc->n >= TTLV_ITEMS_MAX)
			return parse_fail(ps, -E2BIG, p, 0, "more items than TTLV_ITEMS_MAX (%d)",
					  TTLV_ITEMS_MAX);
		it = &doc->items[doc->n++];
		*it = (struct ttlv_item){.tag = (uint32_t)get_be(p, 3),
					 .type = p[3],
					 .len = (uint32_t)get_be(p + 4, 4),
					 .value = p + TTLV_HEADER_LEN,
					 .depth = (uint8_t)depth};
		if (!tag_in_range(it->tag))
			return parse_fail(ps, -EBADMSG, p, it->tag,
					  "tag outside KMIP's ranges (0x42xxxx, 0x54xxxx)");
		if (it->type == TTLV_ANY || it->type >= _TTLV_TYPE_MAX)
			return parse_fail(ps, -EBADMSG, p, it->tag, "unknown item type 0x%02X",
					  it->type);
		known = tag_info(it->tag);
		if (known && known->type != TTLV_ANY && known->type != it->type)
			return parse_fail(ps, -EBADMSG, p, it->tag, "type %s, expected %s",
					  ttlv_type_name(it->type), ttlv_type_name(known->type));
		if (it->len > (size_t)(end - p) - TTLV_HEADER_LEN ||
		    padded(it->len) > (size_t)(end - p) - TTLV_HEADER_LEN)
			return parse_fail(ps, -EBADMSG, p, it->tag,
					  "length %u runs past its enclosing item", it->len);
		span = TTLV_HEADER_LEN + padded(it->len);
		if (it->type == TTLV_STRUCTURE) {
			if (it->len % 8)
				return parse_fail(ps, -EBADMSG, p, it->tag,
						  "structure length %u not a multiple of 8",
						  it->len);
			r = parse_items(ps, it->value, it->value + it->len, idx, depth + 1);
		} else {
			r = parse_scalar(ps, p, it);
		}
		if (r < 0)
			return r;
		/* Link it in: first child of the parent, or next of the previous sibling. */
		if (prev)
			doc->items[prev].next = (uint16_t)idx;
		else if (parent != SIZE_MAX)
			doc->items[parent].child = (uint16_t)idx;
		prev = idx;
		p += span;
		if (parent == SIZE_MAX && p != end)
			return parse_fail(ps, -EBADMSG, p, 0, "%zu bytes after the message",
					  (size_t)(end - p));
	}
	return 0;
}

int ttlv_parse(const uint8_t *p, size_t n, struct ttlv_doc *doc, struct error *e)
{
	struct parser ps = {.base = p, .doc = doc, .e = e};

	doc->n = 0;
	if (n > TTLV_MSG_MAX)
		return parse_fail(&ps, -E2BIG, p, 0, "%zu bytes, more than TTLV_MSG_MAX (%d)", n,
				  TTLV_MSG_MAX);
	if (n < TTLV_HEADER_LEN)
		return parse_fail(&ps, -EBADMSG, p, 0, "%zu bytes, shorter than one item", n);
	return parse_items(&ps, p, p + n, SIZE_MAX, 0);
}

const struct ttlv_item *ttlv_children(const struct ttlv_doc *doc, const struct ttlv_item *parent,
				      const struct ttlv_item *prev)
{
	uint16_t i;

	if (!parent || parent->type != TTLV_STRUCTURE)
		return NULL;
	i = prev ? prev->next : parent->child;
	return i ? &doc->items[i] : NULL;
}

const struct ttlv_item *ttlv_child(const struct ttlv_doc *doc, const struct ttlv_item *parent,
				   uint32_t tag)
{
	for (const struct ttlv_item *c = ttlv_children(doc, parent, NULL); c;
	     c = ttlv_children(doc, parent, c))
		if (c->tag == tag)
			return c;
	return NULL;
}

const struct ttlv_item *ttlv_next_of(const struct ttlv_doc *doc, const struct ttlv_item *it)
{
	for (const struct ttlv_item *c = it->next ? &doc->items[it->next] : NULL; c;
	     c = c->next ? &doc->items[c->next] : NULL)
		if (c->tag == it->tag)
			return c;
	return NULL;
}
