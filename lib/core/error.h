/* Internal: recording the last failure of the calling thread. */
#ifndef BG_CORE_ERROR_H
#define BG_CORE_ERROR_H

#include "breakglass/common.h"

#if defined(__GNUC__)
#define BG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BG_PRINTF(f, a)
#endif

/*
 * Record `code` and a formatted message as this thread's last failure and
 * return `code`, so that failures read `return bg_error_set(BG_EINVAL, …);`.
 * The arguments may include bg_error_last()->message itself, to wrap the
 * current message: it is read before it is replaced.
 */
int bg_error_set(int code, const char *fmt, ...) BG_PRINTF(2, 3);

/*
 * Prefix the current message with more context ("connecting to devvm: " +
 * old message) and return the current code.
 */
int bg_error_prefix(const char *fmt, ...) BG_PRINTF(1, 2);

/* Record an out-of-memory failure and return BG_ENOMEM. */
int bg_error_oom(void);

#endif
