/* A small HTTP/1.1 client for `--server URL` (plain http://: a pod talks to
 * breakglass-web inside the cluster; TLS belongs to the proxy in front).
 * The CLI keeps it because libcurl lives in lib/llm only. */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <stddef.h>

typedef struct ctl_http {
	char host[256];
	char port[8];
	char base[256]; /* path prefix, "" or "/breakglass" */
	char token[512];
} ctl_http;

/* Parse http://HOST[:PORT][/PREFIX]; the bearer token from
 * $BREAKGLASS_TOKEN, else the file $BREAKGLASS_TOKEN_FILE, else
 * $API_BEARER_TOKEN. 0, or -1 with a message in err. */
int ctl_http_open(ctl_http *h, const char *url, char *err, size_t errlen);

/* One request with a JSON body (or NULL). 0 with *status and the body (a
 * string the caller frees); -1 when the server could not be reached or
 * did not answer within timeout_s (err says which). */
int ctl_http_request(const ctl_http *h, const char *method, const char *path, const char *body, int timeout_s,
		     int *status, char **resp, char *err, size_t errlen);

/* An event stream: GET path, the head read. */
typedef struct ctl_sse {
	int fd;
	char *buf;
	size_t len, cap;
} ctl_sse;

int ctl_sse_open(ctl_sse *s, const ctl_http *h, const char *path, int *status, char *err, size_t errlen);
/* The next frame: 1 with *event ("" for a plain message), *data and *id
 * (-1 when none) set (strings the caller frees); 0 after timeout_ms with
 * nothing; -1 when the stream ended. */
int ctl_sse_next(ctl_sse *s, int timeout_ms, char **event, char **data, long long *id);
void ctl_sse_close(ctl_sse *s);

#endif
