/* SPDX-License-Identifier: GPL-2.0-or-later */
/* KMIP's binary encoding, TTLV (tag, type, length, value; KMIP 1.4 section 9.1): a bounded
 * encoder into a caller's buffer and a checked parser into a flat item table, with the
 * dictionary of the tags keyd speaks. Never allocates key material, never logs; parsed values
 * point into the caller's buffer (secure memory when it holds a key). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A whole message, header included: KMIP replies to keyd are a few hundred bytes. */
#define TTLV_MSG_MAX (64 * 1024)
/* Request Message > Batch Item > Payload > Symmetric Key > Key Block > Key Value > Key Material
 * > Key is 8 levels; KMIP's deepest structures stay below this. */
#define TTLV_DEPTH_MAX 12
#define TTLV_ITEMS_MAX 512
/* One Text String, Byte String or Big Integer. */
#define TTLV_VALUE_MAX	16384
#define TTLV_HEADER_LEN 8

enum ttlv_type {
	TTLV_ANY = 0, /* dictionary only: the type depends on the context (Attribute Value) */
	TTLV_STRUCTURE = 0x01,
	TTLV_INTEGER = 0x02,
	TTLV_LONG = 0x03,
	TTLV_BIG_INTEGER = 0x04,
	TTLV_ENUM = 0x05,
	TTLV_BOOL = 0x06,
	TTLV_TEXT = 0x07,
	TTLV_BYTES = 0x08,
	TTLV_DATETIME = 0x09,
	TTLV_INTERVAL = 0x0A,
	_TTLV_TYPE_MAX,
};

/* The tags keyd writes or reads (KMIP 1.4 section 9.1.3.1). */
enum kmip_tag {
	KMIP_TAG_ASYNC_CORRELATION = 0x420006,
	KMIP_TAG_ATTRIBUTE = 0x420008,
	KMIP_TAG_ATTRIBUTE_INDEX = 0x420009,
	KMIP_TAG_ATTRIBUTE_NAME = 0x42000A,
	KMIP_TAG_ATTRIBUTE_VALUE = 0x42000B,
	KMIP_TAG_AUTHENTICATION = 0x42000C,
	KMIP_TAG_BATCH_COUNT = 0x42000D,
	KMIP_TAG_BATCH_ITEM = 0x42000F,
	KMIP_TAG_BLOCK_CIPHER_MODE = 0x420011,
	KMIP_TAG_CREDENTIAL = 0x420023,
	KMIP_TAG_CREDENTIAL_TYPE = 0x420024,
	KMIP_TAG_CREDENTIAL_VALUE = 0x420025,
	KMIP_TAG_CRYPTO_ALGORITHM = 0x420028,
	KMIP_TAG_CRYPTO_LENGTH = 0x42002A,
	KMIP_TAG_CRYPTO_PARAMETERS = 0x42002B,
	KMIP_TAG_CRYPTO_USAGE_MASK = 0x42002C,
	KMIP_TAG_INITIAL_DATE = 0x420039,
	KMIP_TAG_IV_COUNTER_NONCE = 0x42003D,
	KMIP_TAG_KEY = 0x42003F,
	KMIP_TAG_KEY_BLOCK = 0x420040,
	KMIP_TAG_KEY_COMPRESSION_TYPE = 0x420041,
	KMIP_TAG_KEY_FORMAT_TYPE = 0x420042,
	KMIP_TAG_KEY_MATERIAL = 0x420043,
	KMIP_TAG_KEY_VALUE = 0x420045,
	KMIP_TAG_KEY_WRAPPING_DATA = 0x420046,
	KMIP_TAG_LINK = 0x42004A,
	KMIP_TAG_LINK_TYPE = 0x42004B,
	KMIP_TAG_LINKED_OBJECT_ID = 0x42004C,
	KMIP_TAG_MAX_RESPONSE_SIZE = 0x420050,
	KMIP_TAG_OBJECT_TYPE = 0x420057,
	KMIP_TAG_OPERATION = 0x42005C,
	KMIP_TAG_PADDING_METHOD = 0x42005F,
	KMIP_TAG_PROTOCOL_VERSION = 0x420069,
	KMIP_TAG_PROTOCOL_VERSION_MAJOR = 0x42006A,
	KMIP_TAG_PROTOCOL_VERSION_MINOR = 0x42006B,
	KMIP_TAG_REQUEST_HEADER = 0x420077,
	KMIP_TAG_REQUEST_MESSAGE = 0x420078,
	KMIP_TAG_REQUEST_PAYLOAD = 0x420079,
	KMIP_TAG_RESPONSE_HEADER = 0x42007A,
	KMIP_TAG_RESPONSE_MESSAGE = 0x42007B,
	KMIP_TAG_RESPONSE_PAYLOAD = 0x42007C,
	KMIP_TAG_RESULT_MESSAGE = 0x42007D,
	KMIP_TAG_RESULT_REASON = 0x42007E,
	KMIP_TAG_RESULT_STATUS = 0x42007F,
	KMIP_TAG_STATE = 0x42008D,
	KMIP_TAG_SYMMETRIC_KEY = 0x42008F,
	KMIP_TAG_TIME_STAMP = 0x420092,
	KMIP_TAG_UNIQUE_BATCH_ITEM_ID = 0x420093,
	KMIP_TAG_UNIQUE_IDENTIFIER = 0x420094,
	KMIP_TAG_USERNAME = 0x420099,
	KMIP_TAG_PASSWORD = 0x4200A1,
	KMIP_TAG_DATA = 0x4200C2,
	KMIP_TAG_TAG_LENGTH = 0x4200CE,
	KMIP_TAG_AEAD_ADDITIONAL_DATA = 0x4200FE,
	KMIP_TAG_AEAD_TAG = 0x4200FF,
};

/* ---- encoding ---- */

/* Writes into a caller's buffer (secure memory when a key or password goes in). Errors are
 * sticky: the first one (-E2BIG past the buffer or TTLV_DEPTH_MAX, -EINVAL for a value too
 * long or a structure closed that was not opened) is what ttlv_finish returns. */
struct ttlv_enc {
	uint8_t *buf;
	size_t cap, len;
	size_t open[TTLV_DEPTH_MAX]; /* offsets of the unfinished structures' headers */
	unsigned depth;
	int err;
};

void ttlv_enc_init(struct ttlv_enc *e, uint8_t *buf, size_t cap);
void ttlv_begin(struct ttlv_enc *e, uint32_t tag);
void ttlv_end(struct ttlv_enc *e);
void ttlv_int(struct ttlv_enc *e, uint32_t tag, int32_t v);
void ttlv_long(struct ttlv_enc *e, uint32_t tag, int64_t v);
void ttlv_enum(struct ttlv_enc *e, uint32_t tag, uint32_t v);
void ttlv_bool(struct ttlv_enc *e, uint32_t tag, bool v);
void ttlv_datetime(struct ttlv_enc *e, uint32_t tag, int64_t unix_s);
void ttlv_interval(struct ttlv_enc *e, uint32_t tag, uint32_t seconds);
void ttlv_text(struct ttlv_enc *e, uint32_t tag, const char *s);
void ttlv_bytes(struct ttlv_enc *e, uint32_t tag, const void *p, size_t n);
/* The encoded length, or the first error (also when a structure is still open). */
int ttlv_finish(struct ttlv_enc *e, size_t *ret_len);

/* ---- parsing ---- */

struct ttlv_item {
	uint32_t tag;
	uint8_t type;
	uint8_t depth;
	uint32_t len;	      /* value length without padding */
	const uint8_t *value; /* into the parsed buffer */
	int64_t num;	      /* Integer, Long Integer, Enumeration, Boolean, Date-Time, Interval */
	uint16_t child;	      /* first child's index; 0: none (index 0 is the root) */
	uint16_t next;	      /* next sibling's index; 0: none */
};

struct ttlv_doc {
	struct ttlv_item items[TTLV_ITEMS_MAX];
	size_t n;
};

/* Parses one complete TTLV item (a message) of exactly @n bytes: every tag in KMIP's ranges,
 * every type known, every length what its type allows and within the limits above, padding
 * zero, structures filled exactly by their children, Booleans 0 or 1, and each tag of the
 * dictionary of the type KMIP gives it. -EBADMSG with the byte offset and the tag's name in
 * @e, -E2BIG past TTLV_MSG_MAX, TTLV_ITEMS_MAX or TTLV_DEPTH_MAX. */
int ttlv_parse(const uint8_t *p, size_t n, struct ttlv_doc *doc, struct error *e);

/* The first child of @parent with @tag, or NULL; ttlv_next_of: the next sibling after @it
 * with the same tag. */
const struct ttlv_item *ttlv_child(const struct ttlv_doc *doc, const struct ttlv_item *parent,
				   uint32_t tag);
const struct ttlv_item *ttlv_next_of(const struct ttlv_doc *doc, const struct ttlv_item *it);
/* Children in order: @prev NULL gives the first. */
const struct ttlv_item *ttlv_children(const struct ttlv_doc *doc, const struct ttlv_item *parent,
				      const struct ttlv_item *prev);

/* KMIP's name of @tag ("Unique Identifier"), or NULL for a tag not in the dictionary. */
const char *ttlv_tag_name(uint32_t tag);
/* "Text String", ... */
const char *ttlv_type_name(uint8_t type);
