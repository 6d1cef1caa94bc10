/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What may reach a log line or a terminal: the one definition of an unsafe character (C0 and
 * C1 controls, DEL, line separators, bidirectional overrides, bytes that are not UTF-8) and its
 * escape. Validators reject with text_find_unsafe; printers escape with text_escape. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The first unsafe character of @s: its offset, or -1 if there is none. *ret_cp (may be NULL)
 * gets its code point, or 0x110000 + byte for a byte that is not UTF-8. */
long text_find_unsafe(const char *s, uint32_t *ret_cp);

/* Copies @s into @out (@size > 0, always terminated) with each unsafe byte written as \n, \r,
 * \t or \xNN, cut short at a character boundary when @out is full; returns @out. An escaped
 * message cannot end a log line, move the cursor or recolour a terminal. */
char *text_escape(const char *s, char *out, size_t size);
