/*
 * breakglass-web: the internal interfaces of the server.
 *
 * server.c   CivetWeb setup, the one dispatch function (routing, auth,
 *            request safety, security headers, the JSON log line)
 * routes.c   the route table (WEB_ROUTES) and the handlers
 * auth.c     proxy / bearer / basic (crypt_r) and the failure throttle
 * stream.c   SSE: one streaming thread owns every attached socket
 * agents.c   one bg_agent per session, its turns in threads of their own
 * vm.c       the VM and its two hosts: the one object handed to handlers
 * ui.c       the page: apps/web/ui/ compiled in (assets.h), /, /ui/, favicon
 * deps.c     what the server knows of its peers: /api/health/deps
 * auditview.c  /api/audit with its filters
 * metrics.c  Prometheus counters
 * mem.c      memory a burst leaves behind, given back
 */
#ifndef WEB_H
#define WEB_H

#include <breakglass.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "appconf.h"
#include "json.h"

struct mg_connection;
struct mg_context;

#define WEB_BODY_MAX            (64 * 1024)
#define WEB_BODY_DEADLINE_MS    10000 /* the whole body, from the start of the request */
#define WEB_SESSION_ID_LEN      32
#define WEB_STREAM_KEEPALIVE_MS 15000

/* The routes: one table for dispatch, --routes, the metrics and the
 * OpenAPI check. X(ID, METHOD, PATTERN, AUTH, HANDLER) */
#define WEB_ROUTES(X)                                                     \
	X(HEALTH, "GET", "/health", 0, route_health)                      \
	X(PAGE, "GET", "/", 1, route_page)                                \
	X(ASSET, "GET", "/ui/{build}/{path}", 1, route_asset)             \
	X(FAVICON, "GET", "/favicon.ico", 0, route_favicon)               \
	X(SESSION_NEW, "POST", "/api/session", 1, route_session_new)      \
	X(SESSIONS, "GET", "/api/sessions", 1, route_sessions)            \
	X(STREAM, "GET", "/api/session/{id}/stream", 1, route_stream)     \
	X(PROMPT, "POST", "/api/session/{id}/prompt", 1, route_prompt)    \
	X(CANCEL, "POST", "/api/session/{id}/cancel", 1, route_cancel)    \
	X(APPROVE, "POST", "/api/session/{id}/approve", 1, route_approve) \
	X(VERBS, "GET", "/api/pve/verbs", 1, route_verbs)                 \
	X(VERB, "POST", "/api/pve/{verb}", 1, route_verb)                 \
	X(TRIAGE, "POST", "/api/devvm/triage", 1, route_triage)           \
	X(AUDIT, "GET", "/api/audit", 1, route_audit)                     \
	X(WHOAMI, "GET", "/api/whoami", 1, route_whoami)                  \
	X(DEPS, "GET", "/api/health/deps", 1, route_deps)                 \
	X(METRICS, "GET", "/metrics", 1, route_metrics)

enum web_route_id {
#define WEB_ROUTE_ENUM(id, m, p, a, h) WEB_ROUTE_##id,
	WEB_ROUTES(WEB_ROUTE_ENUM)
#undef WEB_ROUTE_ENUM
		WEB_ROUTE_COUNT
};

typedef struct web_req web_req;
typedef int (*web_handler)(web_req *r);

typedef struct web_route {
	const char *method;
	const char *pattern;
	int auth;
	web_handler handler;
} web_route;

extern const web_route web_routes[WEB_ROUTE_COUNT];

/* ---- settings: the [web] keys and what the server derives from them ---- */

enum { WEB_AUTH_PROXY = 1, WEB_AUTH_BEARER = 2, WEB_AUTH_BASIC = 4, WEB_AUTH_NONE = 8 };

typedef struct web_settings {
	char listen_addr[64]; /* IPv4 dotted quad */
	int listen_port;
	int auth_methods; /* WEB_AUTH_* */
	char proxy_header[128];
	char trusted_proxies[512];
	char bearer_token_file[512];
	char htpasswd_file[512];
	char sessions_dir[512];
	char audit_log[512];
	int max_sessions;
	int threads;
	int max_streams;  /* attached SSE clients */
	int keepalive_ms; /* SSE keepalive comment interval */
} web_settings;

/* ---- the VM and its hosts: handed down to every handler ---------------- */

#define WEB_VM_MAX_ACTIVE 64

/* What the server knows of its peers (deps.c): GET /api/health/deps. */
enum { WEB_PEER_DEVVM, WEB_PEER_PVE, WEB_PEER_LLM, WEB_PEER_COUNT };

typedef struct web_peer {
	long long ok_at, fail_at;      /* wall clock, ms; 0: never */
	char ok_via[16], fail_via[16]; /* verb, triage, turn, probe */
	char detail[200];              /* what the last success said */
	char error[240];               /* what the last failure said */
	int probing, probe_started;
	time_t probe_at; /* monotonic s: when the last probe started */
	pthread_t thread;
	int has_thread;
} web_peer;

struct web_vm;
typedef struct web_probe_arg {
	struct web_vm *vm;
	int peer;
} web_probe_arg;

typedef struct web_health {
	pthread_mutex_t lock;
	pthread_cond_t done; /* a probe ended */
	int interval_s;      /* [web] health_interval */
	char provider[32];   /* [agent] provider: "offline" has no endpoint */
	bg_secret *llm_key;  /* the provider's key from the environment, or NULL */
	web_peer peer[WEB_PEER_COUNT];
	web_probe_arg args[WEB_PEER_COUNT];
	unsigned long probes; /* probes run so far */
	char vm_state[32];    /* the VM's last known state */
	long long vm_state_at;
	char vm_state_via[16];
	int stopping;
} web_health;

/* Tools seen in one turn's events, to pair results with their calls. */
#define WEB_TURN_SCAN_TOOLS 32
typedef struct web_turn_scan {
	char id[WEB_TURN_SCAN_TOOLS][64];
	int peer[WEB_TURN_SCAN_TOOLS];
	int n;
	int fell_back; /* the offline playbook took over */
} web_turn_scan;

typedef struct web_vm {
	const char *name; /* "devvm": shown, audited */
	const bg_config *cfg;
	const bg_secret *ssh_key; /* NULL with use_agent */
	char vmid[32];
	int verb_timeout_s, devvm_timeout_s;
	pthread_mutex_t lock;
	int mutating;     /* a mutating verb runs */
	char holder[160]; /* who runs it */
	char holder_verb[32];
	time_t holder_since;
	bg_ssh *active[WEB_VM_MAX_ACTIVE]; /* running execs, cancelled at stop */
	int stopping;
	web_health health; /* its peers as the server last saw them */
} web_vm;

int web_vm_init(web_vm *vm, const bg_config *cfg, const bg_secret *key);
void web_vm_destroy(web_vm *vm);
/* Cancel every exec in progress (shutdown). */
void web_vm_cancel_all(web_vm *vm);
/* Register (add 1) / forget (add 0) an exec in progress, so that a stop
 * can cancel it: 0, or -1 when stopping (or no slot is free). */
int web_vm_track(web_vm *vm, bg_ssh *ssh, int add);

/* deps.c */
long long web_now_ms(void);
int web_health_init(web_health *h, const bg_config *cfg);
void web_health_destroy(web_health *h); /* joins the probes */
/* A peer answered (ok) or not, at `when` (ms), found by `via`. */
void web_health_note(web_vm *vm, int peer, int ok, const char *via, const char *text, long long when);
void web_health_note_vm(web_vm *vm, const char *state, const char *via, long long when);
/* What a breakglass-pve run says about the host and the VM. */
void web_health_note_pve(web_vm *vm, int rc, const bg_pve_result *res, const char *via);
/* The /api/health/deps document; probes what is due first (bounded wait). */
void web_health_render(web_vm *vm, wbuf *b);
/* One event of an ended turn (in order; `sc` zeroed per turn). */
void web_health_scan_event(web_vm *vm, web_turn_scan *sc, bg_event_kind kind, const char *json, size_t len);

/* ---- the server --------------------------------------------------------- */

typedef struct web_auth web_auth;
typedef struct web_stream web_stream;
typedef struct web_agents web_agents;

typedef struct web_metrics {
	atomic_ulong requests[WEB_ROUTE_COUNT + 1][600]; /* [route or unmatched][status] */
	atomic_ulong verbs[16][5];                       /* [verb index][ok failed rejected busy error] */
	atomic_ulong turns, tool_calls, approvals;
	atomic_ulong llm_errors[4]; /* unreachable timeout cancelled other */
	atomic_ulong auth_failures;
} web_metrics;

typedef struct web_server {
	web_settings set;
	const bg_config *cfg;
	web_vm *vm;
	bg_session_store *store;
	bg_audit *audit;
	web_auth *auth;
	web_stream *stream;
	web_agents *agents;
	web_metrics *metrics;
	struct mg_context *mg;
	atomic_int inflight; /* requests being handled, bounded by set.threads */
	atomic_int stopping;
	struct timespec started;
} web_server;

struct web_req {
	web_server *srv;
	struct mg_connection *conn;
	const char *method;
	const char *path;
	const char *query; /* after '?', or NULL */
	char from[48];
	int route;      /* enum web_route_id, or -1 */
	char param[80]; /* {id} or {verb} */
	char who[160];  /* the authenticated principal */
	const char *auth_method;
	char *body;
	size_t body_len;
	int body_complete; /* the whole body was read */
	int status;
	size_t bytes;
	struct timespec t0;
};

/* Answer: a JSON body (or another type), the security headers, once. */
int web_reply(web_req *r, int status, const char *content_type, const char *body, size_t len,
	      const char *extra_headers);
int web_reply_json(web_req *r, int status, const wbuf *body);
/* {"error": msg[, "field": field]} */
int web_reply_error(web_req *r, int status, const char *msg, const char *field);
const char *web_status_text(int status);
/* The request header `name`, or NULL. */
const char *web_header(web_req *r, const char *name);

/* Audit one action: who, what, target, result, detail (from= added). */
void web_audit(web_req *r, const char *action, const char *target, const char *result, const char *detail);

/* The JSON log line on stdout (one per request, and events). */
void web_log_request(web_req *r);
void web_log_event(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The log writer thread (stdout never blocks a request). */
void web_log_start(void);
void web_log_stop(void);

/* server.c: start (bind) and stop the CivetWeb context. */
int web_server_start(web_server *srv, char *err, size_t errlen);
void web_server_stop(web_server *srv);
int web_server_port(web_server *srv);

/* settings.c */
int web_settings_load(web_settings *set, const bg_config *cfg, char *err, size_t errlen);
int web_parse_listen(const char *listen, char *addr, size_t addrlen, int *port, char *err, size_t errlen);
int web_addr_is_loopback(const char *addr);

/* auth.c */
int web_auth_new(web_auth **out, const web_settings *set, char *err, size_t errlen);
void web_auth_free(web_auth *a);
/* 0 authenticated (r->who set), or the status to answer (401 / 429). */
int web_auth_check(web_auth *a, web_req *r);
int web_auth_basic_enabled(const web_auth *a);
/* Verify one htpasswd hash (tests and --check). */
int web_crypt_verify(const char *password, const char *hash);
int web_cidr_match(const char *list, const char *addr);

/* stream.c */
int web_stream_new(web_stream **out, web_server *srv);
/* Take over the connection of `r` and follow `session` from after_id. */
int web_stream_attach(web_stream *st, web_req *r, bg_session *session, long long after_id);
int web_stream_count(web_stream *st);
/* Cut the reading side of `fd` if still watched after `ms` (a body read
 * that takes too long); a slot to unwatch, or -1 when none is free. */
int web_stream_watch(web_stream *st, int fd, int ms);
void web_stream_unwatch(web_stream *st, int slot);
/* The socket descriptor of a request's connection, or -1. */
struct mg_request_info;
int web_conn_fd(const struct mg_request_info *ri);
/* Send each client a final event, flush for up to `ms`, close them all. */
void web_stream_shutdown(web_stream *st, int ms);
void web_stream_free(web_stream *st);

/* agents.c */
int web_agents_new(web_agents **out, web_server *srv);
void web_agents_free(web_agents *ag); /* cancels and joins every turn */
/* 0 started; BG_ESTATE a turn runs; other BG_E* on failure. */
int web_agents_prompt(web_agents *ag, bg_session *s, const char *prompt, const char *who);
int web_agents_cancel(web_agents *ag, const char *session_id);
int web_agents_decide(web_agents *ag, const char *session_id, const char *nonce, const char *verb, int approved,
		      const char *who);
int web_agents_running(web_agents *ag);

/* ui.c: the page (apps/web/ui/, compiled in; assets.h) */
int web_ui_page(web_req *r);
int web_ui_asset(web_req *r);
int web_ui_favicon(web_req *r);
void web_ui_print_assets(FILE *f);

/* auditview.c: GET /api/audit */
int web_audit_view(web_req *r);

/* mem.c: what a burst leaves behind, given back (see there) */
void web_mem_init(void); /* malloc settings, before any thread */
void web_mem_note(void); /* something was freed (a stream dropped) */
/* In a worker, at the top of its loop: give back its stack below this call. */
void web_mem_release_stack(void);
/* From the streaming thread: malloc_trim(0) once after a quiet second. */
int web_mem_idle_tick(long long now_ms);

/* metrics.c */
void web_metrics_request(web_metrics *m, int route, int status);
int web_metrics_verb_index(const char *verb);
void web_metrics_render(web_server *srv, wbuf *out);

#endif
