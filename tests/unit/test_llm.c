/* The providers' stream parsers on recorded streams, the request bodies,
 * the retry timing and the UTF-8 holding, without a network. */
#include "bg_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "llm/provider.h"
#include "llm/remote.h"

typedef struct seen {
	bg_buf text;
	int calls;
	bg_buf tools; /* "id name input;" per tool */
	int abort_text;
} seen;

static int on_text(const char *d, size_t n, void *p)
{
	seen *s = p;
	s->calls++;
	bg_buf_append(&s->text, d, n);
	return s->abort_text ? -99 : 0;
}

static int on_tool(const char *id, const char *name, json_object *input, void *p)
{
	seen *s = p;
	return bg_buf_printf(&s->tools, "%s %s %s;", id, name,
			     json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN));
}

static void seen_free(seen *s)
{
	bg_buf_free(&s->text);
	bg_buf_free(&s->tools);
	memset(s, 0, sizeof(*s));
}

static char *slurp(const char *name, size_t *len)
{
	const char *dir = getenv("BG_FIXTURES");
	char path[512];
	bg_buf b = BG_BUF_INIT;
	char tmp[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/llm/%s", dir ? dir : "tests/fixtures", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		bg_buf_append(&b, tmp, n);
	fclose(f);
	*len = b.len;
	return bg_buf_detach(&b);
}

static void assert_json_equal(json_object *got, const char *want)
{
	json_object *w = bg_json_parse(want, strlen(want), "want");

	assert_non_null(w);
	if (!json_object_equal(got, w))
		fail_msg("got  %s\nwant %s", json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
			 json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
	json_object_put(w);
}

/* Replay a fixture whole and in chunks of 1..7 bytes: same result each time. */
static void replay_all(const char *provider, const char *fixture, const char *want_msg, const char *want_text,
		       const char *want_tools, const char *want_stop)
{
	size_t len, chunk;
	char *stream = slurp(fixture, &len);

	for (chunk = 0; chunk <= 7; chunk++) {
		seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 0};
		bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
		bg_llm_response resp;
		int rc = bg_llm_replay(provider, stream, len, chunk, &cb, &resp);
		if (rc != BG_OK)
			fail_msg("%s in chunks of %zu: %d %s", fixture, chunk, rc, bg_error_last()->message);
		assert_json_equal(resp.message, want_msg);
		assert_string_equal(s.text.data ? s.text.data : "", want_text);
		assert_string_equal(s.tools.data ? s.tools.data : "", want_tools);
		assert_string_equal(resp.stop_reason, want_stop);
		bg_llm_response_clear(&resp);
		seen_free(&s);
	}
	free(stream);
}

static void test_anthropic_recorded(void **state)
{
	seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 0};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
	bg_llm_response resp;
	size_t len;
	char *stream = slurp("anthropic-stream.sse", &len);

	(void)state;
	replay_all("anthropic", "anthropic-stream.sse",
		   "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking memory first.\"},"
		   "{\"type\":\"tool_use\",\"id\":\"toolu_01Qz\",\"name\":\"devvm_exec\",\"input\":{\"command\":\"free "
		   "-m\"}}]}",
		   "Checking memory first.", "toolu_01Qz devvm_exec {\"command\":\"free -m\"};", "tool_use");
	assert_int_equal(bg_llm_replay("anthropic", stream, len, 3, &cb, &resp), BG_OK);
	assert_int_equal(resp.input_tokens, 812);
	assert_int_equal(resp.output_tokens, 41);
	bg_llm_response_clear(&resp);
	seen_free(&s);
	free(stream);
}

static void test_anthropic_thinking_unknown(void **state)
{
	(void)state;
	/* CRLF lines, a comment, a thinking block with its signature, an
	 * unknown delta type and an unknown event */
	replay_all("anthropic", "anthropic-thinking.sse",
		   "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"The load is high.\","
		   "\"signature\":\"EqQBCgIYAhIM\"},{\"type\":\"text\",\"text\":\"Load 12, \xe2\x80\x98"
		   "D\xe2\x80\x99 state: storage.\"}]}",
		   "Load 12, \xe2\x80\x98"
		   "D\xe2\x80\x99 state: storage.",
		   "", "end_turn");
}

static void test_anthropic_stream_errors(void **state)
{
	seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 0};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
	bg_llm_response resp;
	size_t len;
	char *stream = slurp("anthropic-overloaded.sse", &len);
	const char *cut = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n";
	const char *bad_json = "event: ping\ndata: {\"type\":\n\n";
	const char *bad_input = "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
				"\"tool_use\",\"id\":\"t\",\"name\":\"pve\",\"input\":{}}}\n\n"
				"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
				"\"input_json_delta\",\"partial_json\":\"{\\\"verb\\\": \"}}\n\n"
				"data: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
	const char *bad_index = "data: {\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":"
				"\"text_delta\",\"text\":\"x\"}}\n\n";

	(void)state;
	/* mid-stream overloaded_error: retryable, so "unavailable" here */
	assert_int_equal(bg_llm_replay("anthropic", stream, len, 1, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("error in the stream: overloaded_error: Overloaded");
	assert_null(resp.message);
	assert_int_equal(bg_llm_replay("anthropic", cut, strlen(cut), 0, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("the stream ended before message_stop");
	assert_int_equal(bg_llm_replay("anthropic", bad_json, strlen(bad_json), 0, &cb, &resp), BG_EPROTO);
	assert_error_contains("anthropic stream event: invalid JSON");
	assert_int_equal(bg_llm_replay("anthropic", bad_input, strlen(bad_input), 0, &cb, &resp), BG_EPROTO);
	assert_error_contains("tool pve: tool input: invalid JSON");
	assert_int_equal(bg_llm_replay("anthropic", bad_index, strlen(bad_index), 0, &cb, &resp), BG_EPROTO);
	assert_error_contains("index 5");
	seen_free(&s);
	free(stream);
}

static void test_callback_abort(void **state)
{
	seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 1};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
	bg_llm_response resp;
	size_t len;
	char *stream = slurp("anthropic-stream.sse", &len);

	(void)state;
	assert_int_equal(bg_llm_replay("anthropic", stream, len, 0, &cb, &resp), -99);
	assert_int_equal(s.calls, 1);
	seen_free(&s);
	free(stream);
}

static void test_openai_recorded(void **state)
{
	const char *done_less = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},"
				"\"finish_reason\":null}]}\n\n";
	const char *stop_tools = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
				 "\"function\":{\"name\":\"devvm_triage\",\"arguments\":\"\"}}]},\"finish_reason\":"
				 "\"stop\"}]}\n\n";
	const char *err = "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n";
	seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 0};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
	bg_llm_response resp;

	(void)state;
	/* a repeated name is not doubled; pieces of arguments join */
	replay_all(
		"openai", "openai-stream.sse",
		"{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Two checks.\"},"
		"{\"type\":\"tool_use\",\"id\":\"call_x1\",\"name\":\"devvm_exec\",\"input\":{\"command\":\"uptime\"}},"
		"{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"devvm_triage\",\"input\":{}}]}",
		"Two checks.", "call_x1 devvm_exec {\"command\":\"uptime\"};call_1 devvm_triage {};", "tool_use");
	assert_int_equal(bg_llm_replay("openai", done_less, strlen(done_less), 0, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("ended before [DONE]");
	/* some local servers say "stop" after tool calls, and send no id */
	assert_int_equal(bg_llm_replay("openai", stop_tools, strlen(stop_tools), 0, &cb, &resp), BG_OK);
	assert_string_equal(resp.stop_reason, "tool_use");
	assert_json_equal(resp.message, "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_0\","
					"\"name\":\"devvm_triage\",\"input\":{}}]}");
	bg_llm_response_clear(&resp);
	assert_int_equal(bg_llm_replay("openai", err, strlen(err), 0, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("server_error: busy");
	seen_free(&s);
}

static void test_utf8_holding(void **state)
{
	seen s = {BG_BUF_INIT, 0, BG_BUF_INIT, 0};
	bg_llm_callbacks cb = {on_text, NULL, NULL, &s};
	bg_llm_utf8 u = {{0}, 0};

	(void)state;
	assert_int_equal(bg_llm_text(&u, &cb, "a\xe2", 2), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.text.len, 1);
	assert_int_equal(bg_llm_text(&u, &cb, "\x82", 1), 0);
	assert_int_equal(s.calls, 1); /* still incomplete: nothing delivered */
	assert_int_equal(bg_llm_text(&u, &cb, "\xac\xf0\x9f", 3), 0);
	assert_string_equal(s.text.data, "a\xe2\x82\xac");
	assert_int_equal(bg_llm_text(&u, &cb, "\x9a\x80!", 3), 0);
	assert_string_equal(s.text.data, "a\xe2\x82\xac\xf0\x9f\x9a\x80!");
	/* a character never completed is flushed as is at the block's end */
	assert_int_equal(bg_llm_text(&u, &cb, "\xc3", 1), 0);
	assert_int_equal(bg_llm_text_flush(&u, &cb), 0);
	assert_int_equal(s.text.data[s.text.len - 1], '\xc3');
	seen_free(&s);
}

static void test_retry_after(void **state)
{
	char date[64];
	time_t t = time(NULL) + 10;
	int64_t ms;

	(void)state;
	assert_int_equal(bg_llm_retry_after("300", NULL), 300);
	assert_int_equal(bg_llm_retry_after("12.5", "9"), 12);
	assert_int_equal(bg_llm_retry_after(NULL, "2"), 2000);
	assert_int_equal(bg_llm_retry_after("", "1.5"), 1500);
	assert_int_equal(bg_llm_retry_after(NULL, "0"), 0);
	assert_int_equal(bg_llm_retry_after(NULL, "61"), -1); /* over 60 s: use the backoff */
	assert_int_equal(bg_llm_retry_after("-5", NULL), -1);
	assert_int_equal(bg_llm_retry_after("soon", "later"), -1);
	assert_int_equal(bg_llm_retry_after(NULL, NULL), -1);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
	ms = bg_llm_retry_after(NULL, date);
	assert_true(ms > 8000 && ms <= 10000);
}

static void test_backoff(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 50; i++) {
		int64_t a = bg_llm_backoff_ms(0), b = bg_llm_backoff_ms(1), c = bg_llm_backoff_ms(4),
			d = bg_llm_backoff_ms(30);
		assert_true(a >= 375 && a <= 500);
		assert_true(b >= 750 && b <= 1000);
		assert_true(c >= 6000 && c <= 8000);
		assert_true(d >= 6000 && d <= 8000);
	}
}

static void test_url(void **state)
{
	bg_buf b = BG_BUF_INIT;

	(void)state;
	bg_llm_url(&b, "https://api.anthropic.com", "/v1/messages");
	assert_string_equal(b.data, "https://api.anthropic.com/v1/messages");
	bg_buf_clear(&b);
	bg_llm_url(&b, "http://127.0.0.1:11434/v1", "/v1/chat/completions");
	assert_string_equal(b.data, "http://127.0.0.1:11434/v1/chat/completions");
	bg_buf_free(&b);
}

static bg_llm_request sample(json_object **tools, json_object **msgs)
{
	bg_llm_request r;
	const char *t = "[{\"name\":\"pve\",\"description\":\"A verb\",\"input_schema\":{\"type\":\"object\"}}]";
	const char *m = "[{\"role\":\"user\",\"content\":\"help\"},"
			"{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
			"{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"pve\",\"input\":{\"verb\":\"status\"}}]},"
			"{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
			"\"content\":\"running\"},{\"type\":\"text\",\"text\":\"and?\"}]}]";

	*tools = bg_json_parse(t, strlen(t), "tools");
	*msgs = bg_json_parse(m, strlen(m), "messages");
	memset(&r, 0, sizeof(r));
	r.system = "Be brief.";
	r.tools = *tools;
	r.messages = *msgs;
	return r;
}

static void test_anthropic_body(void **state)
{
	json_object *tools, *msgs, *o;
	bg_llm_request r = sample(&tools, &msgs);
	char *body = bg_llm_anthropic_body(&r);

	(void)state;
	o = bg_json_parse(body, strlen(body), "body");
	json_object_object_del(o, "messages");
	assert_json_equal(o, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4096,\"system\":[{\"type\":\"text\","
			     "\"text\":\"Be brief.\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"tools\":[{\"name\":"
			     "\"pve\",\"description\":\"A verb\",\"input_schema\":{\"type\":\"object\"}}],"
			     "\"stream\":true}");
	json_object_put(o);
	free(body);
	json_object_put(tools);
	json_object_put(msgs);
}

static void test_openai_body(void **state)
{
	json_object *tools, *msgs, *o;
	bg_llm_request r = sample(&tools, &msgs);
	char *body;

	(void)state;
	r.model = "llama3";
	r.max_tokens = 100;
	body = bg_llm_openai_body(&r);
	o = bg_json_parse(body, strlen(body), "body");
	assert_json_equal(
		o,
		"{\"model\":\"llama3\",\"max_tokens\":100,\"messages\":["
		"{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"help\"},"
		"{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":"
		"\"function\",\"function\":{\"name\":\"pve\",\"arguments\":\"{\\\"verb\\\":\\\"status\\\"}\"}}]},"
		"{\"role\":\"tool\",\"content\":\"running\",\"tool_call_id\":\"toolu_1\"},"
		"{\"role\":\"user\",\"content\":\"and?\"}],"
		"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"pve\",\"description\":\"A verb\","
		"\"parameters\":{\"type\":\"object\"}}}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	json_object_put(o);
	free(body);
	json_object_put(tools);
	json_object_put(msgs);
}

static void test_new(void **state)
{
	bg_llm_settings s = {0};
	bg_llm *llm = NULL;

	(void)state;
	s.provider = "bogus";
	assert_int_equal(bg_llm_new(&llm, &s), BG_EINVAL);
	assert_error_contains("anthropic, openai or offline");
	s.provider = "anthropic";
	s.base_url = "ftp://example.com";
	assert_int_equal(bg_llm_new(&llm, &s), BG_EINVAL);
	assert_error_contains("must start with http:// or https://");
	assert_null(llm);
	s.base_url = NULL;
	assert_int_equal(bg_llm_new(&llm, &s), BG_OK);
	assert_string_equal(llm->vt->name, "anthropic");
	assert_false(bg_llm_cancelled(llm));
	bg_llm_cancel(llm);
	assert_true(bg_llm_cancelled(llm));
	bg_llm_free(llm);
	s.provider = "openai";
	assert_int_equal(bg_llm_new(&llm, &s), BG_OK);
	assert_string_equal(llm->vt->name, "openai");
	bg_llm_free(llm);
	bg_llm_free(NULL);
	bg_llm_response_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anthropic_recorded),
		cmocka_unit_test(test_anthropic_thinking_unknown),
		cmocka_unit_test(test_anthropic_stream_errors),
		cmocka_unit_test(test_callback_abort),
		cmocka_unit_test(test_openai_recorded),
		cmocka_unit_test(test_utf8_holding),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_anthropic_body),
		cmocka_unit_test(test_openai_body),
		cmocka_unit_test(test_new),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
