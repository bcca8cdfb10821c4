/* Fuzz the SSE reader differentially: the same bytes fed whole, a byte at
 * a time and in chunks chosen by the input must give the same events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "llm/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int render(const bg_sse_event *ev, void *payload)
{
	bg_buf *b = payload;
	bg_buf_printf(b, "%zu:%s|%s|%ld|", ev->data_len, ev->event, ev->id, ev->retry_ms);
	bg_buf_append(b, ev->data, ev->data_len);
	return 0;
}

static int feed(const uint8_t *data, size_t size, size_t step, bg_buf *out)
{
	bg_sse r;
	size_t i;
	int rc = 0, partial;

	bg_sse_init(&r, 4096, render, out);
	for (i = 0; i < size && rc == 0; i += step)
		rc = bg_sse_feed(&r, (const char *)data + i, size - i < step ? size - i : step);
	if (rc == 0)
		rc = bg_sse_finish(&r, &partial);
	bg_sse_free(&r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_buf a = BG_BUF_INIT, b = BG_BUF_INIT, c = BG_BUF_INIT;
	size_t step = size ? (size_t)(data[0] % 13) + 1 : 1;
	int ra = feed(data, size, size ? size : 1, &a);
	int rb = feed(data, size, 1, &b);
	int rc = feed(data, size, step, &c);

	/* a too-big stream may fail at a different byte, but fails all ways */
	if (ra != rb || ra != rc)
		abort();
	if (ra == 0 && (a.len != b.len || a.len != c.len ||
			(a.len && (memcmp(a.data, b.data, a.len) || memcmp(a.data, c.data, a.len)))))
		abort();
	bg_buf_free(&a);
	bg_buf_free(&b);
	bg_buf_free(&c);
	return 0;
}
