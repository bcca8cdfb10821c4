/*
 * The turn loop against a scripted fake model and fake tool executors:
 * the tool loop, approvals, limits, cancel, fallback, output caps.
 */
#include "bg_test.h"

#include "agent/agent_internal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "forensics/triage_int.h"
#include "session/session_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- a scripted model ---------------------------------------------------- */

typedef struct reply {
	const char *text;
	const char *tool;  /* NULL: a final answer */
	const char *input; /* JSON */
	int rc;            /* non-zero: fail with this */
	int block;         /* stream `text`, then hang until cancelled */
} reply;

typedef struct fake_llm {
	bg_llm base;
	const reply *replies;
	size_t n, next;
	char *requests[64];
	int nreq;
	const char *fixed_id; /* every tool_use gets this id; NULL: toolu_NN */
} fake_llm;

static int fake_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	fake_llm *f = (fake_llm *)llm;
	const reply *r = &f->replies[f->next < f->n ? f->next : f->n - 1];
	json_object *msg = json_object_new_object(), *content = json_object_new_array();
	char id[32];

	memset(resp, 0, sizeof(*resp));
	if (f->nreq < 64)
		f->requests[f->nreq++] = bg_json_dump(req->messages);
	f->next++;
	if (r->rc) {
		json_object_put(msg);
		json_object_put(content);
		return bg_error_set(r->rc, "fake model: failing with %d", r->rc);
	}
	bg_json_add_str(msg, "role", "assistant");
	json_object_object_add(msg, "content", content);
	resp->message = msg;
	if (r->text) {
		json_object *b = json_object_new_object();

		bg_json_add_str(b, "type", "text");
		bg_json_add_str(b, "text", r->text);
		json_object_array_add(content, b);
		if (cb->on_text(r->text, strlen(r->text), cb->payload) < 0)
			return -1;
	}
	if (r->block) {
		while (!bg_llm_cancelled(llm))
			usleep(2000);
		return bg_error_set(BG_ECANCELLED, "fake model: cancelled");
	}
	if (r->tool) {
		json_object *b = json_object_new_object();

		snprintf(id, sizeof(id), "toolu_%02zu", f->next);
		if (f->fixed_id)
			snprintf(id, sizeof(id), "%s", f->fixed_id);
		bg_json_add_str(b, "type", "tool_use");
		bg_json_add_str(b, "id", id);
		bg_json_add_str(b, "name", r->tool);
		json_object_object_add(b, "input", bg_json_parse(r->input, strlen(r->input), "input"));
		json_object_array_add(content, b);
	}
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "%s", r->tool ? "tool_use" : "end_turn");
	resp->input_tokens = 100;
	resp->output_tokens = 10;
	return BG_OK;
}

static void fake_destroy(bg_llm *llm)
{
	fake_llm *f = (fake_llm *)llm;
	int i;

	for (i = 0; i < f->nreq; i++)
		free(f->requests[i]);
	free(f);
}

static const bg_llm_vtable fake_vtable = {"fake", fake_complete, fake_destroy};

static fake_llm *fake_new(const reply *replies, size_t n)
{
	fake_llm *f = calloc(1, sizeof(*f));

	f->base.vt = &fake_vtable;
	f->replies = replies;
	f->n = n;
	return f;
}

/* ---- fake tools --------------------------------------------------------- */

typedef struct fake_tools {
	char calls[64][128];
	int n;
	size_t big; /* exec output of this many bytes */
	int block;  /* exec hangs until cancelled */
	atomic_int cancelled;
	const char *triage_out; /* the first triage's output; NULL: no findings */
	int triages;
} fake_tools;

static int ft_exec(void *impl, const char *command, int timeout_s, bg_tool_out *o)
{
	fake_tools *t = impl;
	bg_buf b = BG_BUF_INIT;
	size_t i;

	(void)timeout_s;
	snprintf(t->calls[t->n++], sizeof(t->calls[0]), "exec:%s", command);
	if (t->block) {
		while (!atomic_load(&t->cancelled))
			usleep(2000);
		return bg_error_set(BG_ECANCELLED, "exec cancelled");
	}
	bg_buf_printf(&b, "exit status: 0\nran: %s\n", command);
	for (i = 0; i < t->big; i++)
		bg_buf_putc(&b, i % 64 == 63 ? '\n' : (char)('a' + i % 26));
	bg_buf_puts(&b, "THE-END\n");
	o->ok = 1;
	o->exit_code = 0;
	o->output = bg_buf_detach(&b);
	return BG_OK;
}

static int ft_triage(void *impl, int timeout_s, bg_tool_out *o)
{
	fake_tools *t = impl;

	(void)timeout_s;
	snprintf(t->calls[t->n++], sizeof(t->calls[0]), "triage");
	o->ok = 1;
	o->exit_code = 0;
	o->output = strdup(t->triage_out && t->triages++ == 0 ? t->triage_out : "findings: none\n");
	return BG_OK;
}

static int ft_remedy(void *impl, const bg_remedy *r, int timeout_s, bg_tool_out *o)
{
	fake_tools *t = impl;
	char buf[256];

	(void)timeout_s;
	snprintf(t->calls[t->n++], sizeof(t->calls[0]), "remedy:%s %.64s%s", bg_remedy_action_name(r->action),
		 r->target, r->recursive ? " (recursive)" : "");
	snprintf(buf, sizeof(buf), "remedy: %s %.64s\nexit status: 0\nran: it\nafter: fine\n",
		 bg_remedy_action_name(r->action), r->target);
	o->ok = 1;
	o->exit_code = 0;
	o->output = strdup(buf);
	return BG_OK;
}

static int ft_pve(void *impl, const char *verb, int timeout_s, bg_tool_out *o)
{
	fake_tools *t = impl;
	char buf[256];

	(void)timeout_s;
	snprintf(t->calls[t->n++], sizeof(t->calls[0]), "pve:%s", verb);
	if (strcmp(verb, "forensics") == 0)
		snprintf(buf, sizeof(buf),
			 "verb: forensics\nexit status: 0\nstatus: running\nverdict: block-io-stalled\n"
			 "recommended_verb: cycle\n");
	else
		snprintf(buf, sizeof(buf), "verb: %s\nexit status: 0\nstatus: running\n", verb);
	o->ok = 1;
	o->exit_code = 0;
	o->output = strdup(buf);
	return BG_OK;
}

static void ft_cancel(void *impl)
{
	fake_tools *t = impl;

	atomic_store(&t->cancelled, 1);
}

static const bg_agent_tools fake_tools_vt = {ft_exec, ft_triage, ft_pve, ft_cancel, NULL, ft_remedy};

/* ---- fixture ------------------------------------------------------------ */

typedef struct fx {
	bg_session_store *store;
	bg_session *s;
	bg_agent *a;
	fake_llm *llm;
	fake_tools tools;
	bg_audit *audit;
	bg_agent_settings set;
} fx;

static void fx_init(fx *f, const reply *replies, size_t n, bg_mutations m)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(bg_session_store_open(&f->store, NULL, 0), BG_OK);
	assert_int_equal(bg_session_create(&f->s, f->store), BG_OK);
	assert_int_equal(bg_audit_open(&f->audit, NULL, 0), BG_OK);
	f->llm = fake_new(replies, n);
	f->set.model = "claude-test";
	f->set.max_steps = 10;
	f->set.turn_timeout_s = 60;
	f->set.mutations = m;
	f->set.approval_timeout_ms = 5000;
	f->set.audit = f->audit;
}

static void fx_start(fx *f, bg_llm *fallback)
{
	assert_int_equal(bg_agent_new_with(&f->a, &f->set, f->s, &f->llm->base, fallback, &fake_tools_vt, &f->tools),
			 BG_OK);
}

static void fx_free(fx *f)
{
	bg_agent_free(f->a);
	bg_session_release(f->s);
	bg_session_store_free(f->store);
	bg_audit_free(f->audit);
}

static int add_kind(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	bg_buf *b = payload;

	(void)id;
	(void)json;
	(void)len;
	if (kind == BG_EVENT_TEXT && b->len >= 4 && strcmp(b->data + b->len - 4, "text") == 0)
		return 0; /* deltas in a row count once */
	if (b->len)
		bg_buf_putc(b, ',');
	bg_buf_puts(b, bg_event_kind_name(kind));
	return 0;
}

/* The kinds of the session's events, "user,text,tool,…". */
static char *kinds(bg_session *s)
{
	bg_buf b = BG_BUF_INIT;

	bg_session_read(s, -1, 0, add_kind, &b);
	return bg_buf_detach(&b);
}

static int add_line(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	(void)id;
	(void)kind;
	bg_buf_append(payload, json, len);
	bg_buf_putc(payload, '\n');
	return 0;
}

static char *all_events(bg_session *s)
{
	bg_buf b = BG_BUF_INIT;

	bg_session_read(s, -1, 0, add_line, &b);
	return bg_buf_detach(&b);
}

#define assert_kinds(s, want)                  \
	do {                                   \
		char *k_ = kinds(s);           \
		assert_string_equal(k_, want); \
		free(k_);                      \
	} while (0)

/* ---- the tool loop ------------------------------------------------------- */

static void test_tool_loop(void **state)
{
	static const reply script[] = {
		{"Checking disk.", "devvm_exec", "{\"command\":\"df -h /\"}", 0, 0},
		{"The disk is fine.", NULL, NULL, 0, 0},
	};
	fx f;
	json_object *req, *last, *first;
	char *audit = NULL;

	(void)state;
	fx_init(&f, script, 2, BG_MUTATIONS_CONFIRM);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "is the disk full?", "alice"), BG_OK);
	assert_kinds(f.s, "user,text,tool,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 1);
	assert_string_equal(f.tools.calls[0], "exec:df -h /");
	/* The second request carries the output, as the first block of the
	 * user message after the tool_use. */
	assert_int_equal(f.llm->nreq, 2);
	req = bg_json_parse(f.llm->requests[1], strlen(f.llm->requests[1]), "req");
	assert_int_equal(json_object_array_length(req), 3);
	assert_string_equal(bg_json_str(json_object_array_get_idx(req, 1), "role", ""), "assistant");
	last = json_object_array_get_idx(req, 2);
	assert_string_equal(bg_json_str(last, "role", ""), "user");
	first = json_object_array_get_idx(bg_json_arr(last, "content"), 0);
	assert_string_equal(bg_json_str(first, "type", ""), "tool_result");
	assert_string_equal(bg_json_str(first, "tool_use_id", ""), "toolu_01");
	assert_non_null(strstr(bg_json_str(first, "content", ""), "ran: df -h /"));
	assert_false(bg_json_bool(first, "is_error", 1));
	json_object_put(req);
	assert_int_equal(bg_audit_recent(&audit, f.audit, 10), BG_OK);
	assert_non_null(strstr(audit, "tool.devvm_exec"));
	assert_non_null(strstr(audit, "agent.prompt"));
	bg_free(audit);
	fx_free(&f);
}

/* The next turn sees the whole conversation, rebuilt from the log. */
static void test_second_turn_has_history(void **state)
{
	static const reply script[] = {
		{"Looking.", "devvm_triage", "{}", 0, 0},
		{"All good.", NULL, NULL, 0, 0},
		{"Still good.", NULL, NULL, 0, 0},
	};
	fx f;
	json_object *req, *m3;

	(void)state;
	fx_init(&f, script, 3, BG_MUTATIONS_CONFIRM);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "triage", "alice"), BG_OK);
	assert_int_equal(bg_agent_run(f.a, "and now?", "bob"), BG_OK);
	req = bg_json_parse(f.llm->requests[2], strlen(f.llm->requests[2]), "req");
	/* user, assistant(text+tool_use), user(tool_result), assistant(text), user(text) */
	assert_int_equal(json_object_array_length(req), 5);
	m3 = json_object_array_get_idx(req, 3);
	assert_string_equal(bg_json_str(json_object_array_get_idx(bg_json_arr(m3, "content"), 0), "text", ""),
			    "All good.");
	assert_string_equal(
		bg_json_str(json_object_array_get_idx(bg_json_arr(json_object_array_get_idx(req, 4), "content"), 0),
			    "text", ""),
		"and now?");
	json_object_put(req);
	fx_free(&f);
}

static void test_output_capped_for_model(void **state)
{
	static const reply script[] = {
		{NULL, "devvm_exec", "{\"command\":\"journalctl\"}", 0, 0},
		{"Done.", NULL, NULL, 0, 0},
	};
	fx f;
	json_object *req, *res;
	const char *content;
	char *events;

	(void)state;
	fx_init(&f, script, 2, BG_MUTATIONS_CONFIRM);
	f.tools.big = 200000;
	f.set.model_output_cap = 8192;
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "logs", "alice"), BG_OK);
	req = bg_json_parse(f.llm->requests[1], strlen(f.llm->requests[1]), "req");
	res = json_object_array_get_idx(bg_json_arr(json_object_array_get_idx(req, 2), "content"), 0);
	content = bg_json_str(res, "content", "");
	assert_true(strlen(content) <= 8192 + 128);
	assert_non_null(strstr(content, "exit status: 0")); /* head kept */
	assert_non_null(strstr(content, "THE-END"));        /* tail kept */
	assert_non_null(strstr(content, "bytes elided from the middle"));
	json_object_put(req);
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"truncated\":true"));
	free(events);
	fx_free(&f);
}

/* ---- approvals ---------------------------------------------------------- */

typedef struct approver {
	fx *f;
	int approve;
	const char *by;
	long long seen;
	int decided;
} approver;

static int on_approval_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	approver *ap = payload;

	ap->seen = id;
	if (kind == BG_EVENT_APPROVAL_REQUIRED) {
		json_object *ev = bg_json_parse(json, len, "ev");
		json_object *left = NULL;

		/* The time the decision has, for a page to count down: the
		 * turn's deadline (60 s here) bounds the 600 s default. */
		assert_true(json_object_object_get_ex(ev, "timeout_s", &left));
		assert_true(json_object_get_int(left) > 0 && json_object_get_int(left) <= 60);
		assert_int_equal(bg_agent_decide(ap->f->a, bg_json_str(ev, "nonce", ""), bg_json_str(ev, "verb", ""),
						 ap->approve, ap->by),
				 BG_OK);
		ap->decided++;
		json_object_put(ev);
	}
	/* Whoever sees turn_end may send the next prompt at once. */
	if (kind == BG_EVENT_TURN_END)
		assert_int_equal(bg_session_busy(ap->f->s), 0);
	return kind == BG_EVENT_TURN_END ? -1 : 0;
}

static void *approve_thread(void *arg)
{
	approver *ap = arg;

	ap->seen = -1;
	while (bg_session_read(ap->f->s, ap->seen, 5000, on_approval_event, ap) >= 0)
		;
	return NULL;
}

static const reply cycle_script[] = {
	{"QEMU is stalled.", "pve", "{\"verb\":\"cycle\"}", 0, 0},
	{"Cycled.", NULL, NULL, 0, 0},
};

static void run_with_approver(fx *f, int approve, const char *by)
{
	approver ap = {f, approve, by, -1, 0};
	pthread_t t;

	fx_start(f, NULL);
	assert_int_equal(pthread_create(&t, NULL, approve_thread, &ap), 0);
	assert_int_equal(bg_agent_run(f->a, "fix it", "alice"), BG_OK);
	pthread_join(t, NULL);
	assert_int_equal(ap.decided, 1);
}

static void test_approval_granted(void **state)
{
	fx f;
	char *events, *audit = NULL;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_CONFIRM);
	run_with_approver(&f, 1, "carol");
	assert_kinds(f.s, "user,text,tool,approval_required,approval,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 1);
	assert_string_equal(f.tools.calls[0], "pve:cycle");
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":true,\"by\":\"carol\""));
	assert_non_null(strstr(events, "\"description\":\"run `pve cycle` on the VM: "));
	free(events);
	assert_int_equal(bg_audit_recent(&audit, f.audit, 10), BG_OK);
	assert_non_null(strstr(audit, "\"action\":\"approval\""));
	assert_non_null(strstr(audit, "\"who\":\"carol\""));
	bg_free(audit);
	fx_free(&f);
}

static void test_approval_denied(void **state)
{
	fx f;
	char *events;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_CONFIRM);
	run_with_approver(&f, 0, "dave");
	assert_int_equal(f.tools.n, 0); /* nothing ran */
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":false,\"by\":\"dave\""));
	assert_non_null(strstr(events, "\"ok\":false"));
	assert_non_null(strstr(events, "denied by dave"));
	free(events);
	/* The model was told. */
	assert_non_null(strstr(f.llm->requests[1], "denied by dave"));
	fx_free(&f);
}

static void test_approval_times_out(void **state)
{
	fx f;
	char *events;
	int64_t t0;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_CONFIRM);
	f.set.approval_timeout_ms = 300;
	fx_start(&f, NULL);
	t0 = bg_now_ms();
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_true(bg_now_ms() - t0 >= 300);
	assert_true(bg_now_ms() - t0 < 3000);
	assert_int_equal(f.tools.n, 0);
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":false,\"by\":\"timeout\""));
	assert_non_null(strstr(events, "no decision within"));
	free(events);
	fx_free(&f);
}

/* A decider that first tries what must not work, then decides right. */
typedef struct prober {
	fx *f;
	long long seen;
	int asked;
	char first_nonce[64], first_verb[16];
	int wrong[8]; /* the codes of the wrong decisions, in order */
	int nwrong;
	int right_rc;
} prober;

static void try_wrong(prober *p, const char *nonce, const char *verb)
{
	if (p->nwrong < 8)
		p->wrong[p->nwrong++] = bg_agent_decide(p->f->a, nonce, verb, 1, "mallory");
}

static int on_probe_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	prober *p = payload;
	json_object *ev;
	const char *nonce, *verb, *tid;

	p->seen = id;
	if (kind != BG_EVENT_APPROVAL_REQUIRED)
		return kind == BG_EVENT_TURN_END ? -1 : 0;
	ev = bg_json_parse(json, len, "ev");
	nonce = bg_json_str(ev, "nonce", "");
	verb = bg_json_str(ev, "verb", "");
	tid = bg_json_str(ev, "tool_use_id", "");
	assert_int_equal(strlen(nonce), 32);
	if (p->asked++ == 0) {
		/* The first request ("stop?") gets no answer in time. */
		snprintf(p->first_nonce, sizeof(p->first_nonce), "%s", nonce);
		snprintf(p->first_verb, sizeof(p->first_verb), "%s", verb);
		json_object_put(ev);
		return 0;
	}
	/* The second request reuses the tool_use id, never the nonce. */
	assert_string_not_equal(nonce, p->first_nonce);
	try_wrong(p, p->first_nonce, p->first_verb); /* the late "y" to "stop?" */
	try_wrong(p, p->first_nonce, verb);          /* the old nonce, the new verb */
	try_wrong(p, nonce, p->first_verb);          /* the new nonce, the wrong verb */
	try_wrong(p, tid, verb);                     /* the model's id is no nonce */
	try_wrong(p, "", verb);
	p->right_rc = bg_agent_decide(p->f->a, nonce, verb, 0, "carol");
	try_wrong(p, nonce, verb); /* decided already */
	json_object_put(ev);
	return 0;
}

static void *probe_thread(void *arg)
{
	prober *p = arg;

	p->seen = -1;
	while (bg_session_read(p->f->s, p->seen, 5000, on_probe_event, p) >= 0)
		;
	return NULL;
}

/* A late "y" to "stop?" never approves a later `cycle` that reused the
 * tool_use id; a decision naming the wrong nonce or verb is BG_ENOTFOUND
 * while the right request still waits (an agent that approves whatever
 * waits fails here). */
static void test_decide_wrong_request(void **state)
{
	static const reply script[] = {
		{NULL, "pve", "{\"verb\":\"stop\"}", 0, 0},
		{NULL, "pve", "{\"verb\":\"cycle\"}", 0, 0},
		{"Not done.", NULL, NULL, 0, 0},
	};
	prober p;
	pthread_t t;
	fx f;
	char *events;
	int i;

	(void)state;
	memset(&p, 0, sizeof(p));
	fx_init(&f, script, 3, BG_MUTATIONS_CONFIRM);
	/* The first request times out; the prober answers the second at
	 * once, well within the same 3 s even on a loaded machine. */
	f.set.approval_timeout_ms = 3000;
	f.llm->fixed_id = "toolu_same";
	fx_start(&f, NULL);
	p.f = &f;
	/* Nothing waits yet: any decision is unknown. */
	assert_int_equal(bg_agent_decide(f.a, "00000000000000000000000000000000", "stop", 1, "x"), BG_ENOTFOUND);
	assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	pthread_join(t, NULL);
	assert_int_equal(p.asked, 2);
	assert_int_equal(p.nwrong, 6);
	for (i = 0; i < p.nwrong; i++)
		assert_int_equal(p.wrong[i], BG_ENOTFOUND);
	assert_int_equal(p.right_rc, BG_OK);
	assert_int_equal(f.tools.n, 0); /* neither stop nor cycle ran */
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"verb\":\"stop\",\"approved\":false,\"by\":\"timeout\""));
	assert_non_null(strstr(events, "\"verb\":\"cycle\",\"approved\":false,\"by\":\"carol\""));
	assert_null(strstr(events, "mallory"));
	free(events);
	fx_free(&f);
}

static void test_mutations_auto(void **state)
{
	fx f;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_AUTO);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_kinds(f.s, "user,text,tool,tool_result,text,turn_end");
	assert_string_equal(f.tools.calls[0], "pve:cycle");
	fx_free(&f);
}

static void test_mutations_deny(void **state)
{
	static const reply script[] = {
		{NULL, "pve", "{\"verb\":\"status\"}", 0, 0},
		{NULL, "pve", "{\"verb\":\"reset\"}", 0, 0},
		{"Cannot.", NULL, NULL, 0, 0},
	};
	fx f;
	char *events, *audit = NULL;

	(void)state;
	fx_init(&f, script, 3, BG_MUTATIONS_DENY);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_kinds(f.s, "user,tool,tool_result,tool,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 1); /* status ran (read-only), reset did not */
	assert_string_equal(f.tools.calls[0], "pve:status");
	events = all_events(f.s);
	assert_non_null(strstr(events, "pve_mutations = deny"));
	free(events);
	assert_int_equal(bg_audit_recent(&audit, f.audit, 10), BG_OK);
	assert_non_null(strstr(audit, "\"target\":\"reset\",\"result\":\"denied\""));
	bg_free(audit);
	fx_free(&f);
}

static int deny_cb(const char *id, const char *name, const char *input, const char **by, void *payload)
{
	int *calls = payload;

	(void)id;
	assert_string_equal(name, "pve");
	assert_non_null(strstr(input, "cycle"));
	*by = "tty:erin";
	(*calls)++;
	return 0;
}

static void test_approval_callback(void **state)
{
	fx f;
	int calls = 0;
	char *events;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_CONFIRM);
	f.set.approve = deny_cb;
	f.set.approve_payload = &calls;
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_int_equal(calls, 1);
	assert_int_equal(f.tools.n, 0);
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":false,\"by\":\"tty:erin\""));
	free(events);
	fx_free(&f);
}

static void test_unknown_tool_and_verb(void **state)
{
	static const reply script[] = {
		{NULL, "local_shell", "{\"command\":\"id\"}", 0, 0},
		{NULL, "pve", "{\"verb\":\"destroy\"}", 0, 0},
		{"Ok.", NULL, NULL, 0, 0},
	};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 3, BG_MUTATIONS_AUTO);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "x", "alice"), BG_OK);
	assert_int_equal(f.tools.n, 0);
	events = all_events(f.s);
	assert_non_null(strstr(events, "unknown tool"));
	assert_non_null(strstr(events, "is not a verb"));
	free(events);
	fx_free(&f);
}

/* ---- limits ------------------------------------------------------------- */

static void test_max_steps(void **state)
{
	static const reply script[] = {{NULL, "devvm_exec", "{\"command\":\"uptime\"}", 0, 0}};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_CONFIRM);
	f.set.max_steps = 3;
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "loop forever", "alice"), BG_OK);
	assert_int_equal(f.tools.n, 3);
	assert_int_equal(f.llm->nreq, 4);
	events = all_events(f.s);
	assert_non_null(strstr(events, "max_steps (3 tool calls) reached"));
	assert_non_null(strstr(events, "\"stop_reason\":\"max_steps\""));
	free(events);
	fx_free(&f);
}

static void test_one_turn_at_a_time(void **state)
{
	static const reply script[] = {{"thinking", NULL, NULL, 0, 1}};
	fx f;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_CONFIRM);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_start(f.a, "one", "alice"), BG_OK);
	assert_int_equal(bg_agent_run(f.a, "two", "bob"), BG_ESTATE);
	assert_int_equal(bg_agent_start(f.a, "three", "bob"), BG_ESTATE);
	assert_int_equal(bg_agent_cancel(f.a), 1);
	assert_int_equal(bg_agent_wait(f.a), BG_ECANCELLED);
	assert_int_equal(bg_agent_cancel(f.a), 0);
	fx_free(&f);
}

/* ---- cancel ------------------------------------------------------------- */

typedef struct canceller {
	fx *f;
	bg_event_kind when;
	long long seen;
	int64_t at;
} canceller;

static int cancel_on(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	canceller *c = payload;

	(void)json;
	(void)len;
	c->seen = id;
	if (kind == c->when && !c->at) {
		usleep(20000);
		c->at = bg_now_ms();
		assert_int_equal(bg_agent_cancel(c->f->a), 1);
	}
	return kind == BG_EVENT_TURN_END ? -1 : 0;
}

static void *cancel_thread(void *arg)
{
	canceller *c = arg;

	c->seen = -1;
	while (bg_session_read(c->f->s, c->seen, 5000, cancel_on, c) >= 0)
		;
	return NULL;
}

static void cancel_case(fx *f, bg_event_kind when, const char *want)
{
	canceller c = {f, when, -1, 0};
	pthread_t t;

	fx_start(f, NULL);
	assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
	assert_int_equal(bg_agent_run(f->a, "go", "alice"), BG_ECANCELLED);
	assert_true(bg_now_ms() - c.at < 1000); /* promptly */
	pthread_join(t, NULL);
	assert_kinds(f->s, want);
	assert_false(bg_session_busy(f->s));
}

static void test_cancel_mid_stream(void **state)
{
	static const reply script[] = {{"Let me look", NULL, NULL, 0, 1}};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_CONFIRM);
	cancel_case(&f, BG_EVENT_TEXT, "user,text,cancelled,turn_end");
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"stop_reason\":\"cancelled\""));
	free(events);
	fx_free(&f);
}

static void test_cancel_mid_tool(void **state)
{
	static const reply script[] = {
		{NULL, "devvm_exec", "{\"command\":\"sleep 600\"}", 0, 0},
		{"never", NULL, NULL, 0, 0},
	};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 2, BG_MUTATIONS_CONFIRM);
	f.tools.block = 1;
	cancel_case(&f, BG_EVENT_TOOL, "user,tool,tool_result,cancelled,turn_end");
	assert_int_equal(f.llm->nreq, 1);
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"output\":\"cancelled\""));
	free(events);
	fx_free(&f);
}

static void test_cancel_pending_approval(void **state)
{
	fx f;

	(void)state;
	fx_init(&f, cycle_script, 2, BG_MUTATIONS_CONFIRM);
	f.set.approval_timeout_ms = 60000;
	cancel_case(&f, BG_EVENT_APPROVAL_REQUIRED,
		    "user,text,tool,approval_required,approval,tool_result,cancelled,"
		    "turn_end");
	assert_int_equal(f.tools.n, 0);
	fx_free(&f);
}

/* ---- remedies ------------------------------------------------------------ */

static const reply restart_script[] = {
	{"bg-demo.service failed.", "devvm_remedy", "{\"action\":\"restart-unit\",\"target\":\"bg-demo.service\"}", 0,
	 0},
	{"Done.", NULL, NULL, 0, 0},
};

static const reply remove_script[] = {
	{"/data/fill fills the disk.", "devvm_remedy", "{\"action\":\"remove-file\",\"target\":\"file:/data/fill\"}", 0,
	 0},
	{"Done.", NULL, NULL, 0, 0},
};

static void fx_remedy(fx *f, const reply *script, bg_mutations devvm)
{
	/* pve_mutations is the opposite corner: the two policies are apart */
	fx_init(f, script, 2, devvm == BG_MUTATIONS_DENY ? BG_MUTATIONS_AUTO : BG_MUTATIONS_DENY);
	f->set.devvm_mutations = devvm;
}

/* confirm: the request names the action, the target and what it will do;
 * the approved remedy runs, exactly once; the audit names the target. */
static void test_remedy_confirm_approved(void **state)
{
	fx f;
	char *events, *audit = NULL;

	(void)state;
	fx_remedy(&f, restart_script, BG_MUTATIONS_CONFIRM);
	run_with_approver(&f, 1, "carol");
	assert_kinds(f.s, "user,text,tool,approval_required,approval,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 1);
	assert_string_equal(f.tools.calls[0], "remedy:restart-unit bg-demo.service");
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"verb\":\"restart-unit\",\"name\":\"devvm_remedy\""));
	assert_non_null(strstr(events,
			       "\"description\":\"restart the systemd unit bg-demo.service on the devvm (systemctl "
			       "restart)\""));
	assert_non_null(strstr(events, "\"verb\":\"restart-unit\",\"approved\":true,\"by\":\"carol\""));
	assert_non_null(strstr(events, "after: fine"));
	free(events);
	assert_int_equal(bg_audit_recent(&audit, f.audit, 10), BG_OK);
	assert_non_null(strstr(audit, "\"action\":\"approval\",\"target\":\"restart-unit bg-demo.service\""));
	assert_non_null(strstr(audit, "\"action\":\"tool.devvm_remedy\",\"target\":\"restart-unit bg-demo.service\""));
	bg_free(audit);
	fx_free(&f);
}

static void test_remedy_confirm_denied(void **state)
{
	fx f;
	char *events;

	(void)state;
	fx_remedy(&f, restart_script, BG_MUTATIONS_CONFIRM);
	run_with_approver(&f, 0, "dave");
	assert_int_equal(f.tools.n, 0); /* nothing ran */
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":false,\"by\":\"dave\""));
	assert_non_null(strstr(events, "denied by dave; it would have: restart the systemd unit bg-demo.service"));
	free(events);
	assert_non_null(strstr(f.llm->requests[1], "denied by dave"));
	fx_free(&f);
}

static void test_remedy_confirm_times_out(void **state)
{
	fx f;
	char *events;

	(void)state;
	fx_remedy(&f, restart_script, BG_MUTATIONS_CONFIRM);
	f.set.approval_timeout_ms = 300;
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_int_equal(f.tools.n, 0);
	events = all_events(f.s);
	assert_non_null(strstr(events, "\"approved\":false,\"by\":\"timeout\""));
	assert_non_null(strstr(events, "a human must approve this change"));
	free(events);
	fx_free(&f);
}

static void test_remedy_auto_runs_without_asking(void **state)
{
	fx f;

	(void)state;
	fx_remedy(&f, restart_script, BG_MUTATIONS_AUTO);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_kinds(f.s, "user,text,tool,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 1);
	assert_string_equal(f.tools.calls[0], "remedy:restart-unit bg-demo.service");
	fx_free(&f);
}

/* remove-file asks even under auto, naming the exact path. */
static void test_remedy_auto_still_asks_to_remove(void **state)
{
	fx f;
	char *events;
	int approve;

	(void)state;
	for (approve = 0; approve <= 1; approve++) {
		fx_remedy(&f, remove_script, BG_MUTATIONS_AUTO);
		run_with_approver(&f, approve, "carol");
		assert_kinds(f.s, "user,text,tool,approval_required,approval,tool_result,text,turn_end");
		events = all_events(f.s);
		assert_non_null(strstr(events, "\"verb\":\"remove-file\""));
		assert_non_null(strstr(events, "\"description\":\"DELETE the file /data/fill on the devvm"));
		free(events);
		assert_int_equal(f.tools.n, approve);
		if (approve)
			assert_string_equal(f.tools.calls[0], "remedy:remove-file /data/fill");
		fx_free(&f);
	}
}

static void test_remedy_deny(void **state)
{
	fx f;
	char *events, *audit = NULL;

	(void)state;
	fx_remedy(&f, restart_script, BG_MUTATIONS_DENY);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "fix it", "alice"), BG_OK);
	assert_kinds(f.s, "user,text,tool,tool_result,text,turn_end");
	assert_int_equal(f.tools.n, 0);
	events = all_events(f.s);
	assert_non_null(strstr(events, "devvm_mutations = deny"));
	assert_non_null(strstr(events, "It would have: restart the systemd unit bg-demo.service"));
	free(events);
	assert_non_null(strstr(f.llm->requests[1], "It would have"));
	assert_int_equal(bg_audit_recent(&audit, f.audit, 10), BG_OK);
	assert_non_null(strstr(audit, "\"target\":\"restart-unit bg-demo.service\",\"result\":\"denied\""));
	bg_free(audit);
	fx_free(&f);
}

/* A bad target is refused before any question: a human is never asked to
 * approve an injection, and nothing runs even under auto. */
static void test_remedy_bad_target_never_asked(void **state)
{
	static const reply script[] = {
		{NULL, "devvm_remedy", "{\"action\":\"restart-unit\",\"target\":\"x.service; reboot\"}", 0, 0},
		{NULL, "devvm_remedy", "{\"action\":\"kill-process\",\"target\":\"1:init\"}", 0, 0},
		{NULL, "devvm_remedy", "{\"action\":\"remove-file\",\"target\":\"/data/../etc/shadow\"}", 0, 0},
		{NULL, "devvm_remedy", "{\"action\":\"remount\",\"target\":\"/data\\n\"}", 0, 0},
		{NULL, "devvm_remedy", "{\"action\":\"reboot\",\"target\":\"now\"}", 0, 0},
		{"Cannot.", NULL, NULL, 0, 0},
	};
	bg_mutations modes[] = {BG_MUTATIONS_AUTO, BG_MUTATIONS_CONFIRM};
	size_t m;

	(void)state;
	for (m = 0; m < 2; m++) {
		fx f;
		char *events;

		fx_init(&f, script, 6, BG_MUTATIONS_AUTO);
		f.set.devvm_mutations = modes[m];
		fx_start(&f, NULL);
		assert_int_equal(bg_agent_run(f.a, "x", "alice"), BG_OK);
		assert_int_equal(f.tools.n, 0);
		assert_kinds(f.s, "user,tool,tool_result,tool,tool_result,tool,tool_result,tool,tool_result,tool,"
				  "tool_result,text,turn_end");
		events = all_events(f.s);
		assert_non_null(strstr(events, "systemd's characters"));
		assert_non_null(strstr(events, "pid 1 (init) is never killed"));
		assert_non_null(strstr(events, "canonical"));
		assert_non_null(strstr(events, "control"));
		assert_non_null(strstr(events, "the action must be one of"));
		free(events);
		fx_free(&f);
	}
}

static int yes_cb(const char *id, const char *name, const char *input, const char **by, void *payload)
{
	(void)id;
	(void)input;
	(void)payload;
	assert_string_equal(name, "devvm_remedy");
	*by = "tty:yes";
	return 1;
}

/* The offline playbook through the agent: the triage's culprits become
 * remedies, each through the policy; a hostile culprit (the guest wrote
 * it) is refused like any other request, the good one runs, the triage
 * checks it, and no power verb is asked while the devvm answers. */
static void test_playbook_remedies_through_the_agent(void **state)
{
	static const reply script[] = {{NULL, NULL, NULL, BG_EUNAVAILABLE, 0}};
	fx f;
	bg_llm *offline;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_AUTO);
	f.set.devvm_mutations = BG_MUTATIONS_AUTO;
	f.tools.triage_out = "findings:\n"
			     "- warn failed_units: 2 failed units\n  culprit: unit:x;reboot.service\n"
			     "- warn hung_unit: bg-demo.service stuck\n  culprit: unit:bg-demo.service\n";
	assert_int_equal(bg_llm_offline_new(&offline, NULL), BG_OK);
	fx_start(&f, offline);
	assert_int_equal(bg_agent_run(f.a, "the devvm is slow", "alice"), BG_OK);
	assert_int_equal(f.tools.n, 5);
	assert_string_equal(f.tools.calls[0], "pve:status");
	assert_string_equal(f.tools.calls[1], "exec:uptime");
	assert_string_equal(f.tools.calls[2], "triage");
	assert_string_equal(f.tools.calls[3], "remedy:restart-unit bg-demo.service");
	assert_string_equal(f.tools.calls[4], "triage");
	events = all_events(f.s);
	assert_non_null(strstr(events, "systemd's characters"));
	assert_non_null(strstr(events, "not run: refused"));
	assert_non_null(strstr(events, "nothing wrong any more"));
	free(events);
	fx_free(&f);
}

/* The triage's own rules on recorded sections (tests/fixtures/triage, the
 * healthy Debian run with one section replaced), rendered as the real
 * tool renders them, and the offline playbook through the agent: each
 * finding of the catalogue meets its remedy with the culprit the rules
 * named. */
static void test_playbook_on_recorded_findings(void **state)
{
	static const struct {
		const char *file, *section, *rule, *call;
	} cases[] = {
		{"cpu-runaway.top_cpu", "top_cpu", "cpu_runaway", "remedy:kill-process "},
		{"hung-activating.units", "units", "hung_unit", "remedy:restart-unit bg-demo.service"},
		{"failed-units.failed_units", "failed_units", "failed_units", "remedy:restart-unit docker.service"},
		{"fs-readonly-debian.mounts", "mounts", "fs_readonly", "remedy:remount /data"},
		{"tmpfs-debian.tmpfs", "tmpfs", "tmpfs_ram", "remedy:remove-file /dev/shm/"},
		{"disk-full-du.disk", "disk", "disk_full", "remedy:remove-file /data/bg-fault-fill"},
		{"inodes-full-find.inodes", "inodes", "inodes_full",
		 "remedy:remove-file /data/bg-fault-inodes (recursive)"},
		{"storm-busybox.procs", "procs", "process_storm", "remedy:kill-process 1432:bg-storm"},
		{"mem-low.memory", "memory", "memory_low", "remedy:kill-process 29161:qemu-system-x86"},
		{"swap-thrash-top.memory", "memory", "swap_thrash", "remedy:kill-process 2210:java"},
	};
	char *healthy_text = bg_test_read_fixture("triage", "healthy-debian.out");
	bg_triage *healthy = NULL;
	size_t c;

	(void)state;
	assert_int_equal(bg_triage_parse_output(&healthy, healthy_text, strlen(healthy_text), "BGTRI-1234"), BG_OK);
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		static const reply script[] = {{NULL, NULL, NULL, BG_EUNAVAILABLE, 0}};
		const char *names[32], *outputs[32];
		char *replacement = bg_test_read_fixture("triage", cases[c].file);
		size_t i, n = bg_triage_section_count(healthy), found = 0;
		bg_triage *t = NULL;
		bg_buf text = BG_BUF_INIT;
		bg_llm *offline;
		fx f;

		assert_true(n <= 32);
		for (i = 0; i < n; i++) {
			names[i] = bg_triage_section_at(healthy, i)->name;
			outputs[i] = strcmp(names[i], cases[c].section) == 0 ? replacement
									     : bg_triage_section_at(healthy, i)->output;
		}
		assert_int_equal(bg_triage_from_sections(&t, names, outputs, n), BG_OK);
		for (i = 0; i < bg_triage_finding_count(t); i++)
			found |= strcmp(bg_triage_finding_at(t, i)->rule, cases[c].rule) == 0;
		if (!found)
			fail_msg("%s: no %s finding", cases[c].file, cases[c].rule);
		bg_agent_render_findings(&text, t);

		fx_init(&f, script, 1, BG_MUTATIONS_DENY);
		f.set.devvm_mutations = BG_MUTATIONS_AUTO;
		f.tools.triage_out = text.data;
		/* remove-file asks even under auto: say yes from the callback */
		f.set.approve = yes_cb;
		assert_int_equal(bg_llm_offline_new(&offline, NULL), BG_OK);
		fx_start(&f, offline);
		assert_int_equal(bg_agent_run(f.a, "the devvm is sick", "alice"), BG_OK);
		if (f.tools.n < 5 || strncmp(f.tools.calls[3], cases[c].call, strlen(cases[c].call)) != 0)
			fail_msg("%s: calls %s, %s (want %s…); the findings:\n%s", cases[c].file, f.tools.calls[2],
				 f.tools.n > 3 ? f.tools.calls[3] : "-", cases[c].call, text.data);
		assert_string_equal(f.tools.calls[f.tools.n - 1], "triage"); /* checked after */
		for (i = 0; i < (size_t)f.tools.n; i++)
			assert_true(strncmp(f.tools.calls[i], "pve:", 4) != 0 ||
				    strcmp(f.tools.calls[i], "pve:status") == 0);
		fx_free(&f);
		bg_buf_free(&text);
		bg_triage_free(t);
		free(replacement);
	}
	bg_triage_free(healthy);
	free(healthy_text);
}

/* ---- fallback ------------------------------------------------------------ */

static void test_fallback_to_offline(void **state)
{
	static const reply script[] = {{NULL, NULL, NULL, BG_EUNAVAILABLE, 0}};
	fx f;
	bg_llm *offline;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_AUTO);
	assert_int_equal(bg_llm_offline_new(&offline, NULL), BG_OK);
	fx_start(&f, offline);
	assert_int_equal(bg_agent_run(f.a, "the devvm is dead", "alice"), BG_OK);
	assert_int_equal(f.llm->nreq, 1); /* tried once, then the playbook */
	events = all_events(f.s);
	assert_non_null(strstr(events, "the LLM is unreachable"));
	assert_non_null(strstr(events, "offline playbook takes over"));
	assert_non_null(strstr(events, "\"fallback\":\"offline\"")); /* what the page reads */
	free(events);
	/* The playbook ran in the same turn: status, reachability, triage. */
	assert_int_equal(f.tools.n, 3);
	assert_string_equal(f.tools.calls[0], "pve:status");
	assert_string_equal(f.tools.calls[1], "exec:uptime");
	assert_string_equal(f.tools.calls[2], "triage");
	fx_free(&f);
}

static void test_unavailable_without_fallback(void **state)
{
	static const reply script[] = {{NULL, NULL, NULL, BG_EUNAVAILABLE, 0}};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_AUTO);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "x", "alice"), BG_EUNAVAILABLE);
	assert_kinds(f.s, "user,error,turn_end");
	events = all_events(f.s);
	assert_non_null(strstr(events, "the LLM is unreachable"));
	assert_non_null(strstr(events, "no fallback is configured"));
	free(events);
	assert_int_equal(f.tools.n, 0);
	fx_free(&f);
}

static void test_model_error_ends_turn(void **state)
{
	static const reply script[] = {{NULL, NULL, NULL, BG_EAUTH, 0}};
	fx f;
	char *events;

	(void)state;
	fx_init(&f, script, 1, BG_MUTATIONS_AUTO);
	fx_start(&f, NULL);
	assert_int_equal(bg_agent_run(f.a, "x", "alice"), BG_EAUTH);
	assert_kinds(f.s, "user,error,turn_end");
	events = all_events(f.s);
	assert_non_null(strstr(events, "failing with"));
	free(events);
	fx_free(&f);
}

/* The conversation of a session whose store closed: a failure with its
 * own code and message, never NULL with a stale error (agent.c's
 * ask_model returns that code as the turn's). */
static void test_messages_of_closed_session(void **state)
{
	bg_session_store *st;
	bg_session *s, *empty;
	json_object *m = (json_object *)1;

	(void)state;
	assert_int_equal(bg_session_store_open(&st, NULL, 4), BG_OK);
	assert_int_equal(bg_session_create(&s, st), BG_OK);
	assert_int_equal(bg_session_append(NULL, s, "{\"kind\":\"user\",\"text\":\"hi\"}"), BG_OK);
	assert_int_equal(bg_agent_messages_from_session(&m, s, 0), BG_OK);
	assert_int_equal(json_object_array_length(m), 1);
	json_object_put(m);
	assert_int_equal(bg_session_create(&empty, st), BG_OK);
	bg_session_store_free(st);
	bg_error_set(BG_EAUTH, "a stale failure");
	assert_int_equal(bg_agent_messages_from_session(&m, empty, 0), BG_ECANCELLED);
	assert_null(m);
	assert_int_equal(bg_error_last()->code, BG_ECANCELLED);
	assert_error_contains("closed");
	bg_session_release(empty);
	bg_session_release(s);
}

static void test_cap_output(void **state)
{
	char big[10000], *out;
	size_t elided;

	(void)state;
	memset(big, 'x', sizeof(big));
	out = bg_agent_cap_output("short", 5, 1000, &elided);
	assert_string_equal(out, "short");
	assert_int_equal(elided, 0);
	free(out);
	out = bg_agent_cap_output(big, sizeof(big), 1000, &elided);
	assert_true(strlen(out) <= 1000 + 100);
	assert_true(elided > 8000);
	assert_non_null(strstr(out, "elided"));
	free(out);
}

static void test_tool_table(void **state)
{
	size_t n;
	const char *const *names = bg_agent_tool_names(&n);
	json_object *defs = bg_agent_tool_defs();
	size_t i;

	(void)state;
	assert_int_equal(n, 4);
	assert_int_equal(json_object_array_length(defs), n);
	for (i = 0; i < n; i++)
		assert_string_equal(bg_json_str(json_object_array_get_idx(defs, i), "name", ""), names[i]);
	assert_non_null(strstr(bg_agent_default_system_prompt(), "cycle"));
	/* the catalogue: each remedy, remedies before power verbs */
	assert_non_null(strstr(bg_agent_default_system_prompt(), "restart-unit"));
	assert_non_null(strstr(bg_agent_default_system_prompt(), "kill-process"));
	assert_non_null(strstr(bg_agent_default_system_prompt(), "remove-file"));
	assert_non_null(strstr(bg_agent_default_system_prompt(), "remount"));
	assert_non_null(strstr(bg_agent_default_system_prompt(), "before any power verb"));
	assert_non_null(strstr(bg_agent_default_system_prompt(), "only when the devvm does not answer"));
	json_object_put(defs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tool_loop),
		cmocka_unit_test(test_second_turn_has_history),
		cmocka_unit_test(test_output_capped_for_model),
		cmocka_unit_test(test_approval_granted),
		cmocka_unit_test(test_approval_denied),
		cmocka_unit_test(test_approval_times_out),
		cmocka_unit_test(test_decide_wrong_request),
		cmocka_unit_test(test_mutations_auto),
		cmocka_unit_test(test_mutations_deny),
		cmocka_unit_test(test_approval_callback),
		cmocka_unit_test(test_unknown_tool_and_verb),
		cmocka_unit_test(test_max_steps),
		cmocka_unit_test(test_one_turn_at_a_time),
		cmocka_unit_test(test_cancel_mid_stream),
		cmocka_unit_test(test_cancel_mid_tool),
		cmocka_unit_test(test_cancel_pending_approval),
		cmocka_unit_test(test_remedy_confirm_approved),
		cmocka_unit_test(test_remedy_confirm_denied),
		cmocka_unit_test(test_remedy_confirm_times_out),
		cmocka_unit_test(test_remedy_auto_runs_without_asking),
		cmocka_unit_test(test_remedy_auto_still_asks_to_remove),
		cmocka_unit_test(test_remedy_deny),
		cmocka_unit_test(test_remedy_bad_target_never_asked),
		cmocka_unit_test(test_playbook_remedies_through_the_agent),
		cmocka_unit_test(test_playbook_on_recorded_findings),
		cmocka_unit_test(test_fallback_to_offline),
		cmocka_unit_test(test_unavailable_without_fallback),
		cmocka_unit_test(test_model_error_ends_turn),
		cmocka_unit_test(test_messages_of_closed_session),
		cmocka_unit_test(test_cap_output),
		cmocka_unit_test(test_tool_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
