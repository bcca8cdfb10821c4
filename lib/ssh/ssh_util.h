/* Internal: the pure helpers of the SSH layer (no libssh2, no I/O), kept
 * apart so that unit tests reach them directly. */
#ifndef BG_SSH_UTIL_H
#define BG_SSH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* "SHA256:" + 43 base64 characters + NUL. */
#define BG_SSH_FPR_LEN 51
/* The largest public key blob kept: an RSA key of 16384 bits fits. */
#define BG_SSH_PUB_MAX     2560
#define BG_SSH_COMMENT_MAX 256

typedef enum bg_ssh_key_type {
	BG_SSH_KEY_UNKNOWN = 0, /* not recognised: let libssh2 try */
	BG_SSH_KEY_ED25519,
	BG_SSH_KEY_ECDSA,
	BG_SSH_KEY_RSA,
	BG_SSH_KEY_DSA,
	BG_SSH_KEY_NOT_A_KEY /* no private key header at all */
} bg_ssh_key_type;

typedef struct bg_ssh_key_info {
	bg_ssh_key_type type;
	char type_name[32];       /* "ssh-ed25519", "ecdsa-sha2-nistp256", "rsa" … */
	int encrypted;            /* protected by a passphrase */
	int has_fingerprint;      /* the public half was found in the file */
	char fpr[BG_SSH_FPR_LEN]; /* its "SHA256:…" when has_fingerprint */
	const char *format;       /* "openssh", "pem", "pkcs8", "" */
	/* OpenSSH format only: the public key blob, stored in clear even under
	 * a passphrase (pub_len 0 when absent or over BG_SSH_PUB_MAX); the
	 * comment, readable only without a passphrase ("" otherwise); and why
	 * the key could not be read (NULL when it could). */
	unsigned char pub[BG_SSH_PUB_MAX];
	size_t pub_len;
	char comment[BG_SSH_COMMENT_MAX];
	const char *problem;
} bg_ssh_key_info;

/* SHA-256 of `len` bytes into out[32]. */
void bg_ssh_sha256(const void *data, size_t len, unsigned char out[32]);

/* Standard base64; `pad` adds '=' padding. Appends to b. */
int bg_ssh_base64_encode(bg_buf *b, const unsigned char *data, size_t len, int pad);

/* Decode base64, skipping whitespace; stops at '=' or the end. Returns the
 * number of bytes written to out (at most cap), or -1 on a bad character
 * or when out is too small. */
long bg_ssh_base64_decode(unsigned char *out, size_t cap, const char *in, size_t len);

/* OpenSSH's fingerprint of a 32-byte SHA-256 digest: "SHA256:" and base64
 * without padding, into out (BG_SSH_FPR_LEN bytes). */
void bg_ssh_fingerprint_format(char out[BG_SSH_FPR_LEN], const unsigned char digest[32]);

/* Whether `s` looks like a pin: "SHA256:" followed by 43 base64 characters. */
int bg_ssh_fingerprint_valid(const char *s);

/* Detect the type of a private key from its text: the OpenSSH format's
 * embedded public key (type, blob, fingerprint, and the comment when not
 * encrypted), or the PEM header. Never fails; unknown
 * formats give BG_SSH_KEY_UNKNOWN, text without any BEGIN line gives
 * BG_SSH_KEY_NOT_A_KEY. The buffers touched are wiped. */
void bg_ssh_key_detect(bg_ssh_key_info *info, const char *data, size_t len);

/*
 * The one rule for client keys: breakglass logs in with ed25519 or ECDSA
 * keys only (libssh2 1.10 signs RSA only with SHA-1, which OpenSSH >= 8.8
 * refuses; DSA is gone), and only without a passphrase (nothing could
 * type it). A PEM/PKCS#8 key whose type the header does not say is left to
 * libssh2. BG_OK when `info` can log in; else the status (BG_EUNSUPPORTED,
 * or BG_EINVAL for text that is no key) and, in `reason`, a predicate for
 * "the key …" that says why and what to do ("is an RSA key: …").
 * bg_ssh_key_type_judge() applies the type rule alone (a key with a
 * passphrase can still log in through ssh-agent).
 */
int bg_ssh_key_judge(const bg_ssh_key_info *info, char *reason, size_t n);
int bg_ssh_key_type_judge(const bg_ssh_key_info *info, char *reason, size_t n);

/* Whether `s` is an sshd pattern-list for from="…": addresses, CIDRs,
 * wildcards, `!`, separated by commas; no spaces or quotes. */
int bg_ssh_from_valid(const char *s);

/* Append `s` single-quoted for a POSIX shell ('it'\''s'). */
int bg_ssh_shell_quote(bg_buf *b, const char *s);

/* The command run on the far side: `exec timeout -k 5 T sh -c 'CMD'` when
 * remote_timeout, else CMD as is. */
int bg_ssh_wrap_command(bg_buf *b, const char *cmd, int timeout_s, int remote_timeout);

/* The host key type name for a LIBSSH2_HOSTKEY_TYPE_* value. */
const char *bg_ssh_hostkey_type_name(int type);

#endif
