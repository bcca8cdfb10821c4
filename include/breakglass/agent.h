/*
 * libbreakglass — the agent (docs/agent.md): one turn of the tool loop, run
 * against a session (breakglass/session.h), with approvals for the
 * mutating Proxmox verbs.
 *
 * The model sees four tools and nothing else: `devvm_exec {command,
 * timeout_s?}` (a command on the devvm over SSH), `devvm_triage {}`,
 * `devvm_remedy {action, target, recursive?}` (a fixed repair on the
 * devvm, gated by [agent] devvm_mutations) and `pve {verb}` (a verb
 * through the forced command). Everything a turn
 * does is an event in the session, so every front end (the web page, the
 * terminal, --json) shows the same thing, and an audit record.
 *
 * One bg_agent drives one session: it owns its LLM handle and its two SSH
 * handles, so cancelling one session's turn never disturbs another's.
 */
#ifndef BREAKGLASS_AGENT_H
#define BREAKGLASS_AGENT_H

#include "audit.h"
#include "common.h"
#include "config.h"
#include "llm.h"
#include "secret.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The tool names (BG_AGENT_TOOL_*) are spelled once, in llm.h: the offline
 * playbook, a provider of the llm room, drives the same tools. */

/** The tools the model sees, in the one table of tool names (static
 *  strings; `*count` receives how many). */
BG_EXTERN const char *const *bg_agent_tool_names(size_t *count);

/** The system prompt shipped with the library (never NULL; static). */
BG_EXTERN const char *bg_agent_default_system_prompt(void);

/**
 * How long a human has to decide on a mutating verb or a remedy, in
 * seconds: the web's buttons and the terminal's prompt wait this long,
 * then it is denied.
 */
#define BG_AGENT_APPROVAL_TIMEOUT_S 600

/**
 * A decision on a mutating verb or a remedy (`name` "pve" or
 * "devvm_remedy"), asked in the turn's thread. Return 1 to
 * approve, 0 to deny; `*by` (optional, static or owned by the callee
 * until the next call) names who decided. When no callback is set the
 * turn waits for bg_agent_decide() from another thread.
 */
typedef int (*bg_agent_approve_fn)(const char *tool_use_id, const char *name, const char *input_json, const char **by,
				   void *payload);

#define BG_AGENT_OPTIONS_VERSION 1

typedef struct bg_agent_options {
	unsigned int version;        /**< BG_AGENT_OPTIONS_VERSION */
	bg_audit *audit;             /**< borrowed, may be NULL */
	const bg_secret *ssh_key;    /**< borrowed (bg_ssh_key_load), may be NULL with use_agent */
	const bg_secret *api_key;    /**< borrowed; NULL: [agent] api_key_file or the environment */
	bg_agent_approve_fn approve; /**< NULL: wait for bg_agent_decide() */
	void *approve_payload;
	int approval_timeout_s; /**< no decision within this = denied; BG_AGENT_APPROVAL_TIMEOUT_S when 0 */
	const char *provider;   /**< override [agent] provider (e.g. "offline"), or NULL */
} bg_agent_options;

#define BG_AGENT_OPTIONS_INIT                                                   \
	{                                                                       \
		BG_AGENT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, 0, NULL \
	}

BG_EXTERN int bg_agent_options_init(bg_agent_options *opts, unsigned int version);

typedef struct bg_agent bg_agent;

/**
 * An agent for `session` from the client configuration: provider, model,
 * limits, pve_mutations, fallback and the system prompt (from
 * [agent] system_prompt_file when set). The configuration and options
 * (and what they point to) must outlive the agent; the agent takes its own
 * reference on the session. Nothing connects until a turn needs it.
 */
BG_EXTERN int bg_agent_new(bg_agent **out, const bg_config *cfg, bg_session *session, const bg_agent_options *opts);

/**
 * Run one turn for `prompt` (asked by `by`) in the calling thread and
 * return when it ends. Every step is an event in the session; the last
 * is `turn_end`. BG_OK when the turn ran to its end (whatever the model
 * concluded), BG_ESTATE when a turn already runs in this session,
 * BG_ECANCELLED after bg_agent_cancel(), or the error that ended it (also
 * in the log as an `error` event).
 */
BG_EXTERN int bg_agent_run(bg_agent *a, const char *prompt, const char *by);

/**
 * The same turn, detached in a thread of its own (the web's model: it goes
 * on when the client leaves). BG_ESTATE when one runs already. Follow it
 * through the session; bg_agent_wait() joins it.
 */
BG_EXTERN int bg_agent_start(bg_agent *a, const char *prompt, const char *by);

/** Wait for a detached turn to finish; its result, or BG_OK if none ran. */
BG_EXTERN int bg_agent_wait(bg_agent *a);

/**
 * Cancel the running turn from any thread: the LLM transfer and the SSH
 * exec in progress are aborted, a pending approval is denied, and the turn
 * ends with `cancelled` and `turn_end`. Returns 1 if a turn was running.
 */
BG_EXTERN int bg_agent_cancel(bg_agent *a);

/**
 * Decide on the approval that waits (any thread). `nonce` and `verb` are
 * the `nonce` and `verb` of the `approval_required` event that was shown:
 * the agent makes a new random nonce for each request, so a late answer
 * to an earlier question never approves a later one, even when the model
 * reused its tool_use id. BG_ENOTFOUND when no approval waits with that
 * nonce and that verb (decided already, timed out, or another request).
 */
BG_EXTERN int bg_agent_decide(bg_agent *a, const char *nonce, const char *verb, int approved, const char *by);

/** The session the agent drives (borrowed: valid while the agent is). */
BG_EXTERN bg_session *bg_agent_session(bg_agent *a);

/** Cancel and join any turn, then free. NULL is a no-op. */
BG_EXTERN void bg_agent_free(bg_agent *a);

#ifdef __cplusplus
}
#endif
#endif
