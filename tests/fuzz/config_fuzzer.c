/* Fuzz the INI configuration parser with both kinds of file. */
#include <breakglass.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_config_kind kinds[] = {BG_CONFIG_CLIENT, BG_CONFIG_PVE};
	size_t i;

	for (i = 0; i < 2; i++) {
		bg_config *cfg = NULL;
		if (bg_config_new(&cfg, kinds[i]) != BG_OK)
			return 0;
		if (bg_config_load_string(cfg, "fuzz.conf", (const char *)data, size) == BG_OK)
			(void)bg_config_validate(cfg);
		bg_config_free(cfg);
	}
	return 0;
}
