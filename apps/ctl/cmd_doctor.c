/* `doctor`: is everything in place? Configuration, the key, the host keys,
 * then a real round trip to the devvm (`true`), the Proxmox host (the
 * `status` verb) and the LLM endpoint. One pass/fail line each, with a
 * hint saying what to do about a failure. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK_TIMEOUT_S 20

typedef struct doctor {
	const ctl_ctx *ctx;
	int failed;
	int first; /* JSON: no comma before the first check */
	bg_secret *key;
} doctor;

static void report(doctor *d, const char *name, int ok, const char *detail, const char *hint)
{
	if (!ok)
		d->failed++;
	if (d->ctx->json) {
		fputs(d->first ? "" : ",", stdout);
		d->first = 0;
		fputs("{\"name\":", stdout);
		ctl_json_str(stdout, name);
		printf(",\"ok\":%s,\"detail\":", ok ? "true" : "false");
		ctl_json_str(stdout, detail);
		fputs(",\"hint\":", stdout);
		ctl_json_str(stdout, hint);
		fputc('}', stdout);
		return;
	}
	printf("%s %-6s %s\n", ok ? "PASS" : "FAIL", name, detail);
	if (hint)
		printf("            hint: %s\n", hint);
	fflush(stdout);
}

static void check_key_file_mode(doctor *d, const char *path, char *detail, size_t n)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		snprintf(detail, n, "%s is readable by group or others (mode %03o)", path,
			 (unsigned)(st.st_mode & 0777));
		report(d, "key", 0, detail, "chmod 600 the key file: it opens both hosts");
	}
}

static void check_key(doctor *d)
{
	const char *key_file = bg_app_conf(d->ctx->cfg, "ssh", "key_file");
	char *source = NULL, detail[1024], hint[600];
	bg_ssh_key_desc pk;
	int rc = bg_ssh_key_load(&d->key, &source, d->ctx->cfg, NULL, BG_SSH_KEY_LOAD_ANY);

	if (rc == BG_ENOTFOUND) {
		if (bg_app_conf_int(d->ctx->cfg, "ssh", "use_agent"))
			report(d, "key", getenv("SSH_AUTH_SOCK") != NULL, "ssh-agent ([ssh] use_agent = true)",
			       getenv("SSH_AUTH_SOCK") ? NULL
						       : "SSH_AUTH_SOCK is not set: start an agent or set key_file");
		else
			report(d, "key", 0, "no private key",
			       "set [ssh] key_file, put the key in $BREAKGLASS_SSH_KEY, or set [ssh] use_agent = true");
		return;
	}
	if (rc != BG_OK) {
		report(d, "key", 0, bg_error_last()->message, "check the path and that this user can read it");
	} else if (bg_ssh_key_describe(&pk, d->key) != BG_OK) {
		snprintf(detail, sizeof(detail), "%s: %s", source, bg_error_last()->message);
		report(d, "key", 0, detail, "use an OpenSSH-format ed25519 key (ssh-keygen -t ed25519)");
	} else {
		if (key_file[0])
			check_key_file_mode(d, key_file, detail, sizeof(detail));
		snprintf(detail, sizeof(detail), "%s key from %s%s", pk.type, source,
			 pk.encrypted ? " (passphrase-protected)" : "");
		/* The library's one rule says whether and why not. */
		snprintf(hint, sizeof(hint), "the key %s", pk.reason);
		report(d, "key", pk.usable, detail, pk.usable ? NULL : hint);
	}
	bg_free(source);
}

/* What the host key line says: the fingerprint, whether it is pinned, the
 * policy and what it made of the key (known, stored, refused). */
static void host_key_note(const bg_ssh *ssh, const bg_config *cfg, const char *target, char *buf, size_t n, char *hint,
			  size_t hn)
{
	const char *policy = bg_app_conf(cfg, target, "host_key_policy");
	const char *pin = bg_app_conf(cfg, target, "host_key");
	const char *fpr = ssh ? bg_ssh_host_key_fingerprint(ssh) : NULL;
	const char *type = ssh && bg_ssh_host_key_type(ssh) ? bg_ssh_host_key_type(ssh) : "";
	const char *check = ssh ? bg_ssh_host_key_check(ssh) : NULL;

	hint[0] = '\0';
	if (!fpr) {
		snprintf(buf, n, "host key unknown (host_key_policy = %s)", policy);
		return;
	}
	if (pin[0]) {
		snprintf(buf, n, "host key %s %s (pinned), host_key_policy = %s", type, fpr, policy);
		return;
	}
	snprintf(buf, n, "host key %s %s (NOT pinned), host_key_policy = %s: %s", type, fpr, policy,
		 check ? check : "?");
	snprintf(hint, hn,
		 "check it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and set [%s] "
		 "host_key = %s",
		 target, fpr);
}

static const char *transport_hint(int rc)
{
	switch (rc) {
	case BG_ECONNECT: return "is the host up and the port right? is a firewall in the way?";
	case BG_ETIMEOUT: return "no answer in time: host down, wrong address, or a filtered port";
	case BG_EAUTH: return "add the key to the host's authorized_keys (breakglassctl authorized-keys)";
	case BG_EHOSTKEY: return "the host key changed: check it, then update host_key (or the host was rebuilt)";
	default: return "run with -vv for the SSH layer's log";
	}
}

static void check_devvm(doctor *d)
{
	const bg_config *cfg = d->ctx->cfg;
	const char *user = bg_app_conf(cfg, "devvm", "user"), *host = bg_app_conf(cfg, "devvm", "host");
	int port = bg_app_conf_int(cfg, "devvm", "port");
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result res;
	bg_ssh *ssh = NULL;
	char detail[2048], note[1024], hint[512];
	int rc;

	memset(&res, 0, sizeof(res));
	if ((rc = bg_ssh_new_from_config(&ssh, d->ctx->cfg, "devvm", d->key)) == BG_OK) {
		opts.timeout_s = CHECK_TIMEOUT_S;
		rc = bg_ssh_exec(&res, ssh, "true", &opts);
	}
	host_key_note(ssh, cfg, "devvm", note, sizeof(note), hint, sizeof(hint));
	if (rc == BG_OK && res.exit_code == 0) {
		snprintf(detail, sizeof(detail), "%s@%s:%d: `true` ran in %lld ms; %s", user, host, port,
			 res.elapsed_ms, note);
		report(d, "devvm", 1, detail, hint[0] ? hint : NULL);
	} else if (rc == BG_OK) {
		snprintf(detail, sizeof(detail), "%s@%s:%d: `true` exited %d: %.200s", user, host, port, res.exit_code,
			 res.err ? res.err : "");
		report(d, "devvm", 0, detail, "the login works but the shell does not: check the user's shell");
	} else {
		snprintf(detail, sizeof(detail), "%s@%s:%d: %s", user, host, port, bg_error_last()->message);
		report(d, "devvm", 0, detail, transport_hint(rc));
	}
	bg_ssh_result_clear(&res);
	bg_ssh_free(ssh);
}

static void check_pve(doctor *d)
{
	const bg_config *cfg = d->ctx->cfg;
	const char *user = bg_app_conf(cfg, "pve", "user"), *host = bg_app_conf(cfg, "pve", "host");
	int port = bg_app_conf_int(cfg, "pve", "port");
	bg_pve_result r;
	bg_ssh *ssh = NULL;
	char detail[2048], note[1024], hint[512];
	int rc, n;

	memset(&r, 0, sizeof(r));
	if ((rc = bg_ssh_new_from_config(&ssh, d->ctx->cfg, "pve", d->key)) == BG_OK)
		rc = bg_pve_run(&r, ssh, "status", CHECK_TIMEOUT_S, NULL, NULL);
	host_key_note(ssh, cfg, "pve", note, sizeof(note), hint, sizeof(hint));
	if (rc == BG_OK) {
		snprintf(detail, sizeof(detail), "%s@%s:%d: `status` verb: VM %s %s; %s", user, host, port,
			 r.vmid ? r.vmid : "", r.status ? r.status : "(no status)", note);
		report(d, "pve", 1, detail, hint[0] ? hint : NULL);
		/* the VM's Proxmox side: a lock or an HA state to settle now,
		 * not during an incident */
		n = bg_pve_result_notes(detail, sizeof(detail), &r);
		report(d, "pve-vm", n == 0, detail, n ? "settle the warnings above on the Proxmox host" : NULL);
	} else {
		snprintf(detail, sizeof(detail), "%s@%s:%d: %s", user, host, port, bg_error_last()->message);
		report(d, "pve", 0, detail,
		       ctl_is_transport_error(rc) ? transport_hint(rc)
						  : "is breakglass-pve the forced command of this key on the host?");
	}
	bg_pve_result_clear(&r);
	bg_ssh_free(ssh);
}

static void check_llm(doctor *d)
{
	char *detail = NULL;
	int rc;

	rc = bg_llm_check(&detail, d->ctx->cfg, CHECK_TIMEOUT_S);

	if (rc == BG_OK)
		report(d, "llm", 1, detail ? detail : "the endpoint answers", NULL);
	else
		report(d, "llm", 0, detail ? detail : bg_error_last()->message,
		       "check [agent] provider, base_url and the API key; the buttons work without it");
	bg_free(detail);
}

static int run_doctor(ctl_ctx *ctx, int argc, char **argv)
{
	doctor d = {ctx, 0, 1, NULL};
	char detail[1024];
	const char *origin;
	int rc;

	if (argc > 1)
		return ctl_usage_error(ctx, "doctor: unexpected argument '%s'", argv[1]);
	if (ctx->json)
		fputs("{\"checks\":[", stdout);
	rc = bg_config_validate(ctx->cfg);
	origin = bg_config_origin(ctx->cfg, "devvm", "host");
	snprintf(detail, sizeof(detail), "%s%s", rc == BG_OK ? "valid; devvm host from " : bg_error_last()->message,
		 rc == BG_OK ? (origin ? origin : "?") : "");
	report(&d, "config", rc == BG_OK, detail,
	       rc == BG_OK ? NULL : "fix the file or the BREAKGLASS_* variables it names");
	if (rc == BG_OK) {
		check_key(&d);
		check_devvm(&d);
		check_pve(&d);
		check_llm(&d);
	}
	if (ctx->json)
		printf("],\"ok\":%s}\n", d.failed ? "false" : "true");
	else
		printf("%s\n", d.failed ? "doctor: some checks FAILED" : "doctor: all checks passed");
	bg_secret_free(d.key);
	if (rc != BG_OK)
		return CTL_EXIT_USAGE;
	return d.failed ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

const ctl_command ctl_cmd_doctor = {"doctor", "", "config, key, host keys, reachability of the devvm, PVE and LLM",
				    CTL_CONFIG_LOOSE, run_doctor};
