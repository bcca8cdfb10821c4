/*
 * libbreakglass — SSH exec over libssh2 (docs/ssh.md).
 *
 * One bg_ssh per target (the devvm, the Proxmox host). It connects on first
 * use, is reused across execs, and reconnects once when the connection
 * turns out broken. Every network step has a deadline. A bg_ssh must not
 * be used by two threads at once (it serialises them with a lock), except
 * bg_ssh_cancel(), which any thread may call at any time.
 */
#ifndef BREAKGLASS_SSH_H
#define BREAKGLASS_SSH_H

#include "common.h"
#include "config.h"
#include "secret.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bg_ssh bg_ssh;

#define BG_SSH_OPTIONS_VERSION 1

/** Which host keys are trusted when no host_key pin is set (a pin, when
 *  set, always decides: its key and no other). OpenSSH's model. */
typedef enum bg_ssh_host_key_policy {
	BG_SSH_HOST_KEY_ACCEPT_NEW = 0, /**< known_hosts: store the first key, refuse a changed one */
	BG_SSH_HOST_KEY_STRICT = 1,     /**< known_hosts: only the keys already there */
	BG_SSH_HOST_KEY_PIN = 2         /**< host_key only: it must be set (and match) */
} bg_ssh_host_key_policy;

typedef struct bg_ssh_options {
	unsigned int version; /**< BG_SSH_OPTIONS_VERSION */
	const char *name;     /**< "devvm", "pve": used in messages */
	const char *host;
	int port; /**< 22 when 0 */
	const char *user;
	const char *host_key;       /**< "SHA256:…" pin; NULL or "" = report only */
	const bg_secret *key;       /**< private key (OpenSSH format), borrowed; or */
	const char *key_file;       /**< a private key file; or */
	int use_agent;              /**< ssh-agent at $SSH_AUTH_SOCK */
	int connect_timeout_s;      /**< connect + handshake + auth; 10 when 0 */
	const char *source_address; /**< local address to bind, or NULL */
	int keepalive_s;            /**< keepalive interval; 15 when 0 */
	bg_ssh_host_key_policy host_key_policy;
	const char *known_hosts; /**< OpenSSH known_hosts file for strict / accept-new; NULL: none
				      (accept-new then accepts without storing, strict refuses) */
} bg_ssh_options;

#define BG_SSH_OPTIONS_INIT                                                                      \
	{                                                                                        \
		BG_SSH_OPTIONS_VERSION, NULL, NULL, 22, NULL, NULL, NULL, NULL, 0, 10, NULL, 15, \
			BG_SSH_HOST_KEY_ACCEPT_NEW, NULL                                         \
	}

/** Initialise `opts` with the defaults; BG_EINVAL for an unknown version. */
BG_EXTERN int bg_ssh_options_init(bg_ssh_options *opts, unsigned int version);

/**
 * A handle for one target. Nothing is sent until the first exec or
 * bg_ssh_connect(). The options' strings are copied; `key` is borrowed and
 * must outlive the handle. An RSA key is refused here with a message that
 * says why (libssh2 1.10 cannot sign with rsa-sha2 against OpenSSH >= 8.8)
 * and what to use instead (ed25519 or ECDSA).
 */
BG_EXTERN int bg_ssh_new(bg_ssh **out, const bg_ssh_options *opts);

/** bg_ssh_key_load(): load a key that cannot log in too (to describe it,
 *  or to print its public half). */
#define BG_SSH_KEY_LOAD_ANY 1u

/**
 * Load the client's private key once for both targets: `key_file` when
 * given (a command line's --key), else `[ssh] key_file` of `cfg`, else
 * $BREAKGLASS_SSH_KEY (removed from the environment once read), else none
 * (BG_ENOTFOUND; fine with use_agent). `*source_out` (optional) says where
 * the key came from, "file PATH" or "environment BREAKGLASS_SSH_KEY", for
 * messages; it is set as soon as a source was chosen, even when reading it
 * then failed, and NULL with BG_ENOTFOUND; the caller frees it with
 * bg_free(). A key that cannot log in (see bg_ssh_key_desc.usable) is refused
 * with the reason, BG_EUNSUPPORTED (BG_EINVAL for text that is no key),
 * unless `flags` has BG_SSH_KEY_LOAD_ANY. The key lives in locked memory;
 * the caller frees it.
 */
BG_EXTERN int bg_ssh_key_load(bg_secret **out, char **source_out, const bg_config *cfg, const char *key_file,
			      unsigned int flags);

/** What an OpenSSH private key is, read without its passphrase. */
typedef struct bg_ssh_key_desc {
	char type[64];        /**< "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", … */
	char fingerprint[64]; /**< of the public key, "SHA256:…" as `ssh-keygen -l` prints it */
	int encrypted;        /**< the private part is protected by a passphrase */
	char comment[256];    /**< the key's comment; "" when it has none or is encrypted */
	int usable;           /**< breakglass can log in with it: ed25519 or ECDSA, no passphrase */
	char reason[512];     /**< when not usable: "is an RSA key: …", why and what to do; else "" */
} bg_ssh_key_desc;

/**
 * Describe the private key `key` (borrowed), in the OpenSSH format
 * ("-----BEGIN OPENSSH PRIVATE KEY-----"), into `*out` (caller's memory).
 * Any key type is described, RSA included; `usable` and `reason` say
 * whether it can log in (the rule bg_ssh_new() and bg_ssh_key_load()
 * apply: ed25519 or ECDSA, without a passphrase). BG_EINVAL for text that is not an OpenSSH
 * private key (a .pub, a truncated file), BG_EUNSUPPORTED for the old PEM
 * format; the message says what to do.
 */
BG_EXTERN int bg_ssh_key_describe(bg_ssh_key_desc *out, const bg_secret *key);

/**
 * The public key line of the private key `key` (borrowed, OpenSSH
 * format), as `ssh-keygen -y -f KEY` prints it but without the newline:
 * "ssh-ed25519 AAAA… comment". It needs no passphrase: the public half is
 * stored in clear. `comment` replaces the key's own ("" for none); NULL
 * keeps the key's own, which is readable only when the key has no
 * passphrase (otherwise the line has none). `*line_out` is a string the
 * caller frees with bg_free(). Errors as bg_ssh_key_describe(); BG_EINVAL
 * also for a comment with a line break.
 */
BG_EXTERN int bg_ssh_key_public(char **line_out, const bg_secret *key, const char *comment);

#define BG_SSH_AUTHORIZED_OPTIONS_VERSION 1

/** What an authorized_keys line allows (bg_ssh_authorized_key_line). */
typedef struct bg_ssh_authorized_options {
	unsigned int version; /**< BG_SSH_AUTHORIZED_OPTIONS_VERSION */
	const char *target;   /**< "devvm" or "pve" */
	const char *from;     /**< where the connections come from, required: sshd's pattern-list
				   (addresses, CIDRs, wildcards, `!`, commas; no spaces or quotes) */
	const char *command;  /**< pve: the forced command; NULL: BG_PVE_COMMAND_DEFAULT */
	const char *comment;  /**< as bg_ssh_key_public(): NULL keeps the key's own */
} bg_ssh_authorized_options;

#define BG_SSH_AUTHORIZED_OPTIONS_INIT                                    \
	{                                                                 \
		BG_SSH_AUTHORIZED_OPTIONS_VERSION, NULL, NULL, NULL, NULL \
	}

BG_EXTERN int bg_ssh_authorized_options_init(bg_ssh_authorized_options *opts, unsigned int version);

/**
 * The authorized_keys line for the private key `key` (borrowed) on
 * `opts->target`, without the newline. The devvm's:
 *   from="FROM",no-port-forwarding,no-agent-forwarding,no-X11-forwarding TYPE BASE64 COMMENT
 * the Proxmox host's, where the key may run the forced command only:
 *   command="COMMAND",restrict,from="FROM" TYPE BASE64 COMMENT
 * A key whose type cannot log in (RSA, DSA, …) is refused with the reason
 * (BG_EUNSUPPORTED); one with a passphrase is fine (its public half is
 * stored in clear; it logs in through ssh-agent). BG_EINVAL for a bad
 * target, `from` or command (a quote or a line break), and the errors of
 * bg_ssh_key_public(). `*line_out` is freed by the caller with bg_free().
 */
BG_EXTERN int bg_ssh_authorized_key_line(char **line_out, const bg_secret *key, const bg_ssh_authorized_options *opts);

/**
 * A handle for `target` ("devvm" or "pve") built from the configuration:
 * host, port, user, host_key, host_key_policy, [ssh] known_hosts,
 * connect_timeout, source_address, use_agent,
 * and `key` (from bg_ssh_key_load, borrowed; may be NULL with use_agent).
 */
BG_EXTERN int bg_ssh_new_from_config(bg_ssh **out, const bg_config *cfg, const char *target, const bg_secret *key);

/** Connect and authenticate now (an exec does it when needed). */
BG_EXTERN int bg_ssh_connect(bg_ssh *s);

/**
 * The server's host key fingerprint, "SHA256:…" as ssh-keygen prints it,
 * once known (after a connect, even a refused one); else NULL. Owned by
 * the handle: valid until bg_ssh_free().
 */
BG_EXTERN const char *bg_ssh_host_key_fingerprint(const bg_ssh *s);

/** The server's host key type ("ssh-ed25519", …) once known, else NULL;
 *  owned by the handle like the fingerprint. */
BG_EXTERN const char *bg_ssh_host_key_type(const bg_ssh *s);

/**
 * How the server's host key was judged at the last connect, for messages
 * and `doctor`: "pinned by host_key", "known (FILE line N)", "new, stored
 * in FILE line N", "new, not stored (…)", "refused: …"; NULL before.
 */
BG_EXTERN const char *bg_ssh_host_key_check(const bg_ssh *s);

typedef enum bg_ssh_stream { BG_SSH_STDOUT = 1, BG_SSH_STDERR = 2 } bg_ssh_stream;

/** Output as it arrives. Return 0 to go on, negative to abort the exec
 *  (bg_ssh_exec then returns that value). */
typedef int (*bg_ssh_output_fn)(bg_ssh_stream stream, const char *data, size_t len, void *payload);

#define BG_SSH_EXEC_OPTIONS_VERSION 1

typedef struct bg_ssh_exec_options {
	unsigned int version; /**< BG_SSH_EXEC_OPTIONS_VERSION */
	int timeout_s;        /**< limit of the command; 60 when 0 */
	int remote_timeout;   /**< 1: run as `timeout -k 5 T sh -c CMD` on the far side
				   (libssh2 cannot signal a remote process); 0: send
				   the command as is (the forced command) */
	size_t output_cap;    /**< bytes kept per stream; 1 MiB when 0 */
	bg_ssh_output_fn on_output;
	void *payload;
} bg_ssh_exec_options;

#define BG_SSH_EXEC_OPTIONS_INIT                                  \
	{                                                         \
		BG_SSH_EXEC_OPTIONS_VERSION, 60, 1, 0, NULL, NULL \
	}

BG_EXTERN int bg_ssh_exec_options_init(bg_ssh_exec_options *opts, unsigned int version);

/** The outcome of one exec. Owned by the caller; bg_ssh_result_clear(). */
typedef struct bg_ssh_result {
	int exit_code;     /**< the remote exit status; -1 when none (signal, timeout) */
	char *exit_signal; /**< "KILL", "TERM", … when the command died of a signal, else NULL */
	int timed_out;     /**< the timeout fired (remote 124/137, or the local deadline) */
	char *out;         /**< stdout kept (NUL-terminated, may contain NUL) */
	size_t out_len;
	size_t out_dropped; /**< bytes over the cap, counted not kept */
	char *err;          /**< stderr kept */
	size_t err_len;
	size_t err_dropped;
	long long elapsed_ms;
} bg_ssh_result;

/**
 * Run `command` and wait for it, within opts->timeout_s (plus a short grace
 * for the far side's `timeout` to report). Returns BG_OK when the command
 * ran (whatever its exit status: see result->exit_code), BG_ETIMEOUT when
 * it outlived its deadline (result filled with what came), BG_ECANCELLED
 * after bg_ssh_cancel(), or a transport error: BG_ECONNECT, BG_EAUTH,
 * BG_EHOSTKEY, BG_EPROTO. `opts` may be NULL for the defaults.
 */
BG_EXTERN int bg_ssh_exec(bg_ssh_result *result, bg_ssh *s, const char *command, const bg_ssh_exec_options *opts);

/** Free the result's strings and zero it. */
BG_EXTERN void bg_ssh_result_clear(bg_ssh_result *r);

/**
 * Abort the exec or connect in progress on `s` (from any thread); it
 * returns BG_ECANCELLED within a fraction of a second. The connection is
 * dropped (the next exec reconnects).
 */
BG_EXTERN void bg_ssh_cancel(bg_ssh *s);

/** Close the connection (if any) and free. NULL is a no-op. */
BG_EXTERN void bg_ssh_free(bg_ssh *s);

#ifdef __cplusplus
}
#endif
#endif
