#include "breakglass/secret.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BG_SECRET_FILE_MAX (64 * 1024)

struct bg_secret {
	char *data; /* mmap'd, page aligned */
	size_t len;
	size_t mapped; /* bytes mapped */
	int locked;
};

static size_t round_to_pages(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page) / page * page; /* always room for the NUL */
}

int bg_secret_new(bg_secret **out, const void *data, size_t len)
{
	bg_secret *s;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return bg_error_oom();
	s->mapped = round_to_pages(len);
	/* mmap rather than malloc: the secret owns whole pages, so locking and
	 * MADV_DONTDUMP affect no other data. */
	s->data = mmap(NULL, s->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->data == MAP_FAILED) {
		free(s);
		return bg_error_oom();
	}
	s->locked = mlock(s->data, s->mapped) == 0;
#ifdef MADV_DONTDUMP
	madvise(s->data, s->mapped, MADV_DONTDUMP);
#endif
	if (len)
		memcpy(s->data, data, len);
	s->data[len] = '\0';
	s->len = len;
	*out = s;
	return BG_OK;
}

static int read_fd_into_secret(bg_secret **out, int fd, const char *path)
{
	char *tmp;
	size_t len = 0;
	int rc;

	/* The staging buffer is locked and wiped like a secret, so no copy of
	 * the key ever sits in ordinary heap memory. */
	rc = BG_OK;
	tmp = mmap(NULL, BG_SECRET_FILE_MAX + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return bg_error_oom();
	mlock(tmp, BG_SECRET_FILE_MAX + 1);
	for (;;) {
		ssize_t n = read(fd, tmp + len, BG_SECRET_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = bg_error_set(BG_EIO, "reading %s: %s", path, strerror(errno));
			break;
		}
		if (n == 0) {
			rc = bg_secret_new(out, tmp, len);
			break;
		}
		len += (size_t)n;
		if (len > BG_SECRET_FILE_MAX) {
			rc = bg_error_set(BG_ETOOBIG, "%s is larger than %d bytes: not a key or token", path,
					  BG_SECRET_FILE_MAX);
			break;
		}
	}
	explicit_bzero(tmp, BG_SECRET_FILE_MAX + 1);
	munlock(tmp, BG_SECRET_FILE_MAX + 1);
	munmap(tmp, BG_SECRET_FILE_MAX + 1);
	return rc;
}

int bg_secret_from_file(bg_secret **out, const char *path)
{
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return bg_error_set(errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot open %s: %s", path,
				    strerror(errno));
	rc = read_fd_into_secret(out, fd, path);
	close(fd);
	return rc;
}

int bg_secret_from_env(bg_secret **out, const char *name)
{
	char *value = getenv(name);
	int rc;

	*out = NULL;
	if (!value || !*value)
		return bg_error_set(BG_ENOTFOUND, "$%s is not set", name);
	rc = bg_secret_new(out, value, strlen(value));
	/* Wipe the environment's copy before removing it: unsetenv only drops
	 * the pointer, and the bytes would stay in the process image. */
	explicit_bzero(value, strlen(value));
	unsetenv(name);
	return rc;
}

const char *bg_secret_data(const bg_secret *s)
{
	return s ? s->data : NULL;
}

size_t bg_secret_len(const bg_secret *s)
{
	return s ? s->len : 0;
}

int bg_secret_locked(const bg_secret *s)
{
	return s ? s->locked : 0;
}

void bg_secret_free(bg_secret *s)
{
	if (!s)
		return;
	explicit_bzero(s->data, s->mapped);
	if (s->locked)
		munlock(s->data, s->mapped);
	munmap(s->data, s->mapped);
	free(s);
}

int bg_secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = alen != blen;
	size_t i;

	/* Walk the whole of `a` whatever `b` is, so the time depends only on
	 * the length of the value we hold, not on the guess. */
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)(x[i] ^ (i < blen ? y[i] : 0));
	return diff == 0;
}
