/* breakglassctl: what the commands share. Each command lives in its own
 * cmd_*.c and is registered by one line in main.c's table. */
#ifndef BG_CTL_H
#define BG_CTL_H

#include <breakglass.h>
#include <stdio.h>

#include "appconf.h"
#include "http.h"

/* Exit statuses (breakglassctl(1)); `exec` and `pve` pass the remote one through. */
enum { CTL_EXIT_OK = 0, CTL_EXIT_FAILED = 1, CTL_EXIT_USAGE = 2, CTL_EXIT_UNREACHABLE = 255 };

typedef struct ctl_ctx {
	const char *prog;        /* "breakglassctl" */
	const char *config_path; /* --config, or NULL for the default */
	int json;                /* --json: one document on stdout */
	int progress;            /* stderr is a terminal: show progress */
	bg_config *cfg;          /* loaded per the command's needs */
	const ctl_http *server;  /* --server: go through breakglass-web, or NULL */
} ctl_ctx;

/* How much configuration a command needs before it runs. */
typedef enum ctl_config_need {
	CTL_CONFIG_NONE = 0,  /* version */
	CTL_CONFIG_LOOSE = 1, /* file + environment, required keys not checked */
	CTL_CONFIG_FULL = 2   /* file + environment, validated */
} ctl_config_need;

typedef struct ctl_command {
	const char *name;    /* as typed */
	const char *args;    /* for the usage text */
	const char *summary; /* one line */
	ctl_config_need config;
	/* argv[0] is the command name. Returns the exit status. */
	int (*run)(ctl_ctx *ctx, int argc, char **argv);
} ctl_command;

/* A usage error: the message and the usage text on stderr; returns 2. */
int ctl_usage_error(const ctl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failure of the library: "prog: what: message" on stderr, and the
 * exit status its code calls for (2 config, 255 unreachable, else 1). */
int ctl_fail(const ctl_ctx *ctx, int code, const char *what);

/* Exit status for a library status code (see ctl_fail). */
int ctl_exit_for(int code);

/* Whether a code means the target could not be reached (exit 255). */
int ctl_is_transport_error(int code);

/* An SSH handle for "devvm" or "pve", with the key from bg_ssh_key_load()
 * (NULL key allowed with use_agent). `key_out` must be freed after the
 * handle. */
int ctl_open_target(bg_ssh **out, bg_secret **key_out, const ctl_ctx *ctx, const char *target);

/* Progress on stderr for long operations, only on a terminal: an elapsed
 * time ticker from a thread until ctl_progress_stop(). */
void ctl_progress_start(const ctl_ctx *ctx, const char *label);
void ctl_progress_stop(void);

/* A request to --server: 0 with the HTTP status and body (caller frees),
 * or an error already reported on stderr and the exit status (255). */
int ctl_server_call(const ctl_ctx *ctx, const char *method, const char *path, const char *body, int timeout_s,
		    int *status, char **resp);

/* The error message of a JSON error body ("error"), or the body. */
void ctl_server_error(const ctl_ctx *ctx, const char *what, int status, const char *body);

/* JSON output helpers (the apps use the public API only, so no json-c). */
void ctl_json_string(FILE *f, const char *s, size_t len); /* NULL prints null */
void ctl_json_str(FILE *f, const char *s);

#endif
