/* Sessions: ids, the JSONL store and its reload, readers across replay/live. */
#include "bg_test.h"

#include "core/json.h"
#include "session/session_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *make_dir(void)
{
	char tmpl[] = "/tmp/bg-session-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void remove_dir(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

static void append_text(bg_session *s, const char *text, long long *id)
{
	json_object *ev = bg_event_new(BG_EVENT_TEXT);

	bg_json_add_str(ev, "text", text);
	assert_int_equal(bg_session_emit(id, s, ev), BG_OK);
	json_object_put(ev);
}

typedef struct collected {
	long long ids[20000];
	char kinds[20000];
	size_t n;
	char last[256];
} collected;

static int collect(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	collected *c = payload;

	if (c->n < sizeof(c->ids) / sizeof(c->ids[0])) {
		c->ids[c->n] = id;
		c->kinds[c->n] = (char)kind;
		c->n++;
	}
	snprintf(c->last, sizeof(c->last), "%.*s", (int)(len < 255 ? len : 255), json);
	return 0;
}

static void test_kinds(void **state)
{
	int k;

	(void)state;
	for (k = 0; k < BG_EVENT_KIND_COUNT; k++)
		assert_int_equal(bg_event_kind_from_name(bg_event_kind_name((bg_event_kind)k)), k);
	assert_string_equal(bg_event_kind_name(BG_EVENT_TOOL_RESULT), "tool_result");
	assert_string_equal(bg_event_kind_name(BG_EVENT_APPROVAL_REQUIRED), "approval_required");
	assert_string_equal(bg_event_kind_name((bg_event_kind)99), "unknown");
	assert_int_equal(bg_event_kind_from_name("delta"), -1);
}

static void test_event_field(void **state)
{
	const char *ev =
		"{\"id\":3,\"kind\":\"tool\",\"name\":\"devvm_exec\",\"input\":{\"command\":\"df \\\"-h\\\"\"},"
		"\"ok\":true}";
	char *v = NULL;

	(void)state;
	assert_int_equal(bg_event_field(&v, ev, strlen(ev), "input.command"), BG_OK);
	assert_string_equal(v, "df \"-h\"");
	bg_free(v);
	assert_int_equal(bg_event_field(&v, ev, strlen(ev), "id"), BG_OK);
	assert_string_equal(v, "3");
	bg_free(v);
	assert_int_equal(bg_event_field(&v, ev, strlen(ev), "ok"), BG_OK);
	assert_string_equal(v, "true");
	bg_free(v);
	assert_int_equal(bg_event_field(&v, ev, strlen(ev), "input"), BG_OK);
	assert_non_null(strstr(v, "command"));
	bg_free(v);
	assert_int_equal(bg_event_field(&v, ev, strlen(ev), "input.nope"), BG_ENOTFOUND);
	assert_null(v);
	assert_int_equal(bg_event_field(&v, "[1]", 3, "id"), BG_EINVAL);
}

static void test_append_and_reload(void **state)
{
	char *dir = make_dir();
	bg_session_store *st;
	bg_session *s;
	collected *c = calloc(1, sizeof(*c));
	long long id;
	char sid[64], path[512], line[512];
	FILE *f;
	int n = 0;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, dir, 8), BG_OK);
	assert_int_equal(bg_session_create(&s, st), BG_OK);
	assert_int_equal(strlen(bg_session_id(s)), 32);
	snprintf(sid, sizeof(sid), "%s", bg_session_id(s));
	assert_int_equal(bg_session_last_id(s), -1);
	assert_int_equal(bg_session_append(&id, s, "{\"kind\":\"user\",\"text\":\"disk full?\",\"by\":\"alice\"}"),
			 BG_OK);
	assert_int_equal(id, 0);
	append_text(s, "Checking", &id);
	assert_int_equal(id, 1);
	append_text(s, " df -h", &id);
	assert_int_equal(id, 2);
	assert_int_equal(bg_session_append(NULL, s, "{\"kind\":\"nope\"}"), BG_EINVAL);
	assert_int_equal(bg_session_append(NULL, s, "[1]"), BG_EINVAL);
	assert_int_equal(bg_session_append(NULL, s, "{\"kind\":"), BG_EINVAL);
	assert_error_contains("event: invalid JSON (unexpected end)");
	/* On disk: one line per event, each with its id. */
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, sid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char want[32];

		snprintf(want, sizeof(want), "\"id\":%d", n++);
		assert_non_null(strstr(line, want));
	}
	fclose(f);
	assert_int_equal(n, 3);
	bg_session_release(s);
	bg_session_store_free(st);

	/* Reloaded: the same events, and the next id follows on. */
	assert_int_equal(bg_session_store_open(&st, dir, 8), BG_OK);
	assert_int_equal(bg_session_open(&s, st, sid), BG_OK);
	/* The turn it was in is closed as interrupted. */
	assert_int_equal(bg_session_read(s, -1, 0, collect, c), 5);
	assert_int_equal(c->kinds[0], BG_EVENT_USER);
	assert_int_equal(c->kinds[2], BG_EVENT_TEXT);
	assert_int_equal(c->kinds[3], BG_EVENT_ERROR);
	assert_int_equal(c->kinds[4], BG_EVENT_TURN_END);
	assert_non_null(strstr(c->last, "\"stop_reason\":\"interrupted\""));
	assert_false(bg_session_busy(s));
	append_text(s, "more", &id);
	assert_int_equal(id, 5);
	bg_session_release(s);
	bg_session_store_free(st);
	free(c);
	remove_dir(dir);
}

static void test_torn_line(void **state)
{
	char *dir = make_dir();
	bg_session_store *st;
	bg_session *s;
	collected *c = calloc(1, sizeof(*c));
	char sid[64], path[512];
	long long id;
	int fd;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, dir, 8), BG_OK);
	assert_int_equal(bg_session_create(&s, st), BG_OK);
	snprintf(sid, sizeof(sid), "%s", bg_session_id(s));
	append_text(s, "one", NULL);
	append_text(s, "two", NULL);
	bg_session_release(s);
	bg_session_store_free(st);
	/* A crash in the middle of the third write. */
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, sid);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"kind\":\"text\",\"te", 18), 18);
	close(fd);

	assert_int_equal(bg_session_store_open(&st, dir, 8), BG_OK);
	assert_int_equal(bg_session_open(&s, st, sid), BG_OK);
	assert_int_equal(bg_session_last_id(s), 3); /* one, two, + the interrupted turn closed */
	assert_int_equal(bg_session_append(&id, s, "{\"kind\":\"turn_end\",\"stop_reason\":\"end_turn\"}"), BG_OK);
	assert_int_equal(id, 4);
	bg_session_release(s);
	bg_session_store_free(st);

	/* The fragment was cut off: the file reloads whole, nothing added. */
	assert_int_equal(bg_session_store_open(&st, dir, 8), BG_OK);
	assert_int_equal(bg_session_open(&s, st, sid), BG_OK);
	assert_int_equal(bg_session_read(s, -1, 0, collect, c), 5);
	assert_non_null(strstr(c->last, "end_turn"));
	bg_session_release(s);
	bg_session_store_free(st);
	free(c);
	remove_dir(dir);
}

static void test_turn_lock_and_ids(void **state)
{
	bg_session_store *st;
	bg_session *a, *b, *x;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, NULL, 0), BG_OK);
	assert_int_equal(bg_session_create(&a, st), BG_OK);
	assert_int_equal(bg_session_create(&b, st), BG_OK);
	assert_string_not_equal(bg_session_id(a), bg_session_id(b));
	assert_int_equal(bg_session_turn_begin(a), BG_OK);
	assert_int_equal(bg_session_turn_begin(a), BG_ESTATE);
	assert_error_contains("already running");
	assert_int_equal(bg_session_turn_begin(b), BG_OK);
	assert_true(bg_session_busy(a));
	bg_session_turn_end(a);
	assert_false(bg_session_busy(a));
	assert_int_equal(bg_session_turn_begin(a), BG_OK);
	assert_int_equal(bg_session_delete(st, bg_session_id(a)), BG_ESTATE);
	bg_session_turn_end(a);
	bg_session_turn_end(b);
	assert_int_equal(bg_session_open(&x, st, "../../etc/passwd"), BG_ENOTFOUND);
	assert_null(x);
	assert_int_equal(bg_session_open(&x, st, "0123456789abcdef0123456789ABCDEF"), BG_ENOTFOUND);
	assert_int_equal(bg_session_open(&x, st, bg_session_id(a)), BG_OK);
	assert_ptr_equal(a, x);
	bg_session_release(x);
	bg_session_release(b);
	bg_session_release(a);
	bg_session_store_free(st);
}

typedef struct writer {
	bg_session *s;
	int count;
} writer;

static void *write_events(void *arg)
{
	writer *w = arg;
	int i;
	char text[32];

	for (i = 0; i < w->count; i++) {
		snprintf(text, sizeof(text), "d%d", i);
		append_text(w->s, text, NULL);
		if (i % 50 == 0)
			usleep(1000);
	}
	return NULL;
}

/* A reader that attaches mid-turn gets every event once, in order. */
static void follow(bg_session *s, long long from, int until, collected *c)
{
	long long last = from;

	while (last < until - 1) {
		size_t before = c->n;
		int n = bg_session_read(s, last, 2000, collect, c);

		assert_true(n >= 0);
		if (n > 0)
			last = c->ids[before + (size_t)n - 1];
	}
}

static void test_readers_attach_mid_turn(void **state)
{
	bg_session_store *st;
	bg_session *s;
	pthread_t t;
	writer w;
	collected *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
	size_t i;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, NULL, 0), BG_OK);
	assert_int_equal(bg_session_create(&s, st), BG_OK);
	w.s = s;
	w.count = 3000;
	assert_int_equal(pthread_create(&t, NULL, write_events, &w), 0);
	while (bg_session_last_id(s) < 200)
		usleep(500);
	follow(s, -1, w.count, c1);   /* replay from the start, then live */
	follow(s, 1000, w.count, c2); /* resume after a last-seen id */
	pthread_join(t, NULL);
	assert_int_equal(c1->n, (size_t)w.count);
	for (i = 0; i < c1->n; i++)
		assert_int_equal(c1->ids[i], (long long)i);
	assert_int_equal(c2->n, (size_t)w.count - 1001);
	assert_int_equal(c2->ids[0], 1001);
	bg_session_release(s);
	bg_session_store_free(st);
	free(c1);
	free(c2);
}

static void *close_later(void *arg)
{
	usleep(50000);
	bg_session_store_free(arg);
	return NULL;
}

static void test_reader_wakes_on_close(void **state)
{
	bg_session_store *st;
	bg_session *s;
	pthread_t t;
	collected *c = calloc(1, sizeof(*c));

	(void)state;
	assert_int_equal(bg_session_store_open(&st, NULL, 0), BG_OK);
	assert_int_equal(bg_session_create(&s, st), BG_OK);
	assert_int_equal(bg_session_read(s, -1, 20, collect, c), 0); /* timeout, nothing */
	assert_int_equal(pthread_create(&t, NULL, close_later, st), 0);
	assert_int_equal(bg_session_read(s, -1, -1, collect, c), BG_ECANCELLED);
	pthread_join(t, NULL);
	assert_int_equal(bg_session_append(NULL, s, "{\"kind\":\"cancelled\"}"), BG_ECANCELLED);
	bg_session_release(s);
	free(c);
}

static void test_cap_and_list(void **state)
{
	char *dir = make_dir(), sub[512];
	bg_session_store *st;
	bg_session *a, *b, *c, *gone;
	char ida[64], path[512], *json = NULL;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, dir, 2), BG_OK);
	assert_int_equal(bg_session_list(&json, st), BG_OK); /* empty: [] (and nothing undefined under UBSan) */
	assert_string_equal(json, "[]");
	bg_free(json);
	assert_int_equal(bg_session_create(&a, st), BG_OK);
	snprintf(ida, sizeof(ida), "%s", bg_session_id(a));
	assert_int_equal(bg_session_append(NULL, a, "{\"kind\":\"user\",\"text\":\"first\",\"by\":\"x\"}"), BG_OK);
	usleep(2000);
	assert_int_equal(bg_session_create(&b, st), BG_OK);
	assert_int_equal(bg_session_append(NULL, b, "{\"kind\":\"user\",\"text\":\"second\",\"by\":\"x\"}"), BG_OK);
	assert_int_equal(bg_session_list(&json, st), BG_OK);
	assert_true(strstr(json, "second") < strstr(json, "first")); /* newest first */
	assert_non_null(strstr(json, "\"title\":\"first\""));
	bg_free(json);
	/* Both busy: no room. */
	assert_int_equal(bg_session_turn_begin(a), BG_OK);
	assert_int_equal(bg_session_turn_begin(b), BG_OK);
	assert_int_equal(bg_session_create(&c, st), BG_EBUSY);
	bg_session_turn_end(a);
	bg_session_turn_end(b);
	/* The least recently active one goes, file and all. (The pause is
	 * for the file's mtime, which the kernel takes from a coarse clock.) */
	usleep(20000);
	assert_int_equal(bg_session_create(&c, st), BG_OK);
	assert_int_equal(bg_session_open(&gone, st, ida), BG_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, ida);
	assert_int_equal(access(path, F_OK), -1);
	bg_session_release(a); /* the caller's own reference stays valid */
	bg_session_release(b);
	bg_session_release(c);
	bg_session_store_free(st);

	/* Over the cap at load: only the newest are kept. */
	assert_int_equal(bg_session_store_open(&st, dir, 1), BG_OK);
	assert_int_equal(bg_session_list(&json, st), BG_OK);
	assert_null(strstr(json, "second"));
	bg_free(json);
	bg_session_store_free(st);

	/* Missing parents are created. */
	snprintf(sub, sizeof(sub), "%s/x/sessions", dir);
	assert_int_equal(bg_session_store_open(&st, sub, 1), BG_OK);
	bg_session_store_free(st);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/x", dir);
	rmdir(sub);
	remove_dir(dir);
}

/* Sessions made within one millisecond: pruning drops the oldest, never a
 * newer one that ties on the clock (web_api's max_sessions case lost one). */
static void test_prune_in_arrival_order(void **state)
{
	bg_session_store *st;
	bg_session *s[6];
	char ids[6][64], *json = NULL;
	int i;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, NULL, 3), BG_OK);
	for (i = 0; i < 6; i++) {
		assert_int_equal(bg_session_create(&s[i], st), BG_OK);
		snprintf(ids[i], sizeof(ids[i]), "%s", bg_session_id(s[i]));
	}
	assert_int_equal(bg_session_list(&json, st), BG_OK);
	for (i = 0; i < 6; i++)
		assert_true((strstr(json, ids[i]) != NULL) == (i >= 3));
	bg_free(json);
	for (i = 0; i < 6; i++)
		bg_session_release(s[i]);
	bg_session_store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_event_field),
		cmocka_unit_test(test_append_and_reload),
		cmocka_unit_test(test_torn_line),
		cmocka_unit_test(test_turn_lock_and_ids),
		cmocka_unit_test(test_readers_attach_mid_turn),
		cmocka_unit_test(test_reader_wakes_on_close),
		cmocka_unit_test(test_cap_and_list),
		cmocka_unit_test(test_prune_in_arrival_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
