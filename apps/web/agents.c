/*
 * One bg_agent per session that has had a prompt, kept while the session
 * is among the newest [web] max_sessions. A turn runs in a thread of its
 * own (bg_agent_run), so it goes on when its client leaves; the session's
 * event log is what clients follow. When the turn ends, its events are
 * counted for /metrics and read for what they say of the peers (deps.c).
 */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct agent_entry {
	char id[WEB_SESSION_ID_LEN + 1];
	bg_agent *agent;
	bg_session *session;
	pthread_t thread;
	int has_thread;
	/* 1 from the prompt until bg_agent_run() returns (a second prompt:
	 * 409), 0 once the turn has ended and only its counting remains. */
	atomic_int running;
	char *prompt;
	char who[160];
	long long start_id;
	time_t last_used;
	web_agents *ag;
} agent_entry;

struct web_agents {
	web_server *srv;
	pthread_mutex_t lock;
	agent_entry **e;
	int n, cap;
	bg_agent_options opts;
};

int web_agents_new(web_agents **out, web_server *srv)
{
	web_agents *ag = calloc(1, sizeof(*ag));

	*out = NULL;
	if (!ag)
		return -1;
	ag->srv = srv;
	ag->cap = srv->set.max_sessions;
	ag->e = calloc((size_t)ag->cap, sizeof(*ag->e));
	if (!ag->e) {
		free(ag);
		return -1;
	}
	pthread_mutex_init(&ag->lock, NULL);
	bg_agent_options_init(&ag->opts, BG_AGENT_OPTIONS_VERSION);
	ag->opts.audit = srv->audit;
	ag->opts.ssh_key = srv->vm->ssh_key;
	ag->opts.api_key = srv->vm->health.llm_key; /* read once: every session's agent has it */
	ag->opts.approval_timeout_s = 600;
	*out = ag;
	return 0;
}

static void entry_free(agent_entry *e)
{
	if (!e)
		return;
	if (e->agent)
		bg_agent_cancel(e->agent);
	if (e->has_thread)
		pthread_join(e->thread, NULL);
	bg_agent_free(e->agent);
	bg_session_release(e->session);
	free(e->prompt);
	free(e);
}

void web_agents_free(web_agents *ag)
{
	int i;

	if (!ag)
		return;
	/* Cancel every turn first, so that they end side by side. */
	pthread_mutex_lock(&ag->lock);
	for (i = 0; i < ag->n; i++)
		if (atomic_load(&ag->e[i]->running))
			bg_agent_cancel(ag->e[i]->agent);
	pthread_mutex_unlock(&ag->lock);
	for (i = 0; i < ag->n; i++)
		entry_free(ag->e[i]);
	free(ag->e);
	pthread_mutex_destroy(&ag->lock);
	free(ag);
}

typedef struct turn_count {
	web_server *srv;
	web_turn_scan scan;
} turn_count;

static int count_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	turn_count *tc = payload;
	web_metrics *m = tc->srv->metrics;
	char *text = NULL;

	(void)id;
	web_health_scan_event(tc->srv->vm, &tc->scan, kind, json, len);
	if (kind == BG_EVENT_TOOL)
		atomic_fetch_add(&m->tool_calls, 1);
	else if (kind == BG_EVENT_APPROVAL)
		atomic_fetch_add(&m->approvals, 1);
	else if (kind == BG_EVENT_ERROR) {
		int k = 3;
		if (bg_event_field(&text, json, len, "error") == BG_OK && text) {
			if (strstr(text, "unreachable") || strstr(text, "connect"))
				k = 0;
			else if (strstr(text, "timed out") || strstr(text, "timeout"))
				k = 1;
			else if (strstr(text, "cancel"))
				k = 2;
		}
		bg_free(text);
		atomic_fetch_add(&m->llm_errors[k], 1);
	}
	return 0;
}

static void *turn_thread(void *arg)
{
	agent_entry *e = arg;
	web_agents *ag = e->ag;
	turn_count tc;
	int rc = bg_agent_run(e->agent, e->prompt, e->who);

	if (rc != BG_OK && rc != BG_ECANCELLED)
		web_log_event("turn-error", "session %s: %s", e->id, bg_error_last()->message);
	/* The turn is over: a new prompt may come now (it joins this thread,
	 * which takes no lock from here on). */
	atomic_store(&e->running, 0);
	atomic_fetch_add(&ag->srv->metrics->turns, 1);
	memset(&tc, 0, sizeof(tc));
	tc.srv = ag->srv;
	bg_session_read(e->session, e->start_id, 0, count_event, &tc);
	return NULL;
}

static agent_entry *find(web_agents *ag, const char *id)
{
	int i;

	for (i = 0; i < ag->n; i++)
		if (strcmp(ag->e[i]->id, id) == 0)
			return ag->e[i];
	return NULL;
}

/* Room for one more: forget the least recently used idle agent. */
static int make_room(web_agents *ag)
{
	int i, victim = -1;

	if (ag->n < ag->cap)
		return 0;
	for (i = 0; i < ag->n; i++)
		if (!atomic_load(&ag->e[i]->running) && (victim < 0 || ag->e[i]->last_used < ag->e[victim]->last_used))
			victim = i;
	if (victim < 0)
		return -1;
	entry_free(ag->e[victim]);
	ag->e[victim] = ag->e[--ag->n];
	return 0;
}

int web_agents_prompt(web_agents *ag, bg_session *s, const char *prompt, const char *who)
{
	agent_entry *e;
	int rc;

	pthread_mutex_lock(&ag->lock);
	e = find(ag, bg_session_id(s));
	if (!e) {
		if (make_room(ag) != 0) {
			pthread_mutex_unlock(&ag->lock);
			return BG_EBUSY;
		}
		e = calloc(1, sizeof(*e));
		if (!e || (rc = bg_agent_new(&e->agent, ag->srv->cfg, s, &ag->opts)) != BG_OK) {
			pthread_mutex_unlock(&ag->lock);
			free(e);
			return e ? rc : BG_ENOMEM;
		}
		snprintf(e->id, sizeof(e->id), "%s", bg_session_id(s));
		e->session = bg_session_ref(s);
		e->ag = ag;
		ag->e[ag->n++] = e;
	}
	/* A turn that wrote its events and left the busy state has ended,
	 * even if its thread has not returned yet: a client that saw
	 * turn_end may send the next prompt at once (the join is short). */
	if (bg_session_busy(s) || (atomic_load(&e->running) && bg_session_last_id(s) <= e->start_id)) {
		pthread_mutex_unlock(&ag->lock);
		return BG_ESTATE;
	}
	if (e->has_thread) {
		pthread_join(e->thread, NULL);
		e->has_thread = 0;
	}
	free(e->prompt);
	e->prompt = strdup(prompt);
	snprintf(e->who, sizeof(e->who), "%s", who);
	e->start_id = bg_session_last_id(s);
	e->last_used = time(NULL);
	atomic_store(&e->running, 1);
	if (!e->prompt || pthread_create(&e->thread, NULL, turn_thread, e) != 0) {
		atomic_store(&e->running, 0);
		pthread_mutex_unlock(&ag->lock);
		return BG_ENOMEM;
	}
	e->has_thread = 1;
	pthread_mutex_unlock(&ag->lock);
	return BG_OK;
}

int web_agents_cancel(web_agents *ag, const char *session_id)
{
	agent_entry *e;
	int rc = 0;

	pthread_mutex_lock(&ag->lock);
	e = find(ag, session_id);
	if (e && atomic_load(&e->running))
		rc = bg_agent_cancel(e->agent);
	pthread_mutex_unlock(&ag->lock);
	return rc;
}

int web_agents_decide(web_agents *ag, const char *session_id, const char *nonce, const char *verb, int approved,
		      const char *who)
{
	agent_entry *e;
	int rc;

	pthread_mutex_lock(&ag->lock);
	e = find(ag, session_id);
	rc = e && atomic_load(&e->running) ? bg_agent_decide(e->agent, nonce, verb, approved, who) : BG_ENOTFOUND;
	pthread_mutex_unlock(&ag->lock);
	return rc;
}

int web_agents_running(web_agents *ag)
{
	int i, n = 0;

	pthread_mutex_lock(&ag->lock);
	for (i = 0; i < ag->n; i++)
		n += atomic_load(&ag->e[i]->running);
	pthread_mutex_unlock(&ag->lock);
	return n;
}
