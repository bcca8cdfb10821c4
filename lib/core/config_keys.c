#include "config_keys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT(sec, k, t, field, def, lo, hi, chk, help)                                                 \
	{                                                                                                \
		BG_CONFIG_CLIENT, sec, k, t, offsetof(bg_client_settings, field), def, lo, hi, chk, help \
	}
#define PVE(sec, k, t, field, def, lo, hi, chk, help)                                              \
	{                                                                                          \
		BG_CONFIG_PVE, sec, k, t, offsetof(bg_pve_settings, field), def, lo, hi, chk, help \
	}

static int one_of(const char *value, bg_buf *why, const char *const *allowed)
{
	size_t i;

	for (i = 0; allowed[i]; i++)
		if (strcmp(value, allowed[i]) == 0)
			return 0;
	bg_buf_puts(why, "must be one of:");
	for (i = 0; allowed[i]; i++)
		bg_buf_printf(why, " %s", allowed[i]);
	return -1;
}

static int check_host(const char *v, bg_buf *why)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > 253) {
		bg_buf_puts(why, "must be a host name or IP address");
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
			bg_buf_printf(why, "must be a host name or IP address (bad character at position %zu)", i + 1);
			return -1;
		}
	}
	return 0;
}

static int check_optional_host(const char *v, bg_buf *why)
{
	return *v ? check_host(v, why) : 0;
}

static int check_user(const char *v, bg_buf *why)
{
	size_t i, n = strlen(v);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!(islower(c) || c == '_' || (i > 0 && (isdigit(c) || c == '-' || c == '.'))))
			break;
	}
	if (n == 0 || n > 32 || i != n) {
		bg_buf_puts(why, "must be a user name (lower case letters, digits, _ - .)");
		return -1;
	}
	return 0;
}

int bg_config_check_host_key(const char *v, bg_buf *why)
{
	size_t i;

	if (!*v)
		return 0;
	if (strncmp(v, "SHA256:", 7) != 0 || strlen(v + 7) != 43)
		goto bad;
	for (i = 7; v[i]; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '+' && v[i] != '/')
			goto bad;
	return 0;
bad:
	bg_buf_puts(why, "must be a SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256: and 43 characters)");
	return -1;
}

static int check_abs_path(const char *v, bg_buf *why)
{
	if (v[0] != '/') {
		bg_buf_puts(why, "must be an absolute path");
		return -1;
	}
	return 0;
}

static int check_optional_path(const char *v, bg_buf *why)
{
	return *v ? check_abs_path(v, why) : 0;
}

static int check_provider(const char *v, bg_buf *why)
{
	static const char *const ok[] = {"anthropic", "openai", "offline", NULL};
	return one_of(v, why, ok);
}

static int check_mutations(const char *v, bg_buf *why)
{
	static const char *const ok[] = {"auto", "confirm", "deny", NULL};
	return one_of(v, why, ok);
}

/* A command prefix put before a remedy's `sh -c`: plain words, no shell
 * syntax (it is the operator's, but a stray ";" or "$" would change what
 * runs as root). */
static int check_sudo(const char *v, bg_buf *why)
{
	size_t i;

	for (i = 0; v[i]; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!isalnum(c) && !strchr(" -_./=:,+", c)) {
			bg_buf_printf(why, "must be plain words such as \"sudo -n\" (bad character at position %zu)",
				      i + 1);
			return -1;
		}
	}
	if (i > 128) {
		bg_buf_puts(why, "must be at most 128 characters");
		return -1;
	}
	return 0;
}

static int check_fallback(const char *v, bg_buf *why)
{
	static const char *const ok[] = {"offline", "none", NULL};
	return one_of(v, why, ok);
}

static int check_host_key_policy(const char *v, bg_buf *why)
{
	static const char *const ok[] = {"strict", "accept-new", "pin", NULL};
	return one_of(v, why, ok);
}

static int check_url(const char *v, bg_buf *why)
{
	if (!*v || strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0)
		return 0;
	bg_buf_puts(why, "must start with http:// or https://");
	return -1;
}

static int check_vmid_text(const char *v, bg_buf *why)
{
	char *end;
	long long n;

	if (!*v)
		return 0;
	n = strtoll(v, &end, 10);
	if (*end || !isdigit((unsigned char)v[0]) || n < 100 || n > 999999999) {
		bg_buf_puts(why, "must be a Proxmox VMID (100 to 999999999)");
		return -1;
	}
	return 0;
}

int bg_config_split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long p;

	if (!colon || (size_t)(colon - listen) >= hostlen || colon == listen)
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end || !isdigit((unsigned char)colon[1]) || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

int bg_config_is_loopback(const char *host)
{
	struct in_addr a;

	if (strcmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int bg_config_check_listen(const char *v, bg_buf *why)
{
	char host[64];
	struct in_addr a;
	int port;

	if (bg_config_split_listen(v, host, sizeof(host), &port) < 0 ||
	    (inet_pton(AF_INET, host, &a) != 1 && strcmp(host, "localhost") != 0)) {
		bg_buf_puts(why,
			    v[0] == '[' || strchr(v, ':') != strrchr(v, ':')
				    ? "IPv6 is not available (Debian's CivetWeb is built without it): use IPV4:PORT, "
				      "e.g. 0.0.0.0:8080"
				    : "must be IPV4:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080");
		return -1;
	}
	return 0;
}

/* A list of words separated by commas and/or spaces, each passing `word`. */
static int check_words(const char *v, bg_buf *why, int (*word)(const char *w, bg_buf *why), int allow_empty)
{
	char *copy = strdup(v), *save = NULL, *w;
	int rc = 0, n = 0;

	if (!copy)
		return -1;
	for (w = strtok_r(copy, ", \t", &save); w && rc == 0; w = strtok_r(NULL, ", \t", &save), n++)
		rc = word(w, why);
	free(copy);
	if (rc == 0 && n == 0 && !allow_empty) {
		bg_buf_puts(why, "must not be empty");
		rc = -1;
	}
	return rc;
}

static int auth_word(const char *w, bg_buf *why)
{
	static const char *const ok[] = {"proxy", "bearer", "basic", "none", NULL};
	if (one_of(w, why, ok) == 0)
		return 0;
	bg_buf_printf(why, " (got '%s')", w);
	return -1;
}

static int check_auth(const char *v, bg_buf *why)
{
	if (check_words(v, why, auth_word, 0) < 0)
		return -1;
	if (strstr(v, "none") && strcspn(v, ", \t") != strlen(v)) {
		bg_buf_puts(why, "'none' cannot be combined with other methods");
		return -1;
	}
	return 0;
}

static int cidr_word(const char *w, bg_buf *why)
{
	char addr[32];
	const char *slash = strchr(w, '/');
	struct in_addr a;
	size_t n = slash ? (size_t)(slash - w) : strlen(w);
	char *end;
	long bits = 32;

	if (slash) {
		bits = strtol(slash + 1, &end, 10);
		if (*end || slash[1] == '\0')
			bits = -1;
	}
	if (n >= sizeof(addr) || bits < 0 || bits > 32)
		goto bad;
	memcpy(addr, w, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &a) == 1)
		return 0;
bad:
	bg_buf_printf(why, "'%s' is not an IPv4 address or CIDR (e.g. 10.0.0.0/8)", w);
	return -1;
}

static int check_cidrs(const char *v, bg_buf *why)
{
	return check_words(v, why, cidr_word, 1);
}

static int verb_word(const char *w, bg_buf *why)
{
	size_t i;

	for (i = 0; w[i]; i++)
		if (!islower((unsigned char)w[i]))
			break;
	if (w[i] == '\0' && i > 0 && i <= 16)
		return 0;
	bg_buf_printf(why, "'%s' is not a verb name", w);
	return -1;
}

static int check_verbs(const char *v, bg_buf *why)
{
	return check_words(v, why, verb_word, 0);
}

const bg_config_key bg_config_keys[] = {
	/* breakglass.conf */
	CLIENT("devvm", "host", BG_CONF_STRING, devvm.host, NULL, 0, 0, check_host, "the devvm's address"),
	CLIENT("devvm", "port", BG_CONF_INT, devvm.port, "22", 1, 65535, NULL, "the devvm's SSH port"),
	CLIENT("devvm", "user", BG_CONF_STRING, devvm.user, "breakglass", 0, 0, check_user, "SSH user (full sudo)"),
	CLIENT("devvm", "command_timeout", BG_CONF_INT, devvm.timeout, "60", 1, 86400, NULL, "seconds per exec"),
	CLIENT("devvm", "host_key", BG_CONF_STRING, devvm.host_key, "", 0, 0, bg_config_check_host_key,
	       "pinned host key fingerprint"),
	CLIENT("devvm", "host_key_policy", BG_CONF_STRING, devvm.host_key_policy, "accept-new", 0, 0,
	       check_host_key_policy, "strict | accept-new | pin: which host keys are trusted"),
	CLIENT("devvm", "sudo", BG_CONF_STRING, devvm.sudo, "sudo -n", 0, 0, check_sudo,
	       "the prefix that runs a remedy as root (\"\" when user is root)"),
	CLIENT("pve", "host", BG_CONF_STRING, pve.host, NULL, 0, 0, check_host, "the Proxmox host's address"),
	CLIENT("pve", "port", BG_CONF_INT, pve.port, "22", 1, 65535, NULL, "the Proxmox host's SSH port"),
	CLIENT("pve", "user", BG_CONF_STRING, pve.user, "root", 0, 0, check_user, "SSH user of the forced command"),
	CLIENT("pve", "verb_timeout", BG_CONF_INT, pve.timeout, "240", 1, 86400, NULL, "seconds per verb"),
	CLIENT("pve", "host_key", BG_CONF_STRING, pve.host_key, "", 0, 0, bg_config_check_host_key,
	       "pinned host key fingerprint"),
	CLIENT("pve", "host_key_policy", BG_CONF_STRING, pve.host_key_policy, "accept-new", 0, 0, check_host_key_policy,
	       "strict | accept-new | pin: which host keys are trusted"),
	CLIENT("pve", "vmid", BG_CONF_STRING, pve.vmid, "", 0, 0, check_vmid_text, "the VMID, shown in the UI"),
	CLIENT("ssh", "key_file", BG_CONF_STRING, ssh.key_file, "", 0, 0, check_optional_path,
	       "private key file (or $BREAKGLASS_SSH_KEY)"),
	CLIENT("ssh", "use_agent", BG_CONF_BOOL, ssh.use_agent, "false", 0, 1, NULL, "use $SSH_AUTH_SOCK"),
	CLIENT("ssh", "connect_timeout", BG_CONF_INT, ssh.connect_timeout, "10", 1, 600, NULL,
	       "seconds for connect+handshake+auth"),
	CLIENT("ssh", "source_address", BG_CONF_STRING, ssh.source_address, "", 0, 0, check_optional_host,
	       "local address to connect from"),
	CLIENT("ssh", "known_hosts", BG_CONF_STRING, ssh.known_hosts, "/var/lib/breakglass/known_hosts", 0, 0,
	       check_optional_path, "OpenSSH known_hosts for host_key_policy strict and accept-new"),
	CLIENT("agent", "provider", BG_CONF_STRING, agent.provider, "anthropic", 0, 0, check_provider,
	       "anthropic | openai | offline"),
	CLIENT("agent", "model", BG_CONF_STRING, agent.model, "claude-sonnet-4-5", 0, 0, NULL, "model id"),
	CLIENT("agent", "base_url", BG_CONF_STRING, agent.base_url, "", 0, 0, check_url, "API base URL"),
	CLIENT("agent", "api_key_file", BG_CONF_STRING, agent.api_key_file, "", 0, 0, check_optional_path,
	       "API key file (else $ANTHROPIC_API_KEY / $OPENAI_API_KEY)"),
	CLIENT("agent", "max_steps", BG_CONF_INT, agent.max_steps, "40", 1, 1000, NULL, "tool calls per turn"),
	CLIENT("agent", "max_tokens", BG_CONF_INT, agent.max_tokens, "4096", 1, 200000, NULL, "tokens per reply"),
	CLIENT("agent", "turn_timeout", BG_CONF_INT, agent.turn_timeout, "1800", 1, 86400, NULL, "seconds per turn"),
	CLIENT("agent", "pve_mutations", BG_CONF_STRING, agent.pve_mutations, "confirm", 0, 0, check_mutations,
	       "auto | confirm | deny"),
	CLIENT("agent", "devvm_mutations", BG_CONF_STRING, agent.devvm_mutations, "confirm", 0, 0, check_mutations,
	       "auto | confirm | deny: remedies on the devvm (remove-file always asks)"),
	CLIENT("agent", "fallback", BG_CONF_STRING, agent.fallback, "offline", 0, 0, check_fallback,
	       "offline | none, when the LLM is unreachable"),
	CLIENT("agent", "system_prompt_file", BG_CONF_STRING, agent.system_prompt_file, "", 0, 0, check_optional_path,
	       "replace the built-in system prompt"),
	CLIENT("web", "listen", BG_CONF_STRING, web.listen, "127.0.0.1:8080", 0, 0, bg_config_check_listen,
	       "IPV4:PORT"),
	CLIENT("web", "auth", BG_CONF_STRING, web.auth, "proxy,bearer", 0, 0, check_auth,
	       "any of: proxy bearer basic none"),
	CLIENT("web", "proxy_header", BG_CONF_STRING, web.proxy_header, "X-authentik-username", 0, 0, NULL,
	       "header set by the auth proxy"),
	CLIENT("web", "trusted_proxies", BG_CONF_STRING, web.trusted_proxies, "", 0, 0, check_cidrs,
	       "CIDRs allowed to set proxy_header"),
	CLIENT("web", "bearer_token_file", BG_CONF_STRING, web.bearer_token_file, "", 0, 0, check_optional_path,
	       "bearer token file (else $API_BEARER_TOKEN)"),
	CLIENT("web", "htpasswd_file", BG_CONF_STRING, web.htpasswd_file, "", 0, 0, check_optional_path,
	       "htpasswd for basic auth"),
	CLIENT("web", "sessions_dir", BG_CONF_STRING, web.sessions_dir, "/var/lib/breakglass/sessions", 0, 0,
	       check_abs_path, "where session event logs live"),
	CLIENT("web", "audit_log", BG_CONF_STRING, web.audit_log, "/var/lib/breakglass/audit.jsonl", 0, 0,
	       check_optional_path, "the audit log (JSON lines); empty: memory only"),
	CLIENT("web", "max_sessions", BG_CONF_INT, web.max_sessions, "64", 1, 10000, NULL, "sessions kept"),
	CLIENT("web", "threads", BG_CONF_INT, web.threads, "64", 4, 1024, NULL, "HTTP worker threads"),
	CLIENT("web", "health_interval", BG_CONF_INT, web.health_interval, "30", 1, 3600, NULL,
	       "seconds: /api/health/deps probes a peer at most this often"),

	/* pve.conf */
	PVE("vm", "vmid", BG_CONF_INT, vmid, NULL, 100, 999999999, NULL, "the one VM this key may act on"),
	PVE("paths", "qm", BG_CONF_STRING, paths.qm, "/usr/sbin/qm", 0, 0, check_abs_path, "Proxmox's qm"),
	PVE("paths", "run_dir", BG_CONF_STRING, paths.run_dir, "/var/run/qemu-server", 0, 0, check_abs_path,
	    "holds <vmid>.pid, .qmp, .qga"),
	PVE("paths", "log", BG_CONF_STRING, paths.log, "/var/log/breakglass-pve.log", 0, 0, check_abs_path,
	    "the verb log"),
	PVE("paths", "state_dir", BG_CONF_STRING, paths.state_dir, "/var/lib/breakglass-pve", 0, 0, check_abs_path,
	    "forensics bundles"),
	PVE("paths", "lock_dir", BG_CONF_STRING, paths.lock_dir, "/run/breakglass-pve", 0, 0, check_abs_path,
	    "per-VMID lock files"),
	PVE("timeouts", "qm", BG_CONF_INT, timeouts.qm, "30", 1, 86400, NULL, "seconds per qm call"),
	PVE("timeouts", "stop", BG_CONF_INT, timeouts.stop, "40", 1, 86400, NULL, "seconds for a clean stop"),
	PVE("timeouts", "kill", BG_CONF_INT, timeouts.kill, "10", 1, 86400, NULL, "seconds for SIGKILL to take"),
	PVE("timeouts", "qmp", BG_CONF_INT, timeouts.qmp, "5", 1, 86400, NULL, "seconds per QMP exchange"),
	PVE("timeouts", "lock_wait", BG_CONF_INT, timeouts.lock_wait, "5", 0, 3600, NULL,
	    "seconds to wait for another verb"),
	PVE("forensics", "keep", BG_CONF_INT, forensics.keep, "20", 1, 10000, NULL, "bundles kept"),
	PVE("forensics", "blockstats_interval_ms", BG_CONF_INT, forensics.blockstats_interval_ms, "1000", 10, 60000,
	    NULL, "between the two blockstats samples"),
	PVE("forensics", "gdb", BG_CONF_BOOL, forensics.gdb, "false", 0, 1, NULL, "gdb backtrace of QEMU"),
	PVE("forensics", "agent_exec", BG_CONF_BOOL, forensics.agent_exec, "true", 0, 1, NULL,
	    "after the agent answers guest-ping, have it start /bin/true once (no arguments, no output): a guest that "
	    "cannot fork is guest-busy; false: nothing runs in the guest"),
	PVE("verbs", "allow", BG_CONF_STRING, verbs.allow, "status forensics reset stop start cycle", 0, 0, check_verbs,
	    "the allowlisted verbs"),
	PVE("proxmox", "ha_manager", BG_CONF_STRING, proxmox.ha_manager, "/usr/sbin/ha-manager", 0, 0,
	    check_optional_path, "ha-manager, asked whether the HA stack manages the VM (\"\": never)"),
	PVE("proxmox", "ha_resources", BG_CONF_STRING, proxmox.ha_resources, "/etc/pve/ha/resources.cfg", 0, 0,
	    check_abs_path, "the cluster's HA resources, read when ha-manager cannot be asked"),
	PVE("proxmox", "tasks_active", BG_CONF_STRING, proxmox.tasks_active, "/var/log/pve/tasks/active", 0, 0,
	    check_abs_path, "Proxmox's running tasks: is a vzdump of this VM alive?"),
	PVE("proxmox", "pveversion", BG_CONF_STRING, proxmox.pveversion, "/usr/bin/pveversion", 0, 0,
	    check_optional_path, "pveversion, for `status` (\"\": never)"),
	PVE("proxmox", "ha_start", BG_CONF_INT, proxmox.ha_start, "120", 1, 3600, NULL,
	    "seconds to wait for the HA stack to start an HA-managed VM"),
};

const size_t bg_config_nkeys = sizeof(bg_config_keys) / sizeof(bg_config_keys[0]);

_Static_assert(sizeof(bg_config_keys) / sizeof(bg_config_keys[0]) <= BG_CONFIG_MAX_KEYS, "raise BG_CONFIG_MAX_KEYS");
