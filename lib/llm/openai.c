/*
 * OpenAI-compatible chat completions (OpenAI, llama.cpp, Ollama, vLLM),
 * streamed. The conversation stays in the Anthropic shape: it is
 * translated on the way out, and the reply is translated back into an
 * Anthropic-shaped assistant message.
 */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "llm/remote.h"

#define MAX_CALLS 64

typedef struct tcall {
	bg_buf id, name, args;
} tcall;

typedef struct ostate {
	const bg_llm_callbacks *cb;
	bg_buf text;
	tcall calls[MAX_CALLS];
	int ncalls;
	bg_llm_utf8 utf8;
	int done; /* data: [DONE] */
	char finish[32];
	int64_t in_tok, out_tok, cache_read;
	json_object *message; /* built at the end */
	char stop_reason[32];
} ostate;

/* ---- the request: Anthropic shape to chat completions ---- */

/* The text of a content that is a string or an array of text blocks. */
static void text_of(json_object *content, bg_buf *out)
{
	size_t i, n, start = out->len;

	if (json_object_is_type(content, json_type_string)) {
		bg_buf_puts(out, json_object_get_string(content));
		return;
	}
	n = json_object_is_type(content, json_type_array) ? json_object_array_length(content) : 0;
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i);
		if (strcmp(bg_json_str(b, "type", ""), "text") != 0)
			continue;
		if (out->len > start)
			bg_buf_putc(out, '\n');
		bg_buf_puts(out, bg_json_str(b, "text", ""));
	}
}

static json_object *chat_msg(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	bg_json_add_str(m, "role", role);
	bg_json_add_str(m, "content", content);
	return m;
}

/* tool_result blocks become role:tool messages, placed first: they must
 * follow the assistant message that asked for them. */
static void tr_user(json_object *out, json_object *content)
{
	bg_buf text = BG_BUF_INIT;
	size_t i, n = json_object_array_length(content);

	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i), *c = NULL, *m;
		bg_buf res = BG_BUF_INIT;
		if (strcmp(bg_json_str(b, "type", ""), "tool_result") != 0)
			continue;
		if (bg_json_bool(b, "is_error", 0))
			bg_buf_puts(&res, "ERROR: ");
		json_object_object_get_ex(b, "content", &c);
		text_of(c, &res);
		m = chat_msg("tool", res.data ? res.data : "");
		bg_json_add_str(m, "tool_call_id", bg_json_str(b, "tool_use_id", ""));
		json_object_array_add(out, m);
		bg_buf_free(&res);
	}
	text_of(content, &text);
	if (text.len)
		json_object_array_add(out, chat_msg("user", text.data));
	bg_buf_free(&text);
}

static json_object *tool_call(json_object *b)
{
	json_object *tc = json_object_new_object(), *fn = json_object_new_object(), *input = NULL;

	bg_json_add_str(tc, "id", bg_json_str(b, "id", ""));
	bg_json_add_str(tc, "type", "function");
	bg_json_add_str(fn, "name", bg_json_str(b, "name", ""));
	json_object_object_get_ex(b, "input", &input);
	bg_json_add_str(fn, "arguments", input ? json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN) : "{}");
	json_object_object_add(tc, "function", fn);
	return tc;
}

static void tr_assistant(json_object *out, json_object *content)
{
	bg_buf text = BG_BUF_INIT;
	json_object *calls = json_object_new_array(), *m;
	size_t i, n = json_object_array_length(content);

	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i);
		if (strcmp(bg_json_str(b, "type", ""), "tool_use") == 0)
			json_object_array_add(calls, tool_call(b));
	}
	text_of(content, &text);
	m = chat_msg("assistant", text.len ? text.data : NULL);
	if (json_object_array_length(calls) > 0)
		json_object_object_add(m, "tool_calls", calls);
	else
		json_object_put(calls);
	json_object_array_add(out, m);
	bg_buf_free(&text);
}

static json_object *tr_messages(const bg_llm_request *req)
{
	json_object *out = json_object_new_array();
	size_t i, n = json_object_array_length(req->messages);

	if (req->system && *req->system)
		json_object_array_add(out, chat_msg("system", req->system));
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(req->messages, i), *c = NULL;
		const char *role = bg_json_str(m, "role", "user");
		json_object_object_get_ex(m, "content", &c);
		if (!json_object_is_type(c, json_type_array))
			json_object_array_add(out, chat_msg(role, c ? json_object_get_string(c) : ""));
		else if (strcmp(role, "assistant") == 0)
			tr_assistant(out, c);
		else
			tr_user(out, c);
	}
	return out;
}

static json_object *tr_tools(json_object *tools)
{
	json_object *out = json_object_new_array();
	size_t i, n = json_object_array_length(tools);

	for (i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(tools, i), *schema = NULL;
		json_object *w = json_object_new_object(), *fn = json_object_new_object();
		bg_json_add_str(w, "type", "function");
		bg_json_add_str(fn, "name", bg_json_str(t, "name", ""));
		bg_json_add_str(fn, "description", bg_json_str(t, "description", ""));
		if (json_object_object_get_ex(t, "input_schema", &schema))
			json_object_object_add(fn, "parameters", json_object_get(schema));
		json_object_object_add(w, "function", fn);
		json_object_array_add(out, w);
	}
	return out;
}

char *bg_llm_openai_body(const bg_llm_request *req)
{
	json_object *o = json_object_new_object(), *so = json_object_new_object();
	char *s;

	bg_json_add_str(o, "model", req->model && *req->model ? req->model : BG_OPENAI_DEFAULT_MODEL);
	bg_json_add_int(o, "max_tokens", req->max_tokens > 0 ? req->max_tokens : 4096);
	json_object_object_add(o, "messages", tr_messages(req));
	if (req->tools && json_object_array_length(req->tools) > 0)
		json_object_object_add(o, "tools", tr_tools(req->tools));
	bg_json_add_bool(o, "stream", 1);
	bg_json_add_bool(so, "include_usage", 1);
	json_object_object_add(o, "stream_options", so);
	s = bg_json_dump(o);
	json_object_put(o);
	return s;
}

/* ---- the reply ---- */

static void reset(void *ctx)
{
	ostate *st = ctx;
	const bg_llm_callbacks *cb = st->cb;
	int i;

	for (i = 0; i < MAX_CALLS; i++) {
		bg_buf_free(&st->calls[i].id);
		bg_buf_free(&st->calls[i].name);
		bg_buf_free(&st->calls[i].args);
	}
	bg_buf_free(&st->text);
	json_object_put(st->message);
	memset(st, 0, sizeof(*st));
	st->cb = cb;
}

/* Servers differ: some send the name once, some repeat it in each piece. */
static void merge(bg_buf *b, const char *piece)
{
	if (!piece || !*piece || (b->len && strcmp(b->data, piece) == 0))
		return;
	bg_buf_puts(b, piece);
}

static int tool_pieces(ostate *st, json_object *calls, bg_llm_fail *fail)
{
	size_t i, n = json_object_array_length(calls);

	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(calls, i), *fn = bg_json_obj(c, "function");
		int64_t idx = bg_json_int(c, "index", (int64_t)i);
		tcall *t;
		if (idx < 0 || idx >= MAX_CALLS)
			return bg_llm_fail_set(fail, 0, BG_EPROTO, "openai stream: tool call index %lld",
					       (long long)idx);
		t = &st->calls[idx];
		if (idx >= st->ncalls)
			st->ncalls = (int)idx + 1;
		if (bg_json_str(c, "id", NULL) && !t->id.len)
			bg_buf_puts(&t->id, bg_json_str(c, "id", ""));
		merge(&t->name, bg_json_str(fn, "name", NULL));
		bg_buf_puts(&t->args, bg_json_str(fn, "arguments", ""));
	}
	return BG_OK;
}

static int choice(ostate *st, json_object *ch, bg_llm_fail *fail)
{
	json_object *d = bg_json_obj(ch, "delta"), *v;
	int rc = BG_OK;

	if (d && json_object_object_get_ex(d, "content", &v) && json_object_is_type(v, json_type_string)) {
		const char *t = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		if (bg_buf_append(&st->text, t, n))
			return BG_ENOMEM;
		rc = bg_llm_text(&st->utf8, st->cb, t, n);
	}
	if (rc == BG_OK && bg_json_arr(d, "tool_calls"))
		rc = tool_pieces(st, bg_json_arr(d, "tool_calls"), fail);
	if (bg_json_str(ch, "finish_reason", NULL))
		snprintf(st->finish, sizeof(st->finish), "%s", bg_json_str(ch, "finish_reason", ""));
	return rc;
}

static int stream_error(json_object *e, bg_llm_fail *fail)
{
	const char *type = bg_json_str(e, "type", bg_json_str(e, "code", "error"));
	int retry = strstr(type, "overloaded") || strstr(type, "server_error") || strstr(type, "unavailable");

	return bg_llm_fail_set(fail, retry != 0, BG_EUNAVAILABLE, "openai API: error in the stream: %s: %s", type,
			       bg_json_str(e, "message", "(no message)"));
}

static int event(const bg_sse_event *ev, void *ctx, bg_llm_fail *fail)
{
	ostate *st = ctx;
	json_object *o, *u, *ch;
	int rc = BG_OK;

	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		st->done = 1;
		return BG_OK;
	}
	if (!(o = bg_json_parse(ev->data, ev->data_len, "openai stream chunk")))
		return bg_llm_fail_set(fail, 0, BG_EPROTO, "%s", bg_error_last()->message);
	if (bg_json_obj(o, "error"))
		rc = stream_error(bg_json_obj(o, "error"), fail);
	if ((u = bg_json_obj(o, "usage")) != NULL) {
		st->in_tok = bg_json_int(u, "prompt_tokens", st->in_tok);
		st->out_tok = bg_json_int(u, "completion_tokens", st->out_tok);
		st->cache_read = bg_json_int(bg_json_obj(u, "prompt_tokens_details"), "cached_tokens", st->cache_read);
	}
	ch = bg_json_arr(o, "choices") ? json_object_array_get_idx(bg_json_arr(o, "choices"), 0) : NULL;
	if (rc == BG_OK && ch)
		rc = choice(st, ch, fail);
	json_object_put(o);
	return rc;
}

static const char *stop_reason(ostate *st)
{
	if (strcmp(st->finish, "tool_calls") == 0 || strcmp(st->finish, "function_call") == 0)
		return "tool_use";
	if (strcmp(st->finish, "length") == 0)
		return "max_tokens";
	if (strcmp(st->finish, "content_filter") == 0)
		return "refusal";
	if (!st->finish[0] || strcmp(st->finish, "stop") == 0)
		return st->ncalls ? "tool_use" : "end_turn"; /* some local servers say stop */
	return st->finish;
}

static int tool_block(ostate *st, int i, json_object *content, bg_llm_fail *fail)
{
	tcall *t = &st->calls[i];
	json_object *b = json_object_new_object(), *input;
	char id[32];

	if (!t->args.len)
		input = json_object_new_object();
	else if (!(input = bg_json_parse(t->args.data, t->args.len, "tool arguments"))) {
		json_object_put(b);
		return bg_llm_fail_set(fail, 0, BG_EPROTO, "openai API: the model sent bad arguments for %s: %s",
				       t->name.data ? t->name.data : "?", bg_error_last()->message);
	}
	snprintf(id, sizeof(id), "call_%d", i); /* servers that send no id */
	bg_json_add_str(b, "type", "tool_use");
	bg_json_add_str(b, "id", t->id.len ? t->id.data : id);
	bg_json_add_str(b, "name", t->name.data ? t->name.data : "");
	json_object_object_add(b, "input", input);
	json_object_array_add(content, b);
	return BG_OK;
}

static int end(void *ctx, bg_llm_fail *fail)
{
	ostate *st = ctx;
	json_object *content;
	int i, rc;

	/* a finish_reason without [DONE] will do when the server closed
	 * cleanly (some local servers), not on a cut connection */
	if (!st->done && (!st->finish[0] || fail->cut))
		return bg_llm_fail_set(fail, 1, BG_EPROTO, "openai API: the stream ended before [DONE]");
	if ((rc = bg_llm_text_flush(&st->utf8, st->cb)) != BG_OK)
		return rc;
	st->message = json_object_new_object();
	content = json_object_new_array();
	bg_json_add_str(st->message, "role", "assistant");
	json_object_object_add(st->message, "content", content);
	if (st->text.len) {
		json_object *b = json_object_new_object();
		bg_json_add_str(b, "type", "text");
		bg_json_add_strn(b, "text", st->text.data, st->text.len);
		json_object_array_add(content, b);
	}
	for (i = 0; i < st->ncalls; i++)
		if ((rc = tool_block(st, i, content, fail)) != BG_OK)
			return rc;
	snprintf(st->stop_reason, sizeof(st->stop_reason), "%s", stop_reason(st));
	for (i = 0; st->cb && st->cb->on_tool_use && i < (int)json_object_array_length(content); i++) {
		json_object *b = json_object_array_get_idx(content, i), *input = NULL;
		if (strcmp(bg_json_str(b, "type", ""), "tool_use") != 0)
			continue;
		json_object_object_get_ex(b, "input", &input);
		rc = st->cb->on_tool_use(bg_json_str(b, "id", ""), bg_json_str(b, "name", ""), input, st->cb->payload);
		if (rc < 0)
			return rc;
	}
	return BG_OK;
}

int bg_llm_openai_headers(bg_llm_remote *r, struct curl_slist **h)
{
	int rc = BG_OK;

	if (r->key) {
		bg_buf v = BG_BUF_INIT;
		rc = bg_buf_printf(&v, "Bearer %s", bg_secret_data(r->key));
		if (rc == BG_OK)
			rc = bg_llm_header(h, "Authorization", v.data);
		bg_buf_wipe(&v);
	}
	if (rc == BG_OK)
		rc = bg_llm_header(h, "content-type", "application/json");
	if (rc == BG_OK)
		rc = bg_llm_header(h, "accept", "text/event-stream");
	if (rc == BG_OK)
		rc = bg_llm_no_expect(h);
	return rc;
}

static void fill(ostate *st, bg_llm_response *resp)
{
	resp->message = st->message;
	st->message = NULL;
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "%s", st->stop_reason);
	resp->input_tokens = st->in_tok;
	resp->output_tokens = st->out_tok;
	resp->cache_read_tokens = st->cache_read;
}

int bg_llm_openai_replay(const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
			 bg_llm_response *resp)
{
	ostate *st = calloc(1, sizeof(*st));
	bg_llm_hooks hooks = {reset, event, end, st};
	int rc;

	if (!st)
		return bg_error_oom();
	st->cb = cb;
	rc = bg_llm_replay_hooks(&hooks, stream, len, chunk);
	if (rc == BG_OK)
		fill(st, resp);
	reset(st);
	free(st);
	return rc;
}

static int complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	bg_llm_remote *r = (bg_llm_remote *)llm;
	ostate *st = calloc(1, sizeof(*st));
	struct curl_slist *h = NULL;
	bg_buf url = BG_BUF_INIT;
	bg_llm_hooks hooks = {reset, event, end, st};
	char *body = bg_llm_openai_body(req);
	int rc;

	if (atomic_exchange(&r->busy, 1)) {
		free(st);
		free(body);
		return bg_error_set(BG_ESTATE, "openai: a request is already running on this handle");
	}
	if (!st || !body)
		rc = bg_error_oom();
	else if ((rc = bg_llm_openai_headers(r, &h)) == BG_OK &&
		 (rc = bg_llm_url(&url, r->base_url, "/v1/chat/completions")) == BG_OK) {
		st->cb = cb;
		rc = bg_llm_remote_run(r, url.data, h, body, req, cb, &hooks, &resp->attempts);
		if (rc == BG_OK)
			fill(st, resp);
	}
	if (st)
		reset(st);
	free(st);
	free(body);
	bg_buf_free(&url);
	bg_llm_headers_free(h);
	atomic_store(&r->busy, 0);
	return rc;
}

static const bg_llm_vtable vtable = {"openai", complete, bg_llm_remote_destroy};

int bg_llm_openai_new(bg_llm **out, const bg_llm_settings *s)
{
	bg_llm_remote *r;
	int rc = bg_llm_remote_new(&r, "openai", &vtable, s, BG_OPENAI_DEFAULT_BASE);

	if (rc != BG_OK)
		return rc;
	*out = &r->base;
	return BG_OK;
}
