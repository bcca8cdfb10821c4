/* A QMP client that never blocks past its deadline: the socket is
 * non-blocking and every read and write waits in poll(). A QEMU whose main
 * loop is hung still accepts connections (the kernel's backlog does) but
 * never greets: that must come back as BG_ETIMEOUT, quickly. */
#include "host/qmp.h"
#include "host/wire.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* query-block of a VM with many disks is a few tens of KiB. */
#define QMP_LINE_MAX (4 * 1024 * 1024)

struct bg_qmp {
	int fd;
	char *path;
	bg_buf in; /* bytes read but not yet consumed as lines */
	unsigned next_id;
};

static int wait_fd(bg_qmp *q, short events, bg_deadline d, const char *doing)
{
	struct pollfd p = {q->fd, events, 0};

	for (;;) {
		int n = poll(&p, 1, bg_deadline_poll_ms(d));
		if (n > 0)
			return BG_OK;
		if (n == 0)
			return bg_error_set(BG_ETIMEOUT, "QMP %s: no answer from %s in time", doing, q->path);
		if (errno != EINTR)
			return bg_error_set(BG_EIO, "QMP %s: poll: %s", doing, strerror(errno));
	}
}

static int send_all(bg_qmp *q, const char *data, size_t len, bg_deadline d, const char *doing)
{
	while (len) {
		ssize_t n = send(q->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int rc = wait_fd(q, POLLOUT, d, doing);
			if (rc != BG_OK)
				return rc;
			continue;
		}
		return bg_error_set(BG_EIO, "QMP %s: write to %s: %s", doing, q->path, strerror(errno));
	}
	return BG_OK;
}

int bg_qmp_take_message(bg_buf *in, json_object **msg)
{
	char *nl = in->data ? memchr(in->data, '\n', in->len) : NULL;
	size_t len;

	*msg = NULL;
	if (!nl)
		return BG_OK;
	len = (size_t)(nl - in->data);
	*msg = bg_json_parse(in->data, len, "QMP message");
	memmove(in->data, nl + 1, in->len - len - 1);
	in->len -= len + 1;
	in->data[in->len] = '\0';
	return *msg ? BG_OK : bg_error_last()->code;
}

int bg_qmp_reply(json_object *msg, const char *id, const char *command, json_object **ret)
{
	json_object *err, *r = NULL;

	if (json_object_object_get_ex(msg, "event", NULL) || strcmp(bg_json_str(msg, "id", ""), id) != 0)
		return BG_ENOTFOUND; /* events and stray replies */
	err = bg_json_obj(msg, "error");
	if (err) {
		/* QEMU's text (it may quote the guest) is escaped before it can
		 * reach a log line or a terminal */
		bg_buf cls = BG_BUF_INIT, desc = BG_BUF_INIT;
		const char *cs = bg_json_str(err, "class", "GenericError");
		const char *ds = bg_json_str(err, "desc", "(no description)");
		int rc;

		(void)bg_buf_escape(&cls, cs, strnlen(cs, 128));
		(void)bg_buf_escape(&desc, ds, strnlen(ds, 1024));
		rc = bg_error_set(BG_EPROTO, "QMP %s failed: %s: %s", command, cls.data ? cls.data : "",
				  desc.data ? desc.data : "");
		bg_buf_free(&cls);
		bg_buf_free(&desc);
		return rc;
	}
	if (!json_object_object_get_ex(msg, "return", &r))
		return bg_error_set(BG_EPROTO, "QMP %s: a reply with neither return nor error", command);
	if (ret)
		*ret = json_object_get(r);
	return BG_OK;
}

/* The next line (without '\n'), parsed; the caller puts it. */
static int read_message(bg_qmp *q, bg_deadline d, const char *doing, json_object **msg)
{
	char chunk[8192];

	for (;;) {
		if (bg_qmp_take_message(&q->in, msg) != BG_OK)
			return bg_error_prefix("QMP %s: ", doing);
		if (*msg)
			return BG_OK;
		if (q->in.len > QMP_LINE_MAX)
			return bg_error_set(BG_ETOOBIG, "QMP %s: a message over %d bytes from %s", doing, QMP_LINE_MAX,
					    q->path);
		/* On every pass, not only when nothing is waiting: a peer
		 * that keeps the socket full must not keep us here. */
		if (bg_deadline_expired(d))
			return bg_error_set(BG_ETIMEOUT, "QMP %s: no complete answer from %s in time", doing, q->path);
		ssize_t n = recv(q->fd, chunk, sizeof(chunk), 0);
		if (n > 0) {
			if (bg_buf_append(&q->in, chunk, (size_t)n) != BG_OK)
				return BG_ENOMEM;
			continue;
		}
		if (n == 0)
			return bg_error_set(BG_EPROTO,
					    "QMP %s: %s closed the connection (QEMU exiting, or another "
					    "client holds the monitor)",
					    doing, q->path);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return bg_error_set(BG_EIO, "QMP %s: read from %s: %s", doing, q->path, strerror(errno));
		int rc = wait_fd(q, POLLIN, d, doing);
		if (rc != BG_OK)
			return rc;
	}
}

static int open_socket(bg_qmp *q, bg_deadline d)
{
	struct sockaddr_un addr;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(q->path) >= sizeof(addr.sun_path))
		return bg_error_set(BG_EINVAL, "QMP socket path too long: %s", q->path);
	memcpy(addr.sun_path, q->path, strlen(q->path));
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return bg_error_set(BG_EIO, "QMP: socket: %s", strerror(errno));
	for (;;) {
		if (connect(q->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return BG_OK;
		if (errno == EINTR)
			continue;
		/* A unix socket says EAGAIN when the backlog is full: wait a
		 * little for the other client to go, within the deadline. */
		if (errno == EAGAIN && !bg_deadline_expired(d)) {
			bg_sleep_ms(20);
			continue;
		}
		if (errno == EAGAIN)
			return bg_error_set(BG_ETIMEOUT, "QMP: %s accepts no more connections (backlog full)", q->path);
		if (errno == ENOENT)
			return bg_error_set(BG_ENOTFOUND, "QMP: no socket %s: the VM is not running", q->path);
		if (errno == ECONNREFUSED)
			return bg_error_set(BG_ECONNECT, "QMP: %s refuses connections: no QEMU listens (stale socket)",
					    q->path);
		return bg_error_set(BG_ECONNECT, "QMP: connect to %s: %s", q->path, strerror(errno));
	}
}

/* Send one command and wait for the reply with the same id. */
static int transact(bg_qmp *q, const char *command, json_object *arguments, bg_deadline d, json_object **ret)
{
	json_object *req = json_object_new_object(), *msg = NULL;
	char id[32], *line;
	int rc;

	if (!req)
		return bg_error_oom();
	snprintf(id, sizeof(id), "bg-%u", ++q->next_id);
	json_object_object_add(req, "execute", json_object_new_string(command));
	if (arguments)
		json_object_object_add(req, "arguments", json_object_get(arguments));
	json_object_object_add(req, "id", json_object_new_string(id));
	line = bg_json_dump(req);
	json_object_put(req);
	if (!line)
		return bg_error_oom();
	{
		bg_buf b = BG_BUF_INIT;
		rc = bg_buf_puts(&b, line);
		if (rc == BG_OK)
			rc = bg_buf_putc(&b, '\n');
		free(line);
		if (rc == BG_OK)
			rc = send_all(q, b.data, b.len, d, command);
		bg_buf_free(&b);
	}
	while (rc == BG_OK) {
		rc = read_message(q, d, command, &msg);
		if (rc != BG_OK)
			break;
		rc = bg_qmp_reply(msg, id, command, ret);
		json_object_put(msg);
		msg = NULL;
		if (rc == BG_ENOTFOUND) {
			rc = BG_OK; /* an event or a stray reply: wait on */
			/* a flood of events is no answer: the deadline holds */
			if (bg_deadline_expired(d))
				rc = bg_error_set(BG_ETIMEOUT, "QMP %s: only events and stray replies from %s in time",
						  command, q->path);
			continue;
		}
		break;
	}
	return rc;
}

int bg_qmp_connect(bg_qmp **out, const char *socket_path, int timeout_ms)
{
	bg_deadline d = bg_deadline_in(timeout_ms);
	json_object *greeting = NULL;
	bg_qmp *q;
	int rc;

	if (!out || !socket_path)
		return bg_error_set(BG_EINVAL, "bg_qmp_connect: no socket path");
	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q || !(q->path = strdup(socket_path))) {
		free(q);
		return bg_error_oom();
	}
	q->fd = -1;
	rc = open_socket(q, d);
	if (rc == BG_OK) {
		rc = read_message(q, d, "greeting", &greeting);
		if (rc == BG_ETIMEOUT)
			rc = bg_error_set(BG_ETIMEOUT,
					  "QMP: %s accepted the connection but sent no greeting within %d ms: the "
					  "QEMU main loop is not answering (hung or stopped)",
					  socket_path, timeout_ms);
	}
	if (rc == BG_OK && !json_object_object_get_ex(greeting, "QMP", NULL))
		rc = bg_error_set(BG_EPROTO, "QMP: %s did not greet with {\"QMP\": …}: not a QMP monitor?",
				  socket_path);
	json_object_put(greeting);
	if (rc == BG_OK) {
		rc = transact(q, "qmp_capabilities", NULL, d, NULL);
		if (rc == BG_ETIMEOUT)
			rc = bg_error_set(BG_ETIMEOUT,
					  "QMP: %s greeted but did not answer qmp_capabilities within %d ms: the QEMU "
					  "main loop is not answering (hung or stopped)",
					  socket_path, timeout_ms);
	}
	if (rc != BG_OK) {
		bg_qmp_close(q);
		return rc;
	}
	*out = q;
	return BG_OK;
}

int bg_qmp_execute(bg_qmp *q, const char *command, json_object *arguments, int timeout_ms, json_object **ret)
{
	if (ret)
		*ret = NULL;
	if (!q || !command)
		return bg_error_set(BG_EINVAL, "bg_qmp_execute: no connection or command");
	if (q->fd < 0)
		return bg_error_set(BG_ESTATE, "QMP %s: the connection to %s is closed", command, q->path);
	return transact(q, command, arguments, bg_deadline_in(timeout_ms), ret);
}

void bg_qmp_close(bg_qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	bg_buf_free(&q->in);
	free(q->path);
	free(q);
}

int bg_qmp_command(const char *socket_path, const char *command, json_object *arguments, int timeout_ms,
		   json_object **ret)
{
	bg_deadline d = bg_deadline_in(timeout_ms);
	bg_qmp *q = NULL;
	int rc;

	if (ret)
		*ret = NULL;
	rc = bg_qmp_connect(&q, socket_path, timeout_ms);
	if (rc != BG_OK)
		return rc;
	rc = bg_qmp_execute(q, command, arguments, (int)bg_deadline_left(d), ret);
	bg_qmp_close(q);
	return rc;
}
