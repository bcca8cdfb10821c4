#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_token_file(char *out, size_t n, const char *path)
{
	FILE *f = fopen(path, "re");
	size_t got;

	if (!f)
		return -1;
	got = fread(out, 1, n - 1, f);
	fclose(f);
	out[got] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int ctl_http_open(ctl_http *h, const char *url, char *err, size_t errlen)
{
	const char *p, *slash, *colon;
	const char *tok = getenv("BREAKGLASS_TOKEN"), *file = getenv("BREAKGLASS_TOKEN_FILE");
	size_t n;

	memset(h, 0, sizeof(*h));
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "--server %s: want http://HOST[:PORT] (TLS is the proxy's business)", url);
		return -1;
	}
	p = url + 7;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', n);
	if (n == 0 || (colon ? (size_t)(colon - p) : n) >= sizeof(h->host)) {
		snprintf(err, errlen, "--server %s: no host", url);
		return -1;
	}
	snprintf(h->host, sizeof(h->host), "%.*s", (int)(colon ? (size_t)(colon - p) : n), p);
	snprintf(h->port, sizeof(h->port), "%.*s", colon ? (int)(n - (size_t)(colon - p) - 1) : 2,
		 colon ? colon + 1 : "80");
	if (!h->port[0] || strspn(h->port, "0123456789") != strlen(h->port)) {
		snprintf(err, errlen, "--server %s: bad port", url);
		return -1;
	}
	snprintf(h->base, sizeof(h->base), "%s", slash ? slash : "");
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if (tok && *tok)
		snprintf(h->token, sizeof(h->token), "%s", tok);
	else if (file && *file && read_token_file(h->token, sizeof(h->token), file) != 0) {
		snprintf(err, errlen, "$BREAKGLASS_TOKEN_FILE %s: %s", file, strerror(errno));
		return -1;
	} else if (!h->token[0] && (tok = getenv("API_BEARER_TOKEN")) != NULL)
		snprintf(h->token, sizeof(h->token), "%s", tok);
	return 0;
}

/* Connect within the deadline; -1 with err. */
static int dial(const ctl_http *h, long long deadline, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(h->host, h->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", h->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		p.fd = fd;
		p.events = POLLOUT;
		if (errno == EINPROGRESS &&
		    poll(&p, 1, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0)) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			break;
		snprintf(err, errlen, "%s:%s: %s", h->host, h->port, soerr ? strerror(soerr) : "connection timed out");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = {fd, POLLOUT, 0};
			long long left = deadline - now_ms();
			if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

static int send_request(int fd, const ctl_http *h, const char *method, const char *path, const char *body,
			long long deadline)
{
	char head[2048];
	size_t blen = body ? strlen(body) : 0;
	int n;

	n = snprintf(head, sizeof(head),
		     "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: breakglassctl\r\nConnection: close\r\n"
		     "%s%s%s%s%s",
		     method, h->base, path, h->host, h->port, h->token[0] ? "Authorization: Bearer " : "", h->token,
		     h->token[0] ? "\r\n" : "", strcmp(method, "POST") == 0 ? "Content-Type: application/json\r\n" : "",
		     strcmp(method, "GET") == 0 ? "Accept: text/event-stream, application/json\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) - 64)
		return -1;
	if (strcmp(method, "POST") == 0)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", blen);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (send_all(fd, head, (size_t)n, deadline) != 0)
		return -1;
	return blen ? send_all(fd, body, blen, deadline) : 0;
}

/* Read into buf until `stop` returns non-zero, EOF, or the deadline:
 * 1 on EOF, 0 when stop says so, -1 on timeout or error. */
static int read_more(int fd, char **buf, size_t *len, size_t *cap, long long deadline)
{
	struct pollfd pf = {fd, POLLIN, 0};
	long long left = deadline - now_ms();
	ssize_t k;

	if (*cap - *len < 4096) {
		size_t ncap = *cap ? *cap * 2 : 16384;
		char *p = realloc(*buf, ncap + 1);
		if (!p)
			return -1;
		*buf = p;
		*cap = ncap;
	}
	if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
		return -1;
	k = recv(fd, *buf + *len, *cap - *len, 0);
	if (k < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (k == 0)
		return 1;
	*len += (size_t)k;
	(*buf)[*len] = '\0';
	return 0;
}

int ctl_http_request(const ctl_http *h, const char *method, const char *path, const char *body, int timeout_s,
		     int *status, char **resp, char *err, size_t errlen)
{
	long long deadline = now_ms() + (long long)timeout_s * 1000;
	char *buf = NULL, *sep;
	size_t len = 0, cap = 0;
	int fd, rc;

	*resp = NULL;
	*status = 0;
	if ((fd = dial(h, deadline, err, errlen)) < 0)
		return -1;
	if (send_request(fd, h, method, path, body, deadline) != 0) {
		snprintf(err, errlen, "%s:%s: sending the request failed", h->host, h->port);
		close(fd);
		return -1;
	}
	while ((rc = read_more(fd, &buf, &len, &cap, deadline)) == 0)
		;
	close(fd);
	if (rc < 0 || !buf || strncmp(buf, "HTTP/1.", 7) != 0 || !(sep = strstr(buf, "\r\n\r\n"))) {
		snprintf(err, errlen, "%s:%s: %s", h->host, h->port,
			 rc < 0 ? "no answer in time" : "not an HTTP answer");
		free(buf);
		return -1;
	}
	*status = (int)strtol(buf + 9, NULL, 10);
	memmove(buf, sep + 4, len - (size_t)(sep + 4 - buf) + 1);
	*resp = buf; /* Connection: close: the body runs to the end */
	return 0;
}

int ctl_sse_open(ctl_sse *s, const ctl_http *h, const char *path, int *status, char *err, size_t errlen)
{
	long long deadline = now_ms() + 15000;
	char *sep = NULL;
	size_t head;

	memset(s, 0, sizeof(*s));
	*status = 0;
	if ((s->fd = dial(h, deadline, err, errlen)) < 0)
		return -1;
	if (send_request(s->fd, h, "GET", path, NULL, deadline) != 0)
		goto fail;
	while (!(s->buf && (sep = strstr(s->buf, "\r\n\r\n"))))
		if (read_more(s->fd, &s->buf, &s->len, &s->cap, deadline) != 0)
			goto fail;
	*status = (int)strtol(s->buf + 9, NULL, 10);
	head = (size_t)(sep + 4 - s->buf);
	memmove(s->buf, sep + 4, s->len - head + 1);
	s->len -= head;
	return 0;
fail:
	snprintf(err, errlen, "%s:%s: the event stream did not open", h->host, h->port);
	ctl_sse_close(s);
	return -1;
}

int ctl_sse_next(ctl_sse *s, int timeout_ms, char **event, char **data, long long *id)
{
	long long deadline = now_ms() + timeout_ms;
	char *end, *line;
	int rc;

	*event = *data = NULL;
	*id = -1;
	for (;;) {
		if (s->buf && (end = strstr(s->buf, "\n\n")) != NULL) {
			size_t flen = (size_t)(end - s->buf) + 2;
			*end = '\0';
			for (line = s->buf; line && *line;) {
				char *nl = strchr(line, '\n');
				if (nl)
					*nl = '\0';
				if (strncmp(line, "data: ", 6) == 0 && !*data)
					*data = strdup(line + 6);
				else if (strncmp(line, "event: ", 7) == 0 && !*event)
					*event = strdup(line + 7);
				else if (strncmp(line, "id: ", 4) == 0)
					*id = strtoll(line + 4, NULL, 10);
				line = nl ? nl + 1 : NULL;
			}
			memmove(s->buf, s->buf + flen, s->len - flen + 1);
			s->len -= flen;
			if (!*data && !*event)
				continue; /* a comment or the retry: line */
			if (!*event)
				*event = strdup("");
			return 1;
		}
		rc = read_more(s->fd, &s->buf, &s->len, &s->cap, deadline);
		if (rc == 1)
			return -1;
		if (rc < 0)
			return now_ms() >= deadline ? 0 : -1;
	}
}

void ctl_sse_close(ctl_sse *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}
