/* Helpers the commands share: exit statuses, keys and targets, progress,
 * JSON output. */
#include "ctl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ctl_is_transport_error(int code)
{
	return code == BG_ECONNECT || code == BG_EAUTH || code == BG_EHOSTKEY || code == BG_EPROTO ||
	       code == BG_ETIMEOUT;
}

int ctl_exit_for(int code)
{
	if (code == BG_OK)
		return CTL_EXIT_OK;
	if (code == BG_ECONFIG || code == BG_EINVAL || code == BG_EUNSUPPORTED)
		return CTL_EXIT_USAGE;
	if (ctl_is_transport_error(code))
		return CTL_EXIT_UNREACHABLE;
	return CTL_EXIT_FAILED;
}

int ctl_fail(const ctl_ctx *ctx, int code, const char *what)
{
	const bg_error *e = bg_error_last();

	fprintf(stderr, "%s: %s: %s\n", ctx->prog, what, e->message[0] ? e->message : bg_strerror(code));
	return ctl_exit_for(code);
}

int ctl_open_target(bg_ssh **out, bg_secret **key_out, const ctl_ctx *ctx, const char *target)
{
	int rc;

	*out = NULL;
	*key_out = NULL;
	rc = bg_ssh_key_load(key_out, NULL, ctx->cfg, NULL, 0);
	if (rc == BG_ENOTFOUND && !bg_app_conf_int(ctx->cfg, "ssh", "use_agent")) {
		fprintf(stderr,
			"%s: no SSH key: set [ssh] key_file, put the key in $BREAKGLASS_SSH_KEY, "
			"or set [ssh] use_agent = true\n",
			ctx->prog);
		return BG_ECONFIG;
	}
	if (rc != BG_OK && rc != BG_ENOTFOUND) {
		fprintf(stderr, "%s: %s\n", ctx->prog, bg_error_last()->message);
		return rc;
	}
	rc = bg_ssh_new_from_config(out, ctx->cfg, target, *key_out);
	if (rc != BG_OK) {
		fprintf(stderr, "%s: %s: %s\n", ctx->prog, target, bg_error_last()->message);
		bg_secret_free(*key_out);
		*key_out = NULL;
	}
	return rc;
}

/* ---- progress -------------------------------------------------------- */

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running, stop;
	char label[128];
} progress = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *progress_loop(void *arg)
{
	static const char spin[] = "|/-\\";
	struct timespec start, now, until;
	unsigned tick = 0;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&progress.lock);
	while (!progress.stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		fprintf(stderr, "\r%c %s … %ld s ", spin[tick++ % 4], progress.label,
			(long)(now.tv_sec - start.tv_sec));
		fflush(stderr);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&progress.cond, &progress.lock, &until);
	}
	fputs("\r\033[K", stderr);
	fflush(stderr);
	pthread_mutex_unlock(&progress.lock);
	return NULL;
}

void ctl_progress_start(const ctl_ctx *ctx, const char *label)
{
	if (!ctx->progress || progress.running)
		return;
	snprintf(progress.label, sizeof(progress.label), "%s", label);
	progress.stop = 0;
	progress.running = pthread_create(&progress.thread, NULL, progress_loop, NULL) == 0;
}

void ctl_progress_stop(void)
{
	if (!progress.running)
		return;
	pthread_mutex_lock(&progress.lock);
	progress.stop = 1;
	pthread_cond_signal(&progress.cond);
	pthread_mutex_unlock(&progress.lock);
	pthread_join(progress.thread, NULL);
	progress.running = 0;
}

/* ---- JSON ------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

void ctl_json_string(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	while (i < len) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else if ((n = utf8_len(p + i, len - i)) > 1) {
			fwrite(p + i, 1, n, f);
			i += n;
			continue;
		} else if (n == 0)
			fputs("\\ufffd", f); /* not UTF-8: JSON must be */
		else
			fputc(c, f);
		i++;
	}
	fputc('"', f);
}

void ctl_json_str(FILE *f, const char *s)
{
	ctl_json_string(f, s, s ? strlen(s) : 0);
}

int ctl_server_call(const ctl_ctx *ctx, const char *method, const char *path, const char *body, int timeout_s,
		    int *status, char **resp)
{
	char err[400];

	if (ctl_http_request(ctx->server, method, path, body, timeout_s, status, resp, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: --server: %s\n", ctx->prog, err);
		return CTL_EXIT_UNREACHABLE;
	}
	return 0;
}

void ctl_server_error(const ctl_ctx *ctx, const char *what, int status, const char *body)
{
	char *msg = NULL;

	if (!body || bg_event_field(&msg, body, strlen(body), "error") != BG_OK)
		msg = NULL;
	fprintf(stderr, "%s: %s: HTTP %d: %s%s\n", ctx->prog, what, status, msg ? msg : (body ? body : ""),
		status == 401 ? " (set $BREAKGLASS_TOKEN or $BREAKGLASS_TOKEN_FILE)" : "");
	bg_free(msg);
}
