/* Internal: a growable byte buffer, always NUL-terminated, used wherever the
 * library builds strings (instead of sprintf/strcat). */
#ifndef BG_CORE_BUF_H
#define BG_CORE_BUF_H

#include <stddef.h>
#include "error.h"

typedef struct bg_buf {
	char *data; /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
} bg_buf;

#define BG_BUF_INIT        \
	{                  \
		NULL, 0, 0 \
	}

/* Each returns BG_OK or BG_ENOMEM (recorded with bg_error_set). */
int bg_buf_grow(bg_buf *b, size_t extra);
int bg_buf_append(bg_buf *b, const void *data, size_t len);
int bg_buf_puts(bg_buf *b, const char *s);
int bg_buf_putc(bg_buf *b, char c);
int bg_buf_printf(bg_buf *b, const char *fmt, ...) BG_PRINTF(2, 3);

/* Empty the buffer but keep its memory. */
void bg_buf_clear(bg_buf *b);

/* Hand the string to the caller (who frees it); the buffer is reset.
 * Returns "" (allocated) for an empty buffer, NULL on allocation failure. */
char *bg_buf_detach(bg_buf *b);

/* Wipe (explicit_bzero) and free: for buffers that held secrets. */
void bg_buf_wipe(bg_buf *b);
void bg_buf_free(bg_buf *b);

/* A string that is the same as `s` with control bytes, backslashes, quotes
 * and non-ASCII escaped as \n, \t, \\, \", \xHH; at most max_in bytes of
 * input are read (it may contain NUL). Appends to b. */
int bg_buf_escape(bg_buf *b, const char *s, size_t max_in);

#endif
