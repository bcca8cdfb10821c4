/*
 * libbreakglass — leveled logging, routed by the application.
 *
 * The library never prints. It hands each message to the handler the
 * application installed (none by default: messages are dropped). The
 * applications format them as text on stderr or as JSON lines.
 */
#ifndef BREAKGLASS_LOG_H
#define BREAKGLASS_LOG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bg_log_level { BG_LOG_DEBUG = 10, BG_LOG_INFO = 20, BG_LOG_WARN = 30, BG_LOG_ERROR = 40 } bg_log_level;

/**
 * A log handler. `module` is the library room ("ssh", "pve", …), `message`
 * one line without a newline. Called on the thread that logged; the
 * handler must be thread-safe. The strings are valid during the call only.
 */
typedef void (*bg_log_fn)(bg_log_level level, const char *module, const char *message, void *payload);

/** Install the handler (NULL: drop everything) and the minimum level. */
BG_EXTERN void bg_log_set_handler(bg_log_fn fn, bg_log_level min_level, void *payload);

/** "debug", "info", "warn", "error". Never NULL; static. */
BG_EXTERN const char *bg_log_level_name(bg_log_level level);

/** Parse a level name; BG_EINVAL when unknown. */
BG_EXTERN int bg_log_level_parse(bg_log_level *out, const char *name);

#ifdef __cplusplus
}
#endif
#endif
