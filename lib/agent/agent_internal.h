/* Internal: the seams of the agent that tests reach (tools, model, limits). */
#ifndef BG_AGENT_INTERNAL_H
#define BG_AGENT_INTERNAL_H

#include <json-c/json.h>

#include "agent/remedy.h"
#include "breakglass/agent.h"
#include "breakglass/triage.h"
#include "core/buf.h"
#include "llm/provider.h"

/* What a tool did, as text for the model and the event log. */
typedef struct bg_tool_out {
	int ok;         /* the tool did what was asked (exit 0, verb done) */
	int exit_code;  /* the remote / breakglass-pve status, -1 when none */
	char *output;   /* malloc'd text */
	size_t dropped; /* bytes the transport counted but did not keep */
	int refused;    /* policy or a human said no: nothing ran */
} bg_tool_out;

/*
 * The tool executors. Each returns BG_OK when the tool ran (whatever its
 * outcome: see out->ok) or a negative status when it could not run at all
 * (out->output may still explain); BG_ECANCELLED after cancel(). cancel()
 * is called from another thread.
 */
typedef struct bg_agent_tools {
	int (*exec)(void *impl, const char *command, int timeout_s, bg_tool_out *out);
	int (*triage)(void *impl, int timeout_s, bg_tool_out *out);
	int (*pve)(void *impl, const char *verb, int timeout_s, bg_tool_out *out);
	void (*cancel)(void *impl);
	void (*destroy)(void *impl);
	/* devvm_remedy, validated and allowed by the policy already; NULL: the
	 * tool set cannot run remedies (refused). */
	int (*remedy)(void *impl, const bg_remedy *r, int timeout_s, bg_tool_out *out);
} bg_agent_tools;

typedef enum bg_mutations { BG_MUTATIONS_AUTO, BG_MUTATIONS_CONFIRM, BG_MUTATIONS_DENY } bg_mutations;

typedef struct bg_agent_settings {
	const char *model;
	const char *system_prompt; /* copied */
	int max_steps, max_tokens, turn_timeout_s;
	bg_mutations mutations;       /* [agent] pve_mutations */
	bg_mutations devvm_mutations; /* [agent] devvm_mutations (remove-file always asks) */
	int fallback_offline;         /* run the offline playbook when the LLM is unavailable */
	int approval_timeout_ms;      /* BG_AGENT_APPROVAL_TIMEOUT_S when 0 */
	size_t model_output_cap;      /* bytes of tool output the model sees; 16 KiB when 0 */
	size_t event_output_cap;      /* bytes kept in the event; 64 KiB when 0 */
	int devvm_timeout_s, pve_timeout_s;
	bg_audit *audit;
	bg_agent_approve_fn approve;
	void *approve_payload;
	bg_secret *owned_api_key; /* freed with the agent (the LLM borrows it) */
} bg_agent_settings;

/*
 * An agent over an explicit model and tools. Takes ownership of `llm`,
 * `fallback` (may be NULL) and `impl` (destroyed with tools->destroy).
 */
int bg_agent_new_with(bg_agent **out, const bg_agent_settings *s, bg_session *session, bg_llm *llm, bg_llm *fallback,
		      const bg_agent_tools *tools, void *impl);

/* The real executors: SSH to the devvm, the triage, the forced command. */
int bg_agent_tools_real(const bg_agent_tools **tools, void **impl, const bg_config *cfg, const bg_secret *key);

/* The triage's findings as the model and the offline playbook read them:
 * "findings:" then "- SEVERITY RULE: summary" lines, each followed by
 * "  culprit: KIND:WHAT" when the finding names one. */
void bg_agent_render_findings(bg_buf *b, const bg_triage *t);

/* The length of `s` up to its first control byte (guest text on one line). */
size_t bg_agent_line_len(const char *s);

/* The tool definitions the model is given, in the Anthropic shape; a new reference. */
json_object *bg_agent_tool_defs(void);

/* Rebuild the conversation (Anthropic messages) from a session's events:
 * the agent keeps no other copy, so a reloaded session continues. *out is
 * a new array; on failure it is NULL and the error is recorded
 * (BG_ENOMEM, or BG_ECANCELLED when the store closed). */
int bg_agent_messages_from_session(json_object **out, bg_session *s, size_t model_output_cap);

/* Keep the head and the tail of `text` within `cap` bytes, saying how much
 * of the middle was elided. A new string; `*elided` gets the byte count. */
char *bg_agent_cap_output(const char *text, size_t len, size_t cap, size_t *elided);

#endif
