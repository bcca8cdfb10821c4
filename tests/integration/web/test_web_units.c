/* Unit tests of breakglass-web's own parsing: the JSON body parser, the
 * JSON string writer, the [web] listen address, and what a turn's events
 * say of the peers (deps.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "web.h"

static int parse(const char *text, wjson_obj *o, char *err, size_t n)
{
	return wjson_parse(o, text, strlen(text), err, n);
}

static void test_parse_good(void **state)
{
	wjson_obj o;
	char err[128];
	wjson_type t;
	int b = -1;

	(void)state;
	assert_int_equal(
		parse(" {\"prompt\" : \"a\\u00e9\\ud83d\\ude00\\n\", \"approved\": true, \"x\": [1, {\"y\": null}],"
		      " \"n\": -1.5e3} ",
		      &o, err, sizeof(err)),
		0);
	assert_string_equal(wjson_string(&o, "prompt", &t), "a\xc3\xa9\xf0\x9f\x98\x80\n");
	assert_int_equal(t, WJ_STRING);
	assert_int_equal(wjson_bool(&o, "approved", &b), 0);
	assert_int_equal(b, 1);
	wjson_string(&o, "x", &t);
	assert_int_equal(t, WJ_OTHER);
	wjson_string(&o, "n", &t);
	assert_int_equal(t, WJ_NUMBER);
	assert_null(wjson_string(&o, "missing", &t));
	assert_int_equal(t, WJ_NONE);
	assert_int_equal(wjson_bool(&o, "prompt", &b), -1);
	wjson_free(&o);
	assert_int_equal(parse("{}", &o, err, sizeof(err)), 0);
	assert_int_equal(o.n, 0);
	wjson_free(&o);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{",
		"{\"a\"}",
		"{\"a\":}",
		"{\"a\":1,}",
		"{\"a\":1} x",
		"{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\udc00\"}",
		"{\"a\":\"\\u0000\"}",
		"{\"a\":\"\x01\"}",
		"{\"a\":\"\xc0\xae\"}",
		"{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":01}",
		"{\"a\":tru}",
		"{\"a\":1,\"a\":2}",
		"{\"a\":\"\\x\"}",
		"{'a':1}",
	};
	wjson_obj o;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], &o, err, sizeof(err)) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
}

static void test_parse_deep(void **state)
{
	char text[400];
	wjson_obj o;
	char err[128];
	int i;

	(void)state;
	snprintf(text, sizeof(text), "{\"a\":");
	for (i = 0; i < 100; i++)
		text[5 + i] = '[';
	text[105] = '\0';
	assert_int_equal(parse(text, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "deep"));
}

static void test_json_str(void **state)
{
	wbuf b = {0};

	(void)state;
	wbuf_json_str(&b, "q\"b\\\n\x01\x7f <\xff>\xc3\xa9");
	assert_string_equal(b.data, "\"q\\\"b\\\\\\u000a\\u0001\\u007f <\\ufffd>\xc3\xa9\"");
	wbuf_free(&b);
	wbuf_json_str(&b, NULL);
	assert_string_equal(b.data, "\"\"");
	wbuf_consume(&b, 1);
	assert_string_equal(b.data, "\"");
	wbuf_free(&b);
}

static void test_listen(void **state)
{
	char addr[64], err[256];
	int port = -1;

	(void)state;
	assert_int_equal(web_parse_listen("127.0.0.1:8080", addr, sizeof(addr), &port, err, sizeof(err)), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(web_parse_listen("localhost:0", addr, sizeof(addr), &port, err, sizeof(err)), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(web_parse_listen("[::]:8080", addr, sizeof(addr), &port, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "IPv6"));
	assert_int_equal(web_parse_listen("::1", addr, sizeof(addr), &port, err, sizeof(err)), -1);
	assert_int_equal(web_parse_listen("10.0.0.1:99999", addr, sizeof(addr), &port, err, sizeof(err)), -1);
	assert_int_equal(web_parse_listen("example.org:80", addr, sizeof(addr), &port, err, sizeof(err)), -1);
	assert_int_equal(web_parse_listen("8080", addr, sizeof(addr), &port, err, sizeof(err)), -1);
	assert_true(web_addr_is_loopback("127.1.2.3"));
	assert_false(web_addr_is_loopback("0.0.0.0"));
	assert_false(web_addr_is_loopback("128.0.0.1"));
}

static void scan(web_vm *vm, web_turn_scan *sc, bg_event_kind kind, const char *json)
{
	web_health_scan_event(vm, sc, kind, json, strlen(json));
}

static void test_turn_scan(void **state)
{
	web_vm vm;
	web_turn_scan sc;
	web_health *h = &vm.health;

	(void)state;
	memset(&vm, 0, sizeof(vm));
	memset(&sc, 0, sizeof(sc));
	vm.name = "devvm";
	assert_int_equal(pthread_mutex_init(&h->lock, NULL), 0);
	snprintf(h->provider, sizeof(h->provider), "anthropic");
	h->interval_s = 30;
	scan(&vm, &sc, BG_EVENT_USER, "{\"kind\":\"user\",\"text\":\"hi\",\"by\":\"a\",\"ts\":500}");
	assert_int_equal(h->peer[WEB_PEER_LLM].ok_at, 0);
	scan(&vm, &sc, BG_EVENT_TEXT, "{\"kind\":\"text\",\"text\":\"Looking.\",\"ts\":1000}");
	assert_int_equal(h->peer[WEB_PEER_LLM].ok_at, 1000);
	assert_string_equal(h->peer[WEB_PEER_LLM].ok_via, "turn");
	scan(&vm, &sc, BG_EVENT_TOOL,
	     "{\"kind\":\"tool\",\"tool_use_id\":\"t1\",\"name\":\"devvm_exec\",\"input\":{},\"ts\":1100}");
	scan(&vm, &sc, BG_EVENT_TOOL,
	     "{\"kind\":\"tool\",\"tool_use_id\":\"t2\",\"name\":\"pve\",\"input\":{\"verb\":\"cycle\"},\"ts\":1100}");
	scan(&vm, &sc, BG_EVENT_TOOL,
	     "{\"kind\":\"tool\",\"tool_use_id\":\"t3\",\"name\":\"pve\",\"input\":{\"verb\":\"status\"},\"ts\":1100}");
	scan(&vm, &sc, BG_EVENT_TOOL_RESULT,
	     "{\"kind\":\"tool_result\",\"tool_use_id\":\"t1\",\"ok\":false,\"exit_code\":1,\"output\":\"x\",\"ts\":"
	     "2000}");
	assert_int_equal(h->peer[WEB_PEER_DEVVM].ok_at, 2000); /* exit 1: the devvm answered */
	/* A human's denial sent nothing: it says nothing of the host. */
	scan(&vm, &sc, BG_EVENT_TOOL_RESULT,
	     "{\"kind\":\"tool_result\",\"tool_use_id\":\"t2\",\"ok\":false,\"exit_code\":-1,"
	     "\"output\":\"denied by alice\",\"ts\":2500}");
	assert_int_equal(h->peer[WEB_PEER_PVE].ok_at, 0);
	assert_int_equal(h->peer[WEB_PEER_PVE].fail_at, 0);
	scan(&vm, &sc, BG_EVENT_TOOL_RESULT,
	     "{\"kind\":\"tool_result\",\"tool_use_id\":\"t3\",\"ok\":true,\"exit_code\":0,"
	     "\"output\":\"verb: status\\nexit status: 0\\nstatus: running\\n\",\"ts\":3000}");
	assert_int_equal(h->peer[WEB_PEER_PVE].ok_at, 3000);
	assert_string_equal(h->vm_state, "running");
	assert_int_equal(h->vm_state_at, 3000);
	scan(&vm, &sc, BG_EVENT_ERROR,
	     "{\"kind\":\"error\",\"error\":\"LLM: overloaded; retry 1 in 500 ms\",\"ts\":5000}");
	assert_int_equal(h->peer[WEB_PEER_LLM].fail_at, 5000);
	assert_string_equal(h->peer[WEB_PEER_LLM].error, "LLM: overloaded; retry 1 in 500 ms");
	scan(&vm, &sc, BG_EVENT_ERROR,
	     "{\"kind\":\"error\",\"error\":\"the LLM is unreachable (refused); the offline playbook takes over for "
	     "this turn\",\"ts\":6000}");
	assert_int_equal(h->peer[WEB_PEER_LLM].fail_at, 6000);
	/* The playbook's text is not the model's answer. */
	scan(&vm, &sc, BG_EVENT_TEXT, "{\"kind\":\"text\",\"text\":\"Playbook.\",\"ts\":7000}");
	assert_int_equal(h->peer[WEB_PEER_LLM].ok_at, 1100); /* the model's last word: its tool calls */
	scan(&vm, &sc, BG_EVENT_TOOL,
	     "{\"kind\":\"tool\",\"tool_use_id\":\"t4\",\"name\":\"devvm_triage\",\"input\":{},\"ts\":7100}");
	scan(&vm, &sc, BG_EVENT_TOOL_RESULT,
	     "{\"kind\":\"tool_result\",\"tool_use_id\":\"t4\",\"ok\":false,\"exit_code\":-1,"
	     "\"output\":\"devvm (10.0.0.5:22): connection refused\\nmore\",\"ts\":8000}");
	assert_int_equal(h->peer[WEB_PEER_DEVVM].fail_at, 8000);
	assert_string_equal(h->peer[WEB_PEER_DEVVM].error, "devvm (10.0.0.5:22): connection refused");
	/* An older word never overrides a newer one. */
	web_health_note(&vm, WEB_PEER_DEVVM, 0, "probe", "old", 7500);
	assert_string_equal(h->peer[WEB_PEER_DEVVM].error, "devvm (10.0.0.5:22): connection refused");
	pthread_mutex_destroy(&h->lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad), cmocka_unit_test(test_parse_deep),
		cmocka_unit_test(test_json_str),   cmocka_unit_test(test_listen),    cmocka_unit_test(test_turn_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
