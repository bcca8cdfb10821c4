/*
 * Internal (host side): a token bucket shared by every breakglass-pve
 * process, kept in a small file under lock_dir (root-owned 0700), used to
 * rate-limit the log lines of rejected requests: anyone who can reach the
 * forced command can send rejected requests as fast as sshd lets them.
 */
#ifndef BG_HOST_RATE_H
#define BG_HOST_RATE_H

#include <stdint.h>

#define BG_REJECT_BURST        60   /* lines logged at once */
#define BG_REJECT_REFILL_MS    1000 /* then one line per this many ms */
#define BG_REJECT_INPUT_LOGGED 256  /* bytes of a rejected input that are logged */

/*
 * Take one token from the bucket `path` (created when missing). Returns 1
 * when the caller may log, with *suppressed set to the number of lines
 * dropped since the last one logged (and reset); 0 when it must not (the
 * drop is counted). Any failure to use the bucket (lock_dir missing or
 * unsafe) answers 1: a rate limit must never hide the first lines.
 */
int bg_rate_take(const char *path, int64_t now_ms, long long *suppressed);

#endif
