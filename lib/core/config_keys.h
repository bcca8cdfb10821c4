/* Internal: the table of every configuration key (both files), declared
 * once. config.c is the machinery; config_keys.c is the data. */
#ifndef BG_CORE_CONFIG_KEYS_H
#define BG_CORE_CONFIG_KEYS_H

#include "config_settings.h"
#include "buf.h"

typedef enum bg_config_type { BG_CONF_STRING, BG_CONF_INT, BG_CONF_BOOL } bg_config_type;

/* A value check beyond the type: return 0 when fine, else append the
 * reason to `why` and return -1. */
typedef int (*bg_config_check_fn)(const char *value, bg_buf *why);

typedef struct bg_config_key {
	bg_config_kind kind;
	const char *section;
	const char *key;
	bg_config_type type;
	size_t offset;      /* into bg_client_settings or bg_pve_settings */
	const char *def;    /* default as text; NULL = required */
	long long min, max; /* BG_CONF_INT bounds */
	bg_config_check_fn check;
	const char *help; /* one line, for errors and `doctor` */
} bg_config_key;

/* Per-config arrays are sized by this; config_keys.c asserts the table fits. */
#define BG_CONFIG_MAX_KEYS 64

extern const bg_config_key bg_config_keys[];
extern const size_t bg_config_nkeys;

/* Checks shared with other modules. */
int bg_config_check_host_key(const char *value, bg_buf *why);
int bg_config_check_listen(const char *value, bg_buf *why);

/* Parse "1.2.3.4:80" into its parts; 0 or -1. */
int bg_config_split_listen(const char *listen, char *host, size_t hostlen, int *port);

/* Whether an IPv4 address text is in 127.0.0.0/8. */
int bg_config_is_loopback(const char *host);

#endif
