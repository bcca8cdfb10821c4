/* Internal: monotonic time and deadlines. Every network step in the library
 * is bounded by a bg_deadline; wall-clock time is only for display. */
#ifndef BG_CORE_CLOCK_H
#define BG_CORE_CLOCK_H

#include <stdint.h>
#include <stddef.h>

/* Milliseconds on the monotonic clock (never jumps with the wall clock). */
int64_t bg_now_ms(void);

/* Milliseconds since the Unix epoch (wall clock). */
int64_t bg_wall_ms(void);

/* An absolute point on the monotonic clock; BG_DEADLINE_NONE means never. */
typedef struct bg_deadline {
	int64_t at_ms;
} bg_deadline;

#define BG_DEADLINE_NONE ((bg_deadline){INT64_MAX})

/* A deadline `ms` from now; ms <= 0 means already expired. */
bg_deadline bg_deadline_in(int64_t ms);

/* Milliseconds left (0 when expired; INT64_MAX for no deadline). */
int64_t bg_deadline_left(bg_deadline d);

/* Milliseconds left, clamped to an int for poll(2): -1 for no deadline. */
int bg_deadline_poll_ms(bg_deadline d);

int bg_deadline_expired(bg_deadline d);

/* The earlier of two deadlines. */
bg_deadline bg_deadline_min(bg_deadline a, bg_deadline b);

/* "2026-06-11T16:47:42Z" (UTC, seconds) into buf; returns buf. */
char *bg_time_iso8601(int64_t wall_ms, char *buf, size_t n);

/* Like bg_time_iso8601 but with milliseconds: "2026-06-11T16:47:42.123Z". */
char *bg_time_iso8601_ms(int64_t wall_ms, char *buf, size_t n);

/* Sleep for ms milliseconds (restarts after signals). */
void bg_sleep_ms(int64_t ms);

#endif
