/* bg_llm_check: is the configured endpoint there, and does it take the key? */
#include <stdlib.h>
#include <string.h>

#include "breakglass/config.h"
#include "breakglass/llm.h"
#include "core/config_settings.h"
#include "core/json.h"
#include "llm/remote.h"

#define BODY_MAX (256 * 1024)

static size_t keep_body(char *ptr, size_t size, size_t n, void *payload)
{
	bg_buf *b = payload;
	size_t len = size * n;

	if (b->len < BODY_MAX && bg_buf_append(b, ptr, len < BODY_MAX - b->len ? len : BODY_MAX - b->len))
		return 0;
	return len;
}

/* api_key_file, else the provider's environment variable (left in place:
 * the check must not change what the agent will read later). */
static int load_key(const bg_client_settings *cs, bg_secret **key, const char **source)
{
	const char *var = strcmp(cs->agent.provider, "openai") == 0 ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY";
	const char *v;

	*key = NULL;
	if (cs->agent.api_key_file && *cs->agent.api_key_file) {
		*source = cs->agent.api_key_file;
		return bg_secret_from_file(key, cs->agent.api_key_file);
	}
	*source = var;
	v = getenv(var);
	if (!v || !*v)
		return BG_OK;
	return bg_secret_new(key, v, strlen(v));
}

static void describe(bg_buf *d, const char *provider, const char *url, long status, bg_buf *body, const char *model)
{
	json_object *o = body->len ? bg_json_parse(body->data, body->len, "models") : NULL;
	json_object *data = bg_json_arr(o, "data"), *e = bg_json_obj(o, "error");
	size_t i, n = data ? json_object_array_length(data) : 0;
	int listed = 0;

	bg_error_clear();
	bg_buf_printf(d, "%s: GET %s: HTTP %ld", provider, url, status);
	for (i = 0; i < n; i++)
		if (strcmp(bg_json_str(json_object_array_get_idx(data, i), "id", ""), model) == 0)
			listed = 1;
	if (status == 200)
		bg_buf_printf(d, ", %zu model%s%s", n, n == 1 ? "" : "s",
			      n == 0   ? ""
			      : listed ? ", the configured model is listed"
				       : ", the configured model is not listed (an alias may still work)");
	else if (e)
		bg_buf_printf(d, " %s: %s", bg_json_str(e, "type", bg_json_str(e, "code", "")),
			      bg_json_str(e, "message", ""));
	json_object_put(o);
}

static int probe(bg_llm_remote *r, const char *provider, const char *model, int timeout_s, bg_buf *d)
{
	struct curl_slist *h = NULL;
	bg_buf url = BG_BUF_INIT, body = BG_BUF_INIT;
	CURLcode cc;
	long status = 0;
	int rc = strcmp(provider, "openai") == 0 ? bg_llm_openai_headers(r, &h) : bg_llm_anthropic_headers(r, &h);

	if (rc == BG_OK)
		rc = bg_llm_url(&url, r->base_url, "/v1/models");
	if (rc == BG_OK) {
		curl_easy_reset(r->easy);
		curl_easy_setopt(r->easy, CURLOPT_URL, url.data);
		curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_s * 1000L);
		curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_s * 1000L);
		curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, keep_body);
		curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, &body);
		cc = curl_easy_perform(r->easy);
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK) {
			bg_buf_printf(d, "%s: GET %s: %s", provider, url.data, curl_easy_strerror(cc));
			rc = cc == CURLE_OPERATION_TIMEDOUT ? BG_ETIMEOUT : BG_ECONNECT;
		} else {
			describe(d, provider, url.data, status, &body, model);
			rc = status == 200 ? BG_OK : (status == 401 || status == 403) ? BG_EAUTH : BG_EFAILED;
		}
	}
	bg_llm_headers_free(h);
	bg_buf_free(&url);
	bg_buf_free(&body);
	return rc;
}

static int check(const bg_client_settings *cs, const bg_secret *given, int timeout_s, bg_buf *d)
{
	bg_llm_settings s = {0};
	bg_secret *key = NULL;
	bg_llm *llm = NULL;
	const char *source;
	int rc = given ? BG_OK : load_key(cs, &key, &source);

	if (rc != BG_OK) {
		bg_buf_printf(d, "%s: cannot read the API key: %s", cs->agent.provider, bg_error_last()->message);
		return rc;
	}
	if (!key && !given && strcmp(cs->agent.provider, "anthropic") == 0) {
		bg_buf_printf(d, "anthropic: no API key (set api_key_file or $ANTHROPIC_API_KEY)");
		return BG_EAUTH;
	}
	s.provider = cs->agent.provider;
	s.base_url = cs->agent.base_url;
	s.api_key = given ? given : key;
	s.max_retries = 0;
	rc = bg_llm_new(&llm, &s);
	if (rc == BG_OK)
		rc = probe((bg_llm_remote *)llm, cs->agent.provider, cs->agent.model, timeout_s, d);
	else
		bg_buf_printf(d, "%s: %s", cs->agent.provider, bg_error_last()->message);
	bg_llm_free(llm);
	bg_secret_free(key);
	return rc;
}

int bg_llm_check(char **detail_out, const bg_config *cfg, int timeout_s)
{
	return bg_llm_check_key(detail_out, cfg, NULL, timeout_s);
}

int bg_llm_check_key(char **detail_out, const bg_config *cfg, const bg_secret *key, int timeout_s)
{
	const bg_client_settings *cs = cfg ? bg_config_client(cfg) : NULL;
	bg_buf d = BG_BUF_INIT;
	int rc;

	if (detail_out)
		*detail_out = NULL;
	if (!cs || !detail_out)
		return bg_error_set(BG_EINVAL, "bg_llm_check: a client configuration and detail_out are required");
	if (timeout_s <= 0)
		timeout_s = 10;
	if (strcmp(cs->agent.provider, "offline") == 0) {
		bg_buf_puts(&d, "offline: the rule-based playbook needs no endpoint");
		rc = BG_OK;
	} else if (strcmp(cs->agent.provider, "anthropic") != 0 && strcmp(cs->agent.provider, "openai") != 0) {
		bg_buf_printf(&d, "unknown provider \"%s\"", cs->agent.provider);
		rc = BG_EINVAL;
	} else
		rc = check(cs, key, timeout_s, &d);
	*detail_out = bg_buf_detach(&d);
	if (!*detail_out)
		return bg_error_oom();
	if (rc != BG_OK)
		return bg_error_set(rc, "LLM check failed: %s", *detail_out);
	return BG_OK;
}
