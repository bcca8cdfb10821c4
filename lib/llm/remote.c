#include "remote.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#define ERRBODY_MAX    (64 * 1024)
#define POLL_SLICE_MS  50
#define RETRY_HINT_MAX 60000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* curl_global_init is not thread-safe before 7.84 and must run once:
 * pthread_once makes the second of two threads creating a provider at
 * the same moment wait for the first (the web server creates one per
 * turn). */
static int global_init(void)
{
	if (bg_curl_load() != 0)
		return bg_error_set(BG_ERROR, "the LLM providers need libcurl: %s", bg_curl_error());
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return bg_error_set(BG_ERROR, "libcurl could not initialise (out of memory or TLS library)");
	return BG_OK;
}

static int remote_init(bg_llm_remote *r, const char *name, const bg_llm_vtable *vt, const bg_llm_settings *s,
		       const char *default_base)
{
	const char *base = s->base_url && *s->base_url ? s->base_url : default_base;
	size_t n = strlen(base);
	int rc;

	memset(r, 0, sizeof(*r));
	r->base.vt = vt;
	r->name = name;
	if ((rc = global_init()) != BG_OK)
		return rc;
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return bg_error_set(BG_EINVAL, "%s: base_url \"%s\" must start with http:// or https://", name, base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	r->base_url = strndup(base, n);
	if (!r->base_url)
		return bg_error_oom();
	if (s->api_key && bg_secret_len(s->api_key) > 0 &&
	    (rc = bg_secret_new(&r->key, bg_secret_data(s->api_key), bg_secret_len(s->api_key))) != BG_OK)
		return rc;
	r->oauth = s->oauth;
	r->max_retries = s->max_retries < 0 ? 2 : s->max_retries;
	r->connect_timeout_ms = s->connect_timeout_ms > 0 ? s->connect_timeout_ms : 10000;
	r->idle_timeout_ms = s->idle_timeout_ms > 0 ? s->idle_timeout_ms : 60000;
	r->easy = curl_easy_init();
	r->multi = curl_multi_init();
	if (!r->easy || !r->multi)
		return bg_error_oom();
	return BG_OK;
}

void bg_llm_remote_destroy(bg_llm *llm)
{
	bg_llm_remote *r = (bg_llm_remote *)llm;

	if (r->multi)
		curl_multi_cleanup(r->multi);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	bg_secret_free(r->key);
	free(r->base_url);
	free(r);
}

int bg_llm_remote_new(bg_llm_remote **out, const char *name, const bg_llm_vtable *vt, const bg_llm_settings *s,
		      const char *default_base)
{
	bg_llm_remote *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return bg_error_oom();
	rc = remote_init(r, name, vt, s, default_base);
	if (rc != BG_OK) {
		bg_llm_remote_destroy(&r->base);
		return rc;
	}
	*out = r;
	return BG_OK;
}

int bg_llm_url(bg_buf *out, const char *base, const char *path)
{
	size_t n = strlen(base);

	/* base_url = "http://host:11434/v1", as Ollama documents it */
	if (n >= 3 && strcmp(base + n - 3, "/v1") == 0 && strncmp(path, "/v1/", 4) == 0)
		path += 3;
	return bg_buf_printf(out, "%s%s", base, path);
}

int bg_llm_header(struct curl_slist **list, const char *name, const char *value)
{
	bg_buf line = BG_BUF_INIT;
	struct curl_slist *l;

	if (bg_buf_printf(&line, "%s: %s", name, value) != BG_OK)
		return BG_ENOMEM;
	l = curl_slist_append(*list, line.data);
	bg_buf_wipe(&line);
	if (!l)
		return bg_error_oom();
	*list = l;
	return BG_OK;
}

int bg_llm_no_expect(struct curl_slist **list)
{
	struct curl_slist *l = curl_slist_append(*list, "Expect:");

	if (!l)
		return bg_error_oom();
	*list = l;
	return BG_OK;
}

void bg_llm_headers_free(struct curl_slist *list)
{
	struct curl_slist *l;

	for (l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

int bg_llm_fail_set(bg_llm_fail *f, int retry, int code, const char *fmt, ...)
{
	va_list ap;

	f->set = 1;
	f->retry = retry;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return BG_EFAILED;
}

/* ---- retry timing ---- */

/* Jitter only: a small generator of our own, so the library neither
 * reseeds nor draws from the application's random(). */
static double jitter_unit(void)
{
	static __thread uint64_t state;

	if (!state)
		state = ((uint64_t)bg_now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&state;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (double)(state >> 11) / (double)(1ULL << 53);
}

int64_t bg_llm_backoff_ms(int n)
{
	double s = 0.5;
	int i;

	for (i = 0; i < n && s < 8.0; i++)
		s *= 2.0;
	if (s > 8.0)
		s = 8.0;
	/* jitter: up to 25 % less, as the SDKs do */
	return (int64_t)(s * 1000.0 * (1.0 - 0.25 * jitter_unit()));
}

static int64_t parse_seconds(const char *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	if (end == v || *end || errno || d != d)
		return -1;
	return (int64_t)(d * 1000.0);
}

int64_t bg_llm_retry_after(const char *retry_after_ms, const char *retry_after)
{
	int64_t ms = -1;

	if (retry_after_ms && *retry_after_ms) {
		ms = parse_seconds(retry_after_ms);
		if (ms >= 0)
			ms /= 1000; /* parse_seconds scaled it up */
	}
	if (ms < 0 && retry_after && *retry_after) {
		ms = parse_seconds(retry_after);
		if (ms < 0) {
			time_t when = curl_getdate(retry_after, NULL);
			if (when != (time_t)-1)
				ms = ((int64_t)when * 1000) - bg_wall_ms();
		}
	}
	if (ms < 0 || ms > RETRY_HINT_MAX)
		return -1;
	return ms;
}

/* ---- UTF-8 ---- */

/* Bytes at the end of s that start a character not yet complete. */
static size_t incomplete_tail(const char *s, size_t len)
{
	size_t k;

	for (k = 1; k <= 3 && k <= len; k++) {
		unsigned char c = (unsigned char)s[len - k];
		size_t need;
		if ((c & 0xC0) == 0x80)
			continue;
		if (c < 0xC0)
			return 0;
		need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		return need > k ? k : 0;
	}
	return 0;
}

int bg_llm_text(bg_llm_utf8 *u, const bg_llm_callbacks *cb, const char *s, size_t len)
{
	bg_buf b = BG_BUF_INIT;
	size_t tail;
	int rc = BG_OK;

	if (bg_buf_append(&b, u->pending, u->n) || bg_buf_append(&b, s, len)) {
		bg_buf_free(&b);
		return BG_ENOMEM;
	}
	tail = incomplete_tail(b.data, b.len);
	memcpy(u->pending, b.data + b.len - tail, tail);
	u->n = tail;
	if (b.len > tail && cb && cb->on_text)
		rc = cb->on_text(b.data, b.len - tail, cb->payload);
	bg_buf_free(&b);
	return rc;
}

int bg_llm_text_flush(bg_llm_utf8 *u, const bg_llm_callbacks *cb)
{
	int rc = BG_OK;

	if (u->n && cb && cb->on_text)
		rc = cb->on_text(u->pending, u->n, cb->payload);
	u->n = 0;
	return rc;
}

/* ---- one transfer ---- */

typedef struct xfer {
	bg_llm_remote *r;
	const bg_llm_hooks *hooks;
	bg_llm_fail *fail;
	bg_sse sse;
	bg_buf errbody;
	long status;
	int64_t last_rx_ms;
	int hook_rc; /* non-zero: a hook aborted the stream */
	char retry_after_ms[32], retry_after[64], should_retry[8], request_id[96], content_type[96];
} xfer;

/* A 200 that is not a stream (a proxy's page, a non-streaming server) is
 * kept as an error body. No content-type at all is given the benefit. */
static int streaming(const xfer *x)
{
	return x->status == 200 && (!x->content_type[0] || strcasestr(x->content_type, "event-stream"));
}

static int on_sse(const bg_sse_event *ev, void *payload)
{
	xfer *x = payload;
	return x->hooks->event(ev, x->hooks->ctx, x->fail);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *payload)
{
	xfer *x = payload;
	size_t len = size * n;
	int rc;

	x->last_rx_ms = bg_now_ms();
	if (streaming(x)) {
		rc = bg_sse_feed(&x->sse, ptr, len);
		if (rc != BG_OK) {
			x->hook_rc = rc;
			return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
		}
	} else if (x->errbody.len < ERRBODY_MAX) {
		size_t room = ERRBODY_MAX - x->errbody.len;
		if (bg_buf_append(&x->errbody, ptr, len < room ? len : room) != BG_OK)
			return 0;
	}
	return len;
}

static void header_value(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
	size_t nlen = strlen(name), n;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return;
	line += nlen + 1;
	len -= nlen + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	n = len < dstlen - 1 ? len : dstlen - 1;
	memcpy(dst, line, n);
	dst[n] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t n, void *payload)
{
	xfer *x = payload;
	size_t len = size * n;

	x->last_rx_ms = bg_now_ms();
	if (len > 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		const char *sp = memchr(ptr, ' ', len);
		/* a new response (after a 100 Continue): forget the last one's headers */
		x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->retry_after_ms[0] = x->retry_after[0] = x->should_retry[0] = x->request_id[0] = '\0';
		x->content_type[0] = '\0';
		return len;
	}
	header_value(ptr, len, "retry-after-ms", x->retry_after_ms, sizeof(x->retry_after_ms));
	header_value(ptr, len, "retry-after", x->retry_after, sizeof(x->retry_after));
	header_value(ptr, len, "x-should-retry", x->should_retry, sizeof(x->should_retry));
	header_value(ptr, len, "request-id", x->request_id, sizeof(x->request_id));
	header_value(ptr, len, "x-request-id", x->request_id, sizeof(x->request_id));
	header_value(ptr, len, "content-type", x->content_type, sizeof(x->content_type));
	return len;
}

static int setup_easy(bg_llm_remote *r, xfer *x, const char *url, struct curl_slist *headers, const char *body)
{
	CURL *e = r->easy;

	curl_easy_reset(e);
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
		return bg_error_set(BG_EINVAL, "%s: libcurl refused the URL %s", r->name, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	} else
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "libbreakglass");
	return BG_OK;
}

enum stop { STOP_NONE, STOP_CANCEL, STOP_DEADLINE, STOP_IDLE };

/* Drive the transfer, waking every POLL_SLICE_MS to check for a cancel,
 * the deadline and silence. */
static CURLcode drive(bg_llm_remote *r, xfer *x, bg_deadline deadline, enum stop *stop)
{
	CURLcode result = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	*stop = STOP_NONE;
	curl_multi_add_handle(r->multi, r->easy);
	while (running) {
		if (curl_multi_perform(r->multi, &running) != CURLM_OK) {
			result = CURLE_OUT_OF_MEMORY;
			break;
		}
		if (!running)
			break;
		if (bg_llm_cancelled(&r->base))
			*stop = STOP_CANCEL;
		else if (bg_deadline_expired(deadline))
			*stop = STOP_DEADLINE;
		else if (bg_now_ms() - x->last_rx_ms > r->idle_timeout_ms)
			*stop = STOP_IDLE;
		if (*stop != STOP_NONE)
			break;
		curl_multi_poll(r->multi, NULL, 0, POLL_SLICE_MS, NULL);
	}
	while ((msg = curl_multi_info_read(r->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			result = msg->data.result;
	curl_multi_remove_handle(r->multi, r->easy);
	return result;
}

/* The API's error type and message from an error body (both APIs put
 * them under "error"). */
static void error_text(xfer *x, char *type, size_t tlen, char *msg, size_t mlen)
{
	json_object *o = x->errbody.len ? bg_json_parse(x->errbody.data, x->errbody.len, "error body") : NULL;
	json_object *e = bg_json_obj(o, "error");

	snprintf(type, tlen, "%s", bg_json_str(e, "type", bg_json_str(e, "code", "")));
	if (e)
		snprintf(msg, mlen, "%s", bg_json_str(e, "message", ""));
	else
		snprintf(msg, mlen, "%.200s", x->errbody.len ? x->errbody.data : "(empty body)");
	json_object_put(o);
	bg_error_clear();
	/* a proxy's HTML page must not break the one-line message */
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = ' ';
}

static int spend_limit(const char *type, const char *msg)
{
	const char *words[] = {"spend limit", "spending limit", "quota", "credit balance", "billing"};
	size_t i;

	if (strcmp(type, "insufficient_quota") == 0)
		return 1;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(msg, words[i]))
			return 1;
	return 0;
}

static int http_failure(bg_llm_remote *r, xfer *x)
{
	char type[64], msg[400], rid[128] = "";
	long st = x->status;
	int retry = st == 408 || st == 409 || st == 429 || st >= 500;
	const char *forced = "";

	error_text(x, type, sizeof(type), msg, sizeof(msg));
	if (x->request_id[0])
		snprintf(rid, sizeof(rid), " (request-id %s)", x->request_id);
	if (strcasecmp(x->should_retry, "true") == 0 && !retry) {
		retry = 1;
		forced = " [x-should-retry: true]";
	} else if (strcasecmp(x->should_retry, "false") == 0 && retry) {
		retry = 0;
		forced = " [x-should-retry: false]";
	}
	if (st == 429 && spend_limit(type, msg) && !*forced)
		return bg_llm_fail_set(x->fail, 0, BG_EUNAVAILABLE,
				       "%s API: HTTP 429 %s: %s%s — a spend limit or quota, not a rate limit: "
				       "not retried (raise the limit, or use the fallback)",
				       r->name, type, msg, rid);
	if (st == 401 || st == 403)
		return bg_llm_fail_set(x->fail, retry, BG_EAUTH,
				       "%s API: HTTP %ld %s: %s%s — check the API key (api_key_file, or "
				       "$ANTHROPIC_API_KEY / $OPENAI_API_KEY)%s",
				       r->name, st, type, msg, rid, forced);
	return bg_llm_fail_set(x->fail, retry,
			       (st == 408 || st == 409 || st == 429 || st >= 500) ? BG_EUNAVAILABLE : BG_EINVAL,
			       "%s API: HTTP %ld %s: %s%s%s", r->name, st, type, msg, rid, forced);
}

static int curl_failure(bg_llm_remote *r, xfer *x, CURLcode cc)
{
	/* what retrying cannot fix: the URL, the certificate */
	int fixed = cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ||
		    cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE;

	return bg_llm_fail_set(x->fail, !fixed, fixed ? BG_EINVAL : BG_ECONNECT, "%s API at %s: %s", r->name,
			       r->base_url, curl_easy_strerror(cc));
}

/* One attempt. BG_OK, or a negative value: with fail->set when the
 * failure is classified (retry or not), without it for a callback's abort,
 * a cancel or the deadline (error already recorded). */
static int attempt(bg_llm_remote *r, xfer *x, const char *url, struct curl_slist *headers, const char *body,
		   bg_deadline deadline)
{
	enum stop stop;
	CURLcode cc;
	int rc, partial;

	if ((rc = setup_easy(r, x, url, headers, body)) != BG_OK)
		return rc;
	x->last_rx_ms = bg_now_ms();
	cc = drive(r, x, deadline, &stop);
	if (stop == STOP_CANCEL)
		return bg_error_set(BG_ECANCELLED, "%s: the request was cancelled", r->name);
	if (stop == STOP_DEADLINE)
		return bg_error_set(BG_ETIMEOUT, "%s: the turn's deadline passed while waiting for the model", r->name);
	if (x->hook_rc && !x->fail->set)
		return x->hook_rc; /* a callback said stop */
	if (x->fail->set)
		return BG_EFAILED; /* an error event in the stream */
	if (stop == STOP_IDLE)
		return bg_llm_fail_set(x->fail, 1, BG_ETIMEOUT, "%s API at %s: no data for %d ms (idle timeout)",
				       r->name, r->base_url, r->idle_timeout_ms);
	if (cc != CURLE_OK && !(x->status == 200 && cc == CURLE_PARTIAL_FILE))
		return curl_failure(r, x, cc);
	if (x->status != 200)
		return http_failure(r, x);
	if (!streaming(x))
		return bg_llm_fail_set(x->fail, 0, BG_EPROTO,
				       "%s API at %s answered 200 with content-type %s, not an event stream "
				       "(is base_url the API?): %.160s",
				       r->name, r->base_url, x->content_type, x->errbody.len ? x->errbody.data : "");
	rc = bg_sse_finish(&x->sse, &partial);
	if (rc != BG_OK)
		return bg_llm_fail_set(x->fail, 0, rc, "%s", bg_error_last()->message);
	x->fail->cut = cc == CURLE_PARTIAL_FILE;
	rc = x->hooks->end(x->hooks->ctx, x->fail);
	if (rc != BG_OK && !x->fail->set)
		return rc;
	if (rc != BG_OK && cc == CURLE_PARTIAL_FILE)
		snprintf(x->fail->why + strlen(x->fail->why), sizeof(x->fail->why) - strlen(x->fail->why),
			 " (the connection closed mid-stream)");
	return rc;
}

typedef struct replay_ctx {
	const bg_llm_hooks *hooks;
	bg_llm_fail *fail;
} replay_ctx;

static int replay_event(const bg_sse_event *ev, void *payload)
{
	replay_ctx *c = payload;
	return c->hooks->event(ev, c->hooks->ctx, c->fail);
}

int bg_llm_replay_hooks(const bg_llm_hooks *hooks, const char *stream, size_t len, size_t chunk)
{
	bg_llm_fail fail;
	replay_ctx c = {hooks, &fail};
	bg_sse sse;
	size_t i;
	int rc = BG_OK;

	memset(&fail, 0, sizeof(fail));
	hooks->reset(hooks->ctx);
	bg_sse_init(&sse, 0, replay_event, &c);
	if (!chunk)
		chunk = len ? len : 1;
	for (i = 0; i < len && rc == BG_OK; i += chunk)
		rc = bg_sse_feed(&sse, stream + i, len - i < chunk ? len - i : chunk);
	if (rc == BG_OK)
		rc = bg_sse_finish(&sse, NULL);
	if (rc == BG_OK && !fail.set)
		rc = hooks->end(hooks->ctx, &fail);
	bg_sse_free(&sse);
	if (fail.set)
		return bg_error_set(fail.retry ? BG_EUNAVAILABLE : fail.code, "%s", fail.why);
	return rc;
}

/* Wait, waking to notice a cancel. */
static int wait_ms(bg_llm_remote *r, int64_t ms)
{
	bg_deadline until = bg_deadline_in(ms);

	while (!bg_deadline_expired(until)) {
		if (bg_llm_cancelled(&r->base))
			return bg_error_set(BG_ECANCELLED, "%s: cancelled while waiting to retry", r->name);
		bg_sleep_ms(bg_deadline_left(until) < POLL_SLICE_MS ? bg_deadline_left(until) : POLL_SLICE_MS);
	}
	return BG_OK;
}

static int give_up(bg_llm_remote *r, const bg_llm_fail *f, int tries)
{
	if (!f->retry)
		return bg_error_set(f->code, "%s", f->why);
	return bg_error_set(BG_EUNAVAILABLE, "the %s API stayed unavailable after %d attempt%s; last: %s", r->name,
			    tries, tries == 1 ? "" : "s", f->why);
}

int bg_llm_remote_run(bg_llm_remote *r, const char *url, struct curl_slist *headers, const char *body,
		      const bg_llm_request *req, const bg_llm_callbacks *cb, const bg_llm_hooks *hooks, int *attempts)
{
	xfer x;
	bg_llm_fail fail;
	int n, rc;

	for (n = 0;; n++) {
		int64_t delay;

		memset(&x, 0, sizeof(x));
		memset(&fail, 0, sizeof(fail));
		x.r = r;
		x.hooks = hooks;
		x.fail = &fail;
		bg_sse_init(&x.sse, 0, on_sse, &x);
		hooks->reset(hooks->ctx);
		*attempts = n + 1;
		rc = attempt(r, &x, url, headers, body, req->deadline);
		delay = bg_llm_retry_after(x.retry_after_ms, x.retry_after);
		bg_sse_free(&x.sse);
		bg_buf_free(&x.errbody);
		if (rc == BG_OK || !fail.set)
			return rc;
		if (!fail.retry || n >= r->max_retries)
			return give_up(r, &fail, n + 1);
		if (delay < 0)
			delay = bg_llm_backoff_ms(n);
		if (bg_deadline_left(req->deadline) < delay)
			return bg_error_set(
				BG_EUNAVAILABLE,
				"%s: not retrying: waiting %lld ms would pass the turn's deadline; last: %s", r->name,
				(long long)delay, fail.why);
		bg_warn("llm", "%s: retry %d in %lld ms: %s", r->name, n + 1, (long long)delay, fail.why);
		if (cb && cb->on_retry && (rc = cb->on_retry(n + 1, delay, fail.why, cb->payload)) < 0)
			return rc;
		if ((rc = wait_ms(r, delay)) != BG_OK)
			return rc;
	}
}
