/* File and process helpers: see futil.h for why there is one set. */
#include "futil.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A stat line is ~300 bytes; the cap only bounds a malformed file. */
#define PROC_STAT_CAP 4096

/* Record the failure of `op` on `path` from errno and return its code,
 * keeping errno for the caller. */
static int fail_errno(int code, const char *op, const char *path)
{
	int e = errno;

	bg_error_set(code, "cannot %s %s: %s", op, path, strerror(e));
	errno = e;
	return code;
}

static int mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return BG_OK;
	if (errno != EEXIST)
		return fail_errno(BG_EIO, "create", path);
	if (stat(path, &st) != 0)
		return fail_errno(BG_EIO, "create", path);
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return fail_errno(BG_EIO, "create", path);
	}
	return BG_OK;
}

int bg_mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t i, len;
	int rc = BG_OK;

	if (!path || !*path)
		return bg_error_set(BG_EINVAL, "mkdir: empty path");
	len = strlen(path);
	if (len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return fail_errno(BG_EINVAL, "create", path);
	}
	memcpy(tmp, path, len + 1);
	for (i = 1; rc == BG_OK && i < len; i++) {
		if (tmp[i] != '/' || tmp[i - 1] == '/')
			continue;
		tmp[i] = '\0';
		rc = mkdir_one(tmp, mode);
		tmp[i] = '/';
	}
	return rc == BG_OK ? mkdir_one(tmp, mode) : rc;
}

int bg_read_fd(bg_buf *b, int fd, size_t cap, const char *what)
{
	size_t start = b->len;

	for (;;) {
		ssize_t n;

		if (bg_buf_grow(b, 16384) != BG_OK)
			return BG_ENOMEM;
		b->data[b->len] = '\0'; /* an empty read still leaves a string */
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_errno(errno == ESRCH ? BG_ENOTFOUND : BG_EIO, "read", what);
		if (n == 0)
			return BG_OK;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len - start > cap)
			return bg_error_set(BG_ETOOBIG, "%s: more than %zu bytes", what, cap);
	}
}

int bg_read_file(char **out, size_t *len_out, const char *path, size_t cap)
{
	bg_buf b = BG_BUF_INIT;
	int fd, rc, e;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail_errno(errno == ENOENT || errno == ESRCH ? BG_ENOTFOUND : BG_EIO, "read", path);
	rc = bg_read_fd(&b, fd, cap, path);
	e = errno;
	close(fd);
	if (rc != BG_OK) {
		bg_buf_free(&b);
		errno = e;
		return rc;
	}
	if (len_out)
		*len_out = b.len;
	*out = bg_buf_detach(&b);
	return *out ? BG_OK : bg_error_oom();
}

int bg_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			bg_error_set(BG_EIO, "write failed: %s", strerror(e));
			errno = e;
			return BG_EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return BG_OK;
}

int bg_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode);
	int rc;

	if (fd < 0)
		return fail_errno(BG_EIO, "write", path);
	rc = bg_write_all(fd, data, len);
	if (rc != BG_OK) {
		int e = errno;
		close(fd);
		errno = e;
		return fail_errno(BG_EIO, "write", path);
	}
	if (close(fd) != 0)
		return fail_errno(BG_EIO, "write", path);
	return BG_OK;
}

int bg_append_line(int fd, const char *line, size_t len)
{
	bg_buf b = BG_BUF_INIT;
	ssize_t n;
	int rc;

	if (bg_buf_grow(&b, len + 1) != BG_OK)
		return BG_ENOMEM;
	bg_buf_append(&b, line, len);
	bg_buf_putc(&b, '\n');
	do
		n = write(fd, b.data, b.len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)b.len)
		rc = BG_OK;
	else if (n < 0)
		rc = bg_error_set(BG_EIO, "cannot append a line: %s", strerror(errno));
	else if (bg_write_all(fd, b.data + n, b.len - (size_t)n) != BG_OK)
		rc = bg_error_prefix("cannot append a line: ");
	else
		rc = BG_OK;
	bg_buf_free(&b);
	return rc;
}

/* The next space-separated number after *p, within end. */
static int next_number(const char **p, const char *end, unsigned long long *v)
{
	const char *s = *p;
	unsigned long long x = 0;
	int digits = 0, neg = 0;

	while (s < end && *s == ' ')
		s++;
	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	for (; s < end && *s >= '0' && *s <= '9'; s++, digits++)
		x = x * 10 + (unsigned long long)(*s - '0');
	if (!digits || (s < end && *s != ' ' && *s != '\n'))
		return -1;
	*v = neg ? 0 : x;
	*p = s;
	return 0;
}

/* Skip `n` space-separated fields. */
static int skip_fields(const char **p, const char *end, int n)
{
	unsigned long long ignored;

	while (n-- > 0)
		if (next_number(p, end, &ignored) != 0)
			return -1;
	return 0;
}

int bg_proc_stat_parse(bg_proc_stat *out, const char *text, size_t len)
{
	const char *end = text + len, *open_p, *close_p = NULL, *p;
	unsigned long long v;
	size_t n;

	memset(out, 0, sizeof(*out));
	open_p = memchr(text, '(', len);
	for (p = end; p > text; p--)
		if (p[-1] == ')') {
			close_p = p - 1;
			break;
		}
	if (!open_p || !close_p || close_p < open_p || end - close_p < 4 || close_p[1] != ' ')
		return bg_error_set(BG_EPROTO, "/proc stat: unexpected format");
	p = text;
	if (next_number(&p, open_p, &v) != 0 || v == 0 || v > 0x7fffffff)
		return bg_error_set(BG_EPROTO, "/proc stat: no pid");
	out->pid = (int)v;
	n = (size_t)(close_p - open_p - 1);
	if (n >= sizeof(out->comm))
		n = sizeof(out->comm) - 1;
	memcpy(out->comm, open_p + 1, n);
	out->state = close_p[2];
	p = close_p + 3;
	/* fields: 4 ppid, 14 utime, 15 stime, 22 starttime */
	if (next_number(&p, end, &v) != 0)
		return bg_error_set(BG_EPROTO, "/proc stat: no ppid");
	out->ppid = (int)(v > 0x7fffffff ? 0 : v);
	if (skip_fields(&p, end, 9) != 0 || next_number(&p, end, &out->utime) != 0 ||
	    next_number(&p, end, &out->stime) != 0 || skip_fields(&p, end, 6) != 0 ||
	    next_number(&p, end, &out->starttime) != 0)
		return bg_error_set(BG_EPROTO, "/proc stat: fewer than 22 fields");
	return BG_OK;
}

int bg_proc_stat_read(bg_proc_stat *out, int pid, int tid)
{
	char path[96], *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	rc = bg_read_file(&text, &len, path, PROC_STAT_CAP);
	if (rc != BG_OK)
		return rc;
	rc = bg_proc_stat_parse(out, text, len);
	free(text);
	if (rc != BG_OK)
		bg_error_prefix("%s: ", path);
	return rc;
}
