/* Internal: OpenSSH known_hosts files, read through libssh2's knownhost
 * API one line at a time (so that a refusal can name the line), and the
 * first key of a host appended the way OpenSSH's accept-new does. */
#ifndef BG_SSH_KNOWN_HOSTS_H
#define BG_SSH_KNOWN_HOSTS_H

#include <libssh2.h>
#include <stddef.h>

#include "ssh_util.h"

typedef enum bg_kh_status { BG_KH_MATCH, BG_KH_MISMATCH, BG_KH_NOTFOUND } bg_kh_status;

typedef struct bg_kh_result {
	bg_kh_status status;
	int line;                        /* of the match, or of the first other key of the host */
	char stored_fpr[BG_SSH_FPR_LEN]; /* BG_KH_MISMATCH: that key's fingerprint */
	char stored_type[64];            /* and its type */
} bg_kh_result;

/* The name known_hosts uses for host:port: "host" for 22, else "[host]:port". */
int bg_kh_name(bg_buf *b, const char *host, int port);

/*
 * Look up the server's key `key` (the raw blob) for host:port in `file`.
 * A line for the same name with another key, of any type, is a mismatch
 * (a server that changed its key type is as suspect as one that changed
 * its key). A missing file has no entries. Lines libssh2 cannot read
 * (markers such as @cert-authority) are skipped. BG_EIO, or BG_EHOSTKEY when the
 * file cannot be read or is not a regular file.
 */
int bg_kh_check(bg_kh_result *out, LIBSSH2_SESSION *session, const char *file, const char *host, int port,
		const unsigned char *key, size_t keylen);

/*
 * Append "NAME TYPE BASE64 comment" to `file` in one write (O_APPEND,
 * created 0600, never through a symlink; an existing file must be a
 * regular file of ours, with one link, not writable by group or others).
 * `*line_out` gets its line number.
 */
int bg_kh_add(int *line_out, const char *file, const char *host, int port, const char *type_name,
	      const unsigned char *key, size_t keylen);

#endif
