/* Internal: small helpers over json-c. json-c types never appear in public
 * headers; modules exchange JSON as strings across the API. */
#ifndef BG_CORE_JSON_H
#define BG_CORE_JSON_H

#include <json-c/json.h>
#include <stdint.h>

/* Parse exactly one JSON value from (s, len); NULL with bg_error_set
 * (BG_EPROTO, "<what>: <json-c's reason>") on failure or trailing bytes. */
json_object *bg_json_parse(const char *s, size_t len, const char *what);

/* Member lookups that return a fallback when the key is missing or has
 * the wrong type. */
const char *bg_json_str(json_object *o, const char *key, const char *fallback);
int64_t bg_json_int(json_object *o, const char *key, int64_t fallback);
int bg_json_bool(json_object *o, const char *key, int fallback);
json_object *bg_json_obj(json_object *o, const char *key); /* object or NULL */
json_object *bg_json_arr(json_object *o, const char *key); /* array or NULL */

/* Add members; a NULL string adds JSON null. Return 0 or BG_ENOMEM. */
int bg_json_add_str(json_object *o, const char *key, const char *value);
int bg_json_add_strn(json_object *o, const char *key, const char *value, size_t len);
int bg_json_add_int(json_object *o, const char *key, int64_t value);
int bg_json_add_bool(json_object *o, const char *key, int value);

/* Serialise compactly (no spaces, slashes not escaped) into a malloc'd
 * string; NULL on allocation failure. */
char *bg_json_dump(json_object *o);

#endif
