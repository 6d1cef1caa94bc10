/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP/1.1 over a local Unix socket (keyd's control socket) without libcurl: keydctl and wipe
 * ask keyd in a few hundred microseconds instead of loading libcurl's dependency chain. */
#pragma once

#include <stddef.h>

#include "error.h"
#include "http.h"

/* One request to req->unix_socket, "Connection: close". Errors as http_perform's. */
int http_unix_perform(const struct http_request *req, struct http_response *resp, struct error *e);

/* Parses one complete reply (status line, headers, body by Content-Length, chunked or up to
 * the end) into @resp. -EAGAIN when more bytes are needed, -EPROTO when it is not HTTP/1.x,
 * -E2BIG past HTTP_RESPONSE_MAX. */
int http_unix_parse(const char *p, size_t n, struct http_response *resp, struct error *e);
