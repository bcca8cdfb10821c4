/* Internal: how lib/agent writes events without a JSON round trip. */
#ifndef BG_SESSION_INTERNAL_H
#define BG_SESSION_INTERNAL_H

#include <json-c/json.h>

#include "breakglass/session.h"

/*
 * Append `ev` (an object whose "kind" is set; the session adds "id" and
 * "ts"). The object is borrowed and gets the two fields added.
 */
int bg_session_emit(long long *id_out, bg_session *s, json_object *ev);

/* An event object of `kind` with no other field yet (caller puts it). */
json_object *bg_event_new(bg_event_kind kind);

/*
 * Mark a turn as running: BG_ESTATE when one already runs (one turn at a
 * time per session). bg_session_turn_end() clears the mark. The agent
 * calls these; a front end starts turns through bg_agent_run/start.
 */
int bg_session_turn_begin(bg_session *s);
void bg_session_turn_end(bg_session *s);

#endif
