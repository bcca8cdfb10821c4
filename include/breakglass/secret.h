/*
 * libbreakglass — secrets in locked memory.
 *
 * A bg_secret holds key material or a token: its pages are locked
 * (mlock, so they are not swapped out), excluded from core dumps
 * (MADV_DONTDUMP), and wiped before they are freed.
 */
#ifndef BREAKGLASS_SECRET_H
#define BREAKGLASS_SECRET_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bg_secret bg_secret;

/** A secret holding a copy of `len` bytes of `data` (NUL-terminated too). */
BG_EXTERN int bg_secret_new(bg_secret **out, const void *data, size_t len);

/**
 * Read a whole file (at most 64 KiB) into a secret. A file readable by group
 * or others is accepted; callers that care (doctor) check the mode.
 */
BG_EXTERN int bg_secret_from_file(bg_secret **out, const char *path);

/**
 * Read the environment variable `name` into a secret and remove it from the
 * environment (so a child process or /proc/self/environ never sees it).
 * BG_ENOTFOUND when unset or empty.
 */
BG_EXTERN int bg_secret_from_env(bg_secret **out, const char *name);

/** The bytes (NUL-terminated) and their length; owned by the secret. */
BG_EXTERN const char *bg_secret_data(const bg_secret *s);
BG_EXTERN size_t bg_secret_len(const bg_secret *s);

/** Whether the pages could be locked (mlock can fail under RLIMIT_MEMLOCK). */
BG_EXTERN int bg_secret_locked(const bg_secret *s);

/** Wipe and free. NULL is a no-op. */
BG_EXTERN void bg_secret_free(bg_secret *s);

/** Compare in time independent of where the bytes differ. 1 when equal. */
BG_EXTERN int bg_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

#ifdef __cplusplus
}
#endif
#endif
