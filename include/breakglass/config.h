/*
 * libbreakglass — configuration (docs/config.md).
 *
 * One model, three sources, later wins:
 *   built-in defaults < INI file < environment < command-line flags.
 *
 * Two kinds of file share the machinery: the client's breakglass.conf
 * (breakglass-web, breakglassctl) and the Proxmox host's pve.conf
 * (breakglass-pve, which never reads the environment). Every key of both
 * is declared once, in lib/core/config_keys.c.
 *
 * Errors are strict: an unknown section or key, a bad number, a bad value,
 * a duplicate key, a missing required key all fail with BG_ECONFIG and a
 * message naming the file, the line and the key.
 */
#ifndef BREAKGLASS_CONFIG_H
#define BREAKGLASS_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bg_config_kind {
	BG_CONFIG_CLIENT = 1, /**< breakglass.conf */
	BG_CONFIG_PVE = 2     /**< pve.conf */
} bg_config_kind;

#define BG_CONFIG_CLIENT_DEFAULT_PATH "/etc/breakglass/breakglass.conf"
#define BG_CONFIG_PVE_DEFAULT_PATH    "/etc/breakglass/pve.conf"
/** The forced command of the client's key on the Proxmox host, as
 *  installed by the package (bg_ssh_authorized_key_line's default). */
#define BG_PVE_COMMAND_DEFAULT "/usr/sbin/breakglass-pve --config " BG_CONFIG_PVE_DEFAULT_PATH

typedef struct bg_config bg_config;

/** A configuration of `kind` holding the built-in defaults. */
BG_EXTERN int bg_config_new(bg_config **out, bg_config_kind kind);

/**
 * Read an INI file over the current values. When `missing_ok` is non-zero
 * a file that does not exist is not an error (the default path).
 */
BG_EXTERN int bg_config_load_file(bg_config *cfg, const char *path, int missing_ok);

/**
 * Read INI text from memory as if it were the file `name` (used in error
 * messages). For tests, bindings and the fuzzer.
 */
BG_EXTERN int bg_config_load_string(bg_config *cfg, const char *name, const char *text, size_t len);

/**
 * Apply `BREAKGLASS_<SECTION>_<KEY>` variables from `envp` (NULL: the
 * process environment). Variables whose section is not a config section
 * (BREAKGLASS_SERVER, BREAKGLASS_SSH_KEY, …) are left alone; a variable
 * naming a known section with an unknown key is an error. Refused
 * (BG_EINVAL) for BG_CONFIG_PVE.
 */
BG_EXTERN int bg_config_load_env(bg_config *cfg, char *const *envp);

/**
 * Set one key, as from a command-line flag. `origin` names the flag in
 * error messages ("--listen").
 */
BG_EXTERN int bg_config_set(bg_config *cfg, const char *section, const char *key, const char *value,
			    const char *origin);

/** Check required keys and cross-key rules. Call once after the sources. */
BG_EXTERN int bg_config_validate(bg_config *cfg);

/**
 * The usual sequence: defaults, the file (`path`, or the default path
 * which may be missing), the environment (client only), validate.
 */
BG_EXTERN int bg_config_load(bg_config **out, bg_config_kind kind, const char *path);

BG_EXTERN bg_config_kind bg_config_get_kind(const bg_config *cfg);

/*
 * Reading values. A configuration is opaque: its keys are read by section
 * and name (the tables in docs/configuration.md and the man pages), so a
 * key added in a later version changes no struct layout that a program
 * compiled against this one depends on.
 */

/**
 * A key's value as text, whatever its type ("" for an empty string,
 * "true"/"false" for a flag, digits for a number); NULL with BG_ENOTFOUND
 * for an unknown key. Owned by the config: valid until the key is set
 * again or the config is freed.
 */
BG_EXTERN const char *bg_config_get(const bg_config *cfg, const char *section, const char *key);

/**
 * A number or a flag (1 or 0) into `*out`. BG_ENOTFOUND for an unknown
 * key, BG_EINVAL for a key that holds text (read it with bg_config_get).
 */
BG_EXTERN int bg_config_get_int(int *out, const bg_config *cfg, const char *section, const char *key);

/**
 * Where a key's value came from: "default", "FILE:LINE", "environment
 * BREAKGLASS_…", or the flag's origin. NULL for an unknown key. Owned by
 * the config, like bg_config_get()'s value.
 */
BG_EXTERN const char *bg_config_origin(const bg_config *cfg, const char *section, const char *key);

/** Visit every key in declaration order. Return non-zero to stop. */
typedef int (*bg_config_visit_fn)(const char *section, const char *key, const char *value, const char *origin,
				  void *payload);
BG_EXTERN int bg_config_foreach(const bg_config *cfg, bg_config_visit_fn fn, void *payload);

/** Free. NULL is a no-op. */
BG_EXTERN void bg_config_free(bg_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
