/*
 * libbreakglass — the LLM endpoint as seen from outside the agent.
 *
 * The providers themselves (anthropic, openai, offline) sit behind an
 * internal vtable in lib/llm and are driven by the agent (breakglass/agent.h).
 * This header has what the programs need directly.
 */
#ifndef BREAKGLASS_LLM_H
#define BREAKGLASS_LLM_H

#include "common.h"
#include "config.h"
#include "secret.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The names of the tools the model sees: spelled here once, used by the
 *  agent's tool table and loop, the offline playbook (which drives the same
 *  tools as a model would) and the front ends. */
#define BG_AGENT_TOOL_DEVVM_EXEC   "devvm_exec"
#define BG_AGENT_TOOL_DEVVM_TRIAGE "devvm_triage"
#define BG_AGENT_TOOL_PVE          "pve"
#define BG_AGENT_TOOL_DEVVM_REMEDY "devvm_remedy"

/** The actions of devvm_remedy {action, target, recursive?}: each one fixed
 *  command on the devvm, its target validated whoever asked (docs/agent.md). */
#define BG_REMEDY_RESTART_UNIT "restart-unit"
#define BG_REMEDY_KILL_PROCESS "kill-process"
#define BG_REMEDY_REMOVE_FILE  "remove-file"
#define BG_REMEDY_REMOUNT      "remount"

/**
 * Check that the configured provider's endpoint answers (for `doctor`):
 * resolve, connect and a cheap authenticated request where the provider
 * has one, within `timeout_s`. `*detail_out` (freed with bg_free()) receives one
 * line that says what was checked and what came back. The offline
 * provider always passes. Never sends a prompt.
 */
BG_EXTERN int bg_llm_check(char **detail_out, const bg_config *cfg, int timeout_s);

/**
 * bg_llm_check() with the API key given (borrowed), for a program that
 * read it once (bg_secret_from_env() removes it from the environment);
 * NULL: as bg_llm_check().
 */
BG_EXTERN int bg_llm_check_key(char **detail_out, const bg_config *cfg, const bg_secret *key, int timeout_s);

#ifdef __cplusplus
}
#endif
#endif
