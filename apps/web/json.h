/* A growable text buffer with JSON escaping, and a small strict parser for
 * the request bodies the API takes (one flat object). The app keeps its
 * own: json-c lives in lib/, and the web's needs are this small. */
#ifndef WEB_JSON_H
#define WEB_JSON_H

#include <stddef.h>

typedef struct wbuf {
	char *data;
	size_t len, cap;
	int failed; /* an allocation failed: the text is incomplete */
} wbuf;

void wbuf_free(wbuf *b);
void wbuf_put(wbuf *b, const char *s, size_t n);
void wbuf_puts(wbuf *b, const char *s);
void wbuf_printf(wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD. */
void wbuf_json_str(wbuf *b, const char *s);
void wbuf_json_strn(wbuf *b, const char *s, size_t n);
/* Drop `n` bytes from the front. */
void wbuf_consume(wbuf *b, size_t n);

typedef enum wjson_type { WJ_NONE = 0, WJ_NULL, WJ_BOOL, WJ_NUMBER, WJ_STRING, WJ_OTHER } wjson_type;

#define WJSON_MAX_FIELDS 16

/* A top-level object's members; strings unescaped (owned), nested values
 * skipped (WJ_OTHER). */
typedef struct wjson_obj {
	size_t n;
	struct {
		char *key;
		wjson_type type;
		char *str; /* WJ_STRING */
		int boolean;
	} f[WJSON_MAX_FIELDS];
} wjson_obj;

/* Parse `len` bytes as one JSON object. 0, or -1 with a reason in `err`. */
int wjson_parse(wjson_obj *out, const char *text, size_t len, char *err, size_t errlen);
void wjson_free(wjson_obj *o);
/* The member called `key` or NULL. */
const char *wjson_string(const wjson_obj *o, const char *key, wjson_type *type);
int wjson_bool(const wjson_obj *o, const char *key, int *value);

/* The value of one hex digit (either case), or -1: for JSON's \uXXXX and
 * a URL's %XX alike. */
int web_hexval(char c);

#endif
