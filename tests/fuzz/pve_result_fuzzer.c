/* Fuzz the PVE client's reading of breakglass-pve's --json answer (and
 * whatever else a host could print) and its re-rendering as JSON. */
#include "pve/client.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_pve_result r;
	char *json;

	if (bg_pve_result_fill(&r, "cycle", 4, (const char *)data, size, (const char *)data, size) == BG_OK &&
	    bg_pve_result_to_json(&json, &r) == BG_OK)
		free(json);
	bg_pve_result_clear(&r);
	return 0;
}
