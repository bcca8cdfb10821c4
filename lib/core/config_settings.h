/*
 * Internal: the loaded configuration as structs, for the library's own
 * modules. Filled through the offsets in config_keys.c; not part of the
 * ABI (a program reads keys with bg_config_get / bg_config_get_int), so a
 * field may be added anywhere.
 */
#ifndef BG_CORE_CONFIG_SETTINGS_H
#define BG_CORE_CONFIG_SETTINGS_H

#include "breakglass/config.h"

/* An SSH target: [devvm] or [pve]. Strings may be empty, never NULL. */
typedef struct bg_target_settings {
	const char *host;
	int port;
	const char *user;
	const char *host_key;        /* "SHA256:…" pin, or "" */
	const char *host_key_policy; /* strict | accept-new | pin */
	int timeout;                 /* devvm: command_timeout; pve: verb_timeout (s) */
	const char *vmid;            /* pve only, shown in the UI; "" if unset */
	const char *sudo;            /* devvm only: how the SSH user runs a remedy as root ("" = it is root) */
} bg_target_settings;

/* breakglass.conf, after loading. Owned by the bg_config. */
typedef struct bg_client_settings {
	bg_target_settings devvm;
	bg_target_settings pve;
	struct {
		const char *key_file;
		int use_agent;
		int connect_timeout;
		const char *source_address;
		const char *known_hosts; /* OpenSSH known_hosts file; "" = none */
	} ssh;
	struct {
		const char *provider; /* anthropic | openai | offline */
		const char *model;
		const char *base_url; /* "" = the provider's own */
		const char *api_key_file;
		int max_steps;
		int max_tokens;
		int turn_timeout;
		const char *pve_mutations;   /* auto | confirm | deny */
		const char *devvm_mutations; /* auto | confirm | deny: remedies on the devvm */
		const char *fallback;        /* offline | none */
		const char *system_prompt_file;
	} agent;
	struct {
		const char *listen;
		const char *auth; /* list of proxy bearer basic none */
		const char *proxy_header;
		const char *trusted_proxies;
		const char *bearer_token_file;
		const char *htpasswd_file;
		const char *sessions_dir;
		const char *audit_log;
		int max_sessions;
		int threads;
		int health_interval;
	} web;
} bg_client_settings;

/* pve.conf, after loading. Owned by the bg_config. */
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
		int qm, stop, kill, qmp, lock_wait; /* seconds */
	} timeouts;
	struct {
		int keep;
		int blockstats_interval_ms;
		int gdb;
		int agent_exec;
	} forensics;
	struct {
		const char *allow; /* space-separated verb names */
	} verbs;
	struct {
		const char *ha_manager;   /* Proxmox's ha-manager ("" = do not ask it) */
		const char *ha_resources; /* the cluster's HA resources file */
		const char *tasks_active; /* Proxmox's list of running tasks (vzdump) */
		const char *pveversion;   /* Proxmox's pveversion ("" = do not ask it) */
		int ha_start;             /* seconds to wait for the HA stack to start the VM */
	} proxmox;
} bg_pve_settings;

/* Typed views; NULL when the config is of the other kind. */
const bg_client_settings *bg_config_client(const bg_config *cfg);
const bg_pve_settings *bg_config_pve(const bg_config *cfg);

#endif
