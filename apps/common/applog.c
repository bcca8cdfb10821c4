#include "applog.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_program = "breakglass";
static bg_applog_format log_format;
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

/* JSON string escaping for the message: the library already flattened
 * newlines, but quotes, backslashes and control bytes remain possible. */
static void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void handler(bg_log_level level, const char *module, const char *message, void *payload)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&stderr_lock);
	if (log_format == BG_APPLOG_JSON) {
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"module\":", when, bg_log_level_name(level));
		put_json_string(stderr, module);
		fputs(",\"msg\":", stderr);
		put_json_string(stderr, message);
		fputs("}\n", stderr);
	} else {
		fprintf(stderr, "%s: %s: %s: %s\n", log_program, bg_log_level_name(level), module, message);
	}
	fflush(stderr);
	pthread_mutex_unlock(&stderr_lock);
}

void bg_applog_init(const char *program, bg_applog_format format, bg_log_level min_level)
{
	log_program = program;
	log_format = format;
	bg_log_set_handler(handler, min_level, NULL);
}
