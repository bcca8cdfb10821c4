/* Internal: logging from inside the library. */
#ifndef BG_CORE_LOG_H
#define BG_CORE_LOG_H

#include "breakglass/log.h"
#include "error.h"

void bg_log(bg_log_level level, const char *module, const char *fmt, ...) BG_PRINTF(3, 4);

/* Whether a message at this level would reach the handler (to skip work). */
int bg_log_enabled(bg_log_level level);

#define bg_debug(mod, ...) bg_log(BG_LOG_DEBUG, mod, __VA_ARGS__)
#define bg_info(mod, ...)  bg_log(BG_LOG_INFO, mod, __VA_ARGS__)
#define bg_warn(mod, ...)  bg_log(BG_LOG_WARN, mod, __VA_ARGS__)
#define bg_err(mod, ...)   bg_log(BG_LOG_ERROR, mod, __VA_ARGS__)

#endif
