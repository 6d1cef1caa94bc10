// SPDX-License-Identifier: GPL-2.0-or-later
/* JSON schema helpers: every error names the path of the offending value. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonx.h"

int jx_fail(struct error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_setv(e, -EINVAL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int jx_only_keys(json_t *obj, const char *path, const char *const *allowed, struct error *e)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return jx_fail(e, "%s: must be an object", path);
	json_object_foreach (obj, key, v) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok)
			return jx_fail(e, "%s.%s: unknown key", path, key);
	}
	return 0;
}

int jx_string(json_t *obj, const char *path, const char *key, bool required, size_t max_len,
	      const char **ret, struct error *e)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (!v)
		return required ? jx_fail(e, "%s.%s: missing", path, key) : 0;
	if (!json_is_string(v))
		return jx_fail(e, "%s.%s: must be a string", path, key);
	s = json_string_value(v);
	if (s[0] == 0)
		return jx_fail(e, "%s.%s: must not be empty", path, key);
	if (strlen(s) != json_string_length(v))
		return jx_fail(e, "%s.%s: must not contain NUL", path, key);
	if (strlen(s) > max_len)
		return jx_fail(e, "%s.%s: longer than %zu characters", path, key, max_len);
	*ret = s;
	return 0;
}

int jx_bool(json_t *obj, const char *path, const char *key, bool *ret, struct error *e)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return jx_fail(e, "%s.%s: must be true or false", path, key);
	*ret = json_is_true(v);
	return 0;
}

int jx_uint(json_t *obj, const char *path, const char *key, uint64_t min, uint64_t max,
	    uint64_t *ret, struct error *e)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return jx_fail(e, "%s.%s: must be an integer", path, key);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return jx_fail(e, "%s.%s: must be between %llu and %llu", path, key,
			       (unsigned long long)min, (unsigned long long)max);
	*ret = (uint64_t)i;
	return 0;
}

int jx_enum(json_t *obj, const char *path, const char *key, const char *const *choices, int *ret,
	    struct error *e)
{
	const char *s = NULL;
	char list[256] = "";
	int r;

	r = jx_string(obj, path, key, false, 64, &s, e);
	if (r < 0 || !s)
		return r;
	for (int i = 0; choices[i]; i++) {
		if (strcmp(choices[i], s) == 0) {
			*ret = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 choices[i]);
	}
	return jx_fail(e, "%s.%s: \"%s\" is not one of: %s", path, key, s, list);
}

json_t *jx_list(const char *list)
{
	json_t *a = json_array();
	const char *p = list;

	while (a && *p) {
		const char *end = strstr(p, ", ");
		size_t n = end ? (size_t)(end - p) : strlen(p);

		json_array_append_new(a, json_stringn(p, n));
		p += n + (end ? 2 : 0);
	}
	return a;
}
