#include "breakglass/audit.h"
#include "clock.h"
#include "error.h"
#include "futil.h"
#include "json.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BG_AUDIT_KEEP_DEFAULT 200
#define BG_AUDIT_LINE_MAX     (64 * 1024)

struct bg_audit {
	pthread_mutex_t lock;
	int fd; /* -1 for a memory-only log */
	char *path;
	char **ring; /* newest `count` JSON lines, oldest at `head` */
	size_t keep, head, count;
};

static void ring_push(bg_audit *a, char *line)
{
	size_t slot = (a->head + a->count) % a->keep;

	if (a->count == a->keep) {
		free(a->ring[a->head]);
		a->ring[a->head] = line;
		a->head = (a->head + 1) % a->keep;
	} else {
		a->ring[slot] = line;
		a->count++;
	}
}

static void load_existing(bg_audit *a)
{
	FILE *f = fopen(a->path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *copy;
		if (line[n - 1] != '\n' || n > BG_AUDIT_LINE_MAX)
			continue; /* a torn or oversized line is skipped */
		line[n - 1] = '\0';
		copy = strdup(line);
		if (copy)
			ring_push(a, copy);
	}
	free(line);
	fclose(f);
}

int bg_audit_open(bg_audit **out, const char *path, size_t keep)
{
	bg_audit *a;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return bg_error_oom();
	a->keep = keep ? keep : BG_AUDIT_KEEP_DEFAULT;
	a->ring = calloc(a->keep, sizeof(char *));
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	if (!a->ring || (path && !(a->path = strdup(path)))) {
		bg_audit_free(a);
		return bg_error_oom();
	}
	if (path) {
		load_existing(a);
		a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
		if (a->fd < 0) {
			int err = errno;
			bg_audit_free(a);
			return bg_error_set(BG_EIO, "cannot open audit log %s: %s", path, strerror(err));
		}
	}
	*out = a;
	return BG_OK;
}

static char *format_record(const char *who, const char *action, const char *target, const char *result,
			   const char *detail)
{
	json_object *o = json_object_new_object();
	char when[40];
	char *line = NULL;

	if (!o) {
		bg_error_oom();
		return NULL;
	}
	bg_time_iso8601_ms(bg_wall_ms(), when, sizeof(when));
	if (bg_json_add_str(o, "time", when) == 0 && bg_json_add_str(o, "who", who ? who : "unknown") == 0 &&
	    bg_json_add_str(o, "action", action ? action : "") == 0 &&
	    bg_json_add_str(o, "target", target ? target : "") == 0 &&
	    bg_json_add_str(o, "result", result ? result : "") == 0 && bg_json_add_str(o, "detail", detail) == 0)
		line = bg_json_dump(o);
	json_object_put(o);
	return line;
}

int bg_audit_record(bg_audit *a, const char *who, const char *action, const char *target, const char *result,
		    const char *detail)
{
	char *line;
	int rc = BG_OK;

	if (!a)
		return bg_error_set(BG_EINVAL, "no audit log");
	line = format_record(who, action, target, result, detail);
	if (!line)
		return BG_ENOMEM;
	pthread_mutex_lock(&a->lock);
	/* One write(2) per record with O_APPEND: lines from several processes
	 * never interleave. */
	if (a->fd >= 0 && bg_append_line(a->fd, line, strlen(line)) != BG_OK)
		rc = bg_error_prefix("writing the audit log: ");
	ring_push(a, line);
	pthread_mutex_unlock(&a->lock);
	if (rc < 0)
		bg_err("audit", "%s", bg_error_last()->message);
	return rc;
}

int bg_audit_recent(char **json_out, bg_audit *a, size_t max)
{
	json_object *arr;
	size_t i;

	*json_out = NULL;
	if (!a)
		return bg_error_set(BG_EINVAL, "no audit log");
	arr = json_object_new_array();
	if (!arr)
		return bg_error_oom();
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->count && i < max; i++) {
		const char *line = a->ring[(a->head + a->count - 1 - i) % a->keep];
		json_object *rec = json_tokener_parse(line);
		if (rec)
			json_object_array_add(arr, rec);
	}
	pthread_mutex_unlock(&a->lock);
	*json_out = bg_json_dump(arr);
	json_object_put(arr);
	return *json_out ? BG_OK : BG_ENOMEM;
}

void bg_audit_free(bg_audit *a)
{
	size_t i;

	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	for (i = 0; a->ring && i < a->count; i++)
		free(a->ring[(a->head + i) % a->keep]);
	free(a->ring);
	free(a->path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
