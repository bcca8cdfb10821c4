/*
 * libbreakglass — sessions and their event logs (docs/events.md).
 *
 * A session is the tmux of the agent: an ordered log of events (ids 0, 1,
 * 2, … per session) that a turn appends to and any number of readers
 * follow. The log lives in memory and, when the store has a directory, in
 * `<dir>/<id>.jsonl` (one event per line, appended and flushed per event,
 * reloaded when the store opens).
 *
 * Readers pull: each keeps the id of the last event it saw and asks for
 * what follows (bg_session_read), waiting when there is nothing new. The
 * writer never waits for a reader, so a slow or stuck client cannot slow a
 * turn, and an id cursor cannot lose or repeat an event at the boundary
 * between the replay and the live tail.
 */
#ifndef BREAKGLASS_SESSION_H
#define BREAKGLASS_SESSION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The kinds of event, in the one table of the project. */
typedef enum bg_event_kind {
	BG_EVENT_USER = 0,          /**< {text, by} */
	BG_EVENT_TEXT,              /**< {text}: a delta; consecutive deltas form one message */
	BG_EVENT_TOOL,              /**< {tool_use_id, name, input} */
	BG_EVENT_TOOL_RESULT,       /**< {tool_use_id, ok, exit_code, output, truncated, elapsed_ms} */
	BG_EVENT_APPROVAL_REQUIRED, /**< {tool_use_id, nonce, verb, name, input} */
	BG_EVENT_APPROVAL,          /**< {tool_use_id, nonce, verb, approved, by} */
	BG_EVENT_ERROR,             /**< {error} */
	BG_EVENT_CANCELLED,         /**< {} */
	BG_EVENT_TURN_END,          /**< {stop_reason, usage} */
	BG_EVENT_KIND_COUNT
} bg_event_kind;

/** "user", "text", "tool", "tool_result", "approval_required", "approval",
 *  "error", "cancelled", "turn_end"; "unknown" out of range. Never NULL. */
BG_EXTERN const char *bg_event_kind_name(bg_event_kind kind);

/** The kind called `name`, or -1. */
BG_EXTERN int bg_event_kind_from_name(const char *name);

/**
 * One field of an event as delivered (`json`, `len`): `path` is a key or
 * a dotted path ("input.command"). Strings come unescaped, numbers and
 * booleans as their JSON text, objects and arrays as compact JSON. A
 * string the caller frees with bg_free(); BG_ENOTFOUND when the field is absent,
 * BG_EINVAL when `json` is not an object. For programs that render
 * events without a JSON library of their own.
 */
BG_EXTERN int bg_event_field(char **out, const char *json, size_t len, const char *path);

typedef struct bg_session_store bg_session_store;
typedef struct bg_session bg_session;

/**
 * Open the sessions kept in `dir` (created 0700 when missing; NULL keeps
 * them in memory only), loading every `<id>.jsonl` found. A torn last line
 * (a crash in the middle of a write) is cut off with a warning, not an
 * error. At most `max_sessions` are kept (64 when <= 0): beyond that the
 * least recently active idle sessions are deleted. The caller frees the
 * store with bg_session_store_free().
 */
BG_EXTERN int bg_session_store_open(bg_session_store **out, const char *dir, int max_sessions);

/** Close every session (readers waiting in bg_session_read() return
 *  BG_ECANCELLED) and free the store. Sessions still referenced stay
 *  valid until released. NULL is a no-op. */
BG_EXTERN void bg_session_store_free(bg_session_store *st);

/**
 * A new empty session with a random, unguessable id (128 bits, hex). When
 * the store is full, the least recently active idle session is deleted to
 * make room; BG_EBUSY when every session has a turn running. `*out` is a
 * reference the caller releases with bg_session_release().
 */
BG_EXTERN int bg_session_create(bg_session **out, bg_session_store *st);

/** The session called `id`: a reference to release, or BG_ENOTFOUND. */
BG_EXTERN int bg_session_open(bg_session **out, bg_session_store *st, const char *id);

/** Delete a session and its file (BG_ESTATE while a turn runs). */
BG_EXTERN int bg_session_delete(bg_session_store *st, const char *id);

/**
 * The sessions, most recently active first, as a JSON array of
 * {"id","created","updated","events","busy","title"} (times in ISO 8601
 * UTC, title from the first prompt). A string the caller frees with
 * bg_free().
 */
BG_EXTERN int bg_session_list(char **json_out, bg_session_store *st);

/** Take another reference / drop one. NULL is a no-op for release. */
BG_EXTERN bg_session *bg_session_ref(bg_session *s);
BG_EXTERN void bg_session_release(bg_session *s);

/** The session's id (owned by the session). */
BG_EXTERN const char *bg_session_id(const bg_session *s);

/** The id of the newest event, -1 when the log is empty. */
BG_EXTERN long long bg_session_last_id(bg_session *s);

/** 1 while a turn runs in the session (an agent started one), else 0;
 *  0 from the moment its turn_end event is published (one step). */
BG_EXTERN int bg_session_busy(bg_session *s);

/**
 * Append one event given as a JSON object with a known "kind" and its
 * fields; "id" (and "ts", the wall time in ms) are set by the session.
 * `*id_out` (may be NULL) receives the id. Written to the file and
 * flushed before readers see it. BG_EINVAL for bad JSON or kind.
 */
BG_EXTERN int bg_session_append(long long *id_out, bg_session *s, const char *event_json);

/**
 * One event as delivered to a reader: its id, kind and the whole event as
 * one line of JSON (no newline), valid during the call only.
 */
typedef int (*bg_session_event_fn)(long long id, bg_event_kind kind, const char *json, size_t len, void *payload);

/**
 * Deliver, in order, the events with an id greater than `after_id` (-1:
 * from the start). When there is none yet, wait up to `timeout_ms` (0: do
 * not wait, < 0: forever) for one. `fn` runs without any lock held; a
 * negative return stops the delivery and is returned. Returns the number
 * of events delivered (0 after a timeout), or BG_ECANCELLED when the store
 * closed. A reader follows a session by calling this in a loop with the
 * id of the last event it got.
 */
BG_EXTERN int bg_session_read(bg_session *s, long long after_id, int timeout_ms, bg_session_event_fn fn, void *payload);

#ifdef __cplusplus
}
#endif
#endif
