#include "appconf.h"

const char *bg_app_conf(const bg_config *cfg, const char *section, const char *key)
{
	const char *v = cfg ? bg_config_get(cfg, section, key) : NULL;

	return v ? v : "";
}

int bg_app_conf_int(const bg_config *cfg, const char *section, const char *key)
{
	int v = 0;

	if (cfg)
		bg_config_get_int(&v, cfg, section, key);
	return v;
}
