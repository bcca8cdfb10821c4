/* Internal: the parts of the PVE client that do not need a connection,
 * reachable by the unit tests. */
#ifndef BG_PVE_CLIENT_H
#define BG_PVE_CLIENT_H

#include "breakglass/pve.h"

/* The bg_status for breakglass-pve's exit status (0..4; anything else,
 * including -1 for "none", is BG_ERROR). */
int bg_pve_status_for_exit(int exit_code);

/* Fill `out` (zeroed first) from what the host sent: the exit status and
 * the two streams. The --json document on stdout is parsed tolerantly:
 * missing members stay NULL/0, a stdout that is not JSON leaves the
 * parsed members empty (the text is still kept). Returns BG_OK or
 * BG_ENOMEM; the verb's outcome is for bg_pve_status_for_exit(). */
int bg_pve_result_fill(bg_pve_result *out, const char *verb, int exit_code, const char *out_text, size_t out_len,
		       const char *err_text, size_t err_len);

#endif
