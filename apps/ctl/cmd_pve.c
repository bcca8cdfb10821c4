/* `pve VERB`: one power verb through breakglass-pve, the forced command on
 * the Proxmox host. The verb is checked against the shared table before
 * anything is read or contacted; the exit status is breakglass-pve's. */
#include "ctl.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ctrl-C cannot take back a verb the host has started (breakglass-pve
 * finishes it even when the client goes away): say so on the way out. */
static void on_interrupt(int sig)
{
	static const char msg[] = "\nbreakglassctl: interrupted; a verb already sent keeps running on the Proxmox "
				  "host: see `breakglassctl pve status`\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)n;
	_exit(128 + sig);
}

static void verbs_list(char *buf, size_t n)
{
	const bg_pve_verb *v;
	size_t count, i, used = 0;

	v = bg_pve_verbs(&count);
	buf[0] = '\0';
	for (i = 0; i < count && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? " " : "", v[i].name);
}

static void print_text(const bg_pve_result *r)
{
	size_t i;

	if (!r->json) { /* no document: show what the host said */
		fputs(r->stdout_text ? r->stdout_text : "", stdout);
		return;
	}
	printf("%s%s%s: %s", r->verb, r->vmid ? " on VM " : "", r->vmid ? r->vmid : "", r->ok ? "ok" : "FAILED");
	if (r->status)
		printf(", VM %s", r->status);
	printf(" (%.1f s)\n", (double)r->elapsed_ms / 1000.0);
	for (i = 0; i < r->nsteps; i++) {
		const bg_pve_step *s = &r->steps[i];
		const char *d = s->detail ? s->detail : "";
		printf("  %-4s %-10s %7lld ms  %.*s\n", s->ok ? "ok" : "FAIL", s->name ? s->name : "?", s->elapsed_ms,
		       (int)strcspn(d, "\n"), d);
	}
	if (r->verdict || r->forensics_id)
		printf("forensics: %s, verdict %s%s%s%s\n", r->forensics_id ? r->forensics_id : "(no bundle id)",
		       r->verdict ? r->verdict : "unknown", r->recommended_verb ? " (recommends " : "",
		       r->recommended_verb ? r->recommended_verb : "", r->recommended_verb ? ")" : "");
}

/* The shape of POST /api/pve/{verb}: {verb, exit_code, stdout, stderr,
 * rejected, result}. */
static void print_json(const bg_pve_result *r, const char *verb, int rc)
{
	char *result = NULL;

	if (bg_pve_result_to_json(&result, r) != BG_OK)
		result = NULL;
	fputs("{\"verb\":", stdout);
	ctl_json_str(stdout, verb);
	printf(",\"exit_code\":%d,\"stdout\":", r->exit_code);
	ctl_json_str(stdout, r->stdout_text ? r->stdout_text : "");
	fputs(",\"stderr\":", stdout);
	ctl_json_str(stdout, r->stderr_text ? r->stderr_text : "");
	printf(",\"rejected\":%s,\"result\":%s", r->rejected ? "true" : "false", result ? result : "null");
	if (rc != BG_OK) {
		fputs(",\"error\":", stdout);
		ctl_json_str(stdout, bg_error_last()->message);
	}
	fputs("}\n", stdout);
	bg_free(result);
}

static char *rfield(const char *body, const char *path)
{
	char *v = NULL;

	return bg_event_field(&v, body, strlen(body), path) == BG_OK ? v : NULL;
}

/* Through breakglass-web: POST /api/pve/VERB, the same exit statuses. */
static int run_pve_remote(ctl_ctx *ctx, const char *verb)
{
	char path[96], label[64], *body = NULL, *code, *vmid, *ok, *st, *ms, *verdict, *err;
	int status = 0, rc;

	snprintf(path, sizeof(path), "/api/pve/%s", verb);
	snprintf(label, sizeof(label), "pve %s via the server", verb);
	ctl_progress_start(ctx, label);
	rc = ctl_server_call(ctx, "POST", path, "{}", 600, &status, &body);
	ctl_progress_stop();
	if (rc != 0)
		return rc;
	if (ctx->json) {
		fputs(body, stdout);
		fputc('\n', stdout);
	}
	if (status == 409 || status == 400 || status == 401 || status == 403 || status >= 500) {
		if (status != 502 || !ctx->json)
			ctl_server_error(ctx, label, status, body);
	}
	code = rfield(body, "exit_code");
	if (!ctx->json && (status == 200 || status == 502) && code && strcmp(code, "-1") != 0) {
		vmid = rfield(body, "result.vmid");
		ok = rfield(body, "result.ok");
		st = rfield(body, "result.status");
		ms = rfield(body, "result.elapsed_ms");
		verdict = rfield(body, "result.forensics.verdict");
		err = rfield(body, "stderr");
		printf("%s%s%s: %s", verb, vmid && strcmp(vmid, "null") ? " on VM " : "",
		       vmid && strcmp(vmid, "null") ? vmid : "", ok && strcmp(ok, "true") == 0 ? "ok" : "FAILED");
		if (st && strcmp(st, "null") != 0)
			printf(", VM %s", st);
		printf(" (%.1f s)\n", ms ? strtod(ms, NULL) / 1000.0 : 0.0);
		if (verdict && strcmp(verdict, "null") != 0)
			printf("forensics verdict: %s\n", verdict);
		if (err && *err)
			fputs(err, stderr);
		free(vmid);
		free(ok);
		free(st);
		free(ms);
		free(verdict);
		free(err);
	}
	if (status == 200)
		rc = CTL_EXIT_OK;
	else if (status == 409)
		rc = 3; /* busy, as breakglass-pve says it */
	else if (status == 400)
		rc = CTL_EXIT_USAGE;
	else if (status == 502 && code && strcmp(code, "-1") != 0)
		rc = (int)strtol(code, NULL, 10); /* breakglass-pve's, passed through */
	else if (status == 502)
		rc = CTL_EXIT_UNREACHABLE;
	else
		rc = CTL_EXIT_FAILED;
	free(code);
	free(body);
	return rc;
}

static int run_pve(ctl_ctx *ctx, int argc, char **argv)
{
	bg_pve_result r;
	bg_ssh *ssh = NULL;
	bg_secret *key = NULL;
	char verbs[128], label[64];
	int rc, status;

	verbs_list(verbs, sizeof(verbs));
	if (argc < 2)
		return ctl_usage_error(ctx, "pve: which verb? one of: %s", verbs);
	if (argc > 2)
		return ctl_usage_error(ctx, "pve: one verb only (got '%s' after '%s')", argv[2], argv[1]);
	if (!bg_pve_verb_find(argv[1]))
		return ctl_usage_error(ctx, "pve: '%s' is not a verb; the verbs are: %s", argv[1], verbs);
	if (ctx->server)
		return run_pve_remote(ctx, argv[1]);
	if ((rc = bg_config_validate(ctx->cfg)) != BG_OK)
		return ctl_fail(ctx, rc, "configuration");
	if ((rc = ctl_open_target(&ssh, &key, ctx, "pve")) != BG_OK)
		return ctl_exit_for(rc);
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	snprintf(label, sizeof(label), "pve %s", argv[1]);
	ctl_progress_start(ctx, label);
	rc = bg_pve_run(&r, ssh, argv[1], bg_app_conf_int(ctx->cfg, "pve", "verb_timeout"), NULL, NULL);
	ctl_progress_stop();
	if (ctx->json)
		print_json(&r, argv[1], rc);
	else if (r.exit_code >= 0)
		print_text(&r);
	if (r.stderr_text && r.stderr_text[0] && !ctx->json)
		fputs(r.stderr_text, stderr);
	if (rc != BG_OK)
		fprintf(stderr, "%s: pve %s: %s\n", ctx->prog, argv[1], bg_error_last()->message);
	if (r.exit_code >= 0)
		status = r.exit_code; /* breakglass-pve's, passed through */
	else
		status = ctl_is_transport_error(rc) && rc != BG_ETIMEOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
	bg_pve_result_clear(&r);
	bg_ssh_free(ssh);
	bg_secret_free(key);
	return status;
}

const ctl_command ctl_cmd_pve = {"pve", "VERB", "a power verb through the forced command on the Proxmox host",
				 CTL_CONFIG_LOOSE, run_pve};
