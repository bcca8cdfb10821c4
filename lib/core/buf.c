#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bg_buf_grow(bg_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;
	char *p;

	if (need < b->len)
		return bg_error_oom();
	if (need <= b->cap)
		return BG_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	p = realloc(b->data, cap);
	if (!p)
		return bg_error_oom();
	b->data = p;
	b->cap = cap;
	return BG_OK;
}

int bg_buf_append(bg_buf *b, const void *data, size_t len)
{
	if (bg_buf_grow(b, len) < 0)
		return BG_ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return BG_OK;
}

int bg_buf_puts(bg_buf *b, const char *s)
{
	return bg_buf_append(b, s, strlen(s));
}

int bg_buf_putc(bg_buf *b, char c)
{
	return bg_buf_append(b, &c, 1);
}

int bg_buf_printf(bg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return bg_error_set(BG_EINVAL, "bad format string");
	if (bg_buf_grow(b, (size_t)n) < 0)
		return BG_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return BG_OK;
}

void bg_buf_clear(bg_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *bg_buf_detach(bg_buf *b)
{
	char *s = b->data;

	if (!s)
		s = calloc(1, 1);
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void bg_buf_wipe(bg_buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	bg_buf_free(b);
}

void bg_buf_free(bg_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int bg_buf_escape(bg_buf *b, const char *s, size_t max_in)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;
	int rc = BG_OK;

	for (i = 0; i < max_in && rc == BG_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

		if (c == '\n')
			rc = bg_buf_append(b, "\\n", 2);
		else if (c == '\r')
			rc = bg_buf_append(b, "\\r", 2);
		else if (c == '\t')
			rc = bg_buf_append(b, "\\t", 2);
		else if (c == '\\' || c == '"') {
			char two[2] = {'\\', (char)c};
			rc = bg_buf_append(b, two, 2);
		} else if (c < 0x20 || c >= 0x7f)
			rc = bg_buf_append(b, esc, 4);
		else
			rc = bg_buf_putc(b, (char)c);
	}
	return rc;
}
