/*
 * Internal to lib/ssh: libssh2 is loaded on first use (ssh2_dl.c), not at
 * exec. The libssh2 API is called as usual; these two say whether the
 * library could be loaded.
 */
#ifndef BG_SSH_SSH2_DL_H
#define BG_SSH_SSH2_DL_H

#include <libssh2.h>

/* Load libssh2.so.1 once (thread-safe): 0, or -1 when it cannot be. */
int bg_ssh2_load(void);
/* Why it could not be loaded ("" when it was). */
const char *bg_ssh2_error(void);

#endif
