/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A KMS lifecycle event, whatever brought it (polling, the callback endpoint, keydctl): what
 * happened to which root key. The daemon decides what each volume does about it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "kms.h"

#define KEY_EVENT_ID_MAX     128
#define KEY_EVENT_SOURCE_MAX 64

enum key_event_type {
	KEY_EVENT_ROTATE,
	KEY_EVENT_DISABLE, /* also "suspend" */
	KEY_EVENT_ENABLE,
	KEY_EVENT_DELETE, /* also "destroy" */
	KEY_EVENT_RESTORE,
	_KEY_EVENT_TYPE_MAX,
};
extern const char *const key_event_type_names[]; /* "rotate", "disable", ... */

enum key_event_origin {
	KEY_EVENT_FROM_POLL,
	KEY_EVENT_FROM_CALLBACK,
	KEY_EVENT_FROM_CONTROL, /* keydctl */
};

struct key_event {
	enum key_event_type type;
	enum key_event_origin origin;
	char id[KEY_EVENT_ID_MAX + 1]; /* the sender's event id ("" if none) */
	char kms[KMS_NAME_MAX + 1];    /* configured KMS name; "" = any KMS holding key_id */
	char key_id[KMS_KEY_ID_MAX + 1];
	char key_version[KMS_VERSION_MAX + 1]; /* new version for rotate, if given */
	char source[KEY_EVENT_SOURCE_MAX + 1]; /* peer address, "poll", or "uid N" */
	uint64_t time_us;		       /* wall clock of the event (sender's, or ours) */
};

/* Parses "rotate", "disable"/"suspend", "enable", "delete"/"destroy", "restore".
 * -EINVAL otherwise. */
int key_event_type_from_string(const char *s, enum key_event_type *ret);

/* Checks an event object against the schema (unknown keys refused, lengths capped per the
 * limits above) and fills @ev (origin and source are left to the caller). -EINVAL with e->msg
 * naming the path ("event.key_id: missing"). */
int key_event_from_json(json_t *obj, struct key_event *ev, struct error *e);
/* The rule for an event id by itself (visible ASCII: ids go into logs and audit records), for
 * a sender's id looked at before the rest of the event. -EINVAL with e->msg. */
int key_event_id_check(const char *id, struct error *e);
