/*
 * Internal: the provider interface between lib/agent and lib/llm.
 *
 * The conversation is kept in the Anthropic Messages shape (json-c):
 * messages [{role, content: [blocks]}], blocks of type text, tool_use
 * {id,name,input}, tool_result {tool_use_id, content, is_error}; tools
 * [{name, description, input_schema}]. The openai provider translates to
 * and from chat completions; the offline provider reads the same messages
 * and decides its next tool call by rules.
 */
#ifndef BG_LLM_PROVIDER_H
#define BG_LLM_PROVIDER_H

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdint.h>

#include "breakglass/common.h"
#include "breakglass/secret.h"
#include "core/clock.h"

typedef struct bg_llm_request {
	const char *model;
	int max_tokens;        /* 4096 when <= 0; model NULL or "": the provider's default */
	const char *system;    /* the system prompt */
	json_object *tools;    /* array, Anthropic shape; borrowed */
	json_object *messages; /* array, Anthropic shape; borrowed */
	bg_deadline deadline;  /* the turn's deadline: no retry starts after it ({0}: none) */
} bg_llm_request;

/* Callbacks while a reply streams in. Each returns 0 to go on or a
 * negative value to abort (returned by complete()). */
typedef struct bg_llm_callbacks {
	/* A piece of assistant text, as it arrives (valid UTF-8: a character
	 * split across network chunks is delivered whole). */
	int (*on_text)(const char *delta, size_t len, void *payload);
	/* A tool call, once its input JSON is complete; `input` is borrowed
	 * (valid during the call). For display only: run tools from
	 * resp->message after complete() returned BG_OK, since a later error
	 * in the same stream (overloaded_error) drops the reply and retries. */
	int (*on_tool_use)(const char *id, const char *name, json_object *input, void *payload);
	/* A retry is about to wait `delay_ms` after `why` (for the event log).
	 * Text and tool calls streamed before it belonged to a dropped attempt:
	 * the reply starts again from nothing. */
	int (*on_retry)(int attempt, int64_t delay_ms, const char *why, void *payload);
	void *payload;
} bg_llm_callbacks;

typedef struct bg_llm_response {
	json_object *message; /* the assistant message as received ({role, content}); owned */
	char stop_reason[32]; /* end_turn, tool_use, max_tokens, … */
	int64_t input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens;
	int attempts; /* 1 + retries taken */
} bg_llm_response;

typedef struct bg_llm_settings {
	const char *provider;     /* anthropic | openai | offline */
	const char *base_url;     /* "" or NULL = the provider's own */
	const bg_secret *api_key; /* borrowed; NULL for offline or a keyless local server */
	int oauth;                /* 1: send Authorization: Bearer (+ anthropic-beta: oauth-2025-04-20)
				     instead of x-api-key; implied by a key starting "sk-ant-oat" */
	int max_retries;          /* 2 when < 0 */
	int connect_timeout_ms;   /* 10000 when 0 */
	int idle_timeout_ms;      /* silence on an open stream before giving up; 60000 when 0 */
} bg_llm_settings;

typedef struct bg_llm bg_llm;

typedef struct bg_llm_vtable {
	const char *name;
	int (*complete)(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp);
	void (*destroy)(bg_llm *llm); /* frees the provider's whole struct */
} bg_llm_vtable;

/*
 * The common head of every provider. A provider's own struct starts with
 * it (`struct my_llm { bg_llm base; … }`), sets `vt`, and casts back in
 * its vtable functions. bg_llm_cancel() sets `cancelled`; a provider that
 * waits polls bg_llm_cancelled() at least every 100 ms.
 */
struct bg_llm {
	const bg_llm_vtable *vt;
	atomic_int cancelled;
};

/* Whether bg_llm_cancel() was called (and not reset since). */
int bg_llm_cancelled(const bg_llm *llm);

/* Create a provider from settings (strings are copied): dispatches on
 * settings->provider to the constructors below. */
int bg_llm_new(bg_llm **out, const bg_llm_settings *settings);

/* The providers' constructors (same contract as bg_llm_new). */
int bg_llm_anthropic_new(bg_llm **out, const bg_llm_settings *s);
int bg_llm_openai_new(bg_llm **out, const bg_llm_settings *s);
int bg_llm_offline_new(bg_llm **out, const bg_llm_settings *s);

/*
 * One model reply (one call at a time per handle: BG_ESTATE otherwise).
 * The callbacks may be NULL. BG_OK with resp filled; BG_EUNAVAILABLE when the API
 * stayed unreachable or overloaded after the retries (the agent then runs
 * its fallback); BG_EAUTH / BG_EINVAL (a 4xx that will not change, with
 * the API's message); BG_ECANCELLED after bg_llm_cancel(); BG_ETIMEOUT
 * past the request's deadline.
 */
int bg_llm_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp);

/* Abort the transfer in progress (any thread); complete() returns
 * BG_ECANCELLED promptly. Sticky until bg_llm_reset_cancel(). */
void bg_llm_cancel(bg_llm *llm);
void bg_llm_reset_cancel(bg_llm *llm);

void bg_llm_response_clear(bg_llm_response *resp);
void bg_llm_free(bg_llm *llm);

#endif
