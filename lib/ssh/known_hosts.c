/* known_hosts the OpenSSH way, through libssh2's knownhost API. Each line
 * is read into a collection of its own, so a mismatch names its line;
 * the files are small (a line per host), the cost is nothing. */
#include "known_hosts.h"

#include "breakglass/common.h"
#include "core/buf.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A known_hosts file bigger than this is not one we keep. */
#define KH_MAX     (1024 * 1024)
#define KEY_MAX    4096
#define LINE_MAX_K 8192

int bg_kh_name(bg_buf *b, const char *host, int port)
{
	if (port == 22)
		return bg_buf_puts(b, host);
	return bg_buf_printf(b, "[%s]:%d", host, port);
}

/* A file that decides which host keys are trusted must be ours (or
 * root's), regular, and writable by nobody else. */
static int check_owner(const char *file, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return bg_error_set(BG_EHOSTKEY,
				    "known_hosts %s is not a regular file: remove it or set [ssh] known_hosts", file);
	if ((st->st_uid != geteuid() && st->st_uid != 0) || (st->st_mode & 022))
		return bg_error_set(BG_EHOSTKEY,
				    "known_hosts %s is owned by uid %u with mode %03o: anyone who can write it "
				    "chooses which host keys are trusted; chown it to this user and chmod 600 it",
				    file, (unsigned)st->st_uid, (unsigned)(st->st_mode & 0777));
	return BG_OK;
}

/* The whole file into b; a missing file is empty. */
static int read_kh(bg_buf *b, const char *file)
{
	struct stat st;
	char chunk[4096];
	ssize_t n;
	int fd, rc;

	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return BG_OK;
	if (fd < 0 && errno == ELOOP)
		return bg_error_set(BG_EHOSTKEY, "known_hosts %s is a symbolic link: refused (give the real path)",
				    file);
	if (fd < 0)
		return bg_error_set(BG_EIO, "cannot read known_hosts %s: %s", file, strerror(errno));
	rc = fstat(fd, &st) == 0 ? check_owner(file, &st) : bg_error_set(BG_EIO, "fstat %s: %s", file, strerror(errno));
	while (rc == BG_OK && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = bg_error_set(BG_EIO, "cannot read known_hosts %s: %s", file, strerror(errno));
		else if (b->len + (size_t)n > KH_MAX)
			rc = bg_error_set(BG_ETOOBIG, "known_hosts %s is over %d bytes: not a known_hosts file?", file,
					  KH_MAX);
		else
			rc = bg_buf_append(b, chunk, (size_t)n);
	}
	close(fd);
	return rc;
}

/* "SHA256:…" and the type of a key given as base64 (maybe "type base64"). */
static void describe_stored(bg_kh_result *out, const char *key64)
{
	const char *sp = key64 ? strrchr(key64, ' ') : NULL;
	unsigned char *blob = malloc(KEY_MAX), digest[32];
	long n;
	uint32_t tl;

	snprintf(out->stored_fpr, sizeof(out->stored_fpr), "(unreadable)");
	out->stored_type[0] = '\0';
	if (!blob || !key64) {
		free(blob);
		return;
	}
	if (sp)
		key64 = sp + 1;
	n = bg_ssh_base64_decode(blob, KEY_MAX, key64, strlen(key64));
	if (n > 4) {
		bg_ssh_sha256(blob, (size_t)n, digest);
		bg_ssh_fingerprint_format(out->stored_fpr, digest);
		tl = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3];
		if (tl < sizeof(out->stored_type) && tl <= (uint32_t)n - 4)
			snprintf(out->stored_type, sizeof(out->stored_type), "%.*s", (int)tl, (const char *)blob + 4);
	}
	free(blob);
}

/* One line: its own collection, checked against the name and the key.
 * The key type used is the line's own, so that another type of key for
 * the same name shows as a mismatch. The line is copied and ended with a
 * NUL: libssh2 1.10's readline looks at the byte after `len` for a
 * newline and, finding one, drops the key's last character. */
static bg_kh_status check_line(LIBSSH2_SESSION *session, const char *text, size_t len, const char *name,
			       const unsigned char *key, size_t keylen, bg_kh_result *out)
{
	char line[LINE_MAX_K + 1];
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(session);
	struct libssh2_knownhost *node = NULL, *found = NULL;
	bg_kh_status st = BG_KH_NOTFOUND;
	int rc, type;

	if (!kh)
		return BG_KH_NOTFOUND;
	memcpy(line, text, len);
	line[len] = '\0';
	if (libssh2_knownhost_readline(kh, line, len, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0 &&
	    libssh2_knownhost_get(kh, &node, NULL) == 0 && node) {
		type = node->typemask & LIBSSH2_KNOWNHOST_KEY_MASK;
		rc = libssh2_knownhost_check(kh, name, (const char *)key, keylen,
					     LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | type,
					     &found);
		if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
			st = BG_KH_MATCH;
		} else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
			st = BG_KH_MISMATCH;
			describe_stored(out, found ? found->key : node->key);
		}
	}
	libssh2_knownhost_free(kh);
	return st;
}

int bg_kh_check(bg_kh_result *out, LIBSSH2_SESSION *session, const char *file, const char *host, int port,
		const unsigned char *key, size_t keylen)
{
	bg_buf data = BG_BUF_INIT, name = BG_BUF_INIT;
	bg_kh_result first_bad;
	const char *p, *end, *nl;
	int rc, lineno = 0;

	memset(out, 0, sizeof(*out));
	memset(&first_bad, 0, sizeof(first_bad));
	out->status = BG_KH_NOTFOUND;
	rc = read_kh(&data, file);
	if (rc == BG_OK)
		rc = bg_kh_name(&name, host, port);
	p = data.data ? data.data : "";
	end = p + data.len;
	for (; rc == BG_OK && p < end; p = nl + 1) {
		size_t len;
		bg_kh_result r;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		lineno++;
		len = (size_t)(nl - p);
		while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!len || *p == '#' || len > LINE_MAX_K)
			continue;
		memset(&r, 0, sizeof(r));
		r.status = check_line(session, p, len, name.data, key, keylen, &r);
		if (r.status == BG_KH_MATCH) {
			out->status = BG_KH_MATCH;
			out->line = lineno;
			break;
		}
		if (r.status == BG_KH_MISMATCH && !first_bad.line) {
			first_bad = r;
			first_bad.line = lineno;
		}
	}
	if (rc == BG_OK && out->status != BG_KH_MATCH && first_bad.line)
		*out = first_bad;
	bg_buf_free(&data);
	bg_buf_free(&name);
	return rc;
}

/* The number of lines, and whether the last one lacks its newline. */
static int count_lines(int fd, int *lines, int *open_line)
{
	char chunk[4096];
	off_t off = 0;
	ssize_t n, i;
	char last = '\n';

	*lines = 0;
	while ((n = pread(fd, chunk, sizeof(chunk), off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		for (i = 0; i < n; i++)
			*lines += chunk[i] == '\n';
		last = chunk[n - 1];
		off += n;
		if (off > KH_MAX)
			return -1;
	}
	*open_line = last != '\n';
	return 0;
}

int bg_kh_add(int *line_out, const char *file, const char *host, int port, const char *type_name,
	      const unsigned char *key, size_t keylen)
{
	bg_buf line = BG_BUF_INIT;
	struct stat st;
	char day[16];
	time_t now = time(NULL);
	struct tm tm;
	int fd, rc, lines = 0, open_line = 0;
	ssize_t w;

	*line_out = 0;
	if (port == 22 && strlen(host) < 3)
		return bg_error_set(BG_EINVAL,
				    "libssh2 1.10 cannot read back a known_hosts name under three characters (\"%s\"): "
				    "use the host's address or full name",
				    host);
	fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return bg_error_set(errno == ELOOP ? BG_EHOSTKEY : BG_EIO, "cannot write known_hosts %s: %s", file,
				    errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	rc = fstat(fd, &st) == 0 ? check_owner(file, &st) : bg_error_set(BG_EIO, "fstat %s: %s", file, strerror(errno));
	if (rc == BG_OK && st.st_nlink != 1)
		rc = bg_error_set(BG_EHOSTKEY, "known_hosts %s has %lu links: refused (a hard link to another file?)",
				  file, (unsigned long)st.st_nlink);
	if (rc == BG_OK && count_lines(fd, &lines, &open_line) != 0)
		rc = bg_error_set(BG_EIO, "cannot read known_hosts %s back", file);
	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	if (rc == BG_OK && open_line)
		rc = bg_buf_putc(&line, '\n');
	if (rc == BG_OK)
		rc = bg_kh_name(&line, host, port);
	if (rc == BG_OK)
		rc = bg_buf_printf(&line, " %s ", type_name);
	if (rc == BG_OK)
		rc = bg_ssh_base64_encode(&line, key, keylen, 1);
	if (rc == BG_OK)
		rc = bg_buf_printf(&line, " breakglass accept-new %s\n", day);
	if (rc == BG_OK) {
		/* One write(2) with O_APPEND: two first connections at once
		 * give two whole lines, never a torn one. */
		w = write(fd, line.data, line.len);
		if (w != (ssize_t)line.len)
			rc = bg_error_set(BG_EIO, "cannot write known_hosts %s: %s", file,
					  w < 0 ? strerror(errno) : "short write");
	}
	if (rc == BG_OK)
		*line_out = lines + open_line + 1;
	close(fd);
	bg_buf_free(&line);
	return rc;
}
