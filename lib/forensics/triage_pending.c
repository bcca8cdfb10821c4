/* TEMPORARY: weak stand-ins for the SSH layer (lib/ssh) and bg_llm_check
 * (lib/llm), which are built in parallel by other rooms. They keep the
 * shared library linkable (-Wl,--no-undefined) until those land on main;
 * the real, strong definitions then win at link time. Delete this file
 * once both are merged. */
#include "breakglass/llm.h"
#include "breakglass/ssh.h"
#include "core/error.h"

#include <string.h>

#define PENDING __attribute__((weak))

static int missing(const char *what)
{
	return bg_error_set(BG_EUNSUPPORTED, "%s is not in this build yet (the SSH layer has not been merged)", what);
}

PENDING int bg_ssh_options_init(bg_ssh_options *opts, unsigned int version)
{
	bg_ssh_options d = BG_SSH_OPTIONS_INIT;

	if (version != BG_SSH_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL, "unknown bg_ssh_options version %u", version);
	*opts = d;
	return BG_OK;
}

PENDING int bg_ssh_new(bg_ssh **out, const bg_ssh_options *opts)
{
	(void)opts;
	*out = NULL;
	return missing("bg_ssh_new");
}

PENDING int bg_ssh_key_load(bg_secret **out, const bg_config *cfg)
{
	(void)cfg;
	*out = NULL;
	return missing("bg_ssh_key_load");
}

PENDING int bg_ssh_new_from_config(bg_ssh **out, const bg_config *cfg, const char *target, const bg_secret *key)
{
	(void)cfg;
	(void)target;
	(void)key;
	*out = NULL;
	return missing("bg_ssh_new_from_config");
}

PENDING int bg_ssh_connect(bg_ssh *s)
{
	(void)s;
	return missing("bg_ssh_connect");
}

PENDING const char *bg_ssh_host_key_fingerprint(const bg_ssh *s)
{
	(void)s;
	return NULL;
}

PENDING const char *bg_ssh_host_key_type(const bg_ssh *s)
{
	(void)s;
	return NULL;
}

PENDING int bg_ssh_exec_options_init(bg_ssh_exec_options *opts, unsigned int version)
{
	bg_ssh_exec_options d = BG_SSH_EXEC_OPTIONS_INIT;

	if (version != BG_SSH_EXEC_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL, "unknown bg_ssh_exec_options version %u", version);
	*opts = d;
	return BG_OK;
}

PENDING int bg_ssh_exec(bg_ssh *s, const char *command, const bg_ssh_exec_options *opts, bg_ssh_result *result)
{
	(void)s;
	(void)command;
	(void)opts;
	memset(result, 0, sizeof(*result));
	result->exit_code = -1;
	return missing("bg_ssh_exec");
}

PENDING void bg_ssh_result_clear(bg_ssh_result *r)
{
	if (r)
		memset(r, 0, sizeof(*r));
}

PENDING void bg_ssh_cancel(bg_ssh *s)
{
	(void)s;
}

PENDING void bg_ssh_free(bg_ssh *s)
{
	(void)s;
}

PENDING int bg_llm_check(const bg_config *cfg, int timeout_s, char **detail_out)
{
	(void)cfg;
	(void)timeout_s;
	*detail_out = NULL;
	return bg_error_set(BG_EUNSUPPORTED, "the LLM client is not in this build yet");
}
