/* Core: errors, buffers, clock, secrets, audit log, logging. */
#include "bg_test.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_errors(void **state)
{
	int c;

	for (c = 0; c >= -30; c--)
		assert_non_null(bg_strerror(c));
	assert_string_equal(bg_strerror(BG_ETIMEOUT), "timed out");
	assert_string_equal(bg_strerror(12345), "unknown error");
	assert_int_equal(bg_error_set(BG_EAUTH, "key %s refused", "x"), BG_EAUTH);
	assert_int_equal(bg_error_last()->code, BG_EAUTH);
	assert_string_equal(bg_error_last()->message, "key x refused");
	assert_int_equal(bg_error_prefix("devvm: "), BG_EAUTH);
	assert_string_equal(bg_error_last()->message, "devvm: key x refused");
	/* wrapping the current message in a new one (agent.c, session.c):
	 * formatting into the buffer the argument is read from gave
	 * "the LLM is unreachable (the LLM is unreachable (…" */
	assert_int_equal(
		bg_error_set(BG_EUNAVAILABLE, "the LLM is unreachable (%s) and more", bg_error_last()->message),
		BG_EUNAVAILABLE);
	assert_string_equal(bg_error_last()->message, "the LLM is unreachable (devvm: key x refused) and more");
	bg_error_set(BG_EPROTO, "event: invalid JSON");
	assert_int_equal(bg_error_set(BG_EINVAL, "%s", bg_error_last()->message), BG_EINVAL);
	assert_string_equal(bg_error_last()->message, "event: invalid JSON");
	bg_error_clear();
	assert_int_equal(bg_error_last()->code, BG_OK);
	assert_string_equal(bg_error_last()->message, "");
	assert_non_null(bg_version());
	assert_true(strchr(bg_version(), '.') != NULL);
}

static void test_buf(void **state)
{
	bg_buf b = BG_BUF_INIT;
	char *s;
	int i;

	for (i = 0; i < 1000; i++)
		assert_int_equal(bg_buf_printf(&b, "%d,", i), BG_OK);
	assert_true(b.len > 1000);
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	bg_buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(bg_buf_escape(&b, "a\n\"\\\x01\xc3\xa9\0z", 9), BG_OK);
	assert_string_equal(b.data, "a\\n\\\"\\\\\\x01\\xc3\\xa9\\x00z");
	s = bg_buf_detach(&b);
	assert_null(b.data);
	free(s);
	s = bg_buf_detach(&b);
	assert_string_equal(s, "");
	free(s);
	bg_buf_puts(&b, "secret");
	bg_buf_wipe(&b);
	assert_null(b.data);
}

static void test_clock(void **state)
{
	bg_deadline d = bg_deadline_in(50), never = BG_DEADLINE_NONE;
	char iso[40];
	int64_t t0 = bg_now_ms();

	assert_false(bg_deadline_expired(d));
	assert_true(bg_deadline_left(d) <= 50);
	assert_int_equal(bg_deadline_poll_ms(never), -1);
	assert_true(bg_deadline_min(d, never).at_ms == d.at_ms);
	bg_sleep_ms(60);
	assert_true(bg_deadline_expired(d));
	assert_int_equal(bg_deadline_poll_ms(d), 0);
	assert_true(bg_now_ms() - t0 >= 60);
	assert_string_equal(bg_time_iso8601(1781196462000LL, iso, sizeof(iso)), "2026-06-11T16:47:42Z");
	assert_string_equal(bg_time_iso8601_ms(1781196462123LL, iso, sizeof(iso)), "2026-06-11T16:47:42.123Z");
}

static void test_secret(void **state)
{
	bg_secret *s = NULL;
	char path[] = "/tmp/bg-secret-XXXXXX";
	int fd;

	assert_int_equal(bg_secret_new(&s, "hunter2", 7), BG_OK);
	assert_string_equal(bg_secret_data(s), "hunter2");
	assert_int_equal(bg_secret_len(s), 7);
	bg_secret_free(s);
	bg_secret_free(NULL);

	setenv("BG_TEST_SECRET", "from-env", 1);
	assert_int_equal(bg_secret_from_env(&s, "BG_TEST_SECRET"), BG_OK);
	assert_string_equal(bg_secret_data(s), "from-env");
	assert_null(getenv("BG_TEST_SECRET")); /* scrubbed from the environment */
	bg_secret_free(s);
	assert_int_equal(bg_secret_from_env(&s, "BG_TEST_SECRET"), BG_ENOTFOUND);
	assert_null(s);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "key-bytes\n", 10), 10);
	close(fd);
	assert_int_equal(bg_secret_from_file(&s, path), BG_OK);
	assert_int_equal(bg_secret_len(s), 10);
	bg_secret_free(s);
	unlink(path);
	assert_int_equal(bg_secret_from_file(&s, "/nonexistent/key"), BG_ENOTFOUND);
	assert_error_contains("/nonexistent/key");

	assert_true(bg_secret_equal("abc", 3, "abc", 3));
	assert_false(bg_secret_equal("abc", 3, "abd", 3));
	assert_false(bg_secret_equal("abc", 3, "ab", 2));
	assert_false(bg_secret_equal("abc", 3, "abcd", 4));
	assert_true(bg_secret_equal("", 0, "", 0));
}

static void test_audit(void **state)
{
	char dir[] = "/tmp/bg-audit-XXXXXX", path[256];
	bg_audit *a = NULL;
	char *json = NULL;
	json_object *arr;
	FILE *f;
	char line[1024];
	int lines = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	assert_int_equal(bg_audit_open(&a, path, 3), BG_OK);
	assert_int_equal(bg_audit_record(a, "alice", "pve.cycle", "vm 102", "ok", "took 12 s"), BG_OK);
	assert_int_equal(bg_audit_record(a, "bob\n\"x", "agent.prompt", "session 1", "ok", NULL), BG_OK);
	assert_int_equal(bg_audit_record(a, "carol", "pve.stop", "vm 102", "error", "exit 4"), BG_OK);
	assert_int_equal(bg_audit_record(a, "dave", "auth.failure", "/api/pve/cycle", "denied", NULL), BG_OK);
	assert_int_equal(bg_audit_recent(&json, a, 10), BG_OK);
	arr = json_tokener_parse(json);
	assert_non_null(arr);
	assert_int_equal(json_object_array_length(arr), 3);                                     /* keep = 3 */
	assert_string_equal(bg_json_str(json_object_array_get_idx(arr, 0), "who", ""), "dave"); /* newest first */
	assert_string_equal(bg_json_str(json_object_array_get_idx(arr, 2), "who", ""), "bob\n\"x");
	assert_non_null(bg_json_str(json_object_array_get_idx(arr, 0), "time", NULL));
	json_object_put(arr);
	bg_free(json);
	bg_free(NULL);
	bg_audit_free(a);

	/* the file has one parseable JSON object per line */
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line);
		assert_non_null(o);
		json_object_put(o);
		lines++;
	}
	fclose(f);
	assert_int_equal(lines, 4);

	/* reopening reloads the newest records; a torn last line is skipped */
	f = fopen(path, "a");
	fputs("{\"who\":\"torn", f);
	fclose(f);
	assert_int_equal(bg_audit_open(&a, path, 10), BG_OK);
	assert_int_equal(bg_audit_recent(&json, a, 1), BG_OK);
	assert_non_null(strstr(json, "dave"));
	bg_free(json);
	bg_audit_free(a);
	bg_audit_free(NULL);
	unlink(path);
	rmdir(dir);

	assert_int_equal(bg_audit_open(&a, "/nonexistent-dir/audit.jsonl", 0), BG_EIO);
	assert_error_contains("/nonexistent-dir/audit.jsonl");
	assert_int_equal(bg_audit_open(&a, NULL, 0), BG_OK); /* memory only */
	assert_int_equal(bg_audit_record(a, "x", "y", "z", "ok", NULL), BG_OK);
	bg_audit_free(a);
}

static int logged;
static char last_log[256];

static void capture(bg_log_level level, const char *module, const char *message, void *payload)
{
	logged++;
	snprintf(last_log, sizeof(last_log), "%s %s %s", bg_log_level_name(level), module, message);
}

static void test_log(void **state)
{
	bg_log_level lvl;

	bg_info("core", "dropped: no handler");
	bg_log_set_handler(capture, BG_LOG_INFO, NULL);
	bg_debug("core", "below the level");
	assert_int_equal(logged, 0);
	bg_warn("ssh", "host key %s\nforged line", "SHA256:x");
	assert_int_equal(logged, 1);
	assert_string_equal(last_log, "warn ssh host key SHA256:x forged line");
	assert_true(bg_log_enabled(BG_LOG_ERROR));
	assert_false(bg_log_enabled(BG_LOG_DEBUG));
	bg_log_set_handler(NULL, BG_LOG_DEBUG, NULL);
	assert_int_equal(bg_log_level_parse(&lvl, "debug"), BG_OK);
	assert_int_equal(lvl, BG_LOG_DEBUG);
	assert_int_equal(bg_log_level_parse(&lvl, "loud"), BG_EINVAL);
}

static void test_json(void **state)
{
	json_object *o = bg_json_parse("{\"a\":\"x\",\"n\":5,\"b\":true,\"o\":{},\"l\":[]}", 38, "test");

	assert_non_null(o);
	assert_string_equal(bg_json_str(o, "a", NULL), "x");
	assert_int_equal(bg_json_int(o, "n", 0), 5);
	assert_int_equal(bg_json_bool(o, "b", 0), 1);
	assert_non_null(bg_json_obj(o, "o"));
	assert_non_null(bg_json_arr(o, "l"));
	assert_null(bg_json_obj(o, "l"));
	assert_string_equal(bg_json_str(o, "n", "fb"), "fb");
	json_object_put(o);
	assert_null(bg_json_parse("{\"a\":", 5, "partial"));
	assert_error_contains("partial: invalid JSON");
	assert_null(bg_json_parse("{} x", 4, "trailing"));
	assert_error_contains("trailing data");
	o = bg_json_parse("{} \n", 4, "ws");
	assert_non_null(o);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors), cmocka_unit_test(test_buf),   cmocka_unit_test(test_clock),
		cmocka_unit_test(test_secret), cmocka_unit_test(test_audit), cmocka_unit_test(test_log),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
