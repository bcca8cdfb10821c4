/* `triage`: the devvm triage bundle, rules and all, no LLM. */
#include "ctl.h"

#include <stdlib.h>

/* Through breakglass-web: the server renders the text itself. */
static int run_triage_remote(ctl_ctx *ctx)
{
	char *body = NULL;
	int status = 0, rc;

	ctl_progress_start(ctx, "triage of the devvm via the server");
	rc = ctl_server_call(ctx, "POST", ctx->json ? "/api/devvm/triage" : "/api/devvm/triage?format=text", "{}", 600,
			     &status, &body);
	ctl_progress_stop();
	if (rc != 0)
		return rc;
	if (status != 200) {
		ctl_server_error(ctx, "triage of the devvm", status, body);
		free(body);
		return status == 502 ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
	}
	fputs(body, stdout);
	if (ctx->json)
		fputc('\n', stdout);
	free(body);
	return CTL_EXIT_OK;
}

static int run_triage(ctl_ctx *ctx, int argc, char **argv)
{
	bg_triage *t = NULL;
	bg_ssh *ssh = NULL;
	bg_secret *key = NULL;
	char *out = NULL;
	int rc, timeout;

	if (argc > 1)
		return ctl_usage_error(ctx, "triage: unexpected argument '%s'", argv[1]);
	if (ctx->server)
		return run_triage_remote(ctx);
	if ((rc = bg_config_validate(ctx->cfg)) != BG_OK)
		return ctl_fail(ctx, rc, "configuration");
	if ((rc = ctl_open_target(&ssh, &key, ctx, "devvm")) != BG_OK)
		return ctl_exit_for(rc);
	timeout = bg_app_conf_int(ctx->cfg, "devvm", "command_timeout");
	ctl_progress_start(ctx, "triage of the devvm");
	rc = bg_triage_run(&t, ssh, timeout > 0 ? timeout : 60);
	ctl_progress_stop();
	if (rc == BG_OK)
		rc = ctx->json ? bg_triage_to_json(&out, t) : bg_triage_to_text(&out, t);
	if (rc == BG_OK) {
		fputs(out, stdout);
		if (ctx->json)
			fputc('\n', stdout);
	}
	bg_triage_free(t);
	bg_free(out);
	bg_ssh_free(ssh);
	bg_secret_free(key);
	return rc == BG_OK ? CTL_EXIT_OK : ctl_fail(ctx, rc, "triage of the devvm");
}

const ctl_command ctl_cmd_triage = {"triage", "", "the devvm triage bundle with rule-based findings, no LLM",
				    CTL_CONFIG_LOOSE, run_triage};
