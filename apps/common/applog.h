/* Route the library's log messages: text on stderr for a terminal, JSON
 * lines for containers (one object per line: time, level, module, msg). */
#ifndef BG_APPLOG_H
#define BG_APPLOG_H

#include <breakglass.h>

typedef enum bg_applog_format { BG_APPLOG_TEXT = 0, BG_APPLOG_JSON = 1 } bg_applog_format;

/* Install the stderr handler. `program` prefixes text lines. */
void bg_applog_init(const char *program, bg_applog_format format, bg_log_level min_level);

#endif
