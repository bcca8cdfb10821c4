/* The SSE reader: line endings, fields, chunking, limits. */
#include "bg_test.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "llm/sse.h"

/* Every event rendered as "[event|id|retry]data\n" for comparison. */
typedef struct seen {
	bg_buf out;
	int count;
	int stop_after;
} seen;

static int collect(const bg_sse_event *ev, void *payload)
{
	seen *s = payload;
	s->count++;
	bg_buf_printf(&s->out, "[%s|%s|%ld]", ev->event, ev->id, ev->retry_ms);
	bg_buf_append(&s->out, ev->data, ev->data_len);
	bg_buf_putc(&s->out, '\n');
	if (s->stop_after && s->count >= s->stop_after)
		return -42;
	return 0;
}

/* Feed `in` in chunks of `chunk` bytes (0 = all at once). */
static int run(const char *in, size_t chunk, seen *s, int *partial)
{
	bg_sse r;
	size_t len = strlen(in), i;
	int rc = 0;

	bg_sse_init(&r, 0, collect, s);
	if (chunk == 0)
		rc = bg_sse_feed(&r, in, len);
	for (i = 0; chunk && i < len && rc == 0; i += chunk)
		rc = bg_sse_feed(&r, in + i, len - i < chunk ? len - i : chunk);
	if (rc == 0)
		rc = bg_sse_finish(&r, partial);
	bg_sse_free(&r);
	return rc;
}

static void expect(const char *in, const char *want)
{
	size_t chunks[] = {0, 1, 2, 3, 7};
	size_t k;

	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		seen s = {BG_BUF_INIT, 0, 0};
		assert_int_equal(run(in, chunks[k], &s, NULL), 0);
		assert_string_equal(s.out.data ? s.out.data : "", want);
		bg_buf_free(&s.out);
	}
}

static void test_basic(void **state)
{
	(void)state;
	expect("event: ping\ndata: {\"type\":\"ping\"}\n\n", "[ping||-1]{\"type\":\"ping\"}\n");
	expect("data:x\n\ndata: y\n\n", "[||-1]x\n[||-1]y\n");
}

static void test_line_endings(void **state)
{
	(void)state;
	expect("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n", "[a||-1]1\n[b||-1]2\n[||-1]3\n");
	/* a CR at the end of one chunk and the LF at the start of the next */
	expect("data: 1\r\n\r\n", "[||-1]1\n");
}

/* Feed exactly the given chunks, in order. */
static void expect_chunks(const char *const *chunks, const char *want)
{
	seen s = {BG_BUF_INIT, 0, 0};
	bg_sse r;
	size_t k;

	bg_sse_init(&r, 0, collect, &s);
	for (k = 0; chunks[k]; k++)
		assert_int_equal(bg_sse_feed(&r, chunks[k], strlen(chunks[k])), 0);
	assert_int_equal(bg_sse_finish(&r, NULL), 0);
	bg_sse_free(&r);
	assert_string_equal(s.out.data ? s.out.data : "", want);
	bg_buf_free(&s.out);
}

/* A CRLF cut between two reads: the LF that starts the next chunk ends
 * nothing. Were it read as a blank line, it would end the event early:
 * the `event:` name would be lost, or one event split in two. */
static void test_crlf_across_chunks(void **state)
{
	static const char *const name_kept[] = {"event: content_block_delta\r", "\ndata: x\r\n\r\n", NULL};
	static const char *const not_split[] = {"event: a\r\ndata: 1\r", "\nevent: b\r\ndata: 2\r\n\r\n", NULL};
	static const char *const blank_cut[] = {"event: a\r\ndata: 1\r\n\r", "\nevent: b\r\ndata: 2\r\n\r", "\n", NULL};

	(void)state;
	expect_chunks(name_kept, "[content_block_delta||-1]x\n");
	expect_chunks(not_split, "[b||-1]1\n2\n");
	expect_chunks(blank_cut, "[a||-1]1\n[b||-1]2\n");
}

static void test_multiline_and_comments(void **state)
{
	(void)state;
	expect(": keep-alive\ndata: a\n: between\ndata: b\ndata\n\n", "[||-1]a\nb\n\n");
	expect(":only a comment\n\n", "");
	expect("data:  two spaces\n\n", "[||-1] two spaces\n");
}

static void test_id_retry_unknown(void **state)
{
	(void)state;
	expect("id: 7\nretry: 1500\nfoo: bar\ndata: x\n\ndata: y\n\n", "[|7|1500]x\n[|7|1500]y\n");
	expect("retry: 12a\ndata: x\n\n", "[||-1]x\n");
	expect("event: e\n\ndata: x\n\n", "[||-1]x\n"); /* no data: the event name is dropped */
}

static void test_bom(void **state)
{
	(void)state;
	expect("\xEF\xBB\xBF"
	       "data: x\n\n",
	       "[||-1]x\n");
}

static void test_partial_at_end(void **state)
{
	seen s = {BG_BUF_INIT, 0, 0};
	int partial = 0;

	(void)state;
	assert_int_equal(run("data: a\n\ndata: cut", 1, &s, &partial), 0);
	assert_int_equal(partial, 1);
	assert_string_equal(s.out.data, "[||-1]a\n");
	bg_buf_free(&s.out);
	partial = 1;
	assert_int_equal(run("data: a\n\n", 0, &s, &partial), 0);
	assert_int_equal(partial, 0);
	bg_buf_free(&s.out);
}

static void test_too_big(void **state)
{
	bg_sse r;
	seen s = {BG_BUF_INIT, 0, 0};
	char chunk[100];
	int i, rc = 0;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	bg_sse_init(&r, 1000, collect, &s);
	assert_int_equal(bg_sse_feed(&r, "data: ", 6), 0);
	for (i = 0; i < 20 && rc == 0; i++)
		rc = bg_sse_feed(&r, chunk, sizeof(chunk));
	assert_int_equal(rc, BG_ETOOBIG);
	assert_error_contains("longer than 1000 bytes");
	assert_true(r.line.cap < 2000);
	/* sticky */
	assert_int_equal(bg_sse_feed(&r, "\n\n", 2), BG_ETOOBIG);
	assert_int_equal(s.count, 0);
	bg_sse_free(&r);

	/* many data lines add up too */
	bg_sse_init(&r, 1000, collect, &s);
	rc = 0;
	for (i = 0; i < 200 && rc == 0; i++)
		rc = bg_sse_feed(&r, "data: 0123456789\n", 17);
	assert_int_equal(rc, BG_ETOOBIG);
	bg_sse_free(&r);
	bg_buf_free(&s.out);
}

static void test_callback_abort(void **state)
{
	seen s = {BG_BUF_INIT, 0, 1};

	(void)state;
	assert_int_equal(run("data: 1\n\ndata: 2\n\n", 0, &s, NULL), -42);
	assert_int_equal(s.count, 1);
	bg_buf_free(&s.out);
}

/* The recorded Anthropic stream of the fixtures, fed a byte at a time and
 * whole, gives the same events. */
static void test_recorded_stream(void **state)
{
	const char *dir = getenv("BG_FIXTURES");
	char path[512];
	FILE *f;
	bg_buf in = BG_BUF_INIT;
	char tmp[4096];
	size_t n;
	seen a = {BG_BUF_INIT, 0, 0}, b = {BG_BUF_INIT, 0, 0};

	(void)state;
	snprintf(path, sizeof(path), "%s/llm/anthropic-stream.sse", dir ? dir : "tests/fixtures");
	f = fopen(path, "rb");
	assert_non_null(f);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		bg_buf_append(&in, tmp, n);
	fclose(f);
	assert_int_equal(run(in.data, 0, &a, NULL), 0);
	assert_int_equal(run(in.data, 1, &b, NULL), 0);
	assert_int_equal(a.count, 12);
	assert_string_equal(a.out.data, b.out.data);
	assert_non_null(strstr(a.out.data, "[content_block_delta||-1]{\"type\":\"content_block_delta\",\"index\":1"));
	bg_buf_free(&a.out);
	bg_buf_free(&b.out);
	bg_buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_crlf_across_chunks),
		cmocka_unit_test(test_multiline_and_comments),
		cmocka_unit_test(test_id_retry_unknown),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_partial_at_end),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_callback_abort),
		cmocka_unit_test(test_recorded_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
