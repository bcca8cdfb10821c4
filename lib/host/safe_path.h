/*
 * Internal (host side): the paths breakglass-pve trusts, checked the way
 * sshd's StrictModes checks a user's files. The program runs as root; a
 * local user who can write into one of its directories could forge a lock
 * holder, plant a symlink or replace a file. So every directory it uses
 * (and every parent up to /) must be owned by root (or by the effective
 * uid, for tests run as someone else) and not writable by group or
 * others; a parent that is a root-owned sticky directory (/tmp) passes,
 * since nobody else can replace what we own in it. Every file it opens
 * for writing is checked with fstat after the open: a regular file, ours,
 * with one link.
 */
#ifndef BG_HOST_SAFE_PATH_H
#define BG_HOST_SAFE_PATH_H

/* A directory the program uses (`key` names it in pve.conf, e.g.
 * "[paths] lock_dir"). BG_OK when it and its parents are safe; BG_ENOTFOUND
 * when it does not exist; BG_EDENIED with a message naming the path and the
 * fix otherwise. */
int bg_host_check_dir(const char *path, const char *key);

/* The same for a file (pve.conf): a regular file, safe owner and mode, in
 * a safe directory. */
int bg_host_check_file(const char *path, const char *key);

/* Create `path` (one level, mode 0700) when missing, then check it. */
int bg_host_ensure_dir(const char *path, const char *key);

/* A file just opened for writing: regular, owned by the effective uid, one
 * link. BG_EDENIED naming `path` otherwise. */
int bg_host_check_opened(int fd, const char *path);

#endif
