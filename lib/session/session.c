/*
 * Sessions: an append-only event log per session, a JSONL file behind it,
 * and readers that pull by id.
 *
 * Why a pull model: the turn appends under a short per-session lock and
 * broadcasts; each reader owns its cursor (the last id it saw) and copies
 * what follows under the same lock. Nothing is queued per reader, so a
 * reader that stops reading costs nothing and cannot block the writer, and
 * the replay and the live tail are the same operation, so no event can be
 * lost or seen twice where one ends and the other begins. Events are
 * immutable once appended and live as long as the session, which is what
 * makes handing them out without a lock safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/futil.h"
#include "core/json.h"
#include "core/log.h"
#include "session/session_internal.h"

#define ID_HEX      32
#define TITLE_MAX   80
#define DEFAULT_MAX 64
/* A session log bigger than this is refused at load rather than read. */
#define SESSION_FILE_CAP (256u * 1024 * 1024)

static const char *const kind_names[BG_EVENT_KIND_COUNT] = {
	[BG_EVENT_USER] = "user",
	[BG_EVENT_TEXT] = "text",
	[BG_EVENT_TOOL] = "tool",
	[BG_EVENT_TOOL_RESULT] = "tool_result",
	[BG_EVENT_APPROVAL_REQUIRED] = "approval_required",
	[BG_EVENT_APPROVAL] = "approval",
	[BG_EVENT_ERROR] = "error",
	[BG_EVENT_CANCELLED] = "cancelled",
	[BG_EVENT_TURN_END] = "turn_end",
};

typedef struct ev {
	long long id;
	bg_event_kind kind;
	size_t len;
	char line[]; /* the event as one JSON line, NUL-terminated */
} ev;

struct bg_session {
	char id[ID_HEX + 1];
	atomic_int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ev **evs;
	size_t n, cap;
	int busy, closed, write_failed;
	int fd; /* -1: memory only */
	char *path;
	int64_t created_ms, updated_ms;
	uint64_t seq; /* order of arrival in the store: breaks ties of the ms clock */
	char *title;
};

struct bg_session_store {
	char *dir;
	int max;
	pthread_mutex_t mu;
	bg_session **list;
	size_t n, cap;
	uint64_t pushed; /* sessions ever added: the next one's seq */
};

const char *bg_event_kind_name(bg_event_kind kind)
{
	if ((int)kind < 0 || kind >= BG_EVENT_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

int bg_event_kind_from_name(const char *name)
{
	int k;

	for (k = 0; name && k < BG_EVENT_KIND_COUNT; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

json_object *bg_event_new(bg_event_kind kind)
{
	json_object *o = json_object_new_object();

	if (o && bg_json_add_str(o, "kind", bg_event_kind_name(kind)) != BG_OK) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int bg_event_field(char **out, const char *json, size_t len, const char *path)
{
	json_object *root, *o;
	char key[128];
	const char *p = path;
	int rc = BG_OK;

	*out = NULL;
	root = json ? bg_json_parse(json, len, "event") : NULL;
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return bg_error_set(BG_EINVAL, "event: not a JSON object");
	}
	for (o = root; o && p && *p;) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)(n < sizeof(key) - 1 ? n : sizeof(key) - 1), p);
		o = json_object_is_type(o, json_type_object) ? json_object_object_get(o, key) : NULL;
		p = p[n] ? p + n + 1 : NULL;
	}
	if (!o)
		rc = bg_error_set(BG_ENOTFOUND, "event: no field \"%s\"", path);
	else if (json_object_is_type(o, json_type_string))
		*out = strdup(json_object_get_string(o));
	else
		*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (rc == BG_OK && !*out)
		rc = bg_error_oom();
	json_object_put(root);
	return rc;
}

/* ---- one session -------------------------------------------------------- */

static int valid_id(const char *id)
{
	size_t i;

	for (i = 0; i < ID_HEX; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[ID_HEX] == '\0';
}

static bg_session *session_alloc(const char *id)
{
	bg_session *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s)
		return NULL;
	memcpy(s->id, id, ID_HEX + 1);
	atomic_init(&s->refs, 1);
	s->fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	return s;
}

static void session_destroy(bg_session *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->evs[i]);
	free(s->evs);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s->title);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

bg_session *bg_session_ref(bg_session *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

void bg_session_release(bg_session *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		session_destroy(s);
}

const char *bg_session_id(const bg_session *s)
{
	return s->id;
}

long long bg_session_last_id(bg_session *s)
{
	long long last;

	pthread_mutex_lock(&s->mu);
	last = (long long)s->n - 1;
	pthread_mutex_unlock(&s->mu);
	return last;
}

int bg_session_turn_begin(bg_session *s)
{
	int rc = BG_OK;

	pthread_mutex_lock(&s->mu);
	if (s->closed)
		rc = bg_error_set(BG_ECANCELLED, "session %s: closed", s->id);
	else if (s->busy)
		rc = bg_error_set(BG_ESTATE, "session %s: a turn is already running; wait for it or cancel it", s->id);
	else
		s->busy = 1;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void bg_session_turn_end(bg_session *s)
{
	pthread_mutex_lock(&s->mu);
	s->busy = 0;
	pthread_mutex_unlock(&s->mu);
}

int bg_session_busy(bg_session *s)
{
	int busy;

	pthread_mutex_lock(&s->mu);
	busy = s->busy;
	pthread_mutex_unlock(&s->mu);
	return busy;
}

static void note_title(bg_session *s, json_object *o, bg_event_kind kind)
{
	const char *text;
	size_t len;

	if (kind != BG_EVENT_USER || s->title)
		return;
	text = bg_json_str(o, "text", "");
	len = strnlen(text, TITLE_MAX);
	s->title = strndup(text, len);
}

/* Append to the in-memory log; the lock is held. Takes `e`. */
static int push_event(bg_session *s, ev *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		ev **evs = realloc(s->evs, cap * sizeof(*evs));

		if (!evs) {
			free(e);
			return bg_error_oom();
		}
		s->evs = evs;
		s->cap = cap;
	}
	s->evs[s->n++] = e;
	return BG_OK;
}

static ev *ev_new(long long id, bg_event_kind kind, const char *line, size_t len)
{
	ev *e = malloc(sizeof(*e) + len + 1);

	if (!e)
		return NULL;
	e->id = id;
	e->kind = kind;
	e->len = len;
	memcpy(e->line, line, len);
	e->line[len] = '\0';
	return e;
}

/* The file is best effort: a full disk must not stop a recovery, so the
 * event is kept in memory and the failure logged once. */
static void persist(bg_session *s, const ev *e)
{
	/* One write(2) per event with O_APPEND: a crash leaves at most a torn
	 * last line, which the loader cuts off. */
	if (s->fd < 0 || bg_append_line(s->fd, e->line, e->len) == BG_OK)
		return;
	if (!s->write_failed)
		bg_warn("session", "session %s: %s: %s; events are kept in memory only", s->id, s->path,
			bg_error_last()->message);
	s->write_failed = 1;
}

int bg_session_emit(long long *id_out, bg_session *s, json_object *o)
{
	const char *kname = bg_json_str(o, "kind", "");
	int kind = bg_event_kind_from_name(kname);
	const char *line;
	size_t len;
	ev *e;
	int rc;

	if (kind < 0)
		return bg_error_set(BG_EINVAL, "event kind \"%s\" is not one of the session event kinds", kname);
	pthread_mutex_lock(&s->mu);
	if (s->closed) {
		pthread_mutex_unlock(&s->mu);
		return bg_error_set(BG_ECANCELLED, "session %s: closed", s->id);
	}
	s->updated_ms = bg_wall_ms();
	if (!s->created_ms)
		s->created_ms = s->updated_ms;
	json_object_object_add(o, "id", json_object_new_int64((int64_t)s->n));
	json_object_object_add(o, "ts", json_object_new_int64(s->updated_ms));
	line = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	e = line ? ev_new((long long)s->n, (bg_event_kind)kind, line, len) : NULL;
	rc = e ? push_event(s, e) : bg_error_oom();
	if (rc == BG_OK) {
		persist(s, e);
		note_title(s, o, (bg_event_kind)kind);
		/* turn_end and the end of the busy state are one step: whoever
		 * reads turn_end may start the next turn at once. */
		if (kind == BG_EVENT_TURN_END)
			s->busy = 0;
		if (id_out)
			*id_out = e->id;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int bg_session_append(long long *id_out, bg_session *s, const char *event_json)
{
	json_object *o;
	int rc;

	if (!s || !event_json)
		return bg_error_set(BG_EINVAL, "bg_session_append: NULL argument");
	o = bg_json_parse(event_json, strlen(event_json), "event");
	if (!o)
		return bg_error_set(BG_EINVAL, "%s", bg_error_last()->message);
	if (!json_object_is_type(o, json_type_object))
		rc = bg_error_set(BG_EINVAL, "event: a JSON object was expected");
	else
		rc = bg_session_emit(id_out, s, o);
	json_object_put(o);
	return rc;
}

static void deadline_ts(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait (lock held) until an event past `after` exists, the session closes
 * or the time is up. */
static void wait_for_news(bg_session *s, long long after, int timeout_ms)
{
	struct timespec ts;

	if (timeout_ms == 0)
		return;
	if (timeout_ms > 0)
		deadline_ts(&ts, timeout_ms);
	while ((long long)s->n <= after + 1 && !s->closed) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cv, &s->mu);
		else if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
}

int bg_session_read(bg_session *s, long long after_id, int timeout_ms, bg_session_event_fn fn, void *payload)
{
	ev **batch = NULL;
	size_t i, count = 0, from;
	int rc = 0;

	if (!s || !fn)
		return bg_error_set(BG_EINVAL, "bg_session_read: NULL argument");
	if (after_id < -1)
		after_id = -1;
	pthread_mutex_lock(&s->mu);
	wait_for_news(s, after_id, timeout_ms);
	from = (size_t)(after_id + 1);
	if (s->n > from) {
		count = s->n - from;
		batch = malloc(count * sizeof(*batch));
		if (batch)
			memcpy(batch, s->evs + from, count * sizeof(*batch));
	} else if (s->closed) {
		rc = bg_error_set(BG_ECANCELLED, "session %s: closed", s->id);
	}
	pthread_mutex_unlock(&s->mu);
	if (count && !batch)
		return bg_error_oom();
	for (i = 0; i < count && rc >= 0; i++) {
		int r = fn(batch[i]->id, batch[i]->kind, batch[i]->line, batch[i]->len, payload);

		if (r < 0)
			rc = r;
		else
			rc = (int)(i + 1);
	}
	free(batch);
	return rc;
}

static void session_close(bg_session *s, int remove_file)
{
	pthread_mutex_lock(&s->mu);
	s->closed = 1;
	if (remove_file && s->path)
		unlink(s->path);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- loading a file ----------------------------------------------------- */

static int load_line(bg_session *s, const char *line, size_t len)
{
	json_object *o = bg_json_parse(line, len, "session event");
	int kind = o ? bg_event_kind_from_name(bg_json_str(o, "kind", "")) : -1;
	int64_t id = o ? bg_json_int(o, "id", -1) : -1;
	ev *e;
	int rc = BG_OK;

	if (kind < 0 || id != (int64_t)s->n) {
		bg_warn("session", "session %s: event line %zu is damaged; skipped", s->id, s->n + 1);
	} else {
		int64_t ts = bg_json_int(o, "ts", 0);

		e = ev_new(id, (bg_event_kind)kind, line, len);
		rc = e ? push_event(s, e) : bg_error_oom();
		if (ts && !s->created_ms)
			s->created_ms = ts;
		if (ts)
			s->updated_ms = ts;
		note_title(s, o, (bg_event_kind)kind);
	}
	json_object_put(o);
	return rc;
}

/* Lines up to the last newline are events; bytes after it are what a
 * crash left of a write: cut them off so the next append starts clean. */
static int load_events(bg_session *s, const bg_buf *b)
{
	size_t off = 0;
	int rc = BG_OK;

	while (rc == BG_OK && off < b->len) {
		const char *nl = memchr(b->data + off, '\n', b->len - off);

		if (!nl) {
			bg_warn("session", "session %s: torn last line (%zu bytes) cut off", s->id, b->len - off);
			if (ftruncate(s->fd, (off_t)off) != 0)
				return bg_error_set(BG_EIO, "%s: cannot cut the torn last line: %s", s->path,
						    strerror(errno));
			break;
		}
		if (nl > b->data + off)
			rc = load_line(s, b->data + off, (size_t)(nl - (b->data + off)));
		off = (size_t)(nl - b->data) + 1;
	}
	return rc;
}

/* A log that stops in the middle of a turn (the process died with it):
 * close the turn, so no front end waits for an end that will not come. */
static void close_interrupted_turn(bg_session *s)
{
	int64_t active = s->updated_ms; /* the restart is not activity */
	json_object *o;

	if (s->n == 0 || s->evs[s->n - 1]->kind == BG_EVENT_TURN_END)
		return;
	bg_warn("session", "session %s: its last turn was interrupted; closing it", s->id);
	o = bg_event_new(BG_EVENT_ERROR);
	bg_json_add_str(o, "error", "this turn was interrupted: breakglass stopped while it ran");
	bg_session_emit(NULL, s, o);
	json_object_put(o);
	o = bg_event_new(BG_EVENT_TURN_END);
	bg_json_add_str(o, "stop_reason", "interrupted");
	json_object_object_add(o, "usage", json_object_new_object());
	bg_session_emit(NULL, s, o);
	json_object_put(o);
	s->updated_ms = active;
}

static int session_load(bg_session **out, const char *dir, const char *id)
{
	bg_session *s = session_alloc(id);
	bg_buf b = BG_BUF_INIT;
	struct stat st;
	int rc;

	if (!s)
		return bg_error_oom();
	if (bg_buf_printf(&b, "%s/%s.jsonl", dir, id) != BG_OK) {
		session_destroy(s);
		return BG_ENOMEM;
	}
	s->path = bg_buf_detach(&b);
	s->fd = open(s->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (s->fd < 0) {
		rc = bg_error_set(BG_EIO, "%s: cannot open: %s", s->path, strerror(errno));
		session_destroy(s);
		return rc;
	}
	rc = bg_read_fd(&b, s->fd, SESSION_FILE_CAP, s->path);
	if (rc == BG_OK)
		rc = load_events(s, &b);
	bg_buf_free(&b);
	if (rc == BG_OK && !s->updated_ms && fstat(s->fd, &st) == 0)
		s->created_ms = s->updated_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	if (rc != BG_OK) {
		bg_error_prefix("session %s: ", id);
		session_destroy(s);
		return rc;
	}
	*out = s;
	return BG_OK;
}

/* ---- the store ---------------------------------------------------------- */

static int store_push(bg_session_store *st, bg_session *s)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		bg_session **l = realloc(st->list, cap * sizeof(*l));

		if (!l)
			return bg_error_oom();
		st->list = l;
		st->cap = cap;
	}
	s->seq = ++st->pushed;
	st->list[st->n++] = s;
	return BG_OK;
}

static int64_t session_updated(bg_session *s)
{
	int64_t t;

	pthread_mutex_lock(&s->mu);
	t = s->updated_ms;
	pthread_mutex_unlock(&s->mu);
	return t;
}

/* Newest first. Sessions made within one millisecond tie on the clock:
 * the later arrival is the newer (pruning must drop the oldest, not a
 * random one of the tie), then the id keeps the order stable. */
static int cmp_newest(const void *a, const void *b)
{
	bg_session *x = *(bg_session *const *)a, *y = *(bg_session *const *)b;
	int64_t tx = session_updated(x), ty = session_updated(y);

	if (tx != ty)
		return tx > ty ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void store_remove_at(bg_session_store *st, size_t i, int remove_file)
{
	bg_session *s = st->list[i];

	memmove(st->list + i, st->list + i + 1, (st->n - i - 1) * sizeof(*st->list));
	st->n--;
	session_close(s, remove_file);
	bg_session_release(s);
}

/* Store lock held: drop the least recently active idle session. */
static int evict_one(bg_session_store *st)
{
	size_t i;

	if (st->n > 1) /* an empty store's list may be NULL, which qsort must not get */
		qsort(st->list, st->n, sizeof(*st->list), cmp_newest);
	for (i = st->n; i-- > 0;) {
		if (!bg_session_busy(st->list[i])) {
			bg_info("session", "session %s deleted: more than %d sessions", st->list[i]->id, st->max);
			store_remove_at(st, i, 1);
			return BG_OK;
		}
	}
	return bg_error_set(BG_EBUSY, "all %d sessions have a turn running; cancel one or raise [web] max_sessions",
			    st->max);
}

static int is_session_file(const char *name, char *id)
{
	size_t len = strlen(name);

	if (len != ID_HEX + 6 || strcmp(name + ID_HEX, ".jsonl") != 0)
		return 0;
	memcpy(id, name, ID_HEX);
	id[ID_HEX] = '\0';
	return valid_id(id);
}

static int store_scan(bg_session_store *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *de;
	size_t i;
	int rc = BG_OK;

	if (!d)
		return bg_error_set(BG_EIO, "sessions directory %s: %s", st->dir, strerror(errno));
	while (rc == BG_OK && (de = readdir(d)) != NULL) {
		char id[ID_HEX + 1];
		bg_session *s = NULL;

		if (!is_session_file(de->d_name, id))
			continue;
		if (session_load(&s, st->dir, id) != BG_OK) {
			bg_warn("session", "%s; skipped", bg_error_last()->message);
			continue;
		}
		rc = store_push(st, s);
		if (rc != BG_OK)
			bg_session_release(s);
	}
	closedir(d);
	while (rc == BG_OK && st->n > (size_t)st->max)
		rc = evict_one(st);
	for (i = 0; rc == BG_OK && i < st->n; i++)
		close_interrupted_turn(st->list[i]);
	return rc;
}

int bg_session_store_open(bg_session_store **out, const char *dir, int max_sessions)
{
	bg_session_store *st;
	int rc = BG_OK;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return bg_error_oom();
	st->max = max_sessions > 0 ? max_sessions : DEFAULT_MAX;
	pthread_mutex_init(&st->mu, NULL);
	if (dir && *dir) {
		st->dir = strdup(dir);
		if (!st->dir)
			rc = bg_error_oom();
		else if (bg_mkdir_p(dir, 0700) != BG_OK) /* a fresh volume has no sessions/ yet */
			rc = bg_error_prefix("the sessions directory: ");
		else
			rc = store_scan(st);
	}
	if (rc != BG_OK) {
		bg_session_store_free(st);
		return rc;
	}
	*out = st;
	return BG_OK;
}

void bg_session_store_free(bg_session_store *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->n; i++) {
		session_close(st->list[i], 0);
		bg_session_release(st->list[i]);
	}
	free(st->list);
	free(st->dir);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

static int new_id(char *id)
{
	unsigned char raw[ID_HEX / 2];
	size_t i;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return bg_error_set(BG_EIO, "no randomness for a session id: %s", strerror(errno));
	for (i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	return BG_OK;
}

static int session_create_file(bg_session *s, const char *dir)
{
	bg_buf b = BG_BUF_INIT;

	if (bg_buf_printf(&b, "%s/%s.jsonl", dir, s->id) != BG_OK)
		return BG_ENOMEM;
	s->path = bg_buf_detach(&b);
	s->fd = open(s->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return bg_error_set(BG_EIO, "cannot create %s: %s", s->path, strerror(errno));
	return BG_OK;
}

int bg_session_create(bg_session **out, bg_session_store *st)
{
	char id[ID_HEX + 1];
	bg_session *s;
	int rc;

	*out = NULL;
	rc = new_id(id);
	if (rc != BG_OK)
		return rc;
	s = session_alloc(id);
	if (!s)
		return bg_error_oom();
	s->created_ms = s->updated_ms = bg_wall_ms();
	if (st->dir && (rc = session_create_file(s, st->dir)) != BG_OK) {
		session_destroy(s);
		return rc;
	}
	pthread_mutex_lock(&st->mu);
	if (st->n >= (size_t)st->max)
		rc = evict_one(st);
	if (rc == BG_OK)
		rc = store_push(st, s);
	pthread_mutex_unlock(&st->mu);
	if (rc != BG_OK) {
		session_close(s, 1);
		bg_session_release(s);
		return rc;
	}
	*out = bg_session_ref(s);
	return BG_OK;
}

static bg_session *store_find(bg_session_store *st, const char *id, size_t *index)
{
	size_t i;

	if (!id || strlen(id) != ID_HEX || !valid_id(id))
		return NULL;
	for (i = 0; i < st->n; i++) {
		if (strcmp(st->list[i]->id, id) == 0) {
			if (index)
				*index = i;
			return st->list[i];
		}
	}
	return NULL;
}

int bg_session_open(bg_session **out, bg_session_store *st, const char *id)
{
	bg_session *s;

	*out = NULL;
	pthread_mutex_lock(&st->mu);
	s = store_find(st, id, NULL);
	if (s)
		*out = bg_session_ref(s);
	pthread_mutex_unlock(&st->mu);
	if (!s)
		return bg_error_set(BG_ENOTFOUND, "no session \"%.40s\"", id ? id : "");
	return BG_OK;
}

int bg_session_delete(bg_session_store *st, const char *id)
{
	size_t i = 0;
	bg_session *s;
	int rc = BG_OK;

	pthread_mutex_lock(&st->mu);
	s = store_find(st, id, &i);
	if (!s)
		rc = bg_error_set(BG_ENOTFOUND, "no session \"%.40s\"", id ? id : "");
	else if (bg_session_busy(s))
		rc = bg_error_set(BG_ESTATE, "session %s: a turn is running; cancel it first", id);
	else
		store_remove_at(st, i, 1);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static int list_one(json_object *arr, bg_session *s)
{
	json_object *o = json_object_new_object();
	char created[40], updated[40];

	if (!o)
		return bg_error_oom();
	pthread_mutex_lock(&s->mu);
	bg_time_iso8601(s->created_ms, created, sizeof(created));
	bg_time_iso8601(s->updated_ms, updated, sizeof(updated));
	bg_json_add_str(o, "id", s->id);
	bg_json_add_str(o, "created", created);
	bg_json_add_str(o, "updated", updated);
	bg_json_add_int(o, "events", (int64_t)s->n);
	bg_json_add_bool(o, "busy", s->busy);
	bg_json_add_str(o, "title", s->title ? s->title : "");
	pthread_mutex_unlock(&s->mu);
	json_object_array_add(arr, o);
	return BG_OK;
}

int bg_session_list(char **json_out, bg_session_store *st)
{
	json_object *arr = json_object_new_array();
	size_t i;
	int rc = arr ? BG_OK : bg_error_oom();

	*json_out = NULL;
	pthread_mutex_lock(&st->mu);
	if (st->n > 1) /* an empty store's list may be NULL, which qsort must not get */
		qsort(st->list, st->n, sizeof(*st->list), cmp_newest);
	for (i = 0; rc == BG_OK && i < st->n; i++)
		rc = list_one(arr, st->list[i]);
	pthread_mutex_unlock(&st->mu);
	if (rc == BG_OK) {
		*json_out = bg_json_dump(arr);
		if (!*json_out)
			rc = BG_ENOMEM;
	}
	json_object_put(arr);
	return rc;
}
