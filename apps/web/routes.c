/* The routes of docs/openapi.yaml: the table and one handler per route. A handler
 * runs after the route, auth and request-safety checks of server.c, and
 * answers exactly once. */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMPT_MAX (32 * 1024)

#define WEB_ROUTE_DECL(id, m, p, a, h) static int h(web_req *r);
WEB_ROUTES(WEB_ROUTE_DECL)
#undef WEB_ROUTE_DECL

const web_route web_routes[WEB_ROUTE_COUNT] = {
#define WEB_ROUTE_ROW(id, m, p, a, h) {m, p, a, h},
	WEB_ROUTES(WEB_ROUTE_ROW)
#undef WEB_ROUTE_ROW
};

static int route_health(web_req *r)
{
	static const char body[] = "{\"status\":\"ok\",\"service\":\"breakglass\"}";

	return web_reply(r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

static int route_page(web_req *r)
{
	return web_ui_page(r);
}

static int route_asset(web_req *r)
{
	return web_ui_asset(r);
}

static int route_favicon(web_req *r)
{
	return web_ui_favicon(r);
}

/* The body as one JSON object: 0, or answered 400 naming what is wrong. */
static int body_object(web_req *r, wjson_obj *o, int optional)
{
	char err[160];

	if (optional && r->body_len == 0) {
		memset(o, 0, sizeof(*o));
		return 0;
	}
	if (wjson_parse(o, r->body ? r->body : "", r->body_len, err, sizeof(err)) != 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "bad JSON body: %s", err);
		web_reply_error(r, 400, msg, "body");
		return -1;
	}
	return 0;
}

/* A required non-empty string field: the value, or NULL after a 400. */
static const char *need_string(web_req *r, wjson_obj *o, const char *field, size_t max)
{
	wjson_type t;
	const char *v = wjson_string(o, field, &t);
	char msg[160];

	if (t == WJ_STRING && v[0] && strlen(v) <= max)
		return v;
	snprintf(msg, sizeof(msg), "'%s' %s", field,
		 t == WJ_NONE     ? "is missing"
		 : t != WJ_STRING ? "must be a string"
		 : v[0] == '\0'   ? "must not be empty"
				  : "is too long");
	web_reply_error(r, 400, msg, field);
	return NULL;
}

static int open_session(web_req *r, bg_session **s)
{
	if (bg_session_open(s, r->srv->store, r->param) != BG_OK) {
		web_reply_error(r, 404, "no such session", NULL);
		return -1;
	}
	return 0;
}

static int route_session_new(web_req *r)
{
	bg_session *s = NULL;
	wbuf b = {0};
	int rc = bg_session_create(&s, r->srv->store);

	if (rc != BG_OK) {
		web_audit(r, "session.create", "", "error", bg_error_last()->message);
		return web_reply_error(r, rc == BG_EBUSY ? 503 : 500, bg_error_last()->message, NULL);
	}
	web_audit(r, "session.create", bg_session_id(s), "ok", NULL);
	wbuf_puts(&b, "{\"session_id\":");
	wbuf_json_str(&b, bg_session_id(s));
	wbuf_puts(&b, "}");
	bg_session_release(s);
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int route_sessions(web_req *r)
{
	char *list = NULL;
	wbuf b = {0};
	int rc;

	if (bg_session_list(&list, r->srv->store) != BG_OK)
		return web_reply_error(r, 500, bg_error_last()->message, NULL);
	wbuf_puts(&b, "{\"sessions\":");
	wbuf_puts(&b, list);
	wbuf_puts(&b, "}");
	bg_free(list);
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int route_stream(web_req *r)
{
	const char *last = web_header(r, "Last-Event-ID");
	long long after = -1;
	bg_session *s = NULL;
	int rc;

	if (last && last[0]) {
		char *end;
		after = strtoll(last, &end, 10);
		if (*end || last[0] == '-' || last[0] == '+' || after < 0 || strlen(last) > 18)
			return web_reply_error(r, 400, "Last-Event-ID must be an event id (a number >= 0)",
					       "Last-Event-ID");
	}
	if (open_session(r, &s) != 0)
		return 404;
	rc = web_stream_attach(r->srv->stream, r, s, after);
	bg_session_release(s);
	return rc;
}

static int route_prompt(web_req *r)
{
	wjson_obj o;
	const char *prompt;
	bg_session *s = NULL;
	wbuf b = {0};
	int rc;

	if (body_object(r, &o, 0) != 0)
		return 400;
	if (!(prompt = need_string(r, &o, "prompt", PROMPT_MAX))) {
		wjson_free(&o);
		return 400;
	}
	if (open_session(r, &s) != 0) {
		wjson_free(&o);
		return 404;
	}
	rc = web_agents_prompt(r->srv->agents, s, prompt, r->who);
	web_audit(r, "agent.prompt", r->param, rc == BG_OK ? "accepted" : rc == BG_ESTATE ? "busy" : "error", prompt);
	wjson_free(&o);
	bg_session_release(s);
	if (rc == BG_ESTATE)
		return web_reply_error(r, 409, "a turn is already running in this session; cancel it or wait", NULL);
	if (rc != BG_OK)
		return web_reply_error(r, rc == BG_EBUSY ? 503 : 500, bg_error_last()->message, NULL);
	wbuf_puts(&b, "{\"session_id\":");
	wbuf_json_str(&b, r->param);
	wbuf_puts(&b, ",\"accepted\":true}");
	rc = web_reply_json(r, 202, &b);
	wbuf_free(&b);
	return rc;
}

static int route_cancel(web_req *r)
{
	bg_session *s = NULL;
	wbuf b = {0};
	int cancelled, rc;

	if (open_session(r, &s) != 0)
		return 404;
	bg_session_release(s);
	cancelled = web_agents_cancel(r->srv->agents, r->param) > 0;
	web_audit(r, "agent.cancel", r->param, cancelled ? "ok" : "idle", NULL);
	wbuf_printf(&b, "{\"cancelled\":%s}", cancelled ? "true" : "false");
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int route_approve(web_req *r)
{
	wjson_obj o;
	const char *nonce, *verb;
	bg_session *s = NULL;
	wbuf b = {0};
	int approved, rc;

	/* The decision names the request as it was shown: the agent's nonce
	 * and the verb, never the model's tool_use id (a late answer must not
	 * approve a later request that reused it). */
	if (body_object(r, &o, 0) != 0)
		return 400;
	if (!(nonce = need_string(r, &o, "nonce", 128)) || !(verb = need_string(r, &o, "verb", 32))) {
		wjson_free(&o);
		return 400;
	}
	if (wjson_bool(&o, "approved", &approved) != 0) {
		wjson_free(&o);
		return web_reply_error(r, 400, "'approved' must be true or false", "approved");
	}
	if (open_session(r, &s) != 0) {
		wjson_free(&o);
		return 404;
	}
	bg_session_release(s);
	rc = web_agents_decide(r->srv->agents, r->param, nonce, verb, approved, r->who);
	web_audit(r, "approval", verb, rc != BG_OK ? "no-such-approval" : approved ? "approved" : "denied", r->param);
	if (rc != BG_OK) {
		wjson_free(&o);
		return web_reply_error(r, 404,
				       "no request of this session waits for that nonce and verb (it was decided, "
				       "timed out or replaced)",
				       "nonce");
	}
	wbuf_puts(&b, "{\"nonce\":");
	wbuf_json_str(&b, nonce);
	wbuf_puts(&b, ",\"verb\":");
	wbuf_json_str(&b, verb);
	wbuf_printf(&b, ",\"approved\":%s}", approved ? "true" : "false");
	wjson_free(&o);
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static void verb_lists(wbuf *b)
{
	size_t n, i;
	const bg_pve_verb *v = bg_pve_verbs(&n);
	int first = 1;

	wbuf_puts(b, "\"verbs\":[");
	for (i = 0; i < n; i++) {
		wbuf_puts(b, i ? "," : "");
		wbuf_json_str(b, v[i].name);
	}
	wbuf_puts(b, "],\"mutating\":[");
	for (i = 0; i < n; i++) {
		if (!v[i].mutating)
			continue;
		wbuf_puts(b, first ? "" : ",");
		wbuf_json_str(b, v[i].name);
		first = 0;
	}
	wbuf_puts(b, "]");
}

/* Each verb for the page: what it does, whether it changes the VM. */
static void verb_table(wbuf *b)
{
	size_t n, i;
	const bg_pve_verb *v = bg_pve_verbs(&n);

	wbuf_puts(b, "\"table\":[");
	for (i = 0; i < n; i++) {
		wbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		wbuf_json_str(b, v[i].name);
		wbuf_printf(b, ",\"mutating\":%s,\"summary\":", v[i].mutating ? "true" : "false");
		wbuf_json_str(b, v[i].summary);
		wbuf_puts(b, "}");
	}
	wbuf_puts(b, "]");
}

static int route_verbs(web_req *r)
{
	wbuf b = {0};
	int rc;

	wbuf_puts(&b, "{");
	verb_lists(&b);
	wbuf_puts(&b, ",");
	verb_table(&b);
	wbuf_puts(&b, ",\"vmid\":");
	wbuf_json_str(&b, r->srv->vm->vmid);
	wbuf_puts(&b, "}");
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int busy_reply(web_req *r, web_vm *vm)
{
	wbuf b = {0};
	char since[32], msg[300];
	struct tm tm;
	int rc;

	gmtime_r(&vm->holder_since, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(msg, sizeof(msg), "busy: %s running since %s, started by %s", vm->holder_verb, since, vm->holder);
	wbuf_puts(&b, "{\"error\":");
	wbuf_json_str(&b, msg);
	wbuf_puts(&b, ",\"holder\":");
	wbuf_json_str(&b, vm->holder);
	wbuf_puts(&b, ",\"verb\":");
	wbuf_json_str(&b, vm->holder_verb);
	wbuf_printf(&b, ",\"since\":\"%s\",\"status\":409}", since);
	pthread_mutex_unlock(&vm->lock);
	rc = web_reply_json(r, 409, &b);
	wbuf_free(&b);
	return rc;
}

static void verb_unlock(web_vm *vm, const bg_pve_verb *verb)
{
	if (!verb->mutating)
		return;
	pthread_mutex_lock(&vm->lock);
	vm->mutating = 0;
	pthread_mutex_unlock(&vm->lock);
}

static int verb_result_index(int rc, const bg_pve_result *res)
{
	if (rc == BG_OK)
		return 0;
	if (res->rejected || rc == BG_EREJECTED)
		return 2;
	if (rc == BG_EBUSY)
		return 3;
	return res->exit_code >= 0 ? 1 : 4;
}

static int route_verb(web_req *r)
{
	web_vm *vm = r->srv->vm;
	const bg_pve_verb *verb = bg_pve_verb_find(r->param);
	bg_pve_result res;
	bg_ssh *ssh = NULL;
	char *result = NULL;
	wbuf b = {0};
	int rc, idx, status;

	memset(&res, 0, sizeof(res));
	if (!verb) {
		web_audit(r, "pve.unknown", r->param, "rejected", "not a verb: nothing sent to the host");
		wbuf_puts(&b, "{\"error\":\"unknown verb: nothing was sent to the Proxmox host\",\"field\":\"verb\",");
		verb_lists(&b);
		wbuf_puts(&b, ",\"status\":400}");
		rc = web_reply_json(r, 400, &b);
		wbuf_free(&b);
		return rc;
	}
	if (verb->mutating) {
		pthread_mutex_lock(&vm->lock);
		if (vm->mutating)
			return busy_reply(r, vm); /* unlocks */
		vm->mutating = 1;
		snprintf(vm->holder, sizeof(vm->holder), "%.100s from %.47s", r->who, r->from);
		snprintf(vm->holder_verb, sizeof(vm->holder_verb), "%s", verb->name);
		vm->holder_since = time(NULL);
		pthread_mutex_unlock(&vm->lock);
	}
	rc = bg_ssh_new_from_config(&ssh, vm->cfg, "pve", vm->ssh_key);
	if (rc == BG_OK && web_vm_track(vm, ssh, 1) != 0) {
		bg_ssh_free(ssh);
		verb_unlock(vm, verb);
		return web_reply_error(r, 503, "the server is stopping", NULL);
	}
	if (rc == BG_OK) {
		rc = bg_pve_run(&res, ssh, verb->name, vm->verb_timeout_s, NULL, NULL);
		web_vm_track(vm, ssh, 0);
	} else {
		res.exit_code = -1;
	}
	if (rc != BG_ECANCELLED)
		web_health_note_pve(vm, rc, &res, "verb");
	status = rc == BG_OK ? 200 : 502;
	idx = web_metrics_verb_index(verb->name);
	if (idx >= 0)
		atomic_fetch_add(&r->srv->metrics->verbs[idx][verb_result_index(rc, &res)], 1);
	wbuf_puts(&b, "{\"verb\":");
	wbuf_json_str(&b, verb->name);
	wbuf_printf(&b, ",\"exit_code\":%d,\"stdout\":", res.exit_code);
	wbuf_json_str(&b, res.stdout_text);
	wbuf_puts(&b, ",\"stderr\":");
	wbuf_json_str(&b, res.stderr_text);
	wbuf_printf(&b, ",\"rejected\":%s,\"result\":", res.rejected ? "true" : "false");
	wbuf_puts(&b, res.exit_code >= 0 && bg_pve_result_to_json(&result, &res) == BG_OK && result ? result : "null");
	if (rc != BG_OK) {
		wbuf_puts(&b, ",\"error\":");
		wbuf_json_str(&b, bg_error_last()->message);
	}
	wbuf_puts(&b, "}");
	web_audit(r, verb->mutating ? "pve.mutate" : "pve.inspect", verb->name, rc == BG_OK ? "ok" : "failed",
		  rc == BG_OK ? res.status : bg_error_last()->message);
	bg_free(result);
	bg_pve_result_clear(&res);
	bg_ssh_free(ssh);
	verb_unlock(vm, verb);
	rc = web_reply_json(r, status, &b);
	wbuf_free(&b);
	return rc;
}

static int route_triage(web_req *r)
{
	web_vm *vm = r->srv->vm;
	bg_triage *t = NULL;
	bg_ssh *ssh = NULL;
	char *json = NULL;
	int rc, text = 0;

	if (r->query && strcmp(r->query, "format=text") == 0)
		text = 1; /* what breakglassctl --server prints */
	else if (r->query && r->query[0] && strcmp(r->query, "format=json") != 0)
		return web_reply_error(r, 400, "format must be json or text", "format");
	rc = bg_ssh_new_from_config(&ssh, vm->cfg, "devvm", vm->ssh_key);
	if (rc == BG_OK && web_vm_track(vm, ssh, 1) != 0) {
		bg_ssh_free(ssh);
		return web_reply_error(r, 503, "the server is stopping", NULL);
	}
	if (rc == BG_OK) {
		rc = bg_triage_run(&t, ssh, vm->devvm_timeout_s);
		web_vm_track(vm, ssh, 0);
	}
	if (rc != BG_ECANCELLED)
		web_health_note(vm, WEB_PEER_DEVVM, rc == BG_OK, "triage",
				rc == BG_OK ? "the triage ran" : bg_error_last()->message, web_now_ms());
	if (rc == BG_OK)
		rc = text ? bg_triage_to_text(&json, t) : bg_triage_to_json(&json, t);
	web_audit(r, "devvm.triage", vm->name, rc == BG_OK ? "ok" : "failed",
		  rc == BG_OK ? NULL : bg_error_last()->message);
	if (rc == BG_OK)
		rc = web_reply(r, 200, text ? "text/plain; charset=utf-8" : "application/json", json, strlen(json),
			       NULL);
	else
		rc = web_reply_error(r, 502, bg_error_last()->message, NULL);
	bg_free(json);
	bg_triage_free(t);
	bg_ssh_free(ssh);
	return rc;
}

static int route_audit(web_req *r)
{
	return web_audit_view(r);
}

/* Who the page is signed in as, and how (the status bar). */
static int route_whoami(web_req *r)
{
	wbuf b = {0};
	int rc;

	wbuf_puts(&b, "{\"user\":");
	wbuf_json_str(&b, r->who);
	wbuf_puts(&b, ",\"method\":");
	wbuf_json_str(&b, r->auth_method ? r->auth_method : "none");
	wbuf_puts(&b, "}");
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int route_deps(web_req *r)
{
	wbuf b = {0};
	int rc;

	web_health_render(r->srv->vm, &b);
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}

static int route_metrics(web_req *r)
{
	wbuf b = {0};
	int rc;

	web_metrics_render(r->srv, &b);
	if (b.failed)
		rc = web_reply_error(r, 500, "out of memory", NULL);
	else
		rc = web_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
	wbuf_free(&b);
	return rc;
}
