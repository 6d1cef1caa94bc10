/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A KMS lifecycle event, whatever brought it (polling, the callback endpoint, keydctl): what
 * happened to which root key. The daemon decides what each volume does about it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kms.h"

#define EVENT_ID_MAX	 128
#define EVENT_SOURCE_MAX 64

enum event_type {
	EVENT_ROTATE,
	EVENT_DISABLE, /* also "suspend" */
	EVENT_ENABLE,
	EVENT_DELETE, /* also "destroy" */
	EVENT_RESTORE,
	_EVENT_TYPE_MAX,
};
extern const char *const event_type_names[]; /* "rotate", "disable", ... */

enum event_origin {
	EVENT_FROM_POLL,
	EVENT_FROM_CALLBACK,
	EVENT_FROM_CONTROL, /* keydctl */
};

struct event {
	enum event_type type;
	enum event_origin origin;
	char id[EVENT_ID_MAX + 1];  /* the sender's event id ("" if none) */
	char kms[KMS_NAME_MAX + 1]; /* configured KMS name; "" = any KMS holding key_id */
	char key_id[KMS_KEY_ID_MAX + 1];
	char key_version[KMS_VERSION_MAX + 1]; /* new version for rotate, if given */
	char source[EVENT_SOURCE_MAX + 1];     /* peer address, "poll", or "uid N" */
	uint64_t time_us;		       /* wall clock of the event (sender's, or ours) */
};

/* Parses "rotate", "disable"/"suspend", "enable", "delete"/"destroy", "restore".
 * -EINVAL otherwise. */
int event_type_from_string(const char *s, enum event_type *ret);
