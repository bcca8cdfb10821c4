/*
 * The anthropic and openai providers against tests/lab/mock-llm, a mock
 * API on loopback driven by the scenarios in tests/fixtures/llm/. The
 * mock records every request it gets, and checks each against what the
 * scenario expects (a mismatch is an HTTP 400 and a "mismatch" entry).
 *
 *   test_llm_mock anthropic|openai|check
 */
#include "bg_test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "breakglass/llm.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "llm/provider.h"

/* ---- the mock ---- */

typedef struct mock {
	pid_t pid;
	char dir[128];
	char record[192];
	char url[64];
} mock;

/* The mock of the running test, stopped by the teardown even when an
 * assertion jumped out of the test. */
static mock *running;

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

static void mock_start(mock *m, const char *scenario)
{
	char sc[512], portf[192], prog[512], buf[32] = "";
	int i;

	snprintf(m->dir, sizeof(m->dir), "/tmp/bg-mock-llm-XXXXXX");
	assert_non_null(mkdtemp(m->dir));
	snprintf(sc, sizeof(sc), "%s/tests/fixtures/llm/%s", env_or("BG_SOURCE_DIR", "."), scenario);
	snprintf(prog, sizeof(prog), "%s/tests/lab/mock-llm", env_or("BG_SOURCE_DIR", "."));
	snprintf(m->record, sizeof(m->record), "%s/record.jsonl", m->dir);
	snprintf(portf, sizeof(portf), "%s/port", m->dir);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		char log[256];
		int null = open("/dev/null", O_WRONLY), err;
		snprintf(log, sizeof(log), "%s/mock.log", m->dir);
		err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(null, 1);
		dup2(err, 2);
		execl("/usr/bin/python3", "python3", prog, "--scenario", sc, "--record", m->record, "--port-file",
		      portf, "--max-life", "110", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		FILE *f = fopen(portf, "r");
		if (f) {
			if (fgets(buf, sizeof(buf), f))
				i = 1000;
			fclose(f);
		}
		if (i < 1000)
			usleep(25000);
	}
	if (!buf[0])
		fail_msg("mock-llm did not start (scenario %s)", scenario);
	snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%ld", strtol(buf, NULL, 10));
	running = m;
}

static void mock_stop(mock *m)
{
	char path[256];

	if (!m->pid)
		return;
	kill(m->pid, SIGTERM);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
	running = NULL;
	unlink(m->record);
	snprintf(path, sizeof(path), "%s/port", m->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mock.log", m->dir);
	unlink(path);
	rmdir(m->dir);
}

static int teardown(void **state)
{
	(void)state;
	if (running)
		mock_stop(running);
	return 0;
}

/* The requests the mock received, as a JSON array (caller puts). */
static json_object *mock_records(mock *m)
{
	json_object *arr = json_object_new_array();
	FILE *f = fopen(m->record, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_object *o = bg_json_parse(line, (size_t)n, "record");
		assert_non_null(o);
		json_object_array_add(arr, o);
	}
	free(line);
	fclose(f);
	return arr;
}

static json_object *record_at(json_object *recs, size_t i)
{
	return json_object_array_get_idx(recs, i);
}

static void assert_no_mismatch(json_object *recs)
{
	size_t i;

	for (i = 0; i < json_object_array_length(recs); i++) {
		json_object *mm = bg_json_arr(record_at(recs, i), "mismatch");
		if (mm)
			fail_msg("request %zu did not match: %s", i + 1, json_object_to_json_string(mm));
	}
}

static double record_gap(json_object *recs, size_t a, size_t b)
{
	json_object *t1, *t2;

	json_object_object_get_ex(record_at(recs, a), "t", &t1);
	json_object_object_get_ex(record_at(recs, b), "t", &t2);
	return json_object_get_double(t2) - json_object_get_double(t1);
}

/* ---- what the callbacks saw ---- */

typedef struct seen {
	bg_buf text;
	int text_calls;
	int bad_utf8;
	int ntools;
	char ids[8][32], names[8][32], inputs[8][256];
	int retries;
	int64_t delays[8];
	char why[8][300];
} seen;

static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] < 0xC0)
			return 0;
		need = s[i] >= 0xF0 ? 3 : s[i] >= 0xE0 ? 2 : 1;
		if (i + need >= n)
			return 0;
		for (k = 1; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		i += need + 1;
	}
	return 1;
}

static int on_text(const char *d, size_t n, void *p)
{
	seen *s = p;
	s->text_calls++;
	if (!utf8_valid((const unsigned char *)d, n))
		s->bad_utf8++;
	return bg_buf_append(&s->text, d, n);
}

static int on_tool(const char *id, const char *name, json_object *input, void *p)
{
	seen *s = p;
	if (s->ntools < 8) {
		snprintf(s->ids[s->ntools], 32, "%s", id);
		snprintf(s->names[s->ntools], 32, "%s", name);
		snprintf(s->inputs[s->ntools], 256, "%s",
			 json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN));
	}
	s->ntools++;
	return 0;
}

static int on_retry(int attempt, int64_t delay_ms, const char *why, void *p)
{
	seen *s = p;
	(void)attempt;
	if (s->retries < 8) {
		s->delays[s->retries] = delay_ms;
		snprintf(s->why[s->retries], 300, "%s", why);
	}
	s->retries++;
	return 0;
}

static bg_llm_callbacks callbacks(seen *s)
{
	bg_llm_callbacks cb = {on_text, on_tool, on_retry, s};
	memset(s, 0, sizeof(*s));
	return cb;
}

/* ---- helpers ---- */

#define expect_rc(call, want)                                                                           \
	do {                                                                                            \
		int rc_ = (call);                                                                       \
		if (rc_ != (want))                                                                      \
			fail_msg("%s: %d (%s), want %d", #call, rc_, bg_error_last()->message, (want)); \
	} while (0)

static int oauth_next; /* the next make() sets oauth */

static bg_llm *make(const char *provider, const char *url, const char *key, int retries, int idle_ms)
{
	bg_llm_settings st = {0};
	bg_secret *sec = NULL;
	bg_llm *llm = NULL;

	if (key)
		assert_int_equal(bg_secret_new(&sec, key, strlen(key)), BG_OK);
	st.provider = provider;
	st.base_url = url;
	st.api_key = sec;
	st.max_retries = retries;
	st.connect_timeout_ms = 2000;
	st.idle_timeout_ms = idle_ms;
	st.oauth = oauth_next;
	oauth_next = 0;
	assert_int_equal(bg_llm_new(&llm, &st), BG_OK);
	bg_secret_free(sec); /* the provider keeps its own copy */
	return llm;
}

static json_object *parse(const char *s)
{
	json_object *o = bg_json_parse(s, strlen(s), "test JSON");
	assert_non_null(o);
	return o;
}

static const char *TOOLS = "[{\"name\":\"devvm_exec\",\"description\":\"Run a command on the devvm\","
			   "\"input_schema\":{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\"}},"
			   "\"required\":[\"command\"]}},"
			   "{\"name\":\"devvm_triage\",\"description\":\"Triage bundle\","
			   "\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]";

static bg_llm_request request(const char *model, json_object *tools, json_object *messages)
{
	bg_llm_request r;

	memset(&r, 0, sizeof(r));
	r.model = model;
	r.max_tokens = 1024;
	r.system = "You are the breakglass agent.";
	r.tools = tools;
	r.messages = messages;
	r.deadline = bg_deadline_in(60000);
	return r;
}

static const char *block_str(json_object *msg, size_t i, const char *key)
{
	return bg_json_str(json_object_array_get_idx(bg_json_arr(msg, "content"), i), key, "(none)");
}

/* ---- anthropic ---- */

static void test_anthropic_tool_turn(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *tools = parse(TOOLS), *msgs = parse("[{\"role\":\"user\",\"content\":\"the devvm hangs\"}]");
	json_object *recs;
	bg_llm_response resp;
	bg_llm_request req;
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-tool-turn.json");
	llm = make("anthropic", m.url, "sk-test-key", 0, 0);
	req = request("claude-sonnet-4-5", tools, msgs);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(resp.stop_reason, "tool_use");
	assert_int_equal(resp.attempts, 1);
	assert_string_equal(s.text.data, "Checking memory and the kernel log.");
	assert_int_equal(s.ntools, 3);
	assert_string_equal(s.ids[0], "toolu_01");
	assert_string_equal(s.inputs[0], "{\"command\":\"free -m\",\"timeout_s\":10}");
	assert_string_equal(s.names[1], "devvm_triage");
	assert_string_equal(s.inputs[1], "{}"); /* empty input JSON means {} */
	assert_string_equal(s.inputs[2], "{\"command\":\"dmesg | tail -n 20 # \xc3\xbcn\xc3\xaf"
					 "code\"}");
	assert_int_equal(json_object_array_length(bg_json_arr(resp.message, "content")), 4);
	assert_string_equal(bg_json_str(resp.message, "role", ""), "assistant");
	assert_string_equal(block_str(resp.message, 0, "type"), "text");
	assert_string_equal(block_str(resp.message, 3, "id"), "toolu_03");
	assert_int_equal(resp.input_tokens, 812);
	assert_int_equal(resp.output_tokens, 41);
	assert_int_equal(resp.cache_read_tokens, 700);
	assert_int_equal(resp.cache_creation_tokens, 12);

	/* send the message back as received, then the results, first */
	json_object_array_add(msgs, json_object_get(resp.message));
	json_object_array_add(msgs,
			      parse("{\"role\":\"user\",\"content\":["
				    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\",\"content\":\"Mem: 1\"},"
				    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_02\",\"content\":\"ok\"},"
				    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_03\",\"content\":\"oom\","
				    "\"is_error\":false},{\"type\":\"text\",\"text\":\"go on\"}]}"));
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	cb = callbacks(&s);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(resp.stop_reason, "end_turn");
	assert_string_equal(s.text.data, "Memory is exhausted: the OOM killer ran.");

	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 2);
	assert_no_mismatch(recs);
	json_object_put(recs);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(tools);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_oauth(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-oauth.json");
	llm = make("anthropic", m.url, "sk-ant-oat01-test", 0, 0); /* recognised by its prefix */
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	bg_llm_response_clear(&resp);
	bg_llm_free(llm);
	oauth_next = 1;
	llm = make("anthropic", m.url, "opaque-token", 0, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	bg_llm_response_clear(&resp);
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 2);
	assert_no_mismatch(recs);
	json_object_put(recs);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_bad_order(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-bad-order.json");
	llm = make("anthropic", m.url, "k", 2, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	json_object_array_add(msgs, json_object_get(resp.message));
	json_object_array_add(msgs,
			      parse("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"here\"},"
				    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\",\"content\":\"x\"}]}"));
	bg_llm_response_clear(&resp);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EINVAL);
	assert_error_contains("HTTP 400 invalid_request_error");
	assert_error_contains("must start with 1 tool_result");
	assert_int_equal(resp.attempts, 1); /* a 400 is not retried */
	assert_null(resp.message);
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 2);
	assert_non_null(bg_json_arr(record_at(recs, 1), "mismatch"));
	json_object_put(recs);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_utf8_split(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]");
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	const char *want = "\xc3\x87"
			   "a marche: \xe2\x82\xac"
			   "5, \xe6\x97\xa5\xe6\x9c\xac, \xf0\x9f\x9a\x80 ok";
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-utf8-split.json");
	llm = make("anthropic", m.url, "k", 0, 0);
	req.deadline.at_ms = 0; /* a zeroed deadline is none, not expired */
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(s.text.data, want);
	assert_int_equal(s.bad_utf8, 0);
	assert_true(s.text_calls >= 5);
	assert_string_equal(block_str(resp.message, 0, "text"), want);
	/* the unknown delta type and event were ignored */
	assert_int_equal(json_object_array_length(bg_json_arr(resp.message, "content")), 1);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_retry_after(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;
	double g1, g2;

	(void)state;
	mock_start(&m, "anthropic-retry-after.json");
	llm = make("anthropic", m.url, "k", 2, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_int_equal(resp.attempts, 3);
	assert_string_equal(s.text.data, "third time lucky");
	assert_int_equal(s.retries, 2);
	assert_int_equal(s.delays[0], 300);  /* retry-after-ms */
	assert_int_equal(s.delays[1], 1000); /* retry-after, seconds */
	assert_non_null(strstr(s.why[0], "HTTP 529 overloaded_error: Overloaded"));
	assert_non_null(strstr(s.why[1], "HTTP 429 rate_limit_error"));
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 3);
	g1 = record_gap(recs, 0, 1);
	g2 = record_gap(recs, 1, 2);
	print_message("retry-after-ms 300 -> waited %.3f s; retry-after 1 -> waited %.3f s\n", g1, g2);
	if (g1 < 0.29 || g1 > 1.0 || g2 < 0.99 || g2 > 2.0)
		fail_msg("waits between attempts were %.3f s and %.3f s, want 0.3 and 1.0", g1, g2);
	json_object_put(recs);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_backoff(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;
	double g1, g2;

	(void)state;
	mock_start(&m, "anthropic-backoff.json");
	llm = make("anthropic", m.url, "k", 2, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("stayed unavailable after 3 attempts");
	assert_error_contains("HTTP 500 api_error: Internal server error");
	assert_int_equal(resp.attempts, 3);
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 3); /* 1 + 2 retries, not more */
	g1 = record_gap(recs, 0, 1);
	g2 = record_gap(recs, 1, 2);
	/* min(0.5·2^n, 8) s less up to 25 % jitter */
	print_message("backoff without a hint: waited %.3f s then %.3f s\n", g1, g2);
	if (g1 < 0.37 || g1 > 1.0 || g2 < 0.74 || g2 > 1.6)
		fail_msg("backoff waits were %.3f s and %.3f s, want ~0.5 and ~1.0", g1, g2);
	json_object_put(recs);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_no_retry(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-no-retry.json");
	llm = make("anthropic", m.url, "k", 2, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EINVAL);
	assert_error_contains("HTTP 400 invalid_request_error: messages: roles must alternate");
	assert_error_contains("request-id req_mock_1");
	assert_int_equal(resp.attempts, 1);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EAUTH);
	assert_error_contains("HTTP 401 authentication_error: invalid x-api-key");
	assert_error_contains("check the API key");
	assert_int_equal(resp.attempts, 1);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("spend limit or quota, not a rate limit: not retried");
	assert_int_equal(resp.attempts, 1);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("[x-should-retry: false]");
	assert_int_equal(resp.attempts, 1);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_int_equal(resp.attempts, 2); /* x-should-retry: true on a 400 */
	assert_string_equal(s.text.data, "retried");
	bg_llm_response_clear(&resp);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EPROTO);
	assert_error_contains("answered 200 with content-type application/json, not an event stream");
	assert_int_equal(resp.attempts, 1);
	{
		/* a large request (2 MiB of conversation) goes through at once */
		json_object *big = json_object_new_array(), *m1 = json_object_new_object();
		char *pad = malloc(2 << 20);
		int64_t t0;
		memset(pad, 'x', (2 << 20) - 1);
		pad[(2 << 20) - 1] = '\0';
		bg_json_add_str(m1, "role", "user");
		bg_json_add_str(m1, "content", pad);
		json_object_array_add(big, m1);
		req.messages = big;
		t0 = bg_now_ms();
		expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
		print_message("a 2 MiB request took %lld ms\n", (long long)(bg_now_ms() - t0));
		assert_true(bg_now_ms() - t0 < 5000);
		bg_llm_response_clear(&resp);
		req.messages = msgs;
		json_object_put(big);
		free(pad);
	}
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 8);
	json_object_put(recs);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_stream_faults(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]"), *recs;
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;

	(void)state;
	mock_start(&m, "anthropic-stream-faults.json");
	llm = make("anthropic", m.url, "k", 3, 500);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_int_equal(resp.attempts, 4);
	assert_int_equal(s.retries, 3);
	assert_non_null(strstr(s.why[0], "overloaded_error: Overloaded"));
	assert_non_null(strstr(s.why[1], "closed mid-stream"));
	assert_non_null(strstr(s.why[2], "idle timeout"));
	/* only the last reply is kept: the partial ones were dropped */
	assert_int_equal(json_object_array_length(bg_json_arr(resp.message, "content")), 2);
	assert_string_equal(block_str(resp.message, 0, "text"), "final answer");
	assert_string_equal(block_str(resp.message, 1, "id"), "toolu_ok");
	assert_int_equal(s.ntools, 1);
	assert_string_equal(s.ids[0], "toolu_ok");
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 4);
	json_object_put(recs);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

typedef struct canceller {
	bg_llm *llm;
	int64_t at_ms;
} canceller;

static void *cancel_later(void *p)
{
	canceller *c = p;
	bg_sleep_ms(300);
	c->at_ms = bg_now_ms();
	bg_llm_cancel(c->llm);
	return NULL;
}

static void test_anthropic_stall_and_cancel(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]");
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	bg_llm *llm;
	canceller c;
	pthread_t th;
	int64_t t0;

	(void)state;
	mock_start(&m, "anthropic-stall.json");
	llm = make("anthropic", m.url, "k", 0, 400);
	t0 = bg_now_ms();
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("no data for 400 ms (idle timeout)");
	print_message("idle timeout 400 ms on a 4 s stall -> returned after %lld ms\n", (long long)(bg_now_ms() - t0));
	assert_true(bg_now_ms() - t0 < 2000); /* the server stalls for 4 s */
	bg_llm_free(llm);

	llm = make("anthropic", m.url, "k", 2, 10000);
	c.llm = llm;
	assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_ECANCELLED);
	print_message("cancel -> complete() returned after %lld ms\n", (long long)(bg_now_ms() - c.at_ms));
	if (bg_now_ms() - c.at_ms >= 1000)
		fail_msg("complete() returned %lld ms after the cancel", (long long)(bg_now_ms() - c.at_ms));
	pthread_join(th, NULL);
	/* sticky until reset */
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_ECANCELLED);
	bg_llm_reset_cancel(llm);
	assert_false(bg_llm_cancelled(llm));
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_anthropic_refused_and_deadline(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]");
	bg_llm_response resp;
	bg_llm_request req = request(NULL, NULL, msgs);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bg_llm *llm;
	int64_t t0;

	(void)state;
	/* a port that was free a moment ago: nothing listens there */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	llm = make("anthropic", url, "k", 1, 0);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_int_equal(resp.attempts, 2);
	assert_error_contains("connect");
	assert_int_equal(s.retries, 1);
	bg_llm_free(llm);

	/* a retry that would end after the turn's deadline is not taken */
	mock_start(&m, "anthropic-deadline.json");
	llm = make("anthropic", m.url, "k", 2, 0);
	req.deadline = bg_deadline_in(2000);
	t0 = bg_now_ms();
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("waiting 5000 ms would pass the turn's deadline");
	assert_int_equal(resp.attempts, 1);
	assert_true(bg_now_ms() - t0 < 1500);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

/* ---- openai ---- */

static void test_openai_tool_turn(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *tools = parse(TOOLS), *msgs = parse("[{\"role\":\"user\",\"content\":\"the devvm hangs\"}]");
	json_object *recs;
	bg_llm_response resp;
	bg_llm_request req = request("qwen2.5-7b", tools, msgs);
	bg_llm *llm;

	(void)state;
	mock_start(&m, "openai-tool-turn.json");
	llm = make("openai", m.url, NULL, 2, 0); /* a local server: no key */
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(resp.stop_reason, "tool_use");
	assert_string_equal(s.text.data, "Looking: \xc3\xa7"
					 "a va.");
	assert_int_equal(s.ntools, 2);
	assert_string_equal(s.ids[0], "call_a");
	assert_string_equal(s.inputs[0], "{\"command\":\"free -m\"}");
	assert_string_equal(s.names[1], "devvm_triage");
	assert_string_equal(s.inputs[1], "{}");
	assert_int_equal(resp.input_tokens, 100);
	assert_int_equal(resp.output_tokens, 42);
	/* the reply in the Anthropic shape */
	assert_int_equal(json_object_array_length(bg_json_arr(resp.message, "content")), 3);
	assert_string_equal(block_str(resp.message, 1, "type"), "tool_use");
	assert_string_equal(block_str(resp.message, 2, "id"), "call_b");

	json_object_array_add(msgs, json_object_get(resp.message));
	json_object_array_add(
		msgs, parse("{\"role\":\"user\",\"content\":["
			    "{\"type\":\"tool_result\",\"tool_use_id\":\"call_a\",\"content\":\"Mem: 100 used\"},"
			    "{\"type\":\"tool_result\",\"tool_use_id\":\"call_b\",\"is_error\":true,"
			    "\"content\":[{\"type\":\"text\",\"text\":\"triage failed\"}]}]}"));
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	cb = callbacks(&s);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_int_equal(resp.attempts, 3); /* a 503, a dropped stream */
	assert_non_null(strstr(s.why[0], "HTTP 503 server_error: model loading"));
	assert_int_equal(s.delays[0], 50);
	assert_string_equal(resp.stop_reason, "end_turn");
	assert_string_equal(block_str(resp.message, 0, "text"), "Out of memory.");
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 4);
	assert_no_mismatch(recs);
	json_object_put(recs);
	bg_llm_response_clear(&resp);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(tools);
	json_object_put(msgs);
	mock_stop(&m);
}

static void test_openai_faults(void **state)
{
	static mock m;
	seen s;
	bg_llm_callbacks cb = callbacks(&s);
	json_object *msgs = parse("[{\"role\":\"user\",\"content\":\"x\"}]");
	bg_llm_response resp;
	bg_llm_request req = request("m", NULL, msgs);
	bg_llm *llm;
	int64_t t0;

	(void)state;
	mock_start(&m, "openai-faults.json");
	llm = make("openai", m.url, "sk-local", 2, 400);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(s.text.data, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x9c\x93");
	assert_int_equal(s.bad_utf8, 0);
	assert_string_equal(resp.stop_reason, "end_turn");
	bg_llm_response_clear(&resp);
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EAUTH);
	assert_error_contains("Incorrect API key provided");
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("insufficient_quota");
	assert_error_contains("not retried");
	assert_int_equal(resp.attempts, 1);
	bg_llm_free(llm);
	llm = make("openai", m.url, "sk-local", 0, 400);
	t0 = bg_now_ms();
	expect_rc(bg_llm_complete(llm, &req, &cb, &resp), BG_EUNAVAILABLE);
	assert_error_contains("idle timeout");
	assert_true(bg_now_ms() - t0 < 2000);
	bg_buf_free(&s.text);
	bg_llm_free(llm);
	json_object_put(msgs);
	mock_stop(&m);
}

/* ---- bg_llm_check ---- */

static int check(const char *provider, const char *url, const char *key, char **detail)
{
	bg_config *cfg = NULL;
	int rc;

	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_CLIENT), BG_OK);
	assert_int_equal(bg_config_set(cfg, "agent", "provider", provider, "test"), BG_OK);
	if (url)
		assert_int_equal(bg_config_set(cfg, "agent", "base_url", url, "test"), BG_OK);
	if (key)
		setenv(strcmp(provider, "openai") == 0 ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY", key, 1);
	rc = bg_llm_check(detail, cfg, 5);
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("OPENAI_API_KEY");
	bg_config_free(cfg);
	return rc;
}

static void test_check(void **state)
{
	static mock m;
	char *detail = NULL;
	json_object *recs;
	size_t i;

	(void)state;
	mock_start(&m, "check.json");
	assert_int_equal(check("anthropic", m.url, "sk-test-key", &detail), BG_OK);
	assert_non_null(strstr(detail, "HTTP 200, 2 models, the configured model is listed"));
	bg_free(detail);
	assert_int_equal(check("anthropic", m.url, "sk-wrong", &detail), BG_EAUTH);
	assert_non_null(strstr(detail, "HTTP 401 authentication_error: invalid x-api-key"));
	bg_free(detail);
	assert_int_equal(check("anthropic", m.url, NULL, &detail), BG_EAUTH);
	assert_non_null(strstr(detail, "no API key"));
	bg_free(detail);
	assert_int_equal(check("openai", m.url, "sk-local", &detail), BG_EAUTH);
	assert_non_null(strstr(detail, "openai: GET http://127.0.0.1:"));
	bg_free(detail);
	assert_int_equal(check("offline", NULL, NULL, &detail), BG_OK);
	assert_non_null(strstr(detail, "offline"));
	bg_free(detail);
	recs = mock_records(&m);
	assert_int_equal(json_object_array_length(recs), 3);
	for (i = 0; i < 3; i++) /* never a prompt */
		assert_string_equal(bg_json_str(record_at(recs, i), "method", ""), "GET");
	json_object_put(recs);
	mock_stop(&m);

	/* nothing listening */
	assert_int_equal(check("openai", "http://127.0.0.1:1", NULL, &detail), BG_ECONNECT);
	assert_non_null(strstr(detail, "connect"));
	bg_free(detail);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest anthropic[] = {
		cmocka_unit_test_teardown(test_anthropic_tool_turn, teardown),
		cmocka_unit_test_teardown(test_anthropic_oauth, teardown),
		cmocka_unit_test_teardown(test_anthropic_bad_order, teardown),
		cmocka_unit_test_teardown(test_anthropic_utf8_split, teardown),
		cmocka_unit_test_teardown(test_anthropic_retry_after, teardown),
		cmocka_unit_test_teardown(test_anthropic_backoff, teardown),
		cmocka_unit_test_teardown(test_anthropic_no_retry, teardown),
		cmocka_unit_test_teardown(test_anthropic_stream_faults, teardown),
		cmocka_unit_test_teardown(test_anthropic_stall_and_cancel, teardown),
		cmocka_unit_test_teardown(test_anthropic_refused_and_deadline, teardown),
	};
	const struct CMUnitTest openai[] = {
		cmocka_unit_test_teardown(test_openai_tool_turn, teardown),
		cmocka_unit_test_teardown(test_openai_faults, teardown),
	};
	const struct CMUnitTest checks[] = {
		cmocka_unit_test_teardown(test_check, teardown),
	};
	const char *which = argc > 1 ? argv[1] : "anthropic";

	const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
	size_t i;

	/* the mock is on loopback: a proxy from the environment must not sit between */
	for (i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
		unsetenv(proxies[i]);
	signal(SIGPIPE, SIG_IGN);
	if (access("/usr/bin/python3", X_OK) != 0)
		return 77;
	if (strcmp(which, "openai") == 0)
		return cmocka_run_group_tests_name("openai", openai, NULL, NULL);
	if (strcmp(which, "check") == 0)
		return cmocka_run_group_tests_name("check", checks, NULL, NULL);
	return cmocka_run_group_tests_name("anthropic", anthropic, NULL, NULL);
}
