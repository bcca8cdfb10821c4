/* A key of breakglass.conf for a program, through the public accessors:
 * its text ("" for an unset or unknown key) and its number or flag (0
 * then). The programs read their settings this way and nowhere else. */
#ifndef BG_APPCONF_H
#define BG_APPCONF_H

#include <breakglass.h>

const char *bg_app_conf(const bg_config *cfg, const char *section, const char *key);
int bg_app_conf_int(const bg_config *cfg, const char *section, const char *key);

#endif
