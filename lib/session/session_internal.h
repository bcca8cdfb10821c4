/* Internal: how lib/agent writes events without a JSON round trip. */
#ifndef BG_SESSION_INTERNAL_H
#define BG_SESSION_INTERNAL_H

#include <json-c/json.h>

#include "breakglass/session.h"

/*
 * Append `ev` (an object whose "kind" is set; the session adds "id" and
 * "ts"). The object is borrowed and gets the two fields added.
 */
int bg_session_emit(bg_session *s, json_object *ev, long long *id_out);

/* An event object of `kind` with no other field yet (caller puts it). */
json_object *bg_event_new(bg_event_kind kind);

#endif
