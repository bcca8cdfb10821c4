/*
 * breakglass-web [--config FILE] [--check] [--routes] [--assets] [--keepalive-ms N]
 *
 * The HTTP server of docs/openapi.yaml on CivetWeb. Startup reads and checks the
 * whole configuration before it binds anything (so --check is the same
 * code); the only way out is SIGTERM or SIGINT, which are received by
 * sigwait() in the main thread: every other thread is started with them
 * blocked, so no handler ever runs in the middle of a worker.
 */
#include "web.h"

#include <applog.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXIT_USAGE 2

static int usage(FILE *f, int rc)
{
	fputs("usage: breakglass-web [--config FILE] [--check] [--routes] [--assets] [--keepalive-ms N]\n"
	      "  --config FILE      breakglass.conf (default " BG_CONFIG_CLIENT_DEFAULT_PATH ", may be missing)\n"
	      "  --check            check the configuration (and the htpasswd file, the token) and exit\n"
	      "  --routes           print the routes the server registers (METHOD PATTERN AUTH) and exit\n"
	      "  --assets           print the page's compiled-in files (PATH TYPE BYTES HASH, tab-separated) and exit\n"
	      "  --keepalive-ms N   SSE keepalive interval (default 15000)\n"
	      "Logs: one JSON line per request on stdout; the library's messages as JSON on stderr.\n"
	      "See breakglass-web(8).\n",
	      f);
	return rc;
}

static void print_routes(void)
{
	int i;

	for (i = 0; i < WEB_ROUTE_COUNT; i++)
		printf("%s %s %s\n", web_routes[i].method, web_routes[i].pattern, web_routes[i].auth ? "auth" : "none");
}

/* Room for every attached client's socket. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

typedef struct opts {
	const char *config;
	int check, routes, assets, keepalive_ms;
} opts;

static int parse_args(opts *o, int argc, char **argv)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			o->config = argv[++i];
		} else if (strcmp(argv[i], "--check") == 0) {
			o->check = 1;
		} else if (strcmp(argv[i], "--routes") == 0) {
			o->routes = 1;
		} else if (strcmp(argv[i], "--assets") == 0) {
			o->assets = 1;
		} else if (strcmp(argv[i], "--keepalive-ms") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 50 || v > 3600000) {
				fprintf(stderr, "breakglass-web: --keepalive-ms: want 50..3600000, got '%s'\n",
					argv[i]);
				return -1;
			}
			o->keepalive_ms = (int)v;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			exit(usage(stdout, 0));
		} else {
			fprintf(stderr, "breakglass-web: unknown or incomplete argument '%s'\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static int die(const char *what, const char *msg, int rc)
{
	fprintf(stderr, "breakglass-web: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
	return rc;
}

int main(int argc, char **argv)
{
	web_server srv;
	web_vm vm;
	opts o;
	bg_config *cfg = NULL;
	bg_secret *key = NULL;
	sigset_t sigs;
	char err[512];
	int rc, sig, ready_ms;
	struct timespec now;

	memset(&srv, 0, sizeof(srv));
	clock_gettime(CLOCK_MONOTONIC, &srv.started);
	if (parse_args(&o, argc, argv) != 0)
		return usage(stderr, EXIT_USAGE);
	if (o.routes) {
		print_routes();
		return 0;
	}
	if (o.assets) {
		web_ui_print_assets(stdout);
		return 0;
	}
	web_mem_init();
	bg_applog_init("breakglass-web", BG_APPLOG_JSON, BG_LOG_INFO);
	if (bg_config_load(&cfg, BG_CONFIG_CLIENT, o.config) != BG_OK)
		return die("configuration", bg_error_last()->message, EXIT_USAGE);
	if (web_settings_load(&srv.set, cfg, err, sizeof(err)) != 0 ||
	    web_auth_new(&srv.auth, &srv.set, err, sizeof(err)) != 0) {
		bg_config_free(cfg);
		return die("configuration", err, EXIT_USAGE);
	}
	if (o.keepalive_ms)
		srv.set.keepalive_ms = o.keepalive_ms;
	rc = bg_ssh_key_load(&key, NULL, cfg, NULL, 0);
	if (rc != BG_OK && !(rc == BG_ENOTFOUND && bg_app_conf_int(cfg, "ssh", "use_agent")))
		web_log_event("warning", "no SSH key (%s): the verbs and the triage will fail until one is configured",
			      bg_error_last()->message);
	if (o.check) {
		printf("breakglass-web: configuration OK (listen %s:%d)\n", srv.set.listen_addr, srv.set.listen_port);
		web_auth_free(srv.auth);
		bg_secret_free(key);
		bg_config_free(cfg);
		return 0;
	}

	/* SIGTERM and SIGINT go to sigwait() below, never to a worker. A
	 * write to a client that left must fail with EPIPE, not kill us. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	srv.cfg = cfg;
	srv.metrics = calloc(1, sizeof(*srv.metrics));
	if (!srv.metrics || web_vm_init(&vm, cfg, key) != 0)
		return die("startup", "out of memory", 1);
	srv.vm = &vm;
	if (bg_audit_open(&srv.audit, srv.set.audit_log[0] ? srv.set.audit_log : NULL, 0) != BG_OK)
		return die("audit log", bg_error_last()->message, 1);
	if (bg_session_store_open(&srv.store, srv.set.sessions_dir[0] ? srv.set.sessions_dir : NULL,
				  srv.set.max_sessions) != BG_OK)
		return die("sessions", bg_error_last()->message, 1);
	if (web_agents_new(&srv.agents, &srv) != 0 || web_stream_new(&srv.stream, &srv) != 0)
		return die("startup", "could not start the streaming thread", 1);
	if (web_server_start(&srv, err, sizeof(err)) != 0)
		return die("listen", err, 1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ready_ms = (int)((now.tv_sec - srv.started.tv_sec) * 1000 + (now.tv_nsec - srv.started.tv_nsec) / 1000000);
	printf("{\"event\":\"listening\",\"address\":\"%s\",\"port\":%d,\"ready_ms\":%d,\"threads\":%d,"
	       "\"max_streams\":%d}\n",
	       srv.set.listen_addr, web_server_port(&srv), ready_ms, srv.set.threads, srv.set.max_streams);
	fflush(stdout);
	web_log_start();

	do {
		rc = sigwait(&sigs, &sig);
	} while (rc == EINTR);
	web_log_event("stopping", "signal %d: ending turns, closing streams", sig);
	atomic_store(&srv.stopping, 1);
	web_vm_cancel_all(&vm);
	web_agents_free(srv.agents); /* cancels and joins: their last events are on disk */
	srv.agents = NULL;
	web_stream_shutdown(srv.stream, 2000);
	web_server_stop(&srv);
	web_stream_free(srv.stream);
	bg_session_store_free(srv.store);
	bg_audit_free(srv.audit);
	web_auth_free(srv.auth);
	web_vm_destroy(&vm);
	free(srv.metrics);
	bg_secret_free(key);
	bg_config_free(cfg);
	web_log_event("stopped", "bye");
	web_log_stop();
	return 0;
}
