/*
 * What the server knows of its peers, for the page's status bar
 * (GET /api/health/deps): did the devvm (SSH), the Proxmox host
 * (breakglass-pve over SSH) and the LLM answer recently, and the VM's
 * last known state.
 *
 * It comes first from the server's own calls: the verbs and the triage as
 * they return, and each turn's events once it ends (tool results for the
 * devvm and the host, model replies and LLM errors for the LLM). Only a
 * peer not heard from for [web] health_interval seconds is probed, with a
 * cheap bounded call in a thread of its own (devvm: `true`; host: the
 * `status` verb; LLM: bg_llm_check_key), and never more often than that
 * interval whatever the number of requests. The request that starts a
 * probe waits for it at most WEB_HEALTH_WAIT_MS; the others answer at
 * once with what is known ("probing": true).
 *
 * All of it lives in the web_vm (web_health): nothing here is global.
 */
#include "web.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEB_HEALTH_WAIT_MS   1500
#define PROBE_SSH_TIMEOUT_S  8
#define PROBE_VERB_TIMEOUT_S 20
#define PROBE_LLM_TIMEOUT_S  3

static const char *const peer_names[WEB_PEER_COUNT] = {"devvm", "pve", "llm"};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

long long web_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int web_health_init(web_health *h, const bg_config *cfg)
{
	int interval = bg_app_conf_int(cfg, "web", "health_interval");
	pthread_condattr_t ca;

	memset(h, 0, sizeof(*h));
	h->interval_s = interval > 0 ? interval : 30;
	snprintf(h->provider, sizeof(h->provider), "%s", bg_app_conf(cfg, "agent", "provider"));
	/* The provider's key from the environment, read once for every agent
	 * and the probe: reading it removes it from the environment, so a
	 * second reader would find nothing. A key file is read by each. */
	if (!bg_app_conf(cfg, "agent", "api_key_file")[0] &&
	    (strcmp(h->provider, "anthropic") == 0 || strcmp(h->provider, "openai") == 0) &&
	    bg_secret_from_env(&h->llm_key,
			       strcmp(h->provider, "openai") == 0 ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY") != BG_OK)
		h->llm_key = NULL;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&h->lock, NULL) != 0 || pthread_cond_init(&h->done, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	return 0;
}

void web_health_destroy(web_health *h)
{
	int i;

	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_mutex_unlock(&h->lock);
	/* The SSH probes were cancelled with the VM's other execs; the LLM
	 * check ends within its own timeout. */
	for (i = 0; i < WEB_PEER_COUNT; i++)
		if (h->peer[i].has_thread)
			pthread_join(h->peer[i].thread, NULL);
	pthread_cond_destroy(&h->done);
	pthread_mutex_destroy(&h->lock);
	bg_secret_free(h->llm_key);
	h->llm_key = NULL;
}

/* One line, at most the buffer: the first line of `text`. */
static void first_line(char *dst, size_t n, const char *text)
{
	size_t len = text ? strcspn(text, "\r\n") : 0;

	if (len >= n)
		len = n - 1;
	memcpy(dst, text ? text : "", len);
	dst[len] = '\0';
}

void web_health_note(web_vm *vm, int peer, int ok, const char *via, const char *text, long long when)
{
	web_health *h = &vm->health;
	web_peer *p;

	if (peer < 0 || peer >= WEB_PEER_COUNT)
		return;
	p = &h->peer[peer];
	pthread_mutex_lock(&h->lock);
	if (ok && when >= p->ok_at) {
		p->ok_at = when;
		snprintf(p->ok_via, sizeof(p->ok_via), "%s", via);
		first_line(p->detail, sizeof(p->detail), text);
	} else if (!ok && when >= p->fail_at) {
		p->fail_at = when;
		snprintf(p->fail_via, sizeof(p->fail_via), "%s", via);
		first_line(p->error, sizeof(p->error), text && *text ? text : "failed");
	}
	pthread_mutex_unlock(&h->lock);
}

void web_health_note_vm(web_vm *vm, const char *state, const char *via, long long when)
{
	web_health *h = &vm->health;

	if (!state || !*state)
		return;
	pthread_mutex_lock(&h->lock);
	if (when >= h->vm_state_at) {
		first_line(h->vm_state, sizeof(h->vm_state), state);
		snprintf(h->vm_state_via, sizeof(h->vm_state_via), "%s", via);
		h->vm_state_at = when;
	}
	pthread_mutex_unlock(&h->lock);
}

void web_health_note_pve(web_vm *vm, int rc, const bg_pve_result *res, const char *via)
{
	long long now = web_now_ms();

	/* breakglass-pve answered (whatever the verb's outcome): the host is there. */
	if (res->exit_code >= 0) {
		web_health_note(vm, WEB_PEER_PVE, 1, via, res->status ? res->status : "answered", now);
		web_health_note_vm(vm, res->status, via, now);
	} else {
		web_health_note(vm, WEB_PEER_PVE, 0, via, rc != BG_OK ? bg_error_last()->message : "no answer", now);
	}
}

/* ---- probes ------------------------------------------------------------- */

typedef struct probe_arg {
	web_vm *vm;
	int peer;
} probe_arg;

static void probe_devvm(web_vm *vm)
{
	bg_ssh *ssh = NULL;
	bg_ssh_result res;
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	int rc;

	memset(&res, 0, sizeof(res));
	opts.timeout_s = PROBE_SSH_TIMEOUT_S;
	opts.output_cap = 1024;
	rc = bg_ssh_new_from_config(&ssh, vm->cfg, "devvm", vm->ssh_key);
	if (rc == BG_OK && web_vm_track(vm, ssh, 1) != 0)
		rc = BG_ECANCELLED; /* the server is stopping */
	else if (rc == BG_OK) {
		rc = bg_ssh_exec(&res, ssh, "true", &opts);
		web_vm_track(vm, ssh, 0);
	}
	if (rc == BG_OK && res.exit_code == 0)
		web_health_note(vm, WEB_PEER_DEVVM, 1, "probe", "ssh: true exited 0", web_now_ms());
	else if (rc == BG_OK)
		web_health_note(vm, WEB_PEER_DEVVM, 0, "probe",
				res.timed_out ? "ssh: `true` did not finish in time" : "ssh: `true` failed",
				web_now_ms());
	else if (rc != BG_ECANCELLED)
		web_health_note(vm, WEB_PEER_DEVVM, 0, "probe", bg_error_last()->message, web_now_ms());
	bg_ssh_result_clear(&res);
	bg_ssh_free(ssh);
}

static void probe_pve(web_vm *vm)
{
	bg_ssh *ssh = NULL;
	bg_pve_result res;
	int rc;

	memset(&res, 0, sizeof(res));
	res.exit_code = -1;
	rc = bg_ssh_new_from_config(&ssh, vm->cfg, "pve", vm->ssh_key);
	if (rc == BG_OK && web_vm_track(vm, ssh, 1) != 0)
		rc = BG_ECANCELLED; /* the server is stopping */
	else if (rc == BG_OK) {
		rc = bg_pve_run(&res, ssh, "status", PROBE_VERB_TIMEOUT_S, NULL, NULL);
		web_vm_track(vm, ssh, 0);
	}
	if (rc != BG_ECANCELLED)
		web_health_note_pve(vm, rc, &res, "probe");
	bg_pve_result_clear(&res);
	bg_ssh_free(ssh);
}

static void probe_llm(web_vm *vm)
{
	char *detail = NULL;
	int rc = bg_llm_check_key(&detail, vm->cfg, vm->health.llm_key, PROBE_LLM_TIMEOUT_S);

	web_health_note(vm, WEB_PEER_LLM, rc == BG_OK, "probe", detail ? detail : bg_error_last()->message,
			web_now_ms());
	bg_free(detail);
}

static void *probe_thread(void *arg)
{
	probe_arg *a = arg;
	web_health *h = &a->vm->health;

	if (a->peer == WEB_PEER_DEVVM)
		probe_devvm(a->vm);
	else if (a->peer == WEB_PEER_PVE)
		probe_pve(a->vm);
	else
		probe_llm(a->vm);
	pthread_mutex_lock(&h->lock);
	h->peer[a->peer].probing = 0;
	h->probes++;
	pthread_cond_broadcast(&h->done);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Under the lock: start a probe of `peer` when it is due. 1 started. */
static int maybe_probe(web_vm *vm, int peer, long long now_wall, time_t now_mono)
{
	web_health *h = &vm->health;
	web_peer *p = &h->peer[peer];
	long long last = p->ok_at > p->fail_at ? p->ok_at : p->fail_at;
	sigset_t all, old;
	int rc;

	if (h->stopping || p->probing)
		return 0;
	if (peer == WEB_PEER_LLM && strcmp(h->provider, "offline") == 0)
		return 0; /* no endpoint: the playbook answers */
	if (last && now_wall - last < (long long)h->interval_s * 1000)
		return 0; /* heard from recently */
	if (p->probe_started && now_mono - p->probe_at < h->interval_s)
		return 0;    /* probed recently: a reload storm waits for the interval */
	if (p->has_thread) { /* the last probe has ended (probing is 0): reap it */
		pthread_join(p->thread, NULL);
		p->has_thread = 0;
	}
	h->args[peer].vm = vm;
	h->args[peer].peer = peer;
	/* The probe thread never takes a signal (main's sigwait() does). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&p->thread, NULL, probe_thread, &h->args[peer]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return 0;
	p->has_thread = 1;
	p->probing = 1;
	p->probe_started = 1;
	p->probe_at = now_mono;
	return 1;
}

static void json_time(wbuf *b, const char *key, long long ms)
{
	char when[32];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	wbuf_printf(b, ",\"%s\":", key);
	if (!ms) {
		wbuf_puts(b, "null");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	wbuf_printf(b, "\"%s.%03dZ\"", when, (int)(ms % 1000));
}

static void json_opt(wbuf *b, const char *key, const char *s, int present)
{
	wbuf_printf(b, ",\"%s\":", key);
	if (present && s && *s)
		wbuf_json_str(b, s);
	else
		wbuf_puts(b, "null");
}

/* Under the lock. */
static void render_peer(wbuf *b, web_health *h, int i, long long now)
{
	web_peer *p = &h->peer[i];
	const char *state;
	long long last = p->ok_at > p->fail_at ? p->ok_at : p->fail_at;

	if (i == WEB_PEER_LLM && strcmp(h->provider, "offline") == 0)
		state = "offline";
	else if (!p->ok_at && !p->fail_at)
		state = "unknown";
	else if (p->ok_at >= p->fail_at)
		state = "ok";
	else
		state = "failing";
	wbuf_printf(b, "\"%s\":{\"state\":\"%s\"", peer_names[i], state);
	wbuf_printf(b, ",\"recent\":%s", last && now - last < (long long)h->interval_s * 1000 ? "true" : "false");
	json_time(b, "last_ok", p->ok_at);
	json_opt(b, "last_ok_via", p->ok_via, p->ok_at != 0);
	json_opt(b, "detail", p->detail, p->ok_at != 0);
	json_time(b, "last_failure", p->fail_at);
	json_opt(b, "last_failure_via", p->fail_via, p->fail_at != 0);
	json_opt(b, "error", p->error, p->fail_at != 0);
	wbuf_printf(b, ",\"probing\":%s}", p->probing ? "true" : "false");
}

void web_health_render(web_vm *vm, wbuf *b)
{
	web_health *h = &vm->health;
	long long now = web_now_ms();
	time_t now_m = mono_s();
	struct timespec until;
	int i, started = 0;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < WEB_PEER_COUNT; i++)
		started += maybe_probe(vm, i, now, now_m);
	if (started) { /* this request started them: wait a little for the answers */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += WEB_HEALTH_WAIT_MS / 1000;
		until.tv_nsec += (long)(WEB_HEALTH_WAIT_MS % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		for (;;) {
			int busy = 0;
			for (i = 0; i < WEB_PEER_COUNT; i++)
				busy += h->peer[i].probing;
			if (!busy || pthread_cond_timedwait(&h->done, &h->lock, &until) == ETIMEDOUT)
				break;
		}
		now = web_now_ms();
	}
	wbuf_puts(b, "{\"peers\":{");
	for (i = 0; i < WEB_PEER_COUNT; i++) {
		wbuf_puts(b, i ? "," : "");
		render_peer(b, h, i, now);
	}
	wbuf_puts(b, "},\"vm\":{\"name\":");
	wbuf_json_str(b, vm->name);
	wbuf_puts(b, ",\"vmid\":");
	wbuf_json_str(b, vm->vmid);
	json_opt(b, "state", h->vm_state, h->vm_state_at != 0);
	json_time(b, "read_at", h->vm_state_at);
	json_opt(b, "read_via", h->vm_state_via, h->vm_state_at != 0);
	wbuf_puts(b, "},\"llm_provider\":");
	wbuf_json_str(b, h->provider);
	wbuf_printf(b, ",\"interval_s\":%d,\"probes\":%lu", h->interval_s, h->probes);
	json_time(b, "now", now);
	wbuf_puts(b, "}");
	pthread_mutex_unlock(&h->lock);
}

/* ---- what a turn's events say ------------------------------------------ */

void web_health_scan_event(web_vm *vm, web_turn_scan *sc, bg_event_kind kind, const char *json, size_t len)
{
	char *s = NULL, *ts = NULL;
	long long when = web_now_ms();
	int i;

	if (bg_event_field(&ts, json, len, "ts") == BG_OK && ts) {
		long long ms = strtoll(ts, NULL, 10);
		if (ms > 0)
			when = ms;
	}
	bg_free(ts);
	if (kind == BG_EVENT_TEXT || kind == BG_EVENT_TOOL) {
		/* The model answered (until the playbook took over this turn). */
		if (!sc->fell_back && strcmp(vm->health.provider, "offline") != 0)
			web_health_note(vm, WEB_PEER_LLM, 1, "turn", "the model answered", when);
	}
	if (kind == BG_EVENT_TOOL && sc->n < WEB_TURN_SCAN_TOOLS) {
		char *id = NULL, *name = NULL;
		if (bg_event_field(&id, json, len, "tool_use_id") == BG_OK &&
		    bg_event_field(&name, json, len, "name") == BG_OK) {
			snprintf(sc->id[sc->n], sizeof(sc->id[0]), "%s", id);
			sc->peer[sc->n] = strcmp(name, BG_AGENT_TOOL_PVE) == 0 ? WEB_PEER_PVE : WEB_PEER_DEVVM;
			sc->n++;
		}
		bg_free(id);
		bg_free(name);
	} else if (kind == BG_EVENT_TOOL_RESULT) {
		char *id = NULL, *code = NULL, *out = NULL;
		bg_event_field(&id, json, len, "tool_use_id");
		bg_event_field(&code, json, len, "exit_code");
		bg_event_field(&out, json, len, "output");
		for (i = 0; id && i < sc->n; i++) {
			int peer = sc->peer[i];
			int ok = code && strtol(code, NULL, 10) >= 0;
			if (strcmp(sc->id[i], id) != 0)
				continue;
			/* Refused by the policy, denied by a human, cancelled:
			 * nothing was sent, so it says nothing of the peer. */
			if (!ok && (!out || strncmp(out, "refused", 7) == 0 || strncmp(out, "denied", 6) == 0 ||
				    strcmp(out, "cancelled") == 0))
				break;
			web_health_note(vm, peer, ok, "turn", ok ? "a tool call ran" : out, when);
			if (ok && peer == WEB_PEER_PVE && out) {
				const char *st = strstr(out, "\nstatus: ");
				if (st)
					web_health_note_vm(vm, st + 9, "turn", when);
			}
			break;
		}
		bg_free(id);
		bg_free(code);
		bg_free(out);
	} else if (kind == BG_EVENT_ERROR && bg_event_field(&s, json, len, "error") == BG_OK && s) {
		if (strncmp(s, "LLM: ", 5) == 0 || strstr(s, "the LLM is unreachable")) {
			web_health_note(vm, WEB_PEER_LLM, 0, "turn", s, when);
			if (strstr(s, "the offline playbook takes over"))
				sc->fell_back = 1;
		}
	}
	bg_free(s);
}
