#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wbuf_free(wbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int wbuf_grow(wbuf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->failed)
		return -1;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void wbuf_put(wbuf *b, const char *s, size_t n)
{
	if (wbuf_grow(b, n) != 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void wbuf_puts(wbuf *b, const char *s)
{
	wbuf_put(b, s, strlen(s));
}

void wbuf_printf(wbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || wbuf_grow(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void wbuf_consume(wbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t want, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		want = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		want = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		want = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < want)
		return 0;
	for (i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((want == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (want == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return want;
}

void wbuf_json_strn(wbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	wbuf_put(b, "\"", 1);
	while (i < n) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			wbuf_put(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			wbuf_printf(b, "\\u%04x", c);
			i++;
		} else if ((k = utf8_len(p + i, n - i)) == 0) {
			wbuf_puts(b, "\\ufffd");
			i++;
		} else {
			wbuf_put(b, s + i, k);
			i += k;
		}
	}
	wbuf_put(b, "\"", 1);
}

void wbuf_json_str(wbuf *b, const char *s)
{
	wbuf_json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

/* ---- parser ------------------------------------------------------------ */

typedef struct jp {
	const char *s;
	size_t n, i;
	int depth;
	char *err;
	size_t errlen;
} jp;

static int jp_fail(jp *p, const char *what)
{
	snprintf(p->err, p->errlen, "%s at byte %zu", what, p->i);
	return -1;
}

static void jp_ws(jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

int web_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_hex4(jp *p, unsigned int *out)
{
	unsigned int v = 0;
	int k, h;

	if (p->i + 4 > p->n)
		return jp_fail(p, "short \\u escape");
	for (k = 0; k < 4; k++) {
		if ((h = web_hexval(p->s[p->i + (size_t)k])) < 0)
			return jp_fail(p, "bad \\u escape");
		v = v * 16 + (unsigned int)h;
	}
	p->i += 4;
	*out = v;
	return 0;
}

static void put_cp(wbuf *b, unsigned int cp)
{
	char u[4];

	if (cp < 0x80) {
		u[0] = (char)cp;
		wbuf_put(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		wbuf_put(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		wbuf_put(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		wbuf_put(b, u, 4);
	}
}

static int jp_escape(jp *p, wbuf *b)
{
	unsigned int cp, lo;
	char c = p->s[p->i++];

	switch (c) {
	case '"': wbuf_put(b, "\"", 1); return 0;
	case '\\': wbuf_put(b, "\\", 1); return 0;
	case '/': wbuf_put(b, "/", 1); return 0;
	case 'b': wbuf_put(b, "\b", 1); return 0;
	case 'f': wbuf_put(b, "\f", 1); return 0;
	case 'n': wbuf_put(b, "\n", 1); return 0;
	case 'r': wbuf_put(b, "\r", 1); return 0;
	case 't': wbuf_put(b, "\t", 1); return 0;
	case 'u': break;
	default: return jp_fail(p, "bad escape");
	}
	if (jp_hex4(p, &cp) != 0)
		return -1;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
			return jp_fail(p, "lone surrogate");
		p->i += 2;
		if (jp_hex4(p, &lo) != 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(p, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xdc00 && cp <= 0xdfff) {
		return jp_fail(p, "lone surrogate");
	}
	if (cp == 0)
		return jp_fail(p, "NUL in a string");
	put_cp(b, cp);
	return 0;
}

/* A string at p->i (the opening quote); `out` may be NULL to skip it. */
static int jp_string(jp *p, char **out)
{
	wbuf b = {0};
	size_t k;

	p->i++;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i];
		if (c == '"') {
			p->i++;
			if (b.failed) {
				wbuf_free(&b);
				return jp_fail(p, "out of memory");
			}
			if (out)
				*out = b.data ? b.data : calloc(1, 1);
			else
				wbuf_free(&b);
			return 0;
		}
		if (c == '\\') {
			p->i++;
			if (p->i >= p->n || jp_escape(p, &b) != 0) {
				wbuf_free(&b);
				return p->i >= p->n ? jp_fail(p, "unterminated string") : -1;
			}
			continue;
		}
		if (c < 0x20 || (k = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i)) == 0) {
			wbuf_free(&b);
			return jp_fail(p, c < 0x20 ? "control byte in a string" : "invalid UTF-8");
		}
		wbuf_put(&b, p->s + p->i, k);
		p->i += k;
	}
	wbuf_free(&b);
	return jp_fail(p, "unterminated string");
}

static int jp_value(jp *p, wjson_type *type, char **str, int *boolean);

static int jp_container(jp *p, char close)
{
	int first = 1;
	wjson_type t;

	if (++p->depth > 32)
		return jp_fail(p, "nested too deep");
	p->i++;
	for (;;) {
		jp_ws(p);
		if (p->i < p->n && p->s[p->i] == close && first) {
			p->i++;
			break;
		}
		if (close == '}') {
			if (p->i >= p->n || p->s[p->i] != '"' || jp_string(p, NULL) != 0)
				return jp_fail(p, "expected a key");
			jp_ws(p);
			if (p->i >= p->n || p->s[p->i++] != ':')
				return jp_fail(p, "expected ':'");
		}
		if (jp_value(p, &t, NULL, NULL) != 0)
			return -1;
		jp_ws(p);
		first = 0;
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			break;
		}
		return jp_fail(p, "expected ',' or the end of a container");
	}
	p->depth--;
	return 0;
}

static int jp_number(jp *p)
{
	size_t start = p->i;

	if (p->s[p->i] == '-')
		p->i++;
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return jp_fail(p, "bad number");
	if (p->s[p->i] == '0')
		p->i++;
	else
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return jp_fail(p, "bad number");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return jp_fail(p, "bad number");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	return p->i > start ? 0 : jp_fail(p, "bad number");
}

static int jp_word(jp *p, const char *w)
{
	size_t n = strlen(w);

	if (p->n - p->i < n || memcmp(p->s + p->i, w, n) != 0)
		return jp_fail(p, "unexpected token");
	p->i += n;
	return 0;
}

static int jp_value(jp *p, wjson_type *type, char **str, int *boolean)
{
	jp_ws(p);
	if (p->i >= p->n)
		return jp_fail(p, "unexpected end");
	switch (p->s[p->i]) {
	case '"': *type = WJ_STRING; return jp_string(p, str);
	case '{': *type = WJ_OTHER; return jp_container(p, '}');
	case '[': *type = WJ_OTHER; return jp_container(p, ']');
	case 't':
		*type = WJ_BOOL;
		if (boolean)
			*boolean = 1;
		return jp_word(p, "true");
	case 'f':
		*type = WJ_BOOL;
		if (boolean)
			*boolean = 0;
		return jp_word(p, "false");
	case 'n': *type = WJ_NULL; return jp_word(p, "null");
	default: *type = WJ_NUMBER; return jp_number(p);
	}
}

int wjson_parse(wjson_obj *o, const char *text, size_t len, char *err, size_t errlen)
{
	jp p = {text, len, 0, 0, err, errlen};
	int first = 1;

	memset(o, 0, sizeof(*o));
	if (errlen)
		err[0] = '\0';
	jp_ws(&p);
	if (p.i >= p.n || p.s[p.i] != '{')
		return jp_fail(&p, "expected a JSON object");
	p.i++;
	for (;;) {
		char *key = NULL, *str = NULL;
		wjson_type t = WJ_NONE;
		int b = 0;

		jp_ws(&p);
		if (first && p.i < p.n && p.s[p.i] == '}') {
			p.i++;
			break;
		}
		if (p.i >= p.n || p.s[p.i] != '"' || jp_string(&p, &key) != 0)
			goto fail_key;
		jp_ws(&p);
		if (p.i >= p.n || p.s[p.i++] != ':') {
			free(key);
			jp_fail(&p, "expected ':'");
			goto fail;
		}
		if (jp_value(&p, &t, &str, &b) != 0) {
			free(key);
			goto fail;
		}
		if (o->n == WJSON_MAX_FIELDS || wjson_string(o, key, NULL)) {
			snprintf(err, errlen, o->n == WJSON_MAX_FIELDS ? "too many fields" : "duplicate field '%.40s'",
				 key);
			free(key);
			free(str);
			goto fail;
		}
		o->f[o->n].key = key;
		o->f[o->n].type = t;
		o->f[o->n].str = str;
		o->f[o->n].boolean = b;
		o->n++;
		first = 0;
		jp_ws(&p);
		if (p.i < p.n && p.s[p.i] == ',') {
			p.i++;
			continue;
		}
		if (p.i < p.n && p.s[p.i] == '}') {
			p.i++;
			break;
		}
		jp_fail(&p, "expected ',' or '}'");
		goto fail;
	}
	jp_ws(&p);
	if (p.i != p.n) {
		jp_fail(&p, "trailing bytes after the object");
		goto fail;
	}
	return 0;
fail_key:
	if (err[0] == '\0')
		jp_fail(&p, "expected a key");
fail:
	wjson_free(o);
	return -1;
}

void wjson_free(wjson_obj *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		free(o->f[i].key);
		free(o->f[i].str);
	}
	memset(o, 0, sizeof(*o));
}

const char *wjson_string(const wjson_obj *o, const char *key, wjson_type *type)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		if (strcmp(o->f[i].key, key) == 0) {
			if (type)
				*type = o->f[i].type;
			return o->f[i].type == WJ_STRING ? o->f[i].str : "";
		}
	}
	if (type)
		*type = WJ_NONE;
	return NULL;
}

int wjson_bool(const wjson_obj *o, const char *key, int *value)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		if (strcmp(o->f[i].key, key) == 0) {
			if (o->f[i].type != WJ_BOOL)
				return -1;
			*value = o->f[i].boolean;
			return 0;
		}
	}
	return -1;
}
