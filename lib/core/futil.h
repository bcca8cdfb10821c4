/*
 * Internal: the one set of file and process helpers of the library (the
 * way libgit2 keeps futils). Every room that creates a directory, reads a
 * whole file, writes one, appends a log line or reads /proc/PID/stat uses
 * these, so a fix to EINTR handling, a cap or a symlink rule is made once.
 *
 * Each returns BG_OK or a BG_E* code recorded with bg_error_set (the
 * message names the path); errno is preserved for callers that need it.
 */
#ifndef BG_CORE_FUTIL_H
#define BG_CORE_FUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/*
 * `mkdir -p`: create `path` and its missing parents with `mode` (umask
 * applies). An existing directory is fine; an existing non-directory is
 * BG_EIO (ENOTDIR). Components that are symlinks to directories are
 * followed, as mkdir -p does: callers that must not follow them check the
 * path themselves.
 */
int bg_mkdir_p(const char *path, mode_t mode);

/*
 * Read `path` whole into a NUL-terminated string the caller frees; the
 * length (NUL bytes included, which /proc files may hold) in *len_out when
 * not NULL. Works for /proc files, whose st_size is 0. BG_ENOTFOUND when
 * the file (or the process, ESRCH) does not exist, BG_ETOOBIG when it
 * holds more than `cap` bytes, BG_EIO otherwise. *out is NULL on failure.
 */
int bg_read_file(char **out, size_t *len_out, const char *path, size_t cap);

/*
 * Append everything left to read from `fd` to `b`, at most `cap` bytes
 * (BG_ETOOBIG past it). `what` names the source in messages.
 */
int bg_read_fd(bg_buf *b, int fd, size_t cap, const char *what);

/*
 * Write all `len` bytes to `fd`, going on after short writes and EINTR.
 * BG_EIO (errno kept) on any other failure.
 */
int bg_write_all(int fd, const void *data, size_t len);

/*
 * Create or truncate `path` with `mode` and write `data` to it. A symlink
 * at `path` is refused (O_NOFOLLOW), so a planted link cannot redirect a
 * write made as root.
 */
int bg_write_file(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Append `line` (`len` bytes, no newline of its own) and a newline to
 * `fd`, opened with O_APPEND, in one write(2): lines from several
 * processes or threads never interleave, and a crash leaves at most a
 * torn last line. Should the kernel take only part (a full disk), the rest
 * is written after it and BG_EIO returned if that fails.
 */
int bg_append_line(int fd, const char *line, size_t len);

/* The fields of /proc/PID/stat the library uses. */
typedef struct bg_proc_stat {
	int pid;
	char state; /* R S D Z T t X I */
	char comm[32];
	int ppid;
	unsigned long long utime, stime; /* clock ticks */
	unsigned long long starttime;    /* clock ticks after boot */
} bg_proc_stat;

/*
 * Parse the text of a stat file: "PID (COMM) S PPID …". COMM may hold
 * spaces and parentheses, so it ends at the LAST ')'. BG_EPROTO for
 * anything else. `text` need not be NUL-terminated.
 */
int bg_proc_stat_parse(bg_proc_stat *out, const char *text, size_t len);

/*
 * Read /proc/PID/stat, or /proc/PID/task/TID/stat when tid > 0.
 * BG_ENOTFOUND when the process (or thread) is gone.
 */
int bg_proc_stat_read(bg_proc_stat *out, int pid, int tid);

#endif
