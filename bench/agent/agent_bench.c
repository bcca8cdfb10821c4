/*
 * Event delivery: from the moment the turn emits an event to the moment a
 * subscriber has it, for the session's pull readers (file-backed store,
 * as breakglass-web runs it) against the classic push design, one pipe per
 * subscriber (what an asyncio-queue-per-client server amounts to), with
 * the same number of subscribers, at a realistic rate (an LLM streaming
 * token deltas) and flat out. Then the heap held by a session of 10,000
 * events against the bytes of those events.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "breakglass.h"
#include "core/buf.h"
#include "core/json.h"
#include "session/session_internal.h"

#define SUBS 4

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
	int64_t left;

	while ((left = t - now_ns()) > 0) {
		struct timespec ts = {left / 1000000000LL, left % 1000000000LL};

		if (left > 200000)
			nanosleep(&ts, NULL);
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

typedef struct lat {
	int64_t *v;
	size_t n;
} lat;

static double pct(lat *l, double p)
{
	size_t i = (size_t)(p * (double)(l->n - 1));

	return (double)l->v[i] / 1000.0; /* µs */
}

/* ---- the session, pull readers ----------------------------------------- */

typedef struct sub {
	bg_session *s;
	int fd;
	int count;
	lat lat;
	long long last;
} sub;

static int on_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	sub *r = payload;
	const char *p = strstr(json, "\"text\":\"");
	int64_t t = now_ns();

	(void)kind;
	(void)len;
	r->last = id;
	if (p)
		r->lat.v[r->lat.n++] = t - strtoll(p + 8, NULL, 10);
	return 0;
}

static void *session_reader(void *arg)
{
	sub *r = arg;

	r->last = -1;
	while ((int)r->lat.n < r->count)
		if (bg_session_read(r->s, r->last, 1000, on_event, r) < 0)
			break;
	return NULL;
}

static void emit_stamp(bg_session *s)
{
	json_object *ev = bg_event_new(BG_EVENT_TEXT);
	char t[32];

	snprintf(t, sizeof(t), "%" PRId64, now_ns());
	bg_json_add_str(ev, "text", t);
	bg_session_emit(NULL, s, ev);
	json_object_put(ev);
}

static void run_session(int n, int rate, lat *all)
{
	char dir[] = "/tmp/bg-agent-bench-XXXXXX";
	bg_session_store *st;
	bg_session *s;
	pthread_t th[SUBS];
	sub subs[SUBS];
	int64_t t0;
	int i;

	if (!mkdtemp(dir) || bg_session_store_open(&st, dir, 4) != BG_OK || bg_session_create(&s, st) != BG_OK) {
		fprintf(stderr, "agent_bench: %s\n", bg_error_last()->message);
		exit(1);
	}
	for (i = 0; i < SUBS; i++) {
		subs[i] = (sub){s, -1, n, {calloc((size_t)n, sizeof(int64_t)), 0}, -1};
		pthread_create(&th[i], NULL, session_reader, &subs[i]);
	}
	usleep(20000);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if (rate)
			sleep_until(t0 + (int64_t)i * 1000000000LL / rate);
		emit_stamp(s);
	}
	for (i = 0; i < SUBS; i++) {
		pthread_join(th[i], NULL);
		memcpy(all->v + all->n, subs[i].lat.v, subs[i].lat.n * sizeof(int64_t));
		all->n += subs[i].lat.n;
		free(subs[i].lat.v);
	}
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/%s.jsonl", dir, bg_session_id(s));
		unlink(path);
	}
	bg_session_release(s);
	bg_session_store_free(st);
	rmdir(dir);
}

/* ---- the peer: one pipe per subscriber ---------------------------------- */

static void *pipe_reader(void *arg)
{
	sub *r = arg;
	int64_t t;

	while ((int)r->lat.n < r->count && read(r->fd, &t, sizeof(t)) == (ssize_t)sizeof(t))
		r->lat.v[r->lat.n++] = now_ns() - t;
	return NULL;
}

static void run_pipes(int n, int rate, lat *all)
{
	pthread_t th[SUBS];
	sub subs[SUBS];
	int fds[SUBS][2];
	int64_t t0;
	int i, j;

	for (i = 0; i < SUBS; i++) {
		if (pipe(fds[i]) != 0)
			exit(1);
		subs[i] = (sub){NULL, fds[i][0], n, {calloc((size_t)n, sizeof(int64_t)), 0}, -1};
		pthread_create(&th[i], NULL, pipe_reader, &subs[i]);
	}
	usleep(20000);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		int64_t t;

		if (rate)
			sleep_until(t0 + (int64_t)i * 1000000000LL / rate);
		t = now_ns();
		for (j = 0; j < SUBS; j++)
			if (write(fds[j][1], &t, sizeof(t)) != (ssize_t)sizeof(t))
				exit(1);
	}
	for (i = 0; i < SUBS; i++) {
		pthread_join(th[i], NULL);
		memcpy(all->v + all->n, subs[i].lat.v, subs[i].lat.n * sizeof(int64_t));
		all->n += subs[i].lat.n;
		free(subs[i].lat.v);
		close(fds[i][0]);
		close(fds[i][1]);
	}
}

static void latency(const char *label, int n, int rate)
{
	lat a = {calloc((size_t)n * SUBS, sizeof(int64_t)), 0}, b = {calloc((size_t)n * SUBS, sizeof(int64_t)), 0};
	int64_t t0 = now_ns();
	double secs;

	run_session(n, rate, &a);
	secs = (double)(now_ns() - t0) / 1e9;
	run_pipes(n, rate, &b);
	qsort(a.v, a.n, sizeof(int64_t), cmp64);
	qsort(b.v, b.n, sizeof(int64_t), cmp64);
	printf("%-10s %6d events x %d subscribers (%s%.0f ev/s achieved)\n", label, n, SUBS, rate ? "" : "flat out, ",
	       (double)n / secs);
	printf("  session (file-backed, pull)   p50 %8.1f us   p99 %8.1f us   (%zu deliveries)\n", pct(&a, 0.5),
	       pct(&a, 0.99), a.n);
	printf("  peer: pipe per subscriber     p50 %8.1f us   p99 %8.1f us   (%zu deliveries)\n", pct(&b, 0.5),
	       pct(&b, 0.99), b.n);
	printf("  RATIO session/pipe            p50 %8.2f       p99 %8.2f\n", pct(&a, 0.5) / pct(&b, 0.5),
	       pct(&a, 0.99) / pct(&b, 0.99));
	free(a.v);
	free(b.v);
}

/* ---- memory of a long session ------------------------------------------ */

static size_t line_bytes;

static int count_bytes(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	(void)id;
	(void)kind;
	(void)json;
	(void)payload;
	line_bytes += len + 1;
	return 0;
}

static void emit_mixed(bg_session *s, int i, const char *output)
{
	json_object *ev;
	char id[32];

	snprintf(id, sizeof(id), "toolu_%06d", i / 10);
	if (i % 10 < 6) {
		ev = bg_event_new(BG_EVENT_TEXT);
		bg_json_add_str(ev, "text", "a token delta of some text ");
	} else if (i % 10 < 8) {
		ev = bg_event_new(BG_EVENT_TOOL);
		bg_json_add_str(ev, "tool_use_id", id);
		bg_json_add_str(ev, "name", "devvm_exec");
		json_object_object_add(ev, "input", json_tokener_parse("{\"command\":\"df -h / && free -m\"}"));
	} else {
		ev = bg_event_new(BG_EVENT_TOOL_RESULT);
		bg_json_add_str(ev, "tool_use_id", id);
		bg_json_add_bool(ev, "ok", 1);
		bg_json_add_int(ev, "exit_code", 0);
		bg_json_add_str(ev, "output", output);
		bg_json_add_bool(ev, "truncated", 0);
		bg_json_add_int(ev, "elapsed_ms", 42);
	}
	bg_session_emit(NULL, s, ev);
	json_object_put(ev);
}

static void memory(void)
{
	bg_session_store *st;
	bg_session *s;
	char output[1501];
	struct mallinfo2 before, after;
	size_t heap;
	int i;

	memset(output, 'x', sizeof(output) - 1);
	output[sizeof(output) - 1] = '\0';
	for (i = 80; i < 1500; i += 81)
		output[i] = '\n';
	bg_session_store_open(&st, NULL, 4);
	malloc_trim(0);
	before = mallinfo2();
	bg_session_create(&s, st);
	for (i = 0; i < 10000; i++)
		emit_mixed(s, i, output);
	after = mallinfo2();
	heap = after.uordblks - before.uordblks;
	bg_session_read(s, -1, 0, count_bytes, NULL);
	printf("memory     10000 events (60%% text deltas, 20%% tool, 20%% 1.5 KB tool_result)\n");
	printf("  session heap %zu KiB; the events' JSON is %zu KiB\n", heap / 1024, line_bytes / 1024);
	printf("  RATIO heap/JSON bytes %.2f\n", (double)heap / (double)line_bytes);
	bg_session_release(s);
	bg_session_store_free(st);
}

/* ---- end to end: ts-mock -> anthropic provider -> turn -> subscriber ---- */

typedef struct e2e_sub {
	bg_session *s;
	lat lat;
	size_t max;
	long long last;
	int done;
} e2e_sub;

static int on_e2e(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	e2e_sub *r = payload;
	const char *p = strstr(json, "\"text\":\"");
	int64_t t = now_ns();

	(void)len;
	r->last = id;
	if (kind == BG_EVENT_TEXT && p && r->lat.n < r->max)
		r->lat.v[r->lat.n++] = t - strtoll(p + 8, NULL, 10);
	if (kind == BG_EVENT_TURN_END)
		r->done = 1;
	return 0;
}

static void *e2e_reader(void *arg)
{
	e2e_sub *r = arg;

	while (!r->done && bg_session_read(r->s, r->last, 1000, on_e2e, r) >= 0)
		;
	return NULL;
}

static int agent_path(const char *port, int n, int us, lat *out)
{
	bg_config *cfg;
	bg_secret *key;
	bg_session_store *st;
	bg_session *s;
	bg_agent *a;
	bg_agent_options o = BG_AGENT_OPTIONS_INIT;
	bg_buf ini = BG_BUF_INIT;
	e2e_sub r = {NULL, {out->v, 0}, (size_t)n, -1, 0};
	pthread_t th;
	char dir[] = "/tmp/bg-agent-bench-XXXXXX";
	int rc;

	bg_buf_printf(&ini,
		      "[devvm]\nhost = 127.0.0.1\n[pve]\nhost = 127.0.0.1\n[ssh]\nuse_agent = true\n[agent]\nprovider "
		      "= anthropic\n"
		      "base_url = http://127.0.0.1:%s\nmodel = bench-%d-%d\nfallback = none\n",
		      port, n, us);
	if (!mkdtemp(dir) || bg_config_new(&cfg, BG_CONFIG_CLIENT) != BG_OK ||
	    bg_config_load_string(cfg, "bench.conf", ini.data, ini.len) != BG_OK || bg_config_validate(cfg) != BG_OK ||
	    bg_secret_new(&key, "sk-bench", 8) != BG_OK || bg_session_store_open(&st, dir, 4) != BG_OK ||
	    bg_session_create(&s, st) != BG_OK)
		return -1;
	o.api_key = key;
	if (bg_agent_new(&a, cfg, s, &o) != BG_OK)
		return -1;
	r.s = s;
	pthread_create(&th, NULL, e2e_reader, &r);
	rc = bg_agent_run(a, "stream", "bench");
	pthread_join(th, NULL);
	out->n = r.lat.n;
	bg_agent_free(a);
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/%s.jsonl", dir, bg_session_id(s));
		unlink(path);
	}
	bg_session_release(s);
	bg_session_store_free(st);
	rmdir(dir);
	bg_secret_free(key);
	bg_config_free(cfg);
	bg_buf_free(&ini);
	return rc;
}

/* The floor: the same stream read off a plain socket, no TLS, no HTTP
 * library, no JSON parser, no session. */
static int raw_path(const char *port, int n, int us, lat *out)
{
	static const char needle[] = "\"text_delta\", \"text\": \"";
	struct sockaddr_in sa = {0};
	char body[64], req[256], buf[65536];
	bg_buf acc = BG_BUF_INIT;
	size_t scanned = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), blen;
	ssize_t r;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtol(port, NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	blen = snprintf(body, sizeof(body), "{\"model\":\"bench-%d-%d\"}", n, us);
	snprintf(req, sizeof(req),
		 "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		 "Content-Length: %d\r\n\r\n%s",
		 blen, body);
	if (write(fd, req, strlen(req)) < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		int64_t t = now_ns();
		const char *p;

		bg_buf_append(&acc, buf, (size_t)r);
		while ((p = strstr(acc.data + scanned, needle)) != NULL && strstr(p, "\n\n") != NULL) {
			if (out->n < (size_t)n)
				out->v[out->n++] = t - strtoll(p + strlen(needle), NULL, 10);
			scanned = (size_t)(strstr(p, "\n\n") - acc.data);
		}
	}
	close(fd);
	bg_buf_free(&acc);
	return 0;
}

static void mock_latency(const char *port, const char *label, int n, int us)
{
	lat a = {calloc((size_t)n, sizeof(int64_t)), 0}, b = {calloc((size_t)n, sizeof(int64_t)), 0};

	if (agent_path(port, n, us, &a) != BG_OK || a.n == 0) {
		fprintf(stderr, "agent_bench: the turn failed: %s\n", bg_error_last()->message);
		exit(1);
	}
	raw_path(port, n, us, &b);
	qsort(a.v, a.n, sizeof(int64_t), cmp64);
	qsort(b.v, b.n, sizeof(int64_t), cmp64);
	printf("%-10s %6d text deltas from the mock, %s\n", label, n, us ? "20 ms apart" : "back to back");
	printf("  mock -> provider -> turn -> subscriber   p50 %8.1f us   p99 %8.1f us   (%zu)\n", pct(&a, 0.5),
	       pct(&a, 0.99), a.n);
	printf("  peer: mock -> plain socket reader        p50 %8.1f us   p99 %8.1f us   (%zu)\n", pct(&b, 0.5),
	       pct(&b, 0.99), b.n);
	printf("  RATIO agent/socket                       p50 %8.2f       p99 %8.2f\n", pct(&a, 0.5) / pct(&b, 0.5),
	       pct(&a, 0.99) / pct(&b, 0.99));
	free(a.v);
	free(b.v);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		mock_latency(argv[1], "realistic", 250, 20000);
		mock_latency(argv[1], "high", 5000, 0);
	}
	latency("realistic", 600, 200);
	latency("high", 20000, 0);
	memory();
	return 0;
}
