// SPDX-License-Identifier: GPL-2.0-or-later
/* Key references, the pkcs11 WDEK format and the mechanism table. Everything read here comes
 * from the config or a LUKS2 token, so every length is checked against a named limit. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "p11_wdek.h"
#include "secmem.h"
#include "util.h"

static const struct p11_mech mech_kw_pad;

/* PKCS#11 3.0 names RFC 5649 CKM_AES_KEY_WRAP_KWP; 2.40 tokens (SoftHSM2 among them) offer
 * it as CKM_AES_KEY_WRAP_PAD, so that is the fallback, recorded as its own tag. */
static const struct p11_mech mechs[] = {
	{
		.config = "aes-gcm",
		.tag = "gcm",
		.name = "CKM_AES_GCM",
		.type = CKM_AES_GCM,
		.kind = P11_WRAP_GCM,
		.protect = CKA_ENCRYPT,
		.process = CKA_DECRYPT,
		.protect_name = "CKA_ENCRYPT",
		.process_name = "CKA_DECRYPT",
	},
	{
		.config = "aes-key-wrap-kwp",
		.tag = "kwp",
		.name = "CKM_AES_KEY_WRAP_KWP",
		.type = CKM_AES_KEY_WRAP_KWP,
		.kind = P11_WRAP_KEYWRAP,
		.protect = CKA_WRAP,
		.process = CKA_UNWRAP,
		.protect_name = "CKA_WRAP",
		.process_name = "CKA_UNWRAP",
		.fallback = &mech_kw_pad,
	},
};

static const struct p11_mech mech_kw_pad = {
	.tag = "kwpad",
	.name = "CKM_AES_KEY_WRAP_PAD",
	.type = CKM_AES_KEY_WRAP_PAD,
	.kind = P11_WRAP_KEYWRAP,
	.protect = CKA_WRAP,
	.process = CKA_UNWRAP,
	.protect_name = "CKA_WRAP",
	.process_name = "CKA_UNWRAP",
};

const struct p11_mech *p11_mech_by_config(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
		if (strcmp(mechs[i].config, name) == 0)
			return &mechs[i];
	return NULL;
}

const struct p11_mech *p11_mech_by_tag(const char *tag)
{
	for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
		if (strcmp(mechs[i].tag, tag) == 0)
			return &mechs[i];
	return strcmp(mech_kw_pad.tag, tag) == 0 ? &mech_kw_pad : NULL;
}

const char *p11_mech_config_names(void)
{
	static char list[64];

	if (!list[0])
		for (size_t i = 0; i < ELEMENTSOF(mechs); i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", mechs[i].config);
	return list;
}

/* @n hex digits (even, at most 2 * P11_ID_MAX) into @id. */
static int hex_parse(const char *s, size_t n, uint8_t *id, size_t *ret_len)
{
	if (n > 2 * P11_ID_MAX || hex_decode(s, n, id) < 0)
		return -EINVAL;
	*ret_len = n / 2;
	return 0;
}

const char *p11_id_hex(const uint8_t *id, size_t n, char *buf, size_t size)
{
	buf[0] = 0;
	for (size_t i = 0; i < n && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, size - 2 * i, "%02x", id[i]);
	return buf;
}

int p11_keyref_parse(const char *key_id, struct p11_keyref *ret)
{
	const char *label = key_id;
	size_t n;

	*ret = (struct p11_keyref){0};
	if (strncmp(key_id, "id:", 3) == 0) {
		ret->by_id = true;
		n = strlen(key_id + 3);
		return n == 0 ? -EINVAL : hex_parse(key_id + 3, n, ret->id, &ret->id_len);
	}
	if (strncmp(key_id, "label:", 6) == 0)
		label += 6;
	n = strlen(label);
	if (n == 0 || n > P11_LABEL_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (label[i] < 0x20 || label[i] > 0x7e)
			return -EINVAL;
	memcpy(ret->label, label, n + 1);
	return 0;
}

/* The payload lengths a mechanism makes from a P11_DEK_MIN..P11_DEK_MAX byte key. */
static bool blob_len_valid(const struct p11_mech *m, size_t n)
{
	if (m->kind == P11_WRAP_GCM)
		return n >= P11_GCM_IV_LEN + P11_DEK_MIN + P11_GCM_TAG_LEN &&
		       n <= P11_GCM_IV_LEN + P11_DEK_MAX + P11_GCM_TAG_LEN;
	/* RFC 5649: the plaintext padded to 8 bytes, plus one 8-byte integrity block. */
	return n % P11_KW_BLOCK == 0 && n >= P11_DEK_MIN + P11_AAD_HASH_LEN + P11_KW_BLOCK &&
	       n <= P11_DEK_MAX + P11_AAD_HASH_LEN + 2 * P11_KW_BLOCK;
}

int p11_wdek_parse(const char *s, struct p11_wdek *ret)
{
	_cleanup_secure_ uint8_t *blob = NULL;
	const char *tag, *id, *b64;
	char tagbuf[16];
	size_t n, blob_len;

	*ret = (struct p11_wdek){0};
	if (strlen(s) > 4096 || strncmp(s, P11_WDEK_PREFIX, strlen(P11_WDEK_PREFIX)) != 0)
		return -EBADMSG;
	tag = s + strlen(P11_WDEK_PREFIX);
	n = strcspn(tag, ":");
	if (tag[n] != ':' || n == 0 || n >= sizeof(tagbuf))
		return -EBADMSG;
	memcpy(tagbuf, tag, n);
	tagbuf[n] = 0;
	ret->mech = p11_mech_by_tag(tagbuf);
	if (!ret->mech)
		return -EBADMSG;
	id = tag + n + 1;
	n = strcspn(id, ":");
	if (id[n] != ':' || hex_parse(id, n, ret->id, &ret->id_len) < 0)
		return -EBADMSG;
	b64 = id + n + 1;
	if (b64_decode(b64, &blob, &blob_len) < 0)
		return -EBADMSG;
	if (!blob_len_valid(ret->mech, blob_len))
		return -EBADMSG;
	memcpy(ret->blob, blob, blob_len);
	ret->blob_len = blob_len;
	return 0;
}

int p11_wdek_format(const struct p11_wdek *w, char **ret)
{
	_cleanup_secure_ char *b64 = NULL;
	char hex[2 * P11_ID_MAX + 1];
	size_t n;
	int r;

	if (!w->mech || w->id_len > P11_ID_MAX || !blob_len_valid(w->mech, w->blob_len))
		return -EINVAL;
	r = b64_encode(w->blob, w->blob_len, &b64);
	if (r < 0)
		return r;
	p11_id_hex(w->id, w->id_len, hex, sizeof(hex));
	n = strlen(P11_WDEK_PREFIX) + strlen(w->mech->tag) + strlen(hex) + strlen(b64) + 3;
	*ret = malloc(n);
	if (!*ret)
		return -ENOMEM;
	snprintf(*ret, n, "%s%s:%s:%s", P11_WDEK_PREFIX, w->mech->tag, hex, b64);
	return 0;
}

int p11_id_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
	while (na && !a[0]) {
		a++;
		na--;
	}
	while (nb && !b[0]) {
		b++;
		nb--;
	}
	if (na != nb)
		return na < nb ? -1 : 1;
	return na ? memcmp(a, b, na) : 0;
}

size_t p11_field_len(const unsigned char *field, size_t size)
{
	while (size && (field[size - 1] == ' ' || field[size - 1] == 0))
		size--;
	return size;
}

bool p11_field_eq(const unsigned char *field, size_t size, const char *s)
{
	size_t n = p11_field_len(field, size);

	return strlen(s) == n && memcmp(field, s, n) == 0;
}
