#include "sse.h"

#include <string.h>

#include "core/error.h"

void bg_sse_init(bg_sse *r, size_t max_event, bg_sse_event_fn fn, void *payload)
{
	memset(r, 0, sizeof(*r));
	r->max_event = max_event ? max_event : BG_SSE_DEFAULT_MAX_EVENT;
	r->retry_ms = -1;
	r->fn = fn;
	r->payload = payload;
}

void bg_sse_reset(bg_sse *r)
{
	bg_buf_clear(&r->line);
	bg_buf_clear(&r->data);
	bg_buf_clear(&r->event);
	bg_buf_clear(&r->id);
	r->retry_ms = -1;
	r->after_cr = r->started = r->has_data = r->status = 0;
}

void bg_sse_free(bg_sse *r)
{
	if (!r)
		return;
	bg_buf_free(&r->line);
	bg_buf_free(&r->data);
	bg_buf_free(&r->event);
	bg_buf_free(&r->id);
}

static int set_field(bg_buf *b, const char *v, size_t n)
{
	bg_buf_clear(b);
	return bg_buf_append(b, v, n);
}

static int dispatch(bg_sse *r)
{
	bg_sse_event ev;
	int rc = BG_OK;

	if (r->has_data) {
		/* the join added a "\n" after every line: drop the last one */
		if (r->data.len > 0)
			r->data.data[--r->data.len] = '\0';
		ev.event = r->event.data ? r->event.data : "";
		ev.data = r->data.data ? r->data.data : "";
		ev.data_len = r->data.len;
		ev.id = r->id.data ? r->id.data : "";
		ev.retry_ms = r->retry_ms;
		rc = r->fn ? r->fn(&ev, r->payload) : BG_OK;
	}
	bg_buf_clear(&r->data);
	bg_buf_clear(&r->event);
	r->has_data = 0;
	return rc;
}

static void set_retry(bg_sse *r, const char *v, size_t n)
{
	long ms = 0;
	size_t i;

	if (n == 0 || n > 9)
		return;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return;
		ms = ms * 10 + (v[i] - '0');
	}
	r->retry_ms = ms;
}

static int field(bg_sse *r, const char *name, size_t nlen, const char *v, size_t vlen)
{
	if (nlen == 4 && memcmp(name, "data", 4) == 0) {
		r->has_data = 1;
		if (bg_buf_append(&r->data, v, vlen) || bg_buf_putc(&r->data, '\n'))
			return BG_ENOMEM;
	} else if (nlen == 5 && memcmp(name, "event", 5) == 0) {
		return set_field(&r->event, v, vlen);
	} else if (nlen == 2 && memcmp(name, "id", 2) == 0) {
		if (!memchr(v, '\0', vlen))
			return set_field(&r->id, v, vlen);
	} else if (nlen == 5 && memcmp(name, "retry", 5) == 0) {
		set_retry(r, v, vlen);
	}
	return BG_OK; /* unknown fields are ignored */
}

static int process_line(bg_sse *r)
{
	const char *s = r->line.data ? r->line.data : "";
	size_t n = r->line.len;
	const char *colon;
	int rc;

	if (!r->started) {
		r->started = 1;
		if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
	}
	if (n == 0)
		rc = dispatch(r);
	else if (s[0] == ':')
		rc = BG_OK;
	else if ((colon = memchr(s, ':', n)) != NULL) {
		size_t nlen = (size_t)(colon - s);
		size_t off = nlen + 1;
		if (off < n && s[off] == ' ')
			off++;
		rc = field(r, s, nlen, s + off, n - off);
	} else
		rc = field(r, s, n, "", 0);
	bg_buf_clear(&r->line);
	return rc;
}

static int too_big(bg_sse *r)
{
	return bg_error_set(BG_ETOOBIG,
			    "a server-sent event is longer than %zu bytes: the stream is not what an LLM API sends "
			    "(check base_url)",
			    r->max_event);
}

/* Append the run of bytes up to the next line end; returns its length. */
static int take_run(bg_sse *r, const char *p, size_t len, size_t *used)
{
	size_t n = 0;

	while (n < len && p[n] != '\n' && p[n] != '\r')
		n++;
	*used = n;
	if (r->line.len + r->data.len + n > r->max_event)
		return too_big(r);
	return n ? bg_buf_append(&r->line, p, n) : BG_OK;
}

int bg_sse_feed(bg_sse *r, const char *bytes, size_t len)
{
	size_t i = 0, used;
	int rc;

	while (r->status == BG_OK && i < len) {
		char c = bytes[i];
		if (c == '\n' && r->after_cr) {
			r->after_cr = 0; /* the LF of a CRLF */
			i++;
			continue;
		}
		r->after_cr = 0;
		if (c == '\n' || c == '\r') {
			r->after_cr = c == '\r';
			i++;
			rc = process_line(r);
		} else {
			rc = take_run(r, bytes + i, len - i, &used);
			i += used;
		}
		if (rc)
			r->status = rc;
	}
	return r->status;
}

int bg_sse_finish(bg_sse *r, int *partial)
{
	if (partial)
		*partial = r->line.len > 0 || r->has_data || r->event.len > 0;
	bg_buf_clear(&r->line);
	bg_buf_clear(&r->data);
	bg_buf_clear(&r->event);
	r->has_data = 0;
	return r->status;
}
