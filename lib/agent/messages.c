/*
 * The conversation is not kept beside the session: it is rebuilt from the
 * event log before each model call. One source of truth means a session
 * reloaded after a restart continues exactly, and what the model was told
 * is what the operator can read.
 *
 * Event order within a turn (lib/agent/agent.c): text deltas, then every
 * tool event of the reply, then approvals and tool results. A text or tool
 * event after a tool result starts the next assistant message. An error
 * event drops the text not yet committed by a tool call (a reply that
 * failed mid-stream and was retried, or given up for the fallback).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "session/session_internal.h"

typedef struct rebuild {
	json_object *messages;
	json_object *asst;    /* content of the assistant message being built */
	json_object *ids;     /* its tool_use ids, in order */
	json_object *results; /* tool_use_id -> tool_result block */
	json_object *user;    /* content of the user message not yet pushed */
	bg_buf text;
	int in_results;
	size_t cap;
} rebuild;

char *bg_agent_cap_output(const char *text, size_t len, size_t cap, size_t *elided)
{
	bg_buf b = BG_BUF_INIT;
	size_t head, tail;

	*elided = 0;
	if (len <= cap || cap < 256) {
		bg_buf_append(&b, text, len);
		if (!b.data)
			bg_buf_puts(&b, "");
		return bg_buf_detach(&b);
	}
	head = cap / 2;
	tail = cap - head - 128; /* room for the marker */
	/* Cut on line ends where one is near, so the model reads whole lines. */
	while (head > cap / 4 && text[head - 1] != '\n')
		head--;
	while (tail > cap / 8 && text[len - tail - 1] != '\n')
		tail--;
	*elided = len - head - tail;
	bg_buf_append(&b, text, head);
	bg_buf_printf(&b, "\n[... %zu bytes elided from the middle of the output ...]\n", *elided);
	bg_buf_append(&b, text + len - tail, tail);
	return bg_buf_detach(&b);
}

static json_object *text_block(const char *text)
{
	json_object *b = json_object_new_object();

	bg_json_add_str(b, "type", "text");
	bg_json_add_str(b, "text", text);
	return b;
}

static void push(rebuild *r, const char *role, json_object *content)
{
	json_object *m = json_object_new_object();

	bg_json_add_str(m, "role", role);
	json_object_object_add(m, "content", content);
	json_object_array_add(r->messages, m);
}

static void commit_text(rebuild *r)
{
	if (r->text.len)
		json_object_array_add(r->asst, text_block(r->text.data));
	bg_buf_clear(&r->text);
}

static json_object *missing_result(const char *id)
{
	json_object *b = json_object_new_object();

	bg_json_add_str(b, "type", "tool_result");
	bg_json_add_str(b, "tool_use_id", id);
	bg_json_add_str(b, "content", "not run: the turn ended before this call could run");
	bg_json_add_bool(b, "is_error", 1);
	return b;
}

/* The assistant message is complete: push it, and queue one tool_result
 * per tool_use, in the order of the calls (the API wants them first). */
static void close_assistant(rebuild *r)
{
	size_t i, n = json_object_array_length(r->ids);

	commit_text(r);
	if (json_object_array_length(r->asst) > 0) {
		push(r, "assistant", r->asst);
		r->asst = json_object_new_array();
	}
	if (n && !r->user)
		r->user = json_object_new_array();
	for (i = 0; i < n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(r->ids, i));
		json_object *res = json_object_object_get(r->results, id);

		json_object_array_add(r->user, res ? json_object_get(res) : missing_result(id));
	}
	json_object_put(r->ids);
	json_object_put(r->results);
	r->ids = json_object_new_array();
	r->results = json_object_new_object();
	r->in_results = 0;
}

static void flush_user(rebuild *r)
{
	if (r->user)
		push(r, "user", r->user);
	r->user = NULL;
}

/* A text or tool event: after results, it belongs to the next reply. */
static void assistant_side(rebuild *r)
{
	if (r->in_results)
		close_assistant(r);
	flush_user(r);
}

static void on_tool(rebuild *r, json_object *ev)
{
	json_object *b = json_object_new_object();
	json_object *input = json_object_object_get(ev, "input");
	const char *id = bg_json_str(ev, "tool_use_id", "");

	assistant_side(r);
	commit_text(r);
	bg_json_add_str(b, "type", "tool_use");
	bg_json_add_str(b, "id", id);
	bg_json_add_str(b, "name", bg_json_str(ev, "name", ""));
	json_object_object_add(b, "input", input ? json_object_get(input) : json_object_new_object());
	json_object_array_add(r->asst, b);
	json_object_array_add(r->ids, json_object_new_string(id));
}

static void on_result(rebuild *r, json_object *ev)
{
	json_object *b = json_object_new_object();
	const char *out = bg_json_str(ev, "output", "");
	size_t elided;
	char *capped = bg_agent_cap_output(out, strlen(out), r->cap, &elided);

	bg_json_add_str(b, "type", "tool_result");
	bg_json_add_str(b, "tool_use_id", bg_json_str(ev, "tool_use_id", ""));
	bg_json_add_str(b, "content", capped && *capped ? capped : "(no output)");
	bg_json_add_bool(b, "is_error", !bg_json_bool(ev, "ok", 0));
	free(capped);
	json_object_object_add(r->results, bg_json_str(ev, "tool_use_id", ""), b);
	r->in_results = 1;
}

static void on_user(rebuild *r, json_object *ev)
{
	close_assistant(r);
	if (!r->user)
		r->user = json_object_new_array();
	json_object_array_add(r->user, text_block(bg_json_str(ev, "text", "")));
	flush_user(r);
}

static int on_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	rebuild *r = payload;
	json_object *ev = bg_json_parse(json, len, "event");
	const char *text;

	(void)id;
	if (!ev)
		return 0;
	switch (kind) {
	case BG_EVENT_USER: on_user(r, ev); break;
	case BG_EVENT_TEXT:
		assistant_side(r);
		text = bg_json_str(ev, "text", "");
		bg_buf_puts(&r->text, text);
		break;
	case BG_EVENT_TOOL: on_tool(r, ev); break;
	case BG_EVENT_TOOL_RESULT: on_result(r, ev); break;
	case BG_EVENT_ERROR: bg_buf_clear(&r->text); break;
	case BG_EVENT_CANCELLED:
	case BG_EVENT_TURN_END: close_assistant(r); break;
	default: break;
	}
	json_object_put(ev);
	return 0;
}

int bg_agent_messages_from_session(json_object **out, bg_session *s, size_t model_output_cap)
{
	rebuild r = {0};
	int rc;

	*out = NULL;
	r.messages = json_object_new_array();
	r.asst = json_object_new_array();
	r.ids = json_object_new_array();
	r.results = json_object_new_object();
	r.cap = model_output_cap ? model_output_cap : 16384;
	if (r.messages && r.asst && r.ids && r.results) {
		rc = bg_session_read(s, -1, 0, on_event, &r);
		close_assistant(&r);
		flush_user(&r);
	} else {
		rc = bg_error_oom();
	}
	json_object_put(r.asst);
	json_object_put(r.ids);
	json_object_put(r.results);
	bg_buf_free(&r.text);
	if (rc < 0) {
		json_object_put(r.messages);
		return rc;
	}
	*out = r.messages;
	return BG_OK;
}
