/* The guest agent's channel (see qga.h): line-delimited JSON from an
 * untrusted guest, read under one deadline checked on every pass. */
#include "host/qga.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "host/wire.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A guest-agent reply is small; anything longer is hostile or broken. */
#define QGA_LINE_MAX 65536

typedef struct line_conn {
	int fd;
	bg_buf in;
	bg_deadline d;
} line_conn;

static int lc_wait(line_conn *c, short ev)
{
	struct pollfd p = {c->fd, ev, 0};

	for (;;) {
		int n = poll(&p, 1, bg_deadline_poll_ms(c->d));
		if (n > 0)
			return BG_OK;
		if (n == 0)
			return BG_ETIMEOUT;
		if (errno != EINTR)
			return BG_EIO;
	}
}

static int lc_connect(line_conn *c, const char *path)
{
	struct sockaddr_un a;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path))
		return bg_error_set(BG_EINVAL, "socket path too long: %s", path);
	memcpy(a.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return bg_error_set(BG_EIO, "socket: %s", strerror(errno));
	for (;;) {
		if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return BG_OK;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && !bg_deadline_expired(c->d)) {
			bg_sleep_ms(20);
			continue;
		}
		if (errno == ENOENT)
			return bg_error_set(BG_ENOTFOUND, "no guest agent socket %s (agent not configured?)", path);
		return bg_error_set(errno == EAGAIN ? BG_ETIMEOUT : BG_ECONNECT, "guest agent socket %s: %s", path,
				    strerror(errno));
	}
}

static int lc_send(line_conn *c, const char *line)
{
	size_t len = strlen(line);

	while (len) {
		ssize_t n = send(c->fd, line, len, MSG_NOSIGNAL);
		if (n > 0) {
			line += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			if (lc_wait(c, POLLOUT) != BG_OK)
				return bg_error_set(BG_ETIMEOUT, "guest agent: write timed out");
		} else if (!(n < 0 && errno == EINTR)) {
			return bg_error_set(BG_EIO, "guest agent: write: %s", strerror(errno));
		}
	}
	return BG_OK;
}

int bg_qga_take_message(bg_buf *in, json_object **msg)
{
	char *nl;

	*msg = NULL;
	while ((nl = in->data ? memchr(in->data, '\n', in->len) : NULL)) {
		size_t len = (size_t)(nl - in->data), skip = 0;
		while (skip < len && (unsigned char)in->data[skip] == 0xFF)
			skip++;
		*nl = '\0';
		*msg = json_tokener_parse(in->data + skip);
		memmove(in->data, nl + 1, in->len - len - 1);
		in->len -= len + 1;
		if (*msg)
			return 1;
	}
	return 0;
}

/* The next JSON line; the agent's 0xFF sync sentinel and garbage are
 * skipped (NULL parse results are retried). */
static int lc_recv(line_conn *c, json_object **msg)
{
	char chunk[4096];

	*msg = NULL;
	for (;;) {
		/* On every pass: a guest that keeps the channel full of lines
		 * (or of garbage) must not keep us here past the deadline. */
		if (bg_deadline_expired(c->d))
			return bg_error_set(BG_ETIMEOUT, "guest agent: no answer in time");
		if (bg_qga_take_message(&c->in, msg))
			return BG_OK;
		if (c->in.len > QGA_LINE_MAX)
			return bg_error_set(BG_EPROTO, "guest agent: an over-long line");
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n > 0) {
			if (bg_buf_append(&c->in, chunk, (size_t)n) != BG_OK)
				return BG_ENOMEM;
		} else if (n == 0) {
			return bg_error_set(BG_EPROTO, "guest agent: socket closed");
		} else if (errno == EAGAIN) {
			if (lc_wait(c, POLLIN) != BG_OK)
				return bg_error_set(BG_ETIMEOUT, "guest agent: no answer in time");
		} else if (errno != EINTR) {
			return bg_error_set(BG_EIO, "guest agent: read: %s", strerror(errno));
		}
	}
}

/* The guest's words from an error reply, escaped: they reach terminals,
 * logs and the page. */
static void agent_error_text(json_object *err, bg_buf *out)
{
	const char *d = bg_json_str(err, "desc", "?");

	(void)bg_buf_escape(out, d, strnlen(d, 512));
}

/* Connect, then guest-sync with a fresh id: replies left in the channel by
 * an earlier client are read and dropped until our id comes back, so one
 * is never taken for the answer to our request. */
static int lc_open_synced(line_conn *c, const char *path)
{
	long long sync_id = (long long)(bg_wall_ms() % 1000000000);
	json_object *msg = NULL;
	char req[128];
	int rc;

	rc = lc_connect(c, path);
	snprintf(req, sizeof(req), "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":%lld}}\n", sync_id);
	if (rc == BG_OK)
		rc = lc_send(c, req);
	while (rc == BG_OK) {
		rc = lc_recv(c, &msg);
		if (rc == BG_OK && bg_json_int(msg, "return", -1) == sync_id) {
			json_object_put(msg);
			break;
		}
		json_object_put(msg);
	}
	return rc;
}

/* One request; *reply is its answer, the next message carrying "return"
 * or "error" (anything else is skipped). */
static int lc_call(line_conn *c, const char *req, json_object **reply)
{
	int rc = lc_send(c, req);

	*reply = NULL;
	while (rc == BG_OK) {
		json_object *msg = NULL;
		rc = lc_recv(c, &msg);
		if (rc != BG_OK)
			break;
		if (bg_json_obj(msg, "error") || json_object_object_get_ex(msg, "return", NULL)) {
			*reply = msg;
			return BG_OK;
		}
		json_object_put(msg);
	}
	return rc;
}

static void lc_close(line_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	bg_buf_free(&c->in);
}

int bg_qga_ping(const char *path, int timeout_ms)
{
	line_conn c = {-1, BG_BUF_INIT, bg_deadline_in(timeout_ms)};
	json_object *reply = NULL, *err;
	int rc;

	rc = lc_open_synced(&c, path);
	if (rc == BG_OK)
		rc = lc_call(&c, "{\"execute\":\"guest-ping\"}\n", &reply);
	if (rc == BG_OK && (err = bg_json_obj(reply, "error"))) {
		bg_buf desc = BG_BUF_INIT;
		agent_error_text(err, &desc);
		rc = bg_error_set(BG_EPROTO, "guest agent: guest-ping failed: %s", desc.data ? desc.data : "");
		bg_buf_free(&desc);
	}
	json_object_put(reply);
	lc_close(&c);
	if (rc == BG_ETIMEOUT)
		bg_error_set(BG_ETIMEOUT, "guest agent did not answer guest-ping within %d ms", timeout_ms);
	return rc;
}

int bg_qga_exec_error_is_resource(const char *desc)
{
	/* glib's g_spawn says "Failed to fork (…)" or "Failed to fork child
	 * process (…)"; the errno texts are EAGAIN's (pids or threads
	 * exhausted) and ENOMEM's. Anything else (no /bin/true, as on a
	 * Windows guest; exec refused) says nothing about the guest's health. */
	static const char *const signs[] = {"failed to fork", "resource temporarily unavailable",
					    "cannot allocate memory"};
	size_t i;

	if (!desc)
		return 0;
	for (i = 0; i < sizeof(signs) / sizeof(signs[0]); i++)
		if (strcasestr(desc, signs[i]))
			return 1;
	return 0;
}

/* The probe's program: fixed, no arguments, no input or output, no effect. */
#define EXEC_PROBE_PATH     "/bin/true"
#define EXEC_STATUS_POLL_MS 50

int bg_qga_exec_probe(const char *path, int timeout_ms, bg_buf *why)
{
	line_conn c = {-1, BG_BUF_INIT, bg_deadline_in(timeout_ms)};
	int64_t t0 = bg_now_ms();
	json_object *reply = NULL, *err;
	long long pid = -1;
	int rc;

	rc = lc_open_synced(&c, path);
	if (rc == BG_OK)
		rc = lc_call(&c,
			     "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"" EXEC_PROBE_PATH
			     "\",\"capture-output\":false}}\n",
			     &reply);
	if (rc != BG_OK) {
		bg_buf_printf(why, "guest-exec " EXEC_PROBE_PATH ": no answer: %s", bg_error_last()->message);
		goto out;
	}
	if ((err = bg_json_obj(reply, "error"))) {
		bg_buf desc = BG_BUF_INIT;
		agent_error_text(err, &desc);
		if (bg_qga_exec_error_is_resource(desc.data)) {
			bg_buf_printf(why, "the guest could not start " EXEC_PROBE_PATH ": %s", desc.data);
			rc = BG_EFAILED;
		} else {
			/* CommandNotFound: guest-exec disabled (--block-rpcs) or absent */
			bg_buf_printf(why, "guest-exec " EXEC_PROBE_PATH " refused (%s): %s",
				      bg_json_str(err, "class", "?"), desc.data ? desc.data : "");
			rc = BG_EUNSUPPORTED;
		}
		bg_buf_free(&desc);
		goto out;
	}
	pid = bg_json_int(bg_json_obj(reply, "return"), "pid", -1);
	if (pid <= 0) {
		bg_buf_printf(why, "guest-exec " EXEC_PROBE_PATH ": a reply without a pid");
		rc = BG_EPROTO;
		goto out;
	}
	/* Started: the guest can fork. Ask until it has exited, so that the
	 * agent drops its record of the process (it keeps one until then). */
	for (;;) {
		char req[160];
		json_object *st;
		json_object_put(reply);
		reply = NULL;
		snprintf(req, sizeof(req), "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%lld}}\n", pid);
		if (lc_call(&c, req, &reply) != BG_OK || !(st = bg_json_obj(reply, "return"))) {
			bg_buf_printf(why, "started (pid %lld); its status unread", pid);
			break;
		}
		if (bg_json_bool(st, "exited", 0)) {
			bg_buf_printf(why, "started and exited %lld (pid %lld) in %lld ms",
				      (long long)bg_json_int(st, "exitcode", -1), pid, (long long)(bg_now_ms() - t0));
			break;
		}
		if (bg_deadline_left(c.d) < EXEC_STATUS_POLL_MS) {
			bg_buf_printf(why, "started (pid %lld), still running at the deadline", pid);
			break;
		}
		bg_sleep_ms(EXEC_STATUS_POLL_MS);
	}
	rc = BG_OK;
out:
	json_object_put(reply);
	lc_close(&c);
	return rc;
}
