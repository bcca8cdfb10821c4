#include <string.h>

#include "core/error.h"
#include "llm/provider.h"
#include "llm/remote.h"

int bg_llm_new(bg_llm **out, const bg_llm_settings *settings)
{
	const char *p;

	if (!out || !settings)
		return bg_error_set(BG_EINVAL, "bg_llm_new: out and settings are required");
	*out = NULL;
	p = settings->provider && *settings->provider ? settings->provider : "anthropic";
	if (strcmp(p, "anthropic") == 0)
		return bg_llm_anthropic_new(out, settings);
	if (strcmp(p, "openai") == 0)
		return bg_llm_openai_new(out, settings);
	if (strcmp(p, "offline") == 0)
		return bg_llm_offline_new(out, settings);
	return bg_error_set(BG_EINVAL, "unknown LLM provider \"%s\": use anthropic, openai or offline", p);
}

int bg_llm_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	if (!llm || !req || !resp)
		return bg_error_set(BG_EINVAL, "bg_llm_complete: llm, req and resp are required");
	memset(resp, 0, sizeof(*resp));
	if (!req->messages || !json_object_is_type(req->messages, json_type_array))
		return bg_error_set(BG_EINVAL, "bg_llm_complete: messages must be a JSON array");
	if (bg_llm_cancelled(llm))
		return bg_error_set(BG_ECANCELLED, "%s: cancelled before the request was sent", llm->vt->name);
	if (req->deadline.at_ms == 0) {
		/* a zeroed request means "no deadline", not "already expired" */
		bg_llm_request r = *req;
		r.deadline = BG_DEADLINE_NONE;
		return llm->vt->complete(llm, &r, cb, resp);
	}
	return llm->vt->complete(llm, req, cb, resp);
}

int bg_llm_cancelled(const bg_llm *llm)
{
	return llm && atomic_load(&llm->cancelled);
}

void bg_llm_cancel(bg_llm *llm)
{
	if (llm)
		atomic_store(&llm->cancelled, 1);
}

void bg_llm_reset_cancel(bg_llm *llm)
{
	if (llm)
		atomic_store(&llm->cancelled, 0);
}

void bg_llm_response_clear(bg_llm_response *resp)
{
	if (!resp)
		return;
	json_object_put(resp->message);
	memset(resp, 0, sizeof(*resp));
}

void bg_llm_free(bg_llm *llm)
{
	if (llm)
		llm->vt->destroy(llm);
}

int bg_llm_replay(const char *provider, const char *stream, size_t len, size_t chunk, const bg_llm_callbacks *cb,
		  bg_llm_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (strcmp(provider, "anthropic") == 0)
		return bg_llm_anthropic_replay(stream, len, chunk, cb, resp);
	if (strcmp(provider, "openai") == 0)
		return bg_llm_openai_replay(stream, len, chunk, cb, resp);
	return bg_error_set(BG_EINVAL, "no stream parser for provider \"%s\"", provider);
}
