/*
 * libbreakglass — configuration (SPEC §3).
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

/** An SSH target: [devvm] or [pve]. Strings may be empty, never NULL. */
typedef struct bg_target_settings {
	const char *host;
	int port;
	const char *user;
	const char *host_key; /**< "SHA256:…" pin, or "" */
	int timeout;          /**< devvm: command_timeout; pve: verb_timeout (s) */
	const char *vmid;     /**< pve only, shown in the UI; "" if unset */
} bg_target_settings;

/** breakglass.conf, after loading. Owned by the bg_config. */
typedef struct bg_client_settings {
	bg_target_settings devvm;
	bg_target_settings pve;
	struct {
		const char *key_file;
		int use_agent;
		int connect_timeout;
		const char *source_address;
	} ssh;
	struct {
		const char *provider; /**< anthropic | openai | offline */
		const char *model;
		const char *base_url; /**< "" = the provider's own */
		const char *api_key_file;
		int max_steps;
		int max_tokens;
		int turn_timeout;
		const char *pve_mutations; /**< auto | confirm | deny */
		const char *fallback;      /**< offline | none */
		const char *system_prompt_file;
	} agent;
	struct {
		const char *listen;
		const char *auth; /**< list of proxy bearer basic none */
		const char *proxy_header;
		const char *trusted_proxies;
		const char *bearer_token_file;
		const char *htpasswd_file;
		const char *sessions_dir;
		const char *audit_log;
		int max_sessions;
		int threads;
	} web;
} bg_client_settings;

/** pve.conf, after loading. Owned by the bg_config. */
typedef struct bg_pve_settings {
	int vmid;
	struct {
		const char *qm;
		const char *run_dir;
		const char *log;
		const char *state_dir;
		const char *lock_dir;
	} paths;
	struct {
		int qm, stop, kill, qmp, lock_wait; /**< seconds */
	} timeouts;
	struct {
		int keep;
		int blockstats_interval_ms;
		int gdb;
	} forensics;
	struct {
		const char *allow; /**< space-separated verb names */
	} verbs;
	struct {
		const char *ha_manager;   /**< Proxmox's ha-manager ("" = do not ask it) */
		const char *ha_resources; /**< the cluster's HA resources file */
		const char *tasks_active; /**< Proxmox's list of running tasks (vzdump) */
		const char *pveversion;   /**< Proxmox's pveversion ("" = do not ask it) */
		int ha_start;             /**< seconds to wait for the HA stack to start the VM */
	} proxmox;
} bg_pve_settings;

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

/** Typed views; NULL when the config is of the other kind. */
BG_EXTERN const bg_client_settings *bg_config_client(const bg_config *cfg);
BG_EXTERN const bg_pve_settings *bg_config_pve(const bg_config *cfg);

/**
 * A key's value as text ("" for an empty string); NULL with BG_ENOTFOUND
 * for an unknown key. For bindings and diagnostics.
 */
BG_EXTERN const char *bg_config_get(const bg_config *cfg, const char *section, const char *key);

/**
 * Where a key's value came from: "default", "FILE:LINE", "environment
 * BREAKGLASS_…", or the flag's origin. NULL for an unknown key.
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
