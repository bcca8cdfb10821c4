/*
 * The CivetWeb side of breakglass-web: the options it runs with, and the
 * one dispatch function every request goes through.
 *
 * CivetWeb does the socket, the request parsing and HTTP/1.1; nothing
 * else of it is used: no document_root (the page is compiled in), no
 * form handling, no CGI/Lua/SSI, no directory listing, no keep-alive (a
 * connection is a request, so an idle client never holds a worker). Each
 * request, in order: the request budget (503), the route (404/405), auth
 * (401/429), for a state change same-origin and the content type (403),
 * the body limit before a byte of it is read (413), then the handler.
 * Every answer carries the security headers and one JSON log line.
 */
#include "web.h"

#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Log lines go through a bounded buffer to a writer thread: a stalled
 * stdout (a full pipe, a stuck log collector) must never block a request.
 * When the buffer is full, lines are dropped and counted. */
#define LOG_BUFFER_MAX (1024 * 1024)

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	wbuf pending;
	unsigned long dropped;
	int started, stop;
	pthread_t thread;
} logq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0, 0};

static void *log_writer(void *arg)
{
	wbuf out = {0};
	unsigned long dropped;

	(void)arg;
	pthread_mutex_lock(&logq.lock);
	for (;;) {
		while (!logq.pending.len && !logq.dropped && !logq.stop)
			pthread_cond_wait(&logq.cond, &logq.lock);
		if (!logq.pending.len && !logq.dropped && logq.stop)
			break;
		wbuf_put(&out, logq.pending.data ? logq.pending.data : "", logq.pending.len);
		logq.pending.len = 0;
		dropped = logq.dropped;
		logq.dropped = 0;
		pthread_mutex_unlock(&logq.lock);
		if (dropped)
			fprintf(stdout, "{\"event\":\"log-dropped\",\"lines\":%lu}\n", dropped);
		if (out.len)
			fwrite(out.data, 1, out.len, stdout);
		fflush(stdout);
		out.len = 0;
		pthread_mutex_lock(&logq.lock);
	}
	pthread_mutex_unlock(&logq.lock);
	wbuf_free(&out);
	return NULL;
}

void web_log_start(void)
{
	if (pthread_create(&logq.thread, NULL, log_writer, NULL) == 0)
		logq.started = 1;
}

void web_log_stop(void)
{
	if (!logq.started)
		return;
	pthread_mutex_lock(&logq.lock);
	logq.stop = 1;
	pthread_cond_signal(&logq.cond);
	pthread_mutex_unlock(&logq.lock);
	pthread_join(logq.thread, NULL);
	logq.started = 0;
	wbuf_free(&logq.pending);
}

static void log_line(wbuf *b)
{
	if (b->failed || !b->data)
		return;
	pthread_mutex_lock(&logq.lock);
	if (!logq.started) { /* before the writer runs (startup) or after it stopped */
		fwrite(b->data, 1, b->len, stdout);
		fflush(stdout);
	} else if (logq.pending.len + b->len > LOG_BUFFER_MAX) {
		logq.dropped++;
	} else {
		wbuf_put(&logq.pending, b->data, b->len);
		pthread_cond_signal(&logq.cond);
	}
	pthread_mutex_unlock(&logq.lock);
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void iso_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

void web_log_request(web_req *r)
{
	wbuf b = {0};
	char when[40];

	iso_now(when, sizeof(when));
	wbuf_printf(&b, "{\"time\":\"%s\",\"event\":\"request\",\"method\":", when);
	wbuf_json_str(&b, r->method ? r->method : "-");
	wbuf_puts(&b, ",\"route\":");
	wbuf_json_str(&b, r->route >= 0 ? web_routes[r->route].pattern : "-");
	wbuf_puts(&b, ",\"path\":");
	wbuf_json_strn(&b, r->path ? r->path : "-", r->path ? strnlen(r->path, 256) : 1);
	wbuf_printf(&b, ",\"status\":%d,\"bytes\":%zu,\"ms\":%lld,\"user\":", r->status, r->bytes, ms_since(&r->t0));
	wbuf_json_str(&b, r->who[0] ? r->who : "-");
	wbuf_puts(&b, ",\"from\":");
	wbuf_json_str(&b, r->from);
	wbuf_puts(&b, "}\n");
	log_line(&b);
	wbuf_free(&b);
}

void web_log_event(const char *event, const char *fmt, ...)
{
	wbuf b = {0};
	char when[40], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	iso_now(when, sizeof(when));
	wbuf_printf(&b, "{\"time\":\"%s\",\"event\":", when);
	wbuf_json_str(&b, event);
	wbuf_puts(&b, ",\"msg\":");
	wbuf_json_str(&b, msg);
	wbuf_puts(&b, "}\n");
	log_line(&b);
	wbuf_free(&b);
}

const char *web_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

const char *web_header(web_req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

static int is_api(const char *path)
{
	return path && (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0 || strcmp(path, "/metrics") == 0);
}

int web_reply(web_req *r, int status, const char *content_type, const char *body, size_t len, const char *extra_headers)
{
	wbuf b = {0};
	int head = r->method && strcmp(r->method, "HEAD") == 0;

	/* 204 and 304 have no body, no type and no length; HEAD the head of GET. */
	wbuf_printf(&b, "HTTP/1.1 %d %s\r\n", status, web_status_text(status));
	if (content_type)
		wbuf_printf(&b, "Content-Type: %s\r\n", content_type);
	if (status != 204 && status != 304)
		wbuf_printf(&b, "Content-Length: %zu\r\n", len);
	wbuf_printf(&b,
		    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"
		    "%sConnection: close\r\n%s\r\n",
		    is_api(r->path) || status >= 400 ? "Cache-Control: no-store\r\n" : "",
		    extra_headers ? extra_headers : "");
	if (!head && status != 204 && status != 304)
		wbuf_put(&b, body, len);
	if (!b.failed)
		mg_write(r->conn, b.data, b.len);
	r->status = status;
	r->bytes = head || status == 204 || status == 304 ? 0 : len;
	wbuf_free(&b);
	return status;
}

int web_reply_json(web_req *r, int status, const wbuf *body)
{
	if (body->failed)
		return web_reply_error(r, 500, "out of memory building the answer", NULL);
	return web_reply(r, status, "application/json", body->data ? body->data : "{}", body->data ? body->len : 2,
			 NULL);
}

int web_reply_error(web_req *r, int status, const char *msg, const char *field)
{
	wbuf b = {0};
	const char *extra = NULL;
	char hdr[128];
	int rc;

	wbuf_puts(&b, "{\"error\":");
	wbuf_json_str(&b, msg);
	if (field) {
		wbuf_puts(&b, ",\"field\":");
		wbuf_json_str(&b, field);
	}
	wbuf_printf(&b, ",\"status\":%d}", status);
	if (status == 401 && r->srv && web_auth_basic_enabled(r->srv->auth)) {
		extra = "WWW-Authenticate: Basic realm=\"breakglass\", charset=\"UTF-8\"\r\n";
	} else if (status == 503 || status == 429) {
		snprintf(hdr, sizeof(hdr), "Retry-After: 1\r\n");
		extra = hdr;
	} else if (status == 405 && r->route >= 0) {
		snprintf(hdr, sizeof(hdr), "Allow: %s%s\r\n", web_routes[r->route].method,
			 strcmp(web_routes[r->route].method, "GET") == 0 && r->route != WEB_ROUTE_STREAM ? ", HEAD"
													 : "");
		extra = hdr;
	}
	rc = web_reply(r, status, "application/json", b.data ? b.data : "{}", b.data ? b.len : 2, extra);
	wbuf_free(&b);
	return rc;
}

void web_audit(web_req *r, const char *action, const char *target, const char *result, const char *detail)
{
	char d[1024];

	snprintf(d, sizeof(d), "from=%s%s%s", r->from, detail ? " " : "", detail ? detail : "");
	if (bg_audit_record(r->srv->audit, r->who[0] ? r->who : "-", action, target ? target : "", result, d) != BG_OK)
		web_log_event("audit-error", "%s", bg_error_last()->message);
}

/* ---- routing ------------------------------------------------------------ */

static int is_hex_id(const char *s, size_t n)
{
	size_t i;

	if (n != WEB_SESSION_ID_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int is_word(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

/* The rest of a path after /ui/{build}/: the characters of an asset's
 * name (cmake/embed_ui.cmake), never "..", never empty. The handler only
 * compares it with the compiled-in table. */
static int is_asset_path(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 72 || strstr(s, ".."))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_' || s[i] == '.' || s[i] == '/'))
			return 0;
	return 1;
}

/* Match `path` against a pattern with {id} (a session id), {path} (the
 * rest of the path: an asset's name) or another word ({verb}, {build}). */
static int match(const char *pattern, const char *path, char *param, size_t plen)
{
	const char *p = pattern, *s = path;

	while (*p && *s) {
		if (strcmp(p, "{path}") == 0) {
			size_t n = strlen(s);
			if (!is_asset_path(s, n) || n >= plen)
				return 0;
			memcpy(param, s, n + 1);
			return 1;
		}
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t n = strcspn(s, "/");
			int ok = strncmp(p, "{id}", 4) == 0 ? is_hex_id(s, n) : is_word(s, n);
			if (!pe || !ok || n >= plen)
				return 0;
			memcpy(param, s, n);
			param[n] = '\0';
			p = pe + 1;
			s += n;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

static int find_route(web_req *r, int *method_mismatch)
{
	int i, found = -1;

	*method_mismatch = 0;
	for (i = 0; i < WEB_ROUTE_COUNT; i++) {
		char param[80] = "";
		if (!match(web_routes[i].pattern, r->path, param, sizeof(param)))
			continue;
		/* HEAD is GET without the body (web_reply), on every GET route
		 * but the stream (which is never a plain answer). */
		if (strcmp(web_routes[i].method, r->method) != 0 &&
		    !(strcmp(r->method, "HEAD") == 0 && strcmp(web_routes[i].method, "GET") == 0 &&
		      i != WEB_ROUTE_STREAM)) {
			if (found < 0)
				found = i, *method_mismatch = 1;
			continue;
		}
		memcpy(r->param, param, sizeof(param));
		*method_mismatch = 0;
		return i;
	}
	return found;
}

/* ---- request safety ----------------------------------------------------- */

/* The host[:port] part of an origin URL. */
static const char *origin_host(const char *origin, size_t *n)
{
	const char *p = strstr(origin, "://");

	if (!p)
		return NULL;
	p += 3;
	*n = strcspn(p, "/");
	return p;
}

/* A browser's state change must come from the page itself. Clients that
 * are not browsers send neither header and are judged by their
 * credentials alone. */
static int same_origin(web_req *r, const char **why)
{
	const char *origin = web_header(r, "Origin");
	const char *site = web_header(r, "Sec-Fetch-Site");
	const char *host = web_header(r, "Host");
	const char *oh;
	size_t n;

	if (site && strcasecmp(site, "same-origin") != 0 && strcasecmp(site, "none") != 0) {
		*why = "cross-site request refused (Sec-Fetch-Site)";
		return 0;
	}
	if (origin) {
		oh = origin_host(origin, &n);
		if (!oh || !host || strlen(host) != n || strncasecmp(oh, host, n) != 0) {
			*why = "cross-origin request refused (Origin does not match Host)";
			return 0;
		}
	}
	return 1;
}

static int is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (!ct || strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Read the body, at most WEB_BODY_MAX bytes: 0, or the status to answer. */
static int read_body(web_req *r)
{
	const struct mg_request_info *ri = mg_get_request_info(r->conn);
	long long cl = ri->content_length;
	char *buf;
	size_t got = 0;
	int n, fd, slot = -1;

	if (cl > WEB_BODY_MAX)
		return 413; /* before a byte of it is read */
	buf = malloc(WEB_BODY_MAX + 2);
	if (!buf)
		return 500;
	/* mg_read() waits for all it is asked, each byte resetting its
	 * timeout: the streaming thread cuts a body that takes too long. */
	if (cl != 0 && (fd = web_conn_fd(ri)) >= 0)
		slot = web_stream_watch(r->srv->stream, fd, WEB_BODY_DEADLINE_MS);
	for (;;) {
		size_t want = WEB_BODY_MAX + 1 - got;
		if (want == 0)
			break;
		n = mg_read(r->conn, buf + got, want);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (cl >= 0 && (long long)got >= cl)
			break;
	}
	web_stream_unwatch(r->srv->stream, slot);
	if (got > WEB_BODY_MAX) {
		free(buf);
		return 413;
	}
	if ((cl >= 0 && (long long)got < cl) || ms_since(&r->t0) > WEB_BODY_DEADLINE_MS) {
		free(buf);
		return 408; /* cut short, or too slow */
	}
	r->body_complete = 1;
	buf[got] = '\0';
	r->body = buf;
	r->body_len = got;
	return 0;
}

/* CivetWeb reads away a body the handler left unread before it closes,
 * for as long as the client keeps sending: a slow body would hold the
 * worker. Shut the reading side instead: the answer has gone out. */
static void drop_unread_body(web_req *r, const struct mg_request_info *ri)
{
	int fd;

	if (r->body_complete || (ri->content_length <= 0 && !mg_get_header(r->conn, "Transfer-Encoding")))
		return;
	if ((fd = web_conn_fd(ri)) >= 0)
		shutdown(fd, SHUT_RD);
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
	web_server *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	web_req r;
	int mismatch = 0, st, budgeted = 0;
	const char *why;

	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &r.t0);
	r.srv = srv;
	r.conn = conn;
	r.method = ri->request_method;
	r.path = ri->local_uri ? ri->local_uri : ri->request_uri;
	r.query = ri->query_string;
	r.route = -1;
	snprintf(r.from, sizeof(r.from), "%s", ri->remote_addr);
	if (!r.path || !r.method) {
		web_reply_error(&r, 400, "malformed request line", NULL);
		goto out;
	}
	r.route = find_route(&r, &mismatch);
	if (r.route < 0) {
		web_reply_error(&r, 404, "no such route", NULL);
		goto out;
	}
	if (mismatch) {
		web_reply_error(&r, 405, "method not allowed on this route", NULL);
		goto out;
	}
	if (atomic_load(&srv->stopping)) {
		web_reply_error(&r, 503, "the server is stopping", NULL);
		goto out;
	}
	/* /health is never refused; attaching a stream is brief and has a
	 * budget of its own (max_streams), so a reconnect storm of browsers
	 * is not turned away by the request budget. */
	if (r.route != WEB_ROUTE_HEALTH && r.route != WEB_ROUTE_STREAM) {
		budgeted = 1;
		if (atomic_fetch_add(&srv->inflight, 1) >= srv->set.threads) {
			web_reply_error(&r, 503, "busy: every request worker is taken; retry in a moment", NULL);
			goto out;
		}
	}
	if (web_routes[r.route].auth && (st = web_auth_check(srv->auth, &r)) != 0) {
		web_reply_error(&r, st,
				st == 429 ? "too many failed logins from this address; slow down"
					  : "authentication required",
				NULL);
		goto out;
	}
	if (strcmp(r.method, "POST") == 0) {
		if (!same_origin(&r, &why)) {
			web_audit(&r, "csrf.refused", r.path, "denied", why);
			web_reply_error(&r, 403, why, NULL);
			goto out;
		}
		if (!is_json_type(web_header(&r, "Content-Type"))) {
			web_audit(&r, "csrf.refused", r.path, "denied", "content type is not application/json");
			web_reply_error(&r, 403, "a state change needs Content-Type: application/json", NULL);
			goto out;
		}
		if ((st = read_body(&r)) != 0) {
			web_reply_error(&r, st,
					st == 413   ? "request body over 64 KiB"
					: st == 408 ? "the request body came too slowly"
						    : "out of memory",
					NULL);
			goto out;
		}
	}
	web_routes[r.route].handler(&r);
out:
	drop_unread_body(&r, ri);
	if (budgeted)
		atomic_fetch_sub(&srv->inflight, 1);
	if (r.status == 0) /* a handler that forgot to answer is a bug: never hang */
		web_reply_error(&r, 500, "no answer", NULL);
	web_metrics_request(srv->metrics, r.route, r.status);
	web_log_request(&r);
	free(r.body);
	return r.status;
}

/* CivetWeb's own errors (malformed request, headers too large): the same
 * JSON shape and headers as ours. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
	web_server *srv = mg_get_user_data(mg_get_context(conn));
	const struct mg_request_info *ri = mg_get_request_info(conn);
	web_req r;

	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &r.t0);
	r.srv = srv;
	r.conn = conn;
	r.route = -1;
	r.method = ri && ri->request_method ? ri->request_method : NULL;
	r.path = ri ? ri->local_uri : NULL;
	snprintf(r.from, sizeof(r.from), "%s", ri ? ri->remote_addr : "-");
	if (status == 413) /* from CivetWeb only the request head can be too large */
		status = 431;
	web_reply_error(&r, status, status == 431 ? "request headers too large" : (msg && *msg ? msg : "bad request"),
			NULL);
	web_metrics_request(srv->metrics, -1, r.status);
	web_log_request(&r);
	return 0;
}

/* After every connection, its socket closed: the worker is back at the
 * top of its loop, so the deep frames of the request are dead (mem.c). */
static void on_connection_closed(const struct mg_connection *conn)
{
	(void)conn;
	web_mem_release_stack();
}

/* A worker, once started: its start-up (CivetWeb names the thread with a
 * printf) went deeper than it will go while it waits (apps/web/mem.c). */
static void *on_init_thread(const struct mg_context *ctx, int thread_type)
{
	(void)ctx;
	if (thread_type == 1)
		web_mem_release_stack();
	return NULL;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	web_log_event("civetweb", "%s", message);
	return 1;
}

int web_server_start(web_server *srv, char *err, size_t errlen)
{
	struct mg_callbacks cb;
	char ports[96], threads[16], backlog[16], queue[16];
	const char *options[32];
	int i = 0;

	snprintf(ports, sizeof(ports), "%s:%d", srv->set.listen_addr, srv->set.listen_port);
	/* Workers also sit with clients that are still sending their request
	 * head (up to request_timeout_ms): four per request slot. */
	snprintf(threads, sizeof(threads), "%d", 4 * srv->set.threads);
	snprintf(backlog, sizeof(backlog), "%d", 512);
	snprintf(queue, sizeof(queue), "%d", 4 * srv->set.threads);
	options[i++] = "listening_ports";
	options[i++] = ports;
	options[i++] = "num_threads";
	options[i++] = threads;
	options[i++] = "listen_backlog";
	options[i++] = backlog;
	options[i++] = "connection_queue";
	options[i++] = queue;
	options[i++] = "request_timeout_ms";
	options[i++] = "5000";
	options[i++] = "enable_keep_alive";
	options[i++] = "no";
	options[i++] = "keep_alive_timeout_ms";
	options[i++] = "500";
	options[i++] = "max_request_size";
	options[i++] = "16384";
	options[i++] = "tcp_nodelay";
	options[i++] = "1";
	options[i++] = "decode_url";
	options[i++] = "yes";
	options[i++] = "enable_directory_listing";
	options[i++] = "no";
	options[i++] = "allow_sendfile_call";
	options[i++] = "no";
	options[i++] = "linger_timeout_ms";
	options[i++] = "1000";
	options[i++] = NULL;

	memset(&cb, 0, sizeof(cb));
	cb.http_error = on_http_error;
	cb.log_message = on_log_message;
	cb.connection_closed = on_connection_closed;
	cb.init_thread = on_init_thread;
	mg_init_library(0);
	srv->mg = mg_start(&cb, srv, options);
	if (!srv->mg) {
		snprintf(err, errlen, "could not listen on %s (address in use, or not an address of this host?)",
			 ports);
		mg_exit_library();
		return -1;
	}
	mg_set_request_handler(srv->mg, "**", dispatch, srv);
	return 0;
}

int web_server_port(web_server *srv)
{
	struct mg_server_port p[4];
	int n;

	memset(p, 0, sizeof(p));
	n = mg_get_server_ports(srv->mg, 4, p);
	return n > 0 ? p[0].port : -1;
}

void web_server_stop(web_server *srv)
{
	if (srv->mg) {
		mg_stop(srv->mg);
		srv->mg = NULL;
		mg_exit_library();
	}
}
