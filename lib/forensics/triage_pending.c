/* TEMPORARY: a weak stand-in for bg_llm_check (lib/llm), built in
 * parallel by another room. It keeps the shared library linkable
 * (-Wl,--no-undefined) until lib/llm lands on main; the real, strong
 * definition then wins at link time. Delete this file once it is merged. */
#include "breakglass/llm.h"
#include "core/error.h"

#define PENDING __attribute__((weak))

PENDING int bg_llm_check(const bg_config *cfg, int timeout_s, char **detail_out)
{
	(void)cfg;
	(void)timeout_s;
	*detail_out = NULL;
	return bg_error_set(BG_EUNSUPPORTED, "the LLM client is not in this build yet (lib/llm not merged)");
}
