/*
 * Stand-ins, as weak symbols, for functions other rooms are building in
 * parallel (the triage, the pve client), so the agent builds and its tests run before they
 * land. A real definition anywhere in the library wins over these. Delete this file once main has them all.
 */
#include <stdlib.h>
#include <string.h>

#include "breakglass/pve.h"
#include "breakglass/ssh.h"
#include "breakglass/triage.h"
#include "core/error.h"

#define WEAK __attribute__((weak))

static int missing(const char *what)
{
	return bg_error_set(BG_EUNSUPPORTED, "%s is not built into this library yet", what);
}

WEAK int bg_triage_run(bg_triage **out, bg_ssh *ssh, int timeout_s)
{
	(void)ssh;
	(void)timeout_s;
	*out = NULL;
	return missing("the devvm triage");
}

WEAK size_t bg_triage_finding_count(const bg_triage *t)
{
	(void)t;
	return 0;
}

WEAK const bg_triage_finding *bg_triage_finding_at(const bg_triage *t, size_t i)
{
	(void)t;
	(void)i;
	return NULL;
}

WEAK const char *bg_severity_name(bg_severity s)
{
	(void)s;
	return "info";
}

WEAK int bg_triage_to_text(const bg_triage *t, char **text_out)
{
	(void)t;
	*text_out = NULL;
	return missing("the devvm triage");
}

WEAK void bg_triage_free(bg_triage *t)
{
	(void)t;
}

WEAK int bg_pve_run(bg_pve_result *out, bg_ssh *ssh, const char *verb, int timeout_s, bg_ssh_output_fn on_output,
		    void *payload)
{
	(void)out;
	(void)ssh;
	(void)verb;
	(void)timeout_s;
	(void)on_output;
	(void)payload;
	return missing("the PVE client");
}

WEAK void bg_pve_result_clear(bg_pve_result *r)
{
	(void)r;
}
