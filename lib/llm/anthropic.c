/* The Anthropic Messages API, streamed (docs/llm.md: the endpoint, the events read and the errors). */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "llm/remote.h"

#define MAX_BLOCKS 256

enum kind { K_OTHER, K_TEXT, K_TOOL, K_THINKING };

typedef struct block {
	json_object *obj; /* as content_block_start gave it; NULL = unused slot */
	enum kind kind;
	int stopped;
	bg_buf acc; /* text, input JSON or thinking, as the deltas bring it */
	bg_buf sig; /* a thinking block's signature */
} block;

typedef struct astate {
	const bg_llm_callbacks *cb;
	block blocks[MAX_BLOCKS];
	int nblocks;
	bg_llm_utf8 utf8;
	int stopped; /* message_stop seen */
	char stop_reason[32];
	int64_t in_tok, out_tok, cache_read, cache_creation;
} astate;

static void reset(void *ctx)
{
	astate *a = ctx;
	const bg_llm_callbacks *cb = a->cb;
	int i;

	for (i = 0; i < a->nblocks; i++) {
		json_object_put(a->blocks[i].obj);
		bg_buf_free(&a->blocks[i].acc);
		bg_buf_free(&a->blocks[i].sig);
	}
	memset(a, 0, sizeof(*a));
	a->cb = cb;
}

static enum kind kind_of(const char *type)
{
	if (strcmp(type, "text") == 0)
		return K_TEXT;
	if (strcmp(type, "tool_use") == 0)
		return K_TOOL;
	if (strcmp(type, "thinking") == 0)
		return K_THINKING;
	return K_OTHER;
}

static block *block_at(astate *a, json_object *o, bg_llm_fail *fail)
{
	int64_t i = bg_json_int(o, "index", -1);

	if (i < 0 || i >= MAX_BLOCKS || (i >= a->nblocks && !bg_json_obj(o, "content_block")) ||
	    (i < a->nblocks && !a->blocks[i].obj && !bg_json_obj(o, "content_block"))) {
		bg_llm_fail_set(fail, 0, BG_EPROTO, "anthropic stream: content block index %lld out of order",
				(long long)i);
		return NULL;
	}
	return &a->blocks[i];
}

static int block_start(astate *a, json_object *o, bg_llm_fail *fail)
{
	json_object *cb = bg_json_obj(o, "content_block");
	block *b;
	int64_t i = bg_json_int(o, "index", -1);

	if (!cb || i < 0 || i >= MAX_BLOCKS || (i < a->nblocks && a->blocks[i].obj))
		return bg_llm_fail_set(fail, 0, BG_EPROTO, "anthropic stream: bad content_block_start (index %lld)",
				       (long long)i);
	b = &a->blocks[i];
	b->obj = json_object_get(cb);
	b->kind = kind_of(bg_json_str(cb, "type", ""));
	if (i >= a->nblocks)
		a->nblocks = (int)i + 1;
	/* a text block may start with text already in it */
	if (b->kind == K_TEXT && *bg_json_str(cb, "text", "")) {
		const char *t = bg_json_str(cb, "text", "");
		if (bg_buf_puts(&b->acc, t))
			return BG_ENOMEM;
		return bg_llm_text(&a->utf8, a->cb, t, strlen(t));
	}
	return BG_OK;
}

static int block_delta(astate *a, json_object *o, bg_llm_fail *fail)
{
	json_object *d = bg_json_obj(o, "delta");
	const char *type = bg_json_str(d, "type", "");
	block *b = block_at(a, o, fail);
	json_object *v;

	if (!b)
		return BG_EFAILED;
	if (strcmp(type, "text_delta") == 0 && b->kind == K_TEXT && json_object_object_get_ex(d, "text", &v)) {
		const char *t = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);
		if (bg_buf_append(&b->acc, t, n))
			return BG_ENOMEM;
		return bg_llm_text(&a->utf8, a->cb, t, n);
	}
	if (strcmp(type, "input_json_delta") == 0 && b->kind == K_TOOL)
		return bg_buf_puts(&b->acc, bg_json_str(d, "partial_json", ""));
	if (strcmp(type, "thinking_delta") == 0 && b->kind == K_THINKING)
		return bg_buf_puts(&b->acc, bg_json_str(d, "thinking", ""));
	if (strcmp(type, "signature_delta") == 0 && b->kind == K_THINKING)
		return bg_buf_puts(&b->sig, bg_json_str(d, "signature", ""));
	return BG_OK; /* other delta types (citations, …) are not ours to judge */
}

static int finish_tool(astate *a, block *b, bg_llm_fail *fail)
{
	json_object *input;

	if (b->acc.len == 0)
		input = json_object_new_object();
	else if (!(input = bg_json_parse(b->acc.data, b->acc.len, "tool input")))
		return bg_llm_fail_set(fail, 0, BG_EPROTO, "anthropic stream: tool %s: %s",
				       bg_json_str(b->obj, "name", "?"), bg_error_last()->message);
	json_object_object_add(b->obj, "input", input);
	if (a->cb && a->cb->on_tool_use)
		return a->cb->on_tool_use(bg_json_str(b->obj, "id", ""), bg_json_str(b->obj, "name", ""), input,
					  a->cb->payload);
	return BG_OK;
}

static int block_stop(astate *a, json_object *o, bg_llm_fail *fail)
{
	block *b = block_at(a, o, fail);
	int rc = BG_OK;

	if (!b)
		return BG_EFAILED;
	if (b->stopped)
		return BG_OK;
	b->stopped = 1;
	switch (b->kind) {
	case K_TEXT:
		rc = bg_llm_text_flush(&a->utf8, a->cb);
		bg_json_add_strn(b->obj, "text", b->acc.data ? b->acc.data : "", b->acc.len);
		break;
	case K_TOOL: rc = finish_tool(a, b, fail); break;
	case K_THINKING:
		bg_json_add_strn(b->obj, "thinking", b->acc.data ? b->acc.data : "", b->acc.len);
		bg_json_add_strn(b->obj, "signature", b->sig.data ? b->sig.data : "", b->sig.len);
		break;
	default: break;
	}
	return rc;
}

static void usage(astate *a, json_object *u)
{
	a->in_tok = bg_json_int(u, "input_tokens", a->in_tok);
	a->out_tok = bg_json_int(u, "output_tokens", a->out_tok);
	a->cache_read = bg_json_int(u, "cache_read_input_tokens", a->cache_read);
	a->cache_creation = bg_json_int(u, "cache_creation_input_tokens", a->cache_creation);
}

static int stream_error(json_object *o, bg_llm_fail *fail)
{
	json_object *e = bg_json_obj(o, "error");
	const char *type = bg_json_str(e, "type", "error");
	int retry = strcmp(type, "overloaded_error") == 0 || strcmp(type, "api_error") == 0;
	int code = strcmp(type, "invalid_request_error") == 0  ? BG_EINVAL
		   : strcmp(type, "authentication_error") == 0 ? BG_EAUTH
							       : BG_EUNAVAILABLE;

	return bg_llm_fail_set(fail, retry, code, "anthropic API: error in the stream: %s: %s", type,
			       bg_json_str(e, "message", "(no message)"));
}

static int event(const bg_sse_event *ev, void *ctx, bg_llm_fail *fail)
{
	astate *a = ctx;
	json_object *o = bg_json_parse(ev->data, ev->data_len, "anthropic stream event");
	const char *type;
	int rc = BG_OK;

	if (!o)
		return bg_llm_fail_set(fail, 0, BG_EPROTO, "%s", bg_error_last()->message);
	type = bg_json_str(o, "type", ev->event);
	if (strcmp(type, "message_start") == 0)
		usage(a, bg_json_obj(bg_json_obj(o, "message"), "usage"));
	else if (strcmp(type, "content_block_start") == 0)
		rc = block_start(a, o, fail);
	else if (strcmp(type, "content_block_delta") == 0)
		rc = block_delta(a, o, fail);
	else if (strcmp(type, "content_block_stop") == 0)
		rc = block_stop(a, o, fail);
	else if (strcmp(type, "message_delta") == 0) {
		const char *sr = bg_json_str(bg_json_obj(o, "delta"), "stop_reason", NULL);
		if (sr)
			snprintf(a->stop_reason, sizeof(a->stop_reason), "%s", sr);
		usage(a, bg_json_obj(o, "usage"));
	} else if (strcmp(type, "message_stop") == 0)
		a->stopped = 1;
	else if (strcmp(type, "error") == 0)
		rc = stream_error(o, fail);
	/* ping and event types added after this was written: ignored */
	json_object_put(o);
	return rc;
}

static int end(void *ctx, bg_llm_fail *fail)
{
	astate *a = ctx;

	if (!a->stopped)
		return bg_llm_fail_set(fail, 1, BG_EPROTO, "anthropic API: the stream ended before message_stop");
	return BG_OK;
}

/* The assistant message, content blocks in order, to be sent back as is. */
static json_object *rebuild(astate *a)
{
	json_object *m = json_object_new_object(), *content = json_object_new_array();
	int i;

	bg_json_add_str(m, "role", "assistant");
	json_object_object_add(m, "content", content);
	for (i = 0; i < a->nblocks; i++)
		if (a->blocks[i].obj)
			json_object_array_add(content, json_object_get(a->blocks[i].obj));
	return m;
}

char *bg_llm_anthropic_body(const bg_llm_request *req)
{
	json_object *o = json_object_new_object();
	char *s;

	bg_json_add_str(o, "model", req->model && *req->model ? req->model : BG_ANTHROPIC_DEFAULT_MODEL);
	bg_json_add_int(o, "max_tokens", req->max_tokens > 0 ? req->max_tokens : 4096);
	if (req->system && *req->system) {
		/* cache_control on the last system block caches tools + system */
		json_object *sys = json_object_new_array(), *blk = json_object_new_object();
		json_object *cc = json_object_new_object();
		bg_json_add_str(blk, "type", "text");
		bg_json_add_str(blk, "text", req->system);
		bg_json_add_str(cc, "type", "ephemeral");
		json_object_object_add(blk, "cache_control", cc);
		json_object_array_add(sys, blk);
		json_object_object_add(o, "system", sys);
	}
	if (req->tools && json_object_array_length(req->tools) > 0)
		json_object_object_add(o, "tools", json_object_get(req->tools));
	json_object_object_add(o, "messages", json_object_get(req->messages));
	bg_json_add_bool(o, "stream", 1);
	s = bg_json_dump(o);
	json_object_put(o);
	return s;
}

static int headers(bg_llm_remote *r, struct curl_slist **h)
{
	int rc = BG_OK;

	if (r->key && r->oauth) {
		bg_buf v = BG_BUF_INIT;
		rc = bg_buf_printf(&v, "Bearer %s", bg_secret_data(r->key));
		if (rc == BG_OK)
			rc = bg_llm_header(h, "Authorization", v.data);
		bg_buf_wipe(&v);
		/* the API refuses OAuth tokens without this beta flag (401) */
		if (rc == BG_OK)
			rc = bg_llm_header(h, "anthropic-beta", "oauth-2025-04-20");
	} else if (r->key)
		rc = bg_llm_header(h, "x-api-key", bg_secret_data(r->key));
	if (rc == BG_OK)
		rc = bg_llm_header(h, "anthropic-version", "2023-06-01");
	if (rc == BG_OK)
		rc = bg_llm_header(h, "content-type", "application/json");
	if (rc == BG_OK)
		rc = bg_llm_header(h, "accept", "text/event-stream");
	if (rc == BG_OK)
		rc = bg_llm_no_expect(h);
	return rc;
}

int bg_llm_anthropic_headers(bg_llm_remote *r, struct curl_slist **h)
{
	return headers(r, h);
}

static void fill(astate *a, bg_llm_response *resp)
{
	resp->message = rebuild(a);
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "%s", a->stop_reason);
	resp->input_tokens = a->in_tok;
	resp->output_tokens = a->out_tok;
	resp->cache_read_tokens = a->cache_read;
	resp->cache_creation_tokens = a->cache_creation;
}

static int complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	bg_llm_remote *r = (bg_llm_remote *)llm;
	astate *a = calloc(1, sizeof(*a));
	struct curl_slist *h = NULL;
	bg_buf url = BG_BUF_INIT;
	bg_llm_hooks hooks = {reset, event, end, a};
	char *body = bg_llm_anthropic_body(req);
	int rc;

	if (atomic_exchange(&r->busy, 1)) {
		free(a);
		free(body);
		return bg_error_set(BG_ESTATE, "anthropic: a request is already running on this handle");
	}
	if (!a || !body)
		rc = bg_error_oom();
	else if ((rc = headers(r, &h)) == BG_OK && (rc = bg_llm_url(&url, r->base_url, "/v1/messages")) == BG_OK) {
		a->cb = cb;
		rc = bg_llm_remote_run(r, url.data, h, body, req, cb, &hooks, &resp->attempts);
		if (rc == BG_OK)
			fill(a, resp);
	}
	if (a)
		reset(a);
	free(a);
	free(body);
	bg_buf_free(&url);
	bg_llm_headers_free(h);
	atomic_store(&r->busy, 0);
	return rc;
}

int bg_llm_anthropic_replay(const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
			    bg_llm_response *resp)
{
	astate *a = calloc(1, sizeof(*a));
	bg_llm_hooks hooks = {reset, event, end, a};
	int rc;

	if (!a)
		return bg_error_oom();
	a->cb = cb;
	rc = bg_llm_replay_hooks(&hooks, stream, len, chunk);
	if (rc == BG_OK)
		fill(a, resp);
	reset(a);
	free(a);
	return rc;
}

static const bg_llm_vtable vtable = {"anthropic", complete, bg_llm_remote_destroy};

int bg_llm_anthropic_new(bg_llm **out, const bg_llm_settings *s)
{
	bg_llm_remote *r;
	int rc = bg_llm_remote_new(&r, "anthropic", &vtable, s, BG_ANTHROPIC_DEFAULT_BASE);

	if (rc != BG_OK)
		return rc;
	/* Claude OAuth access tokens are recognisable: never send one as x-api-key */
	if (r->key && strncmp(bg_secret_data(r->key), "sk-ant-oat", 10) == 0)
		r->oauth = 1;
	*out = &r->base;
	return BG_OK;
}
