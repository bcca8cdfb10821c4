/*
 * Internal to lib/llm: what the two HTTP providers (anthropic, openai)
 * share — the libcurl transfer of one streamed request, the retry policy
 * of the official SDKs, error bodies, and text delivery in whole UTF-8
 * characters.
 */
#ifndef BG_LLM_REMOTE_H
#define BG_LLM_REMOTE_H

#include "llm/curl_dl.h"

#include "core/buf.h"
#include "llm/provider.h"
#include "llm/sse.h"

#define BG_ANTHROPIC_DEFAULT_BASE  "https://api.anthropic.com"
#define BG_ANTHROPIC_DEFAULT_MODEL "claude-sonnet-4-5"
#define BG_OPENAI_DEFAULT_BASE     "https://api.openai.com"
#define BG_OPENAI_DEFAULT_MODEL    "gpt-4o-mini"

typedef struct bg_llm_remote {
	bg_llm base;
	const char *name; /* "anthropic" | "openai", for messages */
	char *base_url;   /* without a trailing "/" */
	bg_secret *key;   /* a copy, or NULL */
	int oauth;
	int max_retries;
	int connect_timeout_ms;
	int idle_timeout_ms;
	CURL *easy; /* kept between requests: its connection is reused */
	CURLM *multi;
	atomic_int busy;
} bg_llm_remote;

/* A failure found while reading a stream (an `error` event, a stream that
 * ended early), reported by a provider's hooks. */
typedef struct bg_llm_fail {
	int set;
	int retry; /* may be retried */
	int code;  /* the bg_status to return when it is not */
	char why[512];
	int cut; /* input to end(): the connection closed mid-chunk */
} bg_llm_fail;

/* What a provider plugs into the transfer. */
typedef struct bg_llm_hooks {
	void (*reset)(void *ctx); /* a new attempt starts: drop any partial reply */
	/* One SSE event; a negative return aborts (a callback's value, or any
	 * value after filling *fail). */
	int (*event)(const bg_sse_event *ev, void *ctx, bg_llm_fail *fail);
	/* The stream closed cleanly: BG_OK if the reply is complete, else
	 * fill *fail and return a negative value. */
	int (*end)(void *ctx, bg_llm_fail *fail);
	void *ctx;
} bg_llm_hooks;

/* A remote provider (anthropic, openai) on its own allocation: `vt`'s
 * destroy must be bg_llm_remote_destroy. */
int bg_llm_remote_new(bg_llm_remote **out, const char *name, const bg_llm_vtable *vt, const bg_llm_settings *s,
		      const char *default_base);
void bg_llm_remote_destroy(bg_llm *llm);

/* "{base}{path}", where a base ending in /v1 does not get a second one. */
int bg_llm_url(bg_buf *out, const char *base, const char *path);

/* Append a header line; a copy of the key is wiped when the list is freed
 * with bg_llm_headers_free(). */
int bg_llm_header(struct curl_slist **list, const char *name, const char *value);
void bg_llm_headers_free(struct curl_slist *list);

/* Turn off "Expect: 100-continue", which libcurl adds to large POSTs and
 * which costs a second's wait with servers that do not answer it. */
int bg_llm_no_expect(struct curl_slist **list);

/* The headers of an authenticated request (also used by bg_llm_check). */
int bg_llm_anthropic_headers(bg_llm_remote *r, struct curl_slist **h);
int bg_llm_openai_headers(bg_llm_remote *r, struct curl_slist **h);

/* POST body to url and stream the reply through hooks, retrying as the
 * SDKs do. *attempts receives 1 + the retries taken. */
int bg_llm_remote_run(bg_llm_remote *r, const char *url, struct curl_slist *headers, const char *body,
		      const bg_llm_request *req, const bg_llm_callbacks *cb, const bg_llm_hooks *hooks, int *attempts);

/*
 * For tests and fuzzers: run a recorded stream (the HTTP body of a 200)
 * through a provider's parser as if it came off the network in pieces of
 * `chunk` bytes (0: all at once). Same results and errors as complete().
 */
int bg_llm_replay(const char *provider, const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
		  bg_llm_response *resp);
int bg_llm_anthropic_replay(const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
			    bg_llm_response *resp);
int bg_llm_openai_replay(const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
			 bg_llm_response *resp);
int bg_llm_replay_hooks(const bg_llm_hooks *hooks, const char *stream, size_t len, size_t chunk);

/* The request bodies the providers send (malloc'd JSON), for tests. */
char *bg_llm_anthropic_body(const bg_llm_request *req);
char *bg_llm_openai_body(const bg_llm_request *req);

/* The wait before retry number n (0-based) when the server gave no hint:
 * min(0.5·2^n, 8) s, minus up to 25 % jitter. */
int64_t bg_llm_backoff_ms(int n);

/* Parse retry-after-ms / retry-after header values: the wait in ms, or -1
 * when absent, unparsable or outside 0..60 s. */
int64_t bg_llm_retry_after(const char *retry_after_ms, const char *retry_after);

/* Text for on_text, cut only at UTF-8 character boundaries: an incomplete
 * character at the end of a piece waits for the next piece. */
typedef struct bg_llm_utf8 {
	char pending[4];
	size_t n;
} bg_llm_utf8;

int bg_llm_text(bg_llm_utf8 *u, const bg_llm_callbacks *cb, const char *s, size_t len);
int bg_llm_text_flush(bg_llm_utf8 *u, const bg_llm_callbacks *cb);

/* Record a stream failure; returns BG_EFAILED for the hook to return. */
int bg_llm_fail_set(bg_llm_fail *f, int retry, int code, const char *fmt, ...) BG_PRINTF(4, 5);

#endif
