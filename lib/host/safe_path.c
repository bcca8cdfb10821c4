/* StrictModes-like checks of the paths the forced command trusts (see
 * safe_path.h). */
#include "host/safe_path.h"

#include "core/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* One path component: `self` is the path the user named (strict), else a
 * parent (a root-owned sticky directory passes). */
static int check_one(const char *p, const struct stat *st, const char *key, const char *named, int self)
{
	if (!owner_ok(st->st_uid))
		return bg_error_set(BG_EDENIED,
				    "%s %s: %s is owned by uid %u, not root: anyone who owns it can forge or replace "
				    "what breakglass-pve keeps there (chown root %s)",
				    key, named, p, (unsigned)st->st_uid, p);
	if ((st->st_mode & 022) && !(!self && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) && st->st_uid == 0))
		return bg_error_set(BG_EDENIED,
				    "%s %s: %s is writable by group or others (mode %04o): a local user could forge "
				    "or replace what breakglass-pve keeps there (chmod go-w %s, or use a root-owned "
				    "0700 directory)",
				    key, named, p, (unsigned)(st->st_mode & 07777), p);
	return BG_OK;
}

/* The parents of the resolved `real`, up to /. */
static int check_parents(const char *real, const char *key, const char *named)
{
	char p[PATH_MAX];
	struct stat st;
	char *slash;
	int rc;

	snprintf(p, sizeof(p), "%s", real);
	for (;;) {
		slash = strrchr(p, '/');
		if (!slash)
			return BG_OK;
		if (slash == p) {
			if (!p[1])
				return BG_OK; /* "/" itself was checked last round */
			p[1] = '\0';
		} else {
			*slash = '\0';
		}
		if (stat(p, &st) != 0)
			return bg_error_set(BG_EIO, "%s %s: cannot stat %s: %s", key, named, p, strerror(errno));
		rc = check_one(p, &st, key, named, 0);
		if (rc != BG_OK)
			return rc;
	}
}

static int check_path(const char *path, const char *key, int want_dir)
{
	char real[PATH_MAX];
	struct stat st;
	int rc;

	if (!path || path[0] != '/')
		return bg_error_set(BG_ECONFIG, "%s must be an absolute path", key);
	if (!realpath(path, real)) {
		if (errno == ENOENT)
			return bg_error_set(BG_ENOTFOUND, "%s %s does not exist", key, path);
		return bg_error_set(BG_EIO, "%s %s: %s", key, path, strerror(errno));
	}
	if (stat(real, &st) != 0)
		return bg_error_set(BG_EIO, "%s %s: %s", key, path, strerror(errno));
	if (want_dir && !S_ISDIR(st.st_mode))
		return bg_error_set(BG_EDENIED, "%s %s is not a directory", key, path);
	if (!want_dir && !S_ISREG(st.st_mode))
		return bg_error_set(BG_EDENIED, "%s %s is not a regular file", key, path);
	rc = check_one(real, &st, key, path, 1);
	if (rc == BG_OK)
		rc = check_parents(real, key, path);
	return rc;
}

int bg_host_check_dir(const char *path, const char *key)
{
	return check_path(path, key, 1);
}

int bg_host_check_file(const char *path, const char *key)
{
	return check_path(path, key, 0);
}

int bg_host_ensure_dir(const char *path, const char *key)
{
	int rc = check_path(path, key, 1);

	if (rc != BG_ENOTFOUND)
		return rc;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return bg_error_set(BG_EIO, "%s %s cannot be created: %s (create it: mkdir -m 0700 %s)", key, path,
				    strerror(errno), path);
	return check_path(path, key, 1);
}

int bg_host_check_opened(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return bg_error_set(BG_EIO, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1)
		return bg_error_set(BG_EDENIED,
				    "%s is not a regular file of uid %u with one link (%s, uid %u, %u links): someone "
				    "else made or linked it; remove it",
				    path, (unsigned)geteuid(), S_ISREG(st.st_mode) ? "regular" : "not regular",
				    (unsigned)st.st_uid, (unsigned)st.st_nlink);
	return BG_OK;
}
