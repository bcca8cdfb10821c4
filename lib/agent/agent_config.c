/* An agent from breakglass.conf: provider, key, limits, policy, prompt. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "breakglass/secret.h"
#include "core/buf.h"
#include "core/config_settings.h"
#include "core/error.h"

int bg_agent_options_init(bg_agent_options *opts, unsigned int version)
{
	bg_agent_options def = BG_AGENT_OPTIONS_INIT;

	if (version != BG_AGENT_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL, "bg_agent_options version %u is not %u", version,
				    BG_AGENT_OPTIONS_VERSION);
	*opts = def;
	return BG_OK;
}

static int parse_mutations(const char *key, const char *v, bg_mutations *out)
{
	if (strcmp(v, "auto") == 0)
		*out = BG_MUTATIONS_AUTO;
	else if (strcmp(v, "confirm") == 0)
		*out = BG_MUTATIONS_CONFIRM;
	else if (strcmp(v, "deny") == 0)
		*out = BG_MUTATIONS_DENY;
	else
		return bg_error_set(BG_ECONFIG, "[agent] %s = \"%s\": use auto, confirm or deny", key, v);
	return BG_OK;
}

/* A key file usually ends with a newline that is not part of the key. */
static int trimmed(bg_secret **key)
{
	size_t len = bg_secret_len(*key);
	const char *d = bg_secret_data(*key);
	bg_secret *t;
	int rc;

	while (len && (d[len - 1] == '\n' || d[len - 1] == '\r' || d[len - 1] == ' '))
		len--;
	if (len == bg_secret_len(*key))
		return BG_OK;
	rc = bg_secret_new(&t, d, len);
	if (rc == BG_OK) {
		bg_secret_free(*key);
		*key = t;
	}
	return rc;
}

/* [agent] api_key_file, else the provider's variable; none is fine for a
 * keyless local server (the provider says so when the API refuses). */
static int load_key(bg_secret **out, const bg_client_settings *c, const char *provider)
{
	const char *var = strcmp(provider, "openai") == 0 ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY";
	int rc;

	*out = NULL;
	if (c->agent.api_key_file && *c->agent.api_key_file) {
		rc = bg_secret_from_file(out, c->agent.api_key_file);
		if (rc != BG_OK)
			return bg_error_prefix("[agent] api_key_file: ");
		return trimmed(out);
	}
	rc = bg_secret_from_env(out, var);
	return rc == BG_ENOTFOUND ? BG_OK : rc;
}

static int read_prompt(char **out, const char *path)
{
	bg_secret *s = NULL;
	int rc;

	*out = NULL;
	if (!path || !*path)
		return BG_OK;
	rc = bg_secret_from_file(&s, path);
	if (rc != BG_OK)
		return bg_error_prefix("[agent] system_prompt_file: ");
	*out = strdup(bg_secret_data(s));
	bg_secret_free(s);
	return *out ? BG_OK : bg_error_oom();
}

static int make_llms(bg_llm **llm, bg_llm **fallback, const bg_client_settings *c, const char *provider,
		     const bg_secret *key)
{
	bg_llm_settings ls = {provider, c->agent.base_url, key, 0, -1, 0, 0};
	int rc;

	*llm = *fallback = NULL;
	if (key && strncmp(bg_secret_data(key), "sk-ant-oat", 10) == 0)
		ls.oauth = 1;
	rc = strcmp(provider, "offline") == 0 ? bg_llm_offline_new(llm, &ls) : bg_llm_new(llm, &ls);
	if (rc == BG_OK && strcmp(provider, "offline") != 0 && strcmp(c->agent.fallback, "offline") == 0)
		rc = bg_llm_offline_new(fallback, &ls);
	if (rc != BG_OK) {
		bg_llm_free(*llm);
		*llm = NULL;
	}
	return rc;
}

static void settings_from(bg_agent_settings *s, const bg_client_settings *c, const bg_agent_options *o)
{
	memset(s, 0, sizeof(*s));
	s->model = c->agent.model;
	s->max_steps = c->agent.max_steps;
	s->max_tokens = c->agent.max_tokens;
	s->turn_timeout_s = c->agent.turn_timeout;
	s->fallback_offline = strcmp(c->agent.fallback, "offline") == 0;
	s->approval_timeout_ms = o->approval_timeout_s > 0 ? o->approval_timeout_s * 1000 : 0;
	s->devvm_timeout_s = c->devvm.timeout;
	s->pve_timeout_s = c->pve.timeout;
	s->audit = o->audit;
	s->approve = o->approve;
	s->approve_payload = o->approve_payload;
}

int bg_agent_new(bg_agent **out, const bg_config *cfg, bg_session *session, const bg_agent_options *opts)
{
	bg_agent_options def = BG_AGENT_OPTIONS_INIT;
	const bg_client_settings *c = cfg ? bg_config_client(cfg) : NULL;
	const bg_agent_options *o = opts ? opts : &def;
	const char *provider;
	bg_agent_settings s;
	bg_llm *llm = NULL, *fallback = NULL;
	const bg_agent_tools *tools = NULL;
	void *impl = NULL;
	char *prompt = NULL;
	int rc;

	*out = NULL;
	if (!c || !session)
		return bg_error_set(BG_EINVAL, "bg_agent_new: a client configuration and a session are needed");
	provider = o->provider && *o->provider ? o->provider : c->agent.provider;
	settings_from(&s, c, o);
	rc = parse_mutations("pve_mutations", c->agent.pve_mutations, &s.mutations);
	if (rc == BG_OK)
		rc = parse_mutations("devvm_mutations", c->agent.devvm_mutations, &s.devvm_mutations);
	if (rc == BG_OK)
		rc = read_prompt(&prompt, c->agent.system_prompt_file);
	if (rc == BG_OK && !o->api_key && strcmp(provider, "offline") != 0)
		rc = load_key(&s.owned_api_key, c, provider);
	if (rc == BG_OK)
		rc = make_llms(&llm, &fallback, c, provider, o->api_key ? o->api_key : s.owned_api_key);
	if (rc == BG_OK)
		rc = bg_agent_tools_real(&tools, &impl, cfg, o->ssh_key);
	if (rc != BG_OK) {
		bg_llm_free(llm);
		bg_llm_free(fallback);
		bg_secret_free(s.owned_api_key);
		free(prompt);
		return rc;
	}
	s.system_prompt = prompt;
	rc = bg_agent_new_with(out, &s, session, llm, fallback, tools, impl);
	free(prompt);
	return rc;
}
