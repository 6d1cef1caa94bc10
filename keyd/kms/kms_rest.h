/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Plumbing shared by the providers that speak HTTPS and JSON to a KMS (keyprotect, vault):
 * config endpoints, credential files, one request with its JSON reply, server text made fit
 * for a message. Never puts a credential, a request body or a reply body in a message. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "jsonx.h"
#include "kms.h"

#define KMS_REST_ENDPOINTS_MAX 8
#define KMS_REST_URL_MAX       255
#define KMS_REST_DETAIL_MAX    240

#define KMS_CHARS_ALNUM	 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define KMS_CHARS_BASE64 KMS_CHARS_ALNUM "+/="

/* Every character of @s is in @set ("" is). */
bool kms_rest_charset(const char *s, const char *set);

/* Server text bound for an operator's message: printable ASCII, whitespace runs folded into
 * one space, cut to @size. @s may be NULL (""). */
void kms_rest_printable(char *buf, size_t size, const char *s);

/* An https:// base URL from the config (@s NULL: not a string), copied without its trailing
 * '/'s and with @suffix appended. -EINVAL naming @path, -ENOMEM. */
int kms_rest_url(const char *s, const char *path, const char *suffix, char **ret, struct error *e);

/* PATH.endpoints: 1 to KMS_REST_ENDPOINTS_MAX https:// URLs, tried in order. */
int kms_rest_endpoints(json_t *obj, const char *path, char ***ret, size_t *ret_n, struct error *e);
void kms_rest_endpoints_free(char **endpoints, size_t n);

/* Reads the text credential kms.KMS.@key from @file into secure memory, refusing loose
 * permissions, empty and binary files, with messages naming the config path. */
int kms_rest_credential(const char *kms, const char *key, const char *file, uint8_t **ret,
			size_t *ret_n, struct error *e);
/* kms.KMS.ca_file must be readable when set. */
int kms_rest_ca_file(const char *kms, const char *ca_file, struct error *e);
/* A REST provider's open: the ca_file check, then @http set up. */
int kms_rest_open(const char *kms, const char *ca_file, struct http_client *http, struct error *e);

/* Performs @req; a transport failure becomes a message starting with @where (TLS failures
 * name @req->ca_file or the system trust store). Any HTTP status is success here. */
int kms_rest_perform(struct http_client *http, const struct http_request *req, const char *where,
		     struct http_response *resp, struct error *e);

/* The reply body as a JSON object (-EPROTO otherwise). Parse errors give only a position:
 * jansson's own text would quote the reply, which may hold a key. */
int kms_rest_json(const struct http_response *resp, const char *where, json_t **ret,
		  struct error *e);

/* A reply body as text for jansson; an empty body has no buffer. */
const char *kms_rest_body(const struct http_response *resp);
