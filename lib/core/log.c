#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bg_log_fn log_fn;
static void *log_payload;
static bg_log_level log_min = BG_LOG_INFO;

void bg_log_set_handler(bg_log_fn fn, bg_log_level min_level, void *payload)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_payload = payload;
	log_min = min_level;
	pthread_mutex_unlock(&log_lock);
}

const char *bg_log_level_name(bg_log_level level)
{
	switch (level) {
	case BG_LOG_DEBUG: return "debug";
	case BG_LOG_INFO: return "info";
	case BG_LOG_WARN: return "warn";
	case BG_LOG_ERROR: return "error";
	default: return "info";
	}
}

int bg_log_level_parse(bg_log_level *out, const char *name)
{
	static const bg_log_level levels[] = {BG_LOG_DEBUG, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (name && strcmp(name, bg_log_level_name(levels[i])) == 0) {
			*out = levels[i];
			return BG_OK;
		}
	}
	return bg_error_set(BG_EINVAL, "unknown log level '%s' (debug, info, warn, error)", name ? name : "");
}

int bg_log_enabled(bg_log_level level)
{
	int on;

	pthread_mutex_lock(&log_lock);
	on = log_fn != NULL && level >= log_min;
	pthread_mutex_unlock(&log_lock);
	return on;
}

void bg_log(bg_log_level level, const char *module, const char *fmt, ...)
{
	char message[2048];
	bg_log_fn fn;
	void *payload;
	va_list ap;

	pthread_mutex_lock(&log_lock);
	fn = level >= log_min ? log_fn : NULL;
	payload = log_payload;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	/* One line per message: a newline inside would let a remote string
	 * forge a log line. */
	for (char *p = message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fn(level, module, message, payload);
}
