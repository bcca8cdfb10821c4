/*
 * Internal: an incremental reader of Server-Sent Events (the WHATWG
 * EventSource format), as the LLM APIs stream their replies.
 *
 * Bytes go in with bg_sse_feed() in chunks of any size (one byte at a time
 * works); each complete event comes out through the callback. Lines may end
 * in CRLF, LF or CR; `:` lines are comments; several `data:` lines join
 * with "\n". Memory is bounded: an event (its pending line plus its data)
 * longer than `max_event` bytes fails with BG_ETOOBIG.
 */
#ifndef BG_LLM_SSE_H
#define BG_LLM_SSE_H

#include <stddef.h>

#include "core/buf.h"

typedef struct bg_sse_event {
	const char *event; /* the `event:` field, "" when none was given */
	const char *data;  /* the joined `data:` lines (NUL-terminated) */
	size_t data_len;
	const char *id; /* the last `id:` seen in the stream, "" when none */
	long retry_ms;  /* the last valid `retry:` value, -1 when none */
} bg_sse_event;

/* Called once per event; 0 goes on, a negative value stops the reader and
 * is returned by bg_sse_feed() (and every later call). */
typedef int (*bg_sse_event_fn)(const bg_sse_event *ev, void *payload);

typedef struct bg_sse {
	bg_buf line;  /* the line being read */
	bg_buf data;  /* data lines of the event being read */
	bg_buf event; /* its event name */
	bg_buf id;    /* last event id (persists across events) */
	long retry_ms;
	size_t max_event;
	int after_cr; /* the previous byte ended a line with CR */
	int started;  /* a first line was seen (for the BOM) */
	int has_data; /* a data field was seen in this event */
	int status;   /* sticky: the first failure */
	bg_sse_event_fn fn;
	void *payload;
} bg_sse;

#define BG_SSE_DEFAULT_MAX_EVENT (4u * 1024u * 1024u)

/* Start a reader; max_event 0 means BG_SSE_DEFAULT_MAX_EVENT. */
void bg_sse_init(bg_sse *r, size_t max_event, bg_sse_event_fn fn, void *payload);

/* Feed bytes. BG_OK, BG_ETOOBIG, BG_ENOMEM or the callback's value. */
int bg_sse_feed(bg_sse *r, const char *bytes, size_t len);

/* The stream ended: an event not closed by a blank line is discarded, as
 * EventSource does. Returns the reader's status, and 1 in *partial when
 * bytes of an unfinished event were pending (a cut connection). */
int bg_sse_finish(bg_sse *r, int *partial);

/* Forget everything but keep the callback (a new connection). */
void bg_sse_reset(bg_sse *r);

void bg_sse_free(bg_sse *r);

#endif
