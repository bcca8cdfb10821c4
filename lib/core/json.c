#include "json.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

json_object *bg_json_parse(const char *s, size_t len, const char *what)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;

	if (len > INT32_MAX) {
		bg_error_set(BG_ETOOBIG, "%s: JSON too large", what);
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		bg_error_oom();
		return NULL;
	}
	o = json_tokener_parse_ex(tok, s, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		bg_error_set(BG_EPROTO, "%s: invalid JSON (%s)", what,
			     jerr == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(jerr));
		json_object_put(o);
		o = NULL;
	} else if ((size_t)json_tokener_get_parse_end(tok) < len) {
		size_t end = json_tokener_get_parse_end(tok);
		while (end < len && strchr(" \t\r\n", s[end]))
			end++;
		if (end < len) {
			bg_error_set(BG_EPROTO, "%s: invalid JSON (trailing data)", what);
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(tok);
	return o;
}

const char *bg_json_str(json_object *o, const char *key, const char *fallback)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return fallback;
}

int64_t bg_json_int(json_object *o, const char *key, int64_t fallback)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return json_object_get_int64(v);
	return fallback;
}

int bg_json_bool(json_object *o, const char *key, int fallback)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	return fallback;
}

json_object *bg_json_obj(json_object *o, const char *key)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_object))
		return v;
	return NULL;
}

json_object *bg_json_arr(json_object *o, const char *key)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array))
		return v;
	return NULL;
}

static int add(json_object *o, const char *key, json_object *v, int was_null)
{
	if (!v && !was_null)
		return bg_error_oom();
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return bg_error_oom();
	}
	return BG_OK;
}

int bg_json_add_str(json_object *o, const char *key, const char *value)
{
	return add(o, key, value ? json_object_new_string(value) : NULL, value == NULL);
}

int bg_json_add_strn(json_object *o, const char *key, const char *value, size_t len)
{
	return add(o, key, value ? json_object_new_string_len(value, (int)len) : NULL, value == NULL);
}

int bg_json_add_int(json_object *o, const char *key, int64_t value)
{
	return add(o, key, json_object_new_int64(value), 0);
}

int bg_json_add_bool(json_object *o, const char *key, int value)
{
	return add(o, key, json_object_new_boolean(value != 0), 0);
}

char *bg_json_dump(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = s ? strdup(s) : NULL;

	if (!copy)
		bg_error_oom();
	return copy;
}
