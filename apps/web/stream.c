/*
 * SSE without a worker per client.
 *
 * CivetWeb gives each connection a worker thread for its whole life, so
 * attached streams would starve the requests. Here a stream's handler
 * only checks the request, then takes the connection over: it finds its
 * socket (the one whose local and peer addresses are the request's),
 * keeps a duplicate, and puts a dead socket under CivetWeb's descriptor
 * number, so that CivetWeb's close after the handler returns touches
 * nothing of the client. The worker is back in the pool within a
 * millisecond.
 *
 * One streaming thread owns every attached socket: non-blocking writes
 * from a per-client buffer, poll() for hang-ups, a `: keepalive` comment
 * every 15 s. One follower thread per followed session (not per client)
 * waits in bg_session_read() for new events and fills the buffers of that
 * session's clients from each client's own cursor (the id of the last
 * event it was given): replay and live tail are the same loop, and
 * nothing is lost or repeated at the boundary. For the clients that are up
 * to date (the common case) the follower formats the new events once and
 * writes them to each socket itself, without waiting (one thread hop less
 * per event); what a socket does not take at once waits in the client's
 * buffer for the streaming thread. A client's buffer holds at
 * most ~256 KiB; beyond that its cursor simply stays behind and the
 * buffer is refilled as it drains, so a slow reader costs bounded memory
 * and never slows a turn. A client that takes nothing for 60 s is dropped.
 */
#include "web.h"

#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define HIGH_WATER     (256 * 1024)
#define STALL_MS       60000
#define FOLLOW_WAIT_MS 250
#define STOP_FILL      (-1000)
#define WATCH_SLOTS    256

typedef struct sfollow sfollow;

typedef struct sclient {
	int fd;
	sfollow *f;
	long long cursor;
	int caught_up;
	int closing;
	wbuf out;
	long long last_progress;
	struct sclient *next;
} sclient;

struct sfollow {
	web_stream *st;
	bg_session *s;
	long long seen;
	int nclients;
	int dead;
	sfollow *next;
};

struct web_stream {
	web_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake[2];
	pthread_t thread;
	int started;
	sclient *clients;
	int nclients; /* attached plus reserved */
	sfollow *follows;
	int nfollowers;
	int stop;  /* followers and the streamer end */
	int final; /* shutdown: flush what is queued, then close */
	long long final_deadline;
	long long next_keepalive;
	struct {
		int fd;
		long long deadline;
	} watch[WATCH_SLOTS]; /* body reads with a deadline (fd -1: free) */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(web_stream *st)
{
	char c = 1;
	ssize_t n = write(st->wake[1], &c, 1);

	(void)n; /* a full pipe already wakes the thread */
}

static int frame(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	sclient *c = payload;

	(void)kind;
	wbuf_printf(&c->out, "id: %lld\ndata: ", id);
	wbuf_put(&c->out, json, len);
	wbuf_put(&c->out, "\n\n", 2);
	c->cursor = id;
	return c->out.len > HIGH_WATER ? STOP_FILL : 0;
}

/* The frames of new events, formatted once for every client that is at
 * the same cursor. */
typedef struct shared_frames {
	wbuf out;
	long long from, to; /* the events after `from`, up to `to` */
	int ok;
} shared_frames;

static int frame_shared(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	shared_frames *sh = payload;

	(void)kind;
	wbuf_printf(&sh->out, "id: %lld\ndata: ", id);
	wbuf_put(&sh->out, json, len);
	wbuf_put(&sh->out, "\n\n", 2);
	sh->to = id;
	return sh->out.len > HIGH_WATER ? STOP_FILL : 0;
}

/* Give `c` what follows its cursor, up to the high-water mark; the first
 * time it has everything, `event: caught-up`. Lock held. */
static void fill(sclient *c)
{
	int rc;

	if (c->closing || c->out.len > HIGH_WATER)
		return;
	rc = bg_session_read(c->f->s, c->cursor, 0, frame, c);
	if (rc == BG_ECANCELLED) {
		c->closing = 1;
	} else if (rc >= 0 && !c->caught_up) {
		c->caught_up = 1;
		wbuf_printf(&c->out, "event: caught-up\ndata: {\"last_id\":%lld}\n\n", c->cursor);
	}
	if (c->out.failed)
		c->closing = 1;
}

static void send_some(web_stream *st, sclient *c, long long now)
{
	ssize_t n;

	while (c->out.len > 0) {
		n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			wbuf_consume(&c->out, (size_t)n);
			c->last_progress = now;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->closing = 2; /* gone */
		return;
	}
	if (c->out.cap > 16384) /* a burst is over: give its memory back */
		wbuf_free(&c->out);
	(void)st;
}

static void *follower(void *arg)
{
	sfollow *f = arg;
	web_stream *st = f->st;
	sclient *c;
	shared_frames sh;
	long long seen;
	int rc, any, got;

	memset(&sh, 0, sizeof(sh));
	for (;;) {
		/* Wait for new events and format them, once, for the live
		 * clients, who are all at the last event seen (outside the
		 * lock: the formatting is what grows with the events). */
		sh.out.len = 0;
		sh.out.failed = 0;
		sh.from = sh.to = f->seen;
		rc = bg_session_read(f->s, f->seen, FOLLOW_WAIT_MS, frame_shared, &sh);
		got = (rc > 0 || rc == STOP_FILL) && sh.to > sh.from;
		sh.ok = got && !sh.out.failed;
		pthread_mutex_lock(&st->lock);
		any = 0;
		if (got) {
			long long now = now_ms();
			seen = sh.to;
			f->seen = seen;
			/* Give and write right here: the streaming thread is
			 * woken only for what a socket did not take at once. */
			for (c = st->clients; c; c = c->next) {
				if (c->f != f || c->cursor >= seen)
					continue;
				if (sh.ok && c->cursor == sh.from && c->caught_up && !c->closing && !c->out.len) {
					ssize_t n = st->final ? 0
							      : send(c->fd, sh.out.data, sh.out.len,
								     MSG_NOSIGNAL | MSG_DONTWAIT);
					if (n < 0 && errno != EAGAIN && errno != EINTR)
						c->closing = 2;
					else
						wbuf_put(&c->out, sh.out.data + (n > 0 ? n : 0),
							 sh.out.len - (size_t)(n > 0 ? n : 0));
					if (n > 0)
						c->last_progress = now;
					c->cursor = sh.to;
					if (c->out.failed)
						c->closing = 2;
				}
				if (c->cursor < seen) /* behind, or more than one buffer's worth */
					fill(c);
				if (!st->final && c->closing != 2 && c->out.len)
					send_some(st, c, now);
				if (c->out.len || c->closing)
					any = 1;
			}
			if (sh.out.cap > 16384)
				wbuf_free(&sh.out);
		}
		if (rc == BG_ECANCELLED || st->stop || f->nclients == 0) {
			sfollow **pp;
			for (pp = &st->follows; *pp; pp = &(*pp)->next)
				if (*pp == f) {
					*pp = f->next;
					break;
				}
			f->dead = 1;
			st->nfollowers--;
			pthread_cond_broadcast(&st->cond);
			pthread_mutex_unlock(&st->lock);
			bg_session_release(f->s);
			free(f);
			wbuf_free(&sh.out);
			return NULL;
		}
		pthread_mutex_unlock(&st->lock);
		if (any)
			wake(st);
	}
}

/* The follower of `s`, started when missing. Lock held. */
static sfollow *follow_get(web_stream *st, bg_session *s)
{
	sfollow *f;
	pthread_t t;
	pthread_attr_t attr;

	for (f = st->follows; f; f = f->next)
		if (strcmp(bg_session_id(f->s), bg_session_id(s)) == 0)
			return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->st = st;
	f->s = bg_session_ref(s);
	f->seen = bg_session_last_id(s);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, follower, f) != 0) {
		pthread_attr_destroy(&attr);
		bg_session_release(f->s);
		free(f);
		return NULL;
	}
	pthread_attr_destroy(&attr);
	f->next = st->follows;
	st->follows = f;
	st->nfollowers++;
	return f;
}

static void drop(web_stream *st, sclient *c)
{
	sclient **pp;

	for (pp = &st->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	close(c->fd);
	web_mem_note();
	c->f->nclients--;
	st->nclients--;
	wbuf_free(&c->out);
	free(c);
}

static void *streamer(void *arg)
{
	web_stream *st = arg;
	struct pollfd *pfd = NULL;
	sclient **who = NULL;
	size_t cap = 0;

	for (;;) {
		long long now = now_ms(), timeout;
		size_t n = 1, i;
		sclient *c;
		char junk[512];

		pthread_mutex_lock(&st->lock);
		if (st->final && (!st->clients || now >= st->final_deadline)) {
			while (st->clients)
				drop(st, st->clients);
			pthread_mutex_unlock(&st->lock);
			break;
		}
		if (!st->final && now >= st->next_keepalive) {
			for (c = st->clients; c; c = c->next)
				if (c->caught_up && c->out.len < HIGH_WATER)
					wbuf_puts(&c->out, ": keepalive\n\n");
			st->next_keepalive = now + st->srv->set.keepalive_ms;
		}
		for (size_t w = 0; w < WATCH_SLOTS; w++)
			if (st->watch[w].fd >= 0 && now >= st->watch[w].deadline) {
				shutdown(st->watch[w].fd, SHUT_RD); /* its mg_read() returns now */
				st->watch[w].fd = -1;
			}
		if ((size_t)st->nclients + 1 > cap) {
			size_t ncap = (size_t)st->nclients + 64;
			struct pollfd *np = realloc(pfd, ncap * sizeof(*pfd));
			sclient **nw = np ? realloc(who, ncap * sizeof(*who)) : NULL;
			if (np)
				pfd = np;
			if (nw) {
				who = nw;
				cap = ncap;
			}
		}
		pfd[0].fd = st->wake[0];
		pfd[0].events = POLLIN;
		for (c = st->clients; c && n < cap; c = c->next, n++) {
			pfd[n].fd = c->fd;
			pfd[n].events = POLLIN | POLLRDHUP | (c->out.len ? POLLOUT : 0);
			pfd[n].revents = 0;
			who[n] = c;
		}
		timeout = st->final ? 50 : st->next_keepalive - now;
		if (timeout > 1000)
			timeout = 1000;
		if (timeout < 0)
			timeout = 0;
		pthread_mutex_unlock(&st->lock);
		web_mem_idle_tick(now);

		if (poll(pfd, n, (int)timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			while (read(st->wake[0], junk, sizeof(junk)) > 0)
				;
		now = now_ms();
		pthread_mutex_lock(&st->lock);
		for (i = 1; i < n; i++) {
			c = who[i];
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) {
				c->closing = 2;
			} else if (pfd[i].revents & POLLIN) {
				ssize_t k = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
				if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
					c->closing = 2;
			}
			if (c->closing != 2 && c->out.len)
				send_some(st, c, now);
			if (c->closing != 2 && !c->closing && c->out.len < HIGH_WATER / 2 && c->cursor < c->f->seen)
				fill(c);
			if (c->closing != 2 && c->out.len && now - c->last_progress > STALL_MS)
				c->closing = 2;
			if (c->closing == 2 || (c->closing && c->out.len == 0))
				drop(st, c);
		}
		pthread_mutex_unlock(&st->lock);
	}
	free(pfd);
	free(who);
	return NULL;
}

int web_stream_new(web_stream **out, web_server *srv)
{
	web_stream *st = calloc(1, sizeof(*st));

	*out = NULL;
	if (!st)
		return -1;
	st->srv = srv;
	for (int i = 0; i < WATCH_SLOTS; i++)
		st->watch[i].fd = -1;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	if (pipe2(st->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(st);
		return -1;
	}
	st->next_keepalive = now_ms() + srv->set.keepalive_ms;
	if (pthread_create(&st->thread, NULL, streamer, st) != 0) {
		close(st->wake[0]);
		close(st->wake[1]);
		free(st);
		return -1;
	}
	st->started = 1;
	*out = st;
	return 0;
}

/* The descriptor of this request's connection: the TCP socket whose peer
 * is the request's remote address and port and whose local port is the
 * server's. Such a 4-tuple names one connection only. */
int web_conn_fd(const struct mg_request_info *ri)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	struct in_addr want;
	int found = -1;

	if (!d || inet_pton(AF_INET, ri->remote_addr, &want) != 1) {
		if (d)
			closedir(d);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_in peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end || e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (getpeername((int)fd, (struct sockaddr *)&peer, &pl) != 0 || peer.sin_family != AF_INET ||
		    peer.sin_addr.s_addr != want.s_addr || ntohs(peer.sin_port) != ri->remote_port)
			continue;
		if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0 ||
		    ntohs(local.sin_port) != ri->server_port)
			continue;
		found = (int)fd;
		break;
	}
	closedir(d);
	return found;
}

/* Keep the connection: our duplicate of it, and a dead socket in its
 * place for CivetWeb to shut down and close. */
static int take_over(struct mg_connection *conn)
{
	int fd = web_conn_fd(mg_get_request_info(conn));
	int mine, pair[2], one = 1;

	if (fd < 0)
		return -1;
	if ((mine = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		close(mine);
		return -1;
	}
	if (dup2(pair[0], fd) < 0) {
		close(pair[0]);
		close(pair[1]);
		close(mine);
		return -1;
	}
	close(pair[0]);
	close(pair[1]);
	fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) | O_NONBLOCK);
	setsockopt(mine, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return mine;
}

int web_stream_attach(web_stream *st, web_req *r, bg_session *session, long long after_id)
{
	sclient *c;
	int fd;

	pthread_mutex_lock(&st->lock);
	if (st->final || st->stop) {
		pthread_mutex_unlock(&st->lock);
		return web_reply_error(r, 503, "the server is stopping", NULL);
	}
	if (st->nclients >= r->srv->set.max_streams) {
		pthread_mutex_unlock(&st->lock);
		return web_reply_error(r, 503, "too many attached streams; retry later", NULL);
	}
	st->nclients++; /* reserved */
	pthread_mutex_unlock(&st->lock);

	c = calloc(1, sizeof(*c));
	fd = c ? take_over(r->conn) : -1;
	if (fd < 0) {
		pthread_mutex_lock(&st->lock);
		st->nclients--;
		pthread_mutex_unlock(&st->lock);
		free(c);
		return web_reply_error(r, 500, "could not take over the connection for streaming", NULL);
	}
	c->fd = fd;
	c->cursor = after_id;
	c->last_progress = now_ms();
	wbuf_puts(&c->out,
		  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
		  "Cache-Control: no-cache, no-store\r\nX-Accel-Buffering: no\r\n"
		  "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
		  "retry: 2000\n\n");
	pthread_mutex_lock(&st->lock);
	c->f = follow_get(st, session);
	if (!c->f) {
		st->nclients--;
		pthread_mutex_unlock(&st->lock);
		close(fd);
		wbuf_free(&c->out);
		free(c);
		r->status = 500;
		return 500;
	}
	c->f->nclients++;
	fill(c);
	c->next = st->clients;
	st->clients = c;
	pthread_mutex_unlock(&st->lock);
	wake(st);
	/* The answer went out on our own socket: log it as a 200 stream. */
	r->status = 200;
	r->bytes = 0;
	return 200;
}

int web_stream_watch(web_stream *st, int fd, int ms)
{
	int i;

	pthread_mutex_lock(&st->lock);
	for (i = 0; i < WATCH_SLOTS; i++)
		if (st->watch[i].fd < 0) {
			st->watch[i].fd = fd;
			st->watch[i].deadline = now_ms() + ms;
			break;
		}
	pthread_mutex_unlock(&st->lock);
	return i < WATCH_SLOTS ? i : -1;
}

void web_stream_unwatch(web_stream *st, int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&st->lock);
	st->watch[slot].fd = -1;
	pthread_mutex_unlock(&st->lock);
}

int web_stream_count(web_stream *st)
{
	int n = 0;
	sclient *c;

	pthread_mutex_lock(&st->lock);
	for (c = st->clients; c; c = c->next)
		n++;
	pthread_mutex_unlock(&st->lock);
	return n;
}

void web_stream_shutdown(web_stream *st, int ms)
{
	sclient *c;
	struct timespec until;

	if (!st || !st->started)
		return;
	pthread_mutex_lock(&st->lock);
	for (c = st->clients; c; c = c->next) {
		fill(c); /* the events of the turns just ended */
		wbuf_puts(&c->out, "event: shutdown\ndata: {\"reason\":\"the server is stopping\"}\n\n");
		c->closing = 1;
	}
	st->final = 1;
	st->final_deadline = now_ms() + ms;
	pthread_mutex_unlock(&st->lock);
	wake(st);
	pthread_join(st->thread, NULL);
	st->started = 0;
	pthread_mutex_lock(&st->lock);
	st->stop = 1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	while (st->nfollowers > 0)
		if (pthread_cond_timedwait(&st->cond, &st->lock, &until) != 0)
			break;
	pthread_mutex_unlock(&st->lock);
}

void web_stream_free(web_stream *st)
{
	if (!st)
		return;
	web_stream_shutdown(st, 0);
	if (st->nfollowers > 0) /* a follower still inside bg_session_read: leave it its memory */
		return;
	close(st->wake[0]);
	close(st->wake[1]);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st);
}
