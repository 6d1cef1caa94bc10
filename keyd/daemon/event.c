// SPDX-License-Identifier: GPL-2.0-or-later
/* Lifecycle event names: one table of the words senders use, aliases included, mapped to the
 * few things keyd does about them. */
#include <errno.h>
#include <string.h>

#include "event.h"
#include "macro.h"

const char *const event_type_names[] = {
	[EVENT_ROTATE] = "rotate", [EVENT_DISABLE] = "disable", [EVENT_ENABLE] = "enable",
	[EVENT_DELETE] = "delete", [EVENT_RESTORE] = "restore", [_EVENT_TYPE_MAX] = NULL,
};

static const struct {
	const char *name;
	enum event_type type;
} event_words[] = {
	{"rotate", EVENT_ROTATE},   {"disable", EVENT_DISABLE}, {"suspend", EVENT_DISABLE},
	{"enable", EVENT_ENABLE},   {"delete", EVENT_DELETE},	{"destroy", EVENT_DELETE},
	{"restore", EVENT_RESTORE},
};

int event_type_from_string(const char *s, enum event_type *ret)
{
	for (size_t i = 0; s && i < ELEMENTSOF(event_words); i++)
		if (strcmp(event_words[i].name, s) == 0) {
			*ret = event_words[i].type;
			return 0;
		}
	return -EINVAL;
}
