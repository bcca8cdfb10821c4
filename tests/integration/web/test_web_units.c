/* Unit tests of breakglass-web's own parsing: the JSON body parser, the
 * JSON string writer and the [web] listen address. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad), cmocka_unit_test(test_parse_deep),
		cmocka_unit_test(test_json_str),   cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
