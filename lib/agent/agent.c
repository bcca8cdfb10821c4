/*
 * The turn loop: ask the model, run the tools it calls (through the
 * approval policy), give it the results, until it answers without a tool
 * call or a limit ends the turn. Every step is a session event first, so
 * what a front end shows is what happened, and an audit record.
 *
 * Cancellation comes from other threads: a flag checked between steps,
 * plus bg_llm_cancel() and the tools' cancel() to abort a transfer or an
 * exec in progress, plus a broadcast that ends an approval wait.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "agent/agent_internal.h"
#include "breakglass/pve.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "session/session_internal.h"

#define DEFAULT_APPROVAL_MS (BG_AGENT_APPROVAL_TIMEOUT_S * 1000)
#define DEFAULT_MODEL_CAP   16384
#define DEFAULT_EVENT_CAP   65536
#define NONCE_BYTES         16
#define NONCE_LEN           (2 * NONCE_BYTES + 1)
#define VERB_MAX            32

struct bg_agent {
	bg_agent_settings set;
	char *system_prompt;
	bg_session *session;
	bg_llm *llm, *fallback;
	const bg_agent_tools *tools;
	void *impl;
	json_object *tool_defs;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running, cancelled;
	pthread_t thread;
	int has_thread, thread_rc;
	char *start_prompt, *start_by;

	/* The approval that waits: the nonce made for this request (never the
	 * model's tool_use id, which the model may reuse) and the verb shown.
	 * A decision must name both; "" when none waits. */
	char pending_nonce[NONCE_LEN];
	char pending_verb[VERB_MAX];
	int decided, approved;
	char decided_by[128];
};

/* What one turn carries between steps. */
typedef struct turn {
	bg_agent *a;
	const char *by;
	bg_llm *llm; /* the model in use: the configured one, or the fallback */
	bg_deadline deadline;
	int steps;
	int64_t input_tokens, output_tokens;
	const char *stop_reason;
} turn;

static int cancelled(bg_agent *a)
{
	int c;

	pthread_mutex_lock(&a->mu);
	c = a->cancelled;
	pthread_mutex_unlock(&a->mu);
	return c;
}

static void audit(bg_agent *a, const char *by, const char *action, const char *target, const char *result,
		  const char *detail)
{
	if (a->set.audit)
		bg_audit_record(a->set.audit, by, action, target, result, detail);
}

/* ---- events ------------------------------------------------------------- */

static int emit(bg_agent *a, json_object *ev)
{
	int rc = bg_session_emit(NULL, a->session, ev);

	json_object_put(ev);
	return rc;
}

static int emit_text(bg_agent *a, bg_event_kind kind, const char *key, const char *value)
{
	json_object *ev = bg_event_new(kind);

	if (key)
		bg_json_add_str(ev, key, value);
	return emit(a, ev);
}

static int emit_error(bg_agent *a, const char *message)
{
	bg_warn("agent", "session %s: %s", bg_session_id(a->session), message);
	return emit_text(a, BG_EVENT_ERROR, "error", message);
}

/* An error event that also says, in a field a page can rely on, that the
 * offline playbook answers the rest of the turn. */
static int emit_fallback(bg_agent *a, const char *message)
{
	json_object *ev = bg_event_new(BG_EVENT_ERROR);

	bg_warn("agent", "session %s: %s", bg_session_id(a->session), message);
	bg_json_add_str(ev, "error", message);
	bg_json_add_str(ev, "fallback", "offline");
	return emit(a, ev);
}

static int emit_turn_end(turn *t)
{
	json_object *ev = bg_event_new(BG_EVENT_TURN_END);
	json_object *usage = json_object_new_object();

	bg_json_add_str(ev, "stop_reason", t->stop_reason ? t->stop_reason : "end_turn");
	bg_json_add_int(usage, "input_tokens", t->input_tokens);
	bg_json_add_int(usage, "output_tokens", t->output_tokens);
	bg_json_add_int(usage, "steps", t->steps);
	json_object_object_add(ev, "usage", usage);
	return emit(t->a, ev);
}

static int emit_tool(bg_agent *a, bg_event_kind kind, json_object *use)
{
	json_object *ev = bg_event_new(kind);
	json_object *input = json_object_object_get(use, "input");

	bg_json_add_str(ev, "tool_use_id", bg_json_str(use, "id", ""));
	bg_json_add_str(ev, "name", bg_json_str(use, "name", ""));
	json_object_object_add(ev, "input", input ? json_object_get(input) : json_object_new_object());
	return emit(a, ev);
}

static int emit_result(bg_agent *a, const char *id, const bg_tool_out *o, int64_t elapsed_ms)
{
	json_object *ev = bg_event_new(BG_EVENT_TOOL_RESULT);
	const char *text = o->output ? o->output : "";
	size_t elided;
	size_t cap = a->set.event_output_cap ? a->set.event_output_cap : DEFAULT_EVENT_CAP;
	char *kept = bg_agent_cap_output(text, strlen(text), cap, &elided);

	bg_json_add_str(ev, "tool_use_id", id);
	bg_json_add_bool(ev, "ok", o->ok);
	bg_json_add_int(ev, "exit_code", o->exit_code);
	bg_json_add_str(ev, "output", kept ? kept : "");
	bg_json_add_bool(ev, "truncated", elided > 0 || o->dropped > 0);
	bg_json_add_int(ev, "elapsed_ms", elapsed_ms);
	free(kept);
	return emit(a, ev);
}

/* ---- approvals ---------------------------------------------------------- */

static void wait_a_little(bg_agent *a, bg_deadline until)
{
	int64_t left = bg_deadline_left(until);
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (left > 1000)
		left = 1000;
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

/* Under a->mu. */
static void clear_pending(bg_agent *a)
{
	a->pending_nonce[0] = '\0';
	a->pending_verb[0] = '\0';
}

/* A fresh nonce per approval request: 128 bits from getrandom, in hex. */
static int make_nonce(char out[NONCE_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[NONCE_BYTES];
	size_t i;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return bg_error_set(BG_EIO, "getrandom: no randomness for the approval nonce");
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * sizeof(raw)] = '\0';
	return BG_OK;
}

static int wait_decision(bg_agent *a, bg_deadline until, const char **by)
{
	int approved = 0;

	pthread_mutex_lock(&a->mu);
	while (!a->decided && !a->cancelled && !bg_deadline_expired(until))
		wait_a_little(a, until);
	if (a->decided) {
		approved = a->approved;
		*by = a->decided_by;
	} else {
		*by = a->cancelled ? "cancelled" : "timeout";
	}
	clear_pending(a);
	pthread_mutex_unlock(&a->mu);
	return approved;
}

/* approval_required / approval: the tool call's fields plus the nonce and
 * the verb that a decision must name; approval_required also says what the
 * call will do (`description`). */
static json_object *approval_event(bg_event_kind kind, json_object *use, const char *nonce, const char *verb,
				   const char *description)
{
	json_object *ev = bg_event_new(kind);
	json_object *input = json_object_object_get(use, "input");

	bg_json_add_str(ev, "tool_use_id", bg_json_str(use, "id", ""));
	bg_json_add_str(ev, "nonce", nonce);
	bg_json_add_str(ev, "verb", verb);
	if (kind == BG_EVENT_APPROVAL_REQUIRED) {
		bg_json_add_str(ev, "name", bg_json_str(use, "name", ""));
		json_object_object_add(ev, "input", input ? json_object_get(input) : json_object_new_object());
		bg_json_add_str(ev, "description", description);
	}
	return ev;
}

/* Publish the pending request: from here bg_agent_decide() can match it. */
static int set_pending(bg_agent *a, const char *verb, char nonce[NONCE_LEN])
{
	int rc = make_nonce(nonce);

	if (rc != BG_OK)
		return rc;
	if (strlen(verb) >= VERB_MAX)
		return bg_error_set(BG_EINVAL, "verb \"%.40s\" is too long to approve", verb);
	pthread_mutex_lock(&a->mu);
	snprintf(a->pending_nonce, sizeof(a->pending_nonce), "%s", nonce);
	snprintf(a->pending_verb, sizeof(a->pending_verb), "%s", verb);
	a->decided = 0;
	pthread_mutex_unlock(&a->mu);
	return BG_OK;
}

/* confirm mode: approval_required, then a decision (callback, another
 * thread through bg_agent_decide, or none in time = denied), then approval.
 * `verb` is what a decision names (a pve verb or a remedy's action),
 * `description` what the request shows, `target` the audit record's. */
static int ask_approval(turn *t, json_object *use, const char *verb, const char *description, const char *target,
			char *why, size_t n)
{
	bg_agent *a = t->a;
	const char *id = bg_json_str(use, "id", "");
	const char *by = "timeout";
	int ms = a->set.approval_timeout_ms ? a->set.approval_timeout_ms : DEFAULT_APPROVAL_MS;
	char nonce[NONCE_LEN];
	int approved;
	json_object *ev;

	if (set_pending(a, verb, nonce) != BG_OK) {
		snprintf(why, n, "denied: %s", bg_error_last()->message);
		return 0;
	}
	ev = approval_event(BG_EVENT_APPROVAL_REQUIRED, use, nonce, verb, description);
	if (!a->set.approve) /* the time a decision has: what a page counts down */
		bg_json_add_int(ev, "timeout_s",
				bg_deadline_left(bg_deadline_min(bg_deadline_in(ms), t->deadline)) / 1000);
	emit(a, ev);
	if (a->set.approve) {
		const char *input = json_object_to_json_string_ext(json_object_object_get(use, "input"),
								   JSON_C_TO_STRING_PLAIN);

		approved = a->set.approve(id, bg_json_str(use, "name", ""), input, &by, a->set.approve_payload) > 0;
		if (!by)
			by = "callback";
		pthread_mutex_lock(&a->mu);
		clear_pending(a);
		pthread_mutex_unlock(&a->mu);
	} else {
		approved = wait_decision(a, bg_deadline_min(bg_deadline_in(ms), t->deadline), &by);
	}
	ev = approval_event(BG_EVENT_APPROVAL, use, nonce, verb, NULL);
	bg_json_add_bool(ev, "approved", approved);
	bg_json_add_str(ev, "by", by);
	emit(a, ev);
	audit(a, by, "approval", target, approved ? "approved" : "denied", nonce);
	if (approved)
		return 1;
	if (strcmp(by, "timeout") == 0)
		snprintf(why, n, "denied: no decision within %d s; a human must approve this %s", ms / 1000,
			 strcmp(bg_json_str(use, "name", ""), BG_AGENT_TOOL_PVE) == 0 ? "verb" : "change");
	else
		snprintf(why, n, "denied by %s", by);
	return 0;
}

int bg_agent_decide(bg_agent *a, const char *nonce, const char *verb, int approved, const char *by)
{
	int rc = BG_OK;

	if (!a || !nonce || !verb)
		return bg_error_set(BG_EINVAL, "bg_agent_decide: NULL argument");
	pthread_mutex_lock(&a->mu);
	if (!a->pending_nonce[0] || a->decided || strcmp(a->pending_nonce, nonce) != 0 ||
	    strcmp(a->pending_verb, verb) != 0) {
		rc = bg_error_set(BG_ENOTFOUND,
				  "no approval is waiting for `%.32s` with nonce \"%.40s\": it was decided, timed out "
				  "or never asked; decide on the request shown now",
				  verb, nonce);
	} else {
		a->decided = 1;
		a->approved = approved ? 1 : 0;
		snprintf(a->decided_by, sizeof(a->decided_by), "%s", by && *by ? by : "unknown");
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- tools -------------------------------------------------------------- */

static int clip_timeout(turn *t, int64_t want_s)
{
	int64_t left_s = bg_deadline_left(t->deadline) / 1000;

	if (want_s <= 0)
		want_s = 60;
	if (left_s < want_s)
		want_s = left_s > 1 ? left_s : 1;
	return (int)want_s;
}

static void refuse(bg_tool_out *o, const char *why)
{
	o->refused = 1;
	o->ok = 0;
	o->exit_code = -1;
	o->output = strdup(why);
}

/* The policy for a pve call; 1 when it may run, else `o` is filled. */
static int pve_allowed(turn *t, json_object *use, const char *verb, bg_tool_out *o)
{
	const bg_pve_verb *v = bg_pve_verb_find(verb);
	char why[256], desc[256];

	if (!v) {
		snprintf(why, sizeof(why), "refused: \"%.40s\" is not a verb (status forensics start stop reset cycle)",
			 verb);
		refuse(o, why);
		return 0;
	}
	if (!v->mutating || t->a->set.mutations == BG_MUTATIONS_AUTO)
		return 1;
	if (t->a->set.mutations == BG_MUTATIONS_DENY) {
		snprintf(why, sizeof(why),
			 "refused: mutating verbs are disabled for the agent ([agent] pve_mutations = deny). Tell the "
			 "operator to run `%s` themselves if it is right.",
			 verb);
		refuse(o, why);
		return 0;
	}
	snprintf(desc, sizeof(desc), "run `pve %s` on the VM: %s", verb, v->summary ? v->summary : "");
	if (ask_approval(t, use, verb, desc, verb, why, sizeof(why)))
		return 1;
	refuse(o, why);
	return 0;
}

/* The policy for a remedy, after its target passed validation; 1 when it
 * may run, else `o` is filled. remove-file asks even under auto: deleting
 * a file is the one remedy that cannot be undone. */
static int remedy_allowed(turn *t, json_object *use, const bg_remedy *r, bg_tool_out *o)
{
	const char *action = bg_remedy_action_name(r->action);
	char *desc = bg_remedy_describe(r);
	char why[1536], target[BG_REMEDY_TARGET_MAX + 32];
	bg_mutations m = t->a->set.devvm_mutations;
	int ok = 0;

	if (!desc) {
		refuse(o, "refused: out of memory");
		return 0;
	}
	snprintf(target, sizeof(target), "%s %s", action, r->target);
	if (m == BG_MUTATIONS_DENY) {
		snprintf(
			why, sizeof(why),
			"refused: changes on the devvm are disabled for the agent ([agent] devvm_mutations = deny). It "
			"would have: %s. Tell the operator, who may do it by hand if it is right.",
			desc);
		refuse(o, why);
	} else if (m == BG_MUTATIONS_AUTO && r->action != BG_REMEDY_ACTION_REMOVE_FILE) {
		ok = 1;
	} else if (ask_approval(t, use, action, desc, target, why, sizeof(why))) {
		ok = 1;
	} else {
		size_t len = strlen(why);

		snprintf(why + len, sizeof(why) - len, "; it would have: %s", desc);
		refuse(o, why);
	}
	free(desc);
	return ok;
}

static int run_remedy(turn *t, json_object *use, json_object *in, bg_tool_out *o)
{
	bg_agent *a = t->a;
	bg_remedy r;

	if (bg_remedy_parse(&r, bg_json_str(in, "action", NULL), bg_json_str(in, "target", NULL),
			    bg_json_bool(in, "recursive", 0)) != BG_OK) {
		refuse(o, bg_error_last()->message);
		return BG_OK;
	}
	if (!a->tools->remedy) {
		refuse(o, "refused: this agent's tools cannot run remedies on the devvm");
		return BG_OK;
	}
	if (!remedy_allowed(t, use, &r, o))
		return BG_OK;
	if (cancelled(a))
		return BG_ECANCELLED;
	return a->tools->remedy(a->impl, &r, clip_timeout(t, a->set.devvm_timeout_s), o);
}

static int run_tool(turn *t, json_object *use, bg_tool_out *o)
{
	bg_agent *a = t->a;
	const char *name = bg_json_str(use, "name", "");
	json_object *in = bg_json_obj(use, "input");
	const char *cmd = bg_json_str(in, "command", NULL);
	const char *verb = bg_json_str(in, "verb", "");

	if (strcmp(name, BG_AGENT_TOOL_DEVVM_EXEC) == 0) {
		if (!cmd || !*cmd) {
			refuse(o, "refused: devvm_exec needs a non-empty \"command\"");
			return BG_OK;
		}
		return a->tools->exec(a->impl, cmd,
				      clip_timeout(t, bg_json_int(in, "timeout_s", a->set.devvm_timeout_s)), o);
	}
	if (strcmp(name, BG_AGENT_TOOL_DEVVM_TRIAGE) == 0)
		return a->tools->triage(a->impl, clip_timeout(t, a->set.devvm_timeout_s), o);
	if (strcmp(name, BG_AGENT_TOOL_PVE) == 0) {
		if (!pve_allowed(t, use, verb, o))
			return BG_OK;
		if (cancelled(a))
			return BG_ECANCELLED;
		return a->tools->pve(a->impl, verb, clip_timeout(t, a->set.pve_timeout_s), o);
	}
	if (strcmp(name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0)
		return run_remedy(t, use, in, o);
	refuse(o, "refused: unknown tool; the tools are devvm_exec, devvm_triage, devvm_remedy and pve");
	return BG_OK;
}

static const char *audit_target(json_object *use, char *buf, size_t n)
{
	json_object *in = bg_json_obj(use, "input");
	const char *name = bg_json_str(use, "name", "");

	if (strcmp(name, BG_AGENT_TOOL_DEVVM_EXEC) == 0)
		return bg_json_str(in, "command", "");
	if (strcmp(name, BG_AGENT_TOOL_PVE) == 0)
		return bg_json_str(in, "verb", "");
	if (strcmp(name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0) {
		snprintf(buf, n, "%s %s", bg_json_str(in, "action", ""), bg_json_str(in, "target", ""));
		return buf;
	}
	return "devvm";
}

static const char *audit_result(int rc, const bg_tool_out *o)
{
	if (rc == BG_ECANCELLED)
		return "cancelled";
	if (o->refused)
		return "denied";
	if (rc != BG_OK)
		return "error";
	return o->ok ? "ok" : "failed";
}

/* One call: run it (or refuse it), emit its result, audit it. */
static int do_tool(turn *t, json_object *use)
{
	bg_agent *a = t->a;
	bg_tool_out o = {0, -1, NULL, 0, 0};
	int64_t t0 = bg_now_ms();
	char action[64], target[BG_REMEDY_TARGET_MAX + 32];
	int rc = cancelled(a) ? BG_ECANCELLED : run_tool(t, use, &o);

	if (rc != BG_OK && !o.output)
		o.output = strdup(rc == BG_ECANCELLED ? "cancelled" : bg_error_last()->message);
	if (rc != BG_OK)
		o.ok = 0;
	emit_result(a, bg_json_str(use, "id", ""), &o, bg_now_ms() - t0);
	snprintf(action, sizeof(action), "tool.%s", bg_json_str(use, "name", "?"));
	audit(a, t->by, action, audit_target(use, target, sizeof(target)), audit_result(rc, &o),
	      o.output ? o.output : "");
	free(o.output);
	return rc == BG_ECANCELLED ? rc : BG_OK;
}

/* ---- one step ----------------------------------------------------------- */

static int on_text(const char *delta, size_t len, void *payload)
{
	bg_agent *a = payload;
	json_object *ev = bg_event_new(BG_EVENT_TEXT);

	bg_json_add_strn(ev, "text", delta, len);
	return emit(a, ev) == BG_OK ? 0 : -1;
}

static int on_retry(int attempt, int64_t delay_ms, const char *why, void *payload)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "LLM: %s; retry %d in %lld ms", why ? why : "error", attempt, (long long)delay_ms);
	return emit_error(payload, msg) == BG_OK ? 0 : -1;
}

static json_object *tool_uses(json_object *message)
{
	json_object *content = bg_json_arr(message, "content");
	json_object *uses = json_object_new_array();
	size_t i;

	for (i = 0; content && i < json_object_array_length(content); i++) {
		json_object *b = json_object_array_get_idx(content, i);

		if (strcmp(bg_json_str(b, "type", ""), "tool_use") == 0)
			json_object_array_add(uses, json_object_get(b));
	}
	return uses;
}

static int ask_model(turn *t, bg_llm_response *resp)
{
	bg_agent *a = t->a;
	json_object *messages;
	int rc = bg_agent_messages_from_session(&messages, a->session, a->set.model_output_cap);
	bg_llm_request req = {a->set.model, a->set.max_tokens, a->system_prompt, a->tool_defs, messages, t->deadline};
	bg_llm_callbacks cb = {on_text, NULL, on_retry, a};

	if (rc != BG_OK)
		return rc;
	memset(resp, 0, sizeof(*resp));
	rc = bg_llm_complete(t->llm, &req, &cb, resp);
	json_object_put(messages);
	return rc;
}

/* The model is gone: say so and let the playbook finish the turn. */
static int fall_back(turn *t, int rc)
{
	bg_agent *a = t->a;
	bg_buf msg = BG_BUF_INIT;

	bg_buf_printf(&msg, "the LLM is unreachable (%s); the offline playbook takes over for this turn",
		      bg_error_last()->message);
	emit_fallback(a, msg.data ? msg.data : "the LLM is unreachable");
	audit(a, t->by, "agent.fallback", "offline", "ok", msg.data);
	bg_buf_free(&msg);
	(void)rc;
	t->llm = a->fallback;
	return BG_OK;
}

/* Run the calls of one reply: all tool events first (so the log shows the
 * reply whole), then each call in order. */
static int run_calls(turn *t, json_object *uses, int *stop)
{
	bg_agent *a = t->a;
	size_t i, n = json_object_array_length(uses), runnable = n;
	int rc = BG_OK;

	if ((size_t)(a->set.max_steps - t->steps) < n)
		runnable = (size_t)(a->set.max_steps - t->steps);
	for (i = 0; i < runnable; i++)
		emit_tool(a, BG_EVENT_TOOL, json_object_array_get_idx(uses, i));
	for (i = 0; i < runnable && rc == BG_OK; i++) {
		rc = do_tool(t, json_object_array_get_idx(uses, i));
		t->steps++;
	}
	if (rc == BG_OK && runnable < n) {
		char msg[160];

		snprintf(msg, sizeof(msg), "max_steps (%d tool calls) reached; the turn stops here", a->set.max_steps);
		emit_error(a, msg);
		t->stop_reason = "max_steps";
		*stop = 1;
	}
	return rc;
}

static int step(turn *t, int *stop)
{
	bg_llm_response resp;
	json_object *uses;
	int rc = ask_model(t, &resp);

	if (rc == BG_EUNAVAILABLE && t->llm != t->a->fallback && t->a->fallback && !cancelled(t->a)) {
		bg_llm_response_clear(&resp);
		return fall_back(t, rc);
	}
	if (rc == BG_EUNAVAILABLE && !cancelled(t->a))
		bg_error_set(rc, "the LLM is unreachable (%s) and no fallback is configured ([agent] fallback = none)",
			     bg_error_last()->message);
	if (rc != BG_OK) {
		bg_llm_response_clear(&resp);
		return rc;
	}
	t->input_tokens += resp.input_tokens;
	t->output_tokens += resp.output_tokens;
	uses = tool_uses(resp.message);
	if (json_object_array_length(uses) == 0) {
		t->stop_reason = strcmp(resp.stop_reason, "max_tokens") == 0 ? "max_tokens" : "end_turn";
		*stop = 1;
	} else {
		rc = run_calls(t, uses, stop);
	}
	json_object_put(uses);
	bg_llm_response_clear(&resp);
	return rc;
}

static int loop(turn *t)
{
	int stop = 0, rc = BG_OK;
	char msg[160];

	while (!stop && rc == BG_OK) {
		if (cancelled(t->a))
			return BG_ECANCELLED;
		if (bg_deadline_expired(t->deadline)) {
			snprintf(msg, sizeof(msg), "turn_timeout (%d s) reached; the turn stops here",
				 t->a->set.turn_timeout_s);
			emit_error(t->a, msg);
			t->stop_reason = "timeout";
			return BG_OK;
		}
		rc = step(t, &stop);
	}
	if (rc != BG_OK && cancelled(t->a))
		rc = BG_ECANCELLED;
	return rc;
}

/* ---- the turn ----------------------------------------------------------- */

static int begin(bg_agent *a)
{
	int rc = bg_session_turn_begin(a->session);

	if (rc != BG_OK)
		return rc;
	pthread_mutex_lock(&a->mu);
	a->cancelled = 0;
	a->running = 1;
	pthread_mutex_unlock(&a->mu);
	bg_llm_reset_cancel(a->llm);
	if (a->fallback)
		bg_llm_reset_cancel(a->fallback);
	return BG_OK;
}

/* The turn is over: the agent is idle first, then turn_end is published
 * (the session leaves its busy state with that event, under one lock), so
 * a client that sends the next prompt the moment it sees turn_end is never
 * told a turn is still running. `t` is NULL when no turn began. */
static void finish(bg_agent *a, turn *t)
{
	pthread_mutex_lock(&a->mu);
	a->running = 0;
	clear_pending(a);
	pthread_mutex_unlock(&a->mu);
	if (t)
		emit_turn_end(t);
	bg_session_turn_end(a->session);
}

static int turn_body(turn *t, const char *prompt, const char *by)
{
	bg_agent *a = t->a;
	json_object *ev = bg_event_new(BG_EVENT_USER);
	int rc;

	bg_json_add_str(ev, "text", prompt);
	bg_json_add_str(ev, "by", by);
	rc = emit(a, ev);
	if (rc != BG_OK) {
		t->stop_reason = "error";
		return rc;
	}
	audit(a, by, "agent.prompt", bg_session_id(a->session), "ok", prompt);
	rc = loop(t);
	if (rc == BG_ECANCELLED) {
		emit_text(a, BG_EVENT_CANCELLED, NULL, NULL);
		audit(a, by, "agent.cancel", bg_session_id(a->session), "cancelled", NULL);
		t->stop_reason = "cancelled";
	} else if (rc != BG_OK) {
		emit_error(a, bg_error_last()->message);
		t->stop_reason = rc == BG_ETIMEOUT && bg_deadline_expired(t->deadline) ? "timeout" : "error";
	}
	return rc;
}

static int run_turn(bg_agent *a, const char *prompt, const char *by)
{
	const char *who = by && *by ? by : "unknown";
	turn t = {a, who, a->llm, bg_deadline_in((int64_t)a->set.turn_timeout_s * 1000), 0, 0, 0, NULL};
	int rc = turn_body(&t, prompt, who);

	finish(a, &t);
	return rc;
}

int bg_agent_run(bg_agent *a, const char *prompt, const char *by)
{
	int rc;

	if (!a || !prompt)
		return bg_error_set(BG_EINVAL, "bg_agent_run: NULL argument");
	rc = begin(a);
	return rc != BG_OK ? rc : run_turn(a, prompt, by);
}

static void *turn_thread(void *arg)
{
	bg_agent *a = arg;

	a->thread_rc = run_turn(a, a->start_prompt, a->start_by);
	return NULL;
}

int bg_agent_start(bg_agent *a, const char *prompt, const char *by)
{
	int rc;

	if (!a || !prompt)
		return bg_error_set(BG_EINVAL, "bg_agent_start: NULL argument");
	rc = begin(a);
	if (rc != BG_OK)
		return rc;
	bg_agent_wait(a); /* reap the previous, finished thread */
	free(a->start_prompt);
	free(a->start_by);
	a->start_prompt = strdup(prompt);
	a->start_by = strdup(by && *by ? by : "unknown");
	if (!a->start_prompt || !a->start_by || pthread_create(&a->thread, NULL, turn_thread, a) != 0) {
		finish(a, NULL);
		return bg_error_set(BG_ENOMEM, "cannot start the turn's thread");
	}
	a->has_thread = 1;
	return BG_OK;
}

int bg_agent_wait(bg_agent *a)
{
	if (!a || !a->has_thread)
		return BG_OK;
	pthread_join(a->thread, NULL);
	a->has_thread = 0;
	return a->thread_rc;
}

int bg_agent_cancel(bg_agent *a)
{
	int was;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->mu);
	was = a->running;
	if (was)
		a->cancelled = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (!was)
		return 0;
	bg_llm_cancel(a->llm);
	if (a->fallback)
		bg_llm_cancel(a->fallback);
	if (a->tools->cancel)
		a->tools->cancel(a->impl);
	return 1;
}

bg_session *bg_agent_session(bg_agent *a)
{
	return a ? a->session : NULL;
}

/* ---- construction -------------------------------------------------------- */

int bg_agent_new_with(bg_agent **out, const bg_agent_settings *s, bg_session *session, bg_llm *llm, bg_llm *fallback,
		      const bg_agent_tools *tools, void *impl)
{
	bg_agent *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;

	*out = NULL;
	if (!a ||
	    !(a->system_prompt = strdup(s->system_prompt ? s->system_prompt : bg_agent_default_system_prompt()))) {
		free(a);
		bg_secret_free(s->owned_api_key);
		bg_llm_free(llm);
		bg_llm_free(fallback);
		if (tools && tools->destroy)
			tools->destroy(impl);
		return bg_error_oom();
	}
	a->set = *s;
	a->set.system_prompt = a->system_prompt;
	if (a->set.max_steps <= 0)
		a->set.max_steps = 40;
	if (a->set.max_tokens <= 0)
		a->set.max_tokens = 4096;
	if (a->set.turn_timeout_s <= 0)
		a->set.turn_timeout_s = 1800;
	if (!a->set.model_output_cap)
		a->set.model_output_cap = DEFAULT_MODEL_CAP;
	a->session = bg_session_ref(session);
	a->llm = llm;
	a->fallback = fallback;
	a->tools = tools;
	a->impl = impl;
	a->tool_defs = bg_agent_tool_defs();
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = a;
	return BG_OK;
}

void bg_agent_free(bg_agent *a)
{
	if (!a)
		return;
	bg_agent_cancel(a);
	bg_agent_wait(a);
	bg_llm_free(a->llm);
	bg_llm_free(a->fallback);
	bg_secret_free(a->set.owned_api_key);
	if (a->tools && a->tools->destroy)
		a->tools->destroy(a->impl);
	json_object_put(a->tool_defs);
	bg_session_release(a->session);
	free(a->system_prompt);
	free(a->start_prompt);
	free(a->start_by);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}
