// SPDX-License-Identifier: GPL-2.0-or-later
/* Lifecycle events: one table of the words senders use, aliases included, mapped to the few
 * things keyd does about them, and the schema of an event sent as JSON. Acts on nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "event.h"
#include "jsonx.h"
#include "macro.h"
#include "util.h"

#define KEY_EVENT_TYPE_MAX 16 /* characters of the event's "type" */
#define KEY_EVENT_TIME_MAX 64 /* characters of the event's RFC 3339 "time" */

const char *const key_event_type_names[] = {
	[KEY_EVENT_ROTATE] = "rotate",	 [KEY_EVENT_DISABLE] = "disable",
	[KEY_EVENT_ENABLE] = "enable",	 [KEY_EVENT_DELETE] = "delete",
	[KEY_EVENT_RESTORE] = "restore", [_KEY_EVENT_TYPE_MAX] = NULL,
};

static const struct {
	const char *name;
	enum key_event_type type;
} event_words[] = {
	{"rotate", KEY_EVENT_ROTATE},	{"disable", KEY_EVENT_DISABLE},
	{"suspend", KEY_EVENT_DISABLE}, {"enable", KEY_EVENT_ENABLE},
	{"delete", KEY_EVENT_DELETE},	{"destroy", KEY_EVENT_DELETE},
	{"restore", KEY_EVENT_RESTORE},
};

int key_event_type_from_string(const char *s, enum key_event_type *ret)
{
	for (size_t i = 0; s && i < ELEMENTSOF(event_words); i++)
		if (strcmp(event_words[i].name, s) == 0) {
			*ret = event_words[i].type;
			return 0;
		}
	return -EINVAL;
}

/* Ids end up in logs and audit records: visible ASCII only, so nothing can fake a line. */
static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

int key_event_id_check(const char *id, struct error *e)
{
	return printable(id) ? 0 : jx_fail(e, "event.id: must be visible ASCII characters");
}

int key_event_from_json(json_t *obj, struct key_event *ev, struct error *e)
{
	static const char *const keys[] = {"id",	  "type", "kms", "key_id",
					   "key_version", "time", NULL};
	const char *id = NULL, *type = NULL, *kms = NULL, *key_id = NULL, *version = NULL,
		   *time = NULL;
	struct key_event ev_new = {0};
	int r;

	if ((r = jx_only_keys(obj, "event", keys, e)) < 0 ||
	    (r = jx_string(obj, "event", "id", true, KEY_EVENT_ID_MAX, &id, e)) < 0 ||
	    (r = jx_string(obj, "event", "type", true, KEY_EVENT_TYPE_MAX, &type, e)) < 0 ||
	    (r = jx_string(obj, "event", "kms", false, KMS_NAME_MAX, &kms, e)) < 0 ||
	    (r = jx_string(obj, "event", "key_id", true, KMS_KEY_ID_MAX, &key_id, e)) < 0 ||
	    (r = jx_string(obj, "event", "key_version", false, KMS_VERSION_MAX, &version, e)) < 0 ||
	    (r = jx_string(obj, "event", "time", true, KEY_EVENT_TIME_MAX, &time, e)) < 0)
		return r;
	if ((r = key_event_id_check(id, e)) < 0)
		return r;
	if (key_event_type_from_string(type, &ev_new.type) < 0)
		return jx_fail(e, "event.type: must be one of rotate, disable, suspend, enable, "
				  "delete, destroy, restore");
	if (kms && !volume_name_valid(kms))
		return jx_fail(e, "event.kms: must be 1-%d characters of A-Z a-z 0-9 . _ -",
			       KMS_NAME_MAX);
	if (!printable(key_id))
		return jx_fail(e, "event.key_id: must be visible ASCII characters");
	if (version && !printable(version))
		return jx_fail(e, "event.key_version: must be visible ASCII characters");
	if (parse_rfc3339_us(time, &ev_new.time_us) < 0)
		return jx_fail(e, "event.time: must be an RFC 3339 date-time such as "
				  "\"2025-03-04T09:12:44Z\"");
	snprintf(ev_new.id, sizeof(ev_new.id), "%s", id);
	snprintf(ev_new.kms, sizeof(ev_new.kms), "%s", kms ? kms : "");
	snprintf(ev_new.key_id, sizeof(ev_new.key_id), "%s", key_id);
	snprintf(ev_new.key_version, sizeof(ev_new.key_version), "%s", version ? version : "");
	*ev = ev_new;
	return 0;
}
