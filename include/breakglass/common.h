/*
 * libbreakglass — common definitions: export macro, status codes, errors,
 * version.
 *
 * Conventions used by every module (see docs/architecture.md):
 *  - Functions return an int status: BG_OK (0) or a negative BG_E* code.
 *  - On failure, bg_error_last() describes what went wrong, in words an
 *    operator can act on. The record is per thread and stays valid until
 *    the next library call on the same thread (a call that succeeds may
 *    clear it): copy the message before calling the library again.
 *  - Handles are opaque; the output parameter comes first; every *_free()
 *    accepts NULL.
 *  - A string the library hands to the caller (a `char **…_out`) is freed
 *    with bg_free(); `const char *` results are owned by the library, for
 *    as long as each function's comment says.
 *  - Options structs start with a `version` field; initialise them with the
 *    module's *_INIT macro or *_init() function.
 *  - Callbacks take `void *payload` last. Unless documented otherwise they
 *    return 0 to continue; a negative value aborts the operation and is
 *    returned by the function that invoked the callback.
 */
#ifndef BREAKGLASS_COMMON_H
#define BREAKGLASS_COMMON_H

#include <stddef.h>

#if defined(BG_STATIC_DEFINE)
#define BG_EXTERN
#elif defined(__GNUC__)
#define BG_EXTERN __attribute__((visibility("default")))
#else
#define BG_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes. 0 is success; every error is negative. */
typedef enum bg_status {
	BG_OK = 0,
	BG_ERROR = -1,         /**< generic failure */
	BG_ENOMEM = -2,        /**< out of memory */
	BG_EINVAL = -3,        /**< invalid argument */
	BG_ECONFIG = -4,       /**< configuration error (file, line and key in the message) */
	BG_ETIMEOUT = -5,      /**< a deadline expired */
	BG_ECONNECT = -6,      /**< could not connect (refused, unreachable, DNS) */
	BG_EAUTH = -7,         /**< authentication failed */
	BG_EHOSTKEY = -8,      /**< host key not the pinned or known one, or unverifiable */
	BG_EPROTO = -9,        /**< the peer spoke something unexpected */
	BG_EREJECTED = -10,    /**< the request was rejected (not allowlisted) */
	BG_EBUSY = -11,        /**< another operation holds the lock */
	BG_EFAILED = -12,      /**< the operation ran but did not reach its goal */
	BG_ECANCELLED = -13,   /**< cancelled by the caller */
	BG_EIO = -14,          /**< local I/O error */
	BG_ENOTFOUND = -15,    /**< no such object */
	BG_EUNSUPPORTED = -16, /**< not supported (e.g. an RSA key with libssh2 1.10) */
	BG_ETOOBIG = -17,      /**< input over a size limit */
	BG_EUNAVAILABLE = -18, /**< a service (e.g. the LLM API) is unreachable after retries */
	BG_EDENIED = -19,      /**< refused by policy or by a human decision */
	BG_ESTATE = -20        /**< wrong state for this call (e.g. a turn already runs) */
} bg_status;

/** A short, static description of a status code. Never returns NULL. */
BG_EXTERN const char *bg_strerror(int code);

/** The last failure on this thread. */
typedef struct bg_error {
	int code;            /**< a bg_status value */
	const char *message; /**< human message; never NULL */
} bg_error;

/**
 * The last failure recorded on the calling thread, or a record with code
 * BG_OK and an empty message when none. The pointer is owned by the library
 * and valid until the next library call on this thread.
 */
BG_EXTERN const bg_error *bg_error_last(void);

/** Forget the last failure of this thread. */
BG_EXTERN void bg_error_clear(void);

/**
 * Free a string the library returned to the caller (bg_session_list,
 * bg_event_field, bg_audit_recent, bg_llm_check, bg_ssh_key_public, every
 * *_to_json and *_to_text). Use this rather than free(): the library and
 * the program may not share an allocator (a static C runtime, a binding).
 * NULL is a no-op.
 */
BG_EXTERN void bg_free(void *p);

/** The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
BG_EXTERN const char *bg_version(void);

#ifdef __cplusplus
}
#endif
#endif
