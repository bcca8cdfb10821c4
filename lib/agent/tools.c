/*
 * The real tool executors: devvm_exec over SSH, the devvm triage, and the
 * Proxmox verbs through the forced command. Each renders its outcome as
 * text with the facts first ("exit status: N", "status: …", "verdict: …",
 * findings as "- SEVERITY RULE: summary"), which is what the model reads
 * and what the offline playbook parses (lib/llm/offline.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "breakglass/pve.h"
#include "breakglass/ssh.h"
#include "breakglass/triage.h"
#include "core/buf.h"
#include "core/config_settings.h"
#include "core/error.h"

typedef struct real_tools {
	bg_ssh *devvm, *pve;
	char *sudo; /* [devvm] sudo */
} real_tools;

static void render_exec(bg_buf *b, const bg_ssh_result *r, int timeout_s)
{
	if (r->timed_out)
		bg_buf_printf(b, "timed out after %d s (the command was killed)\n", timeout_s);
	else if (r->exit_signal)
		bg_buf_printf(b, "killed by signal %s\n", r->exit_signal);
	else
		bg_buf_printf(b, "exit status: %d\n", r->exit_code);
	if (r->out_len)
		bg_buf_append(b, r->out, r->out_len);
	if (r->out_dropped)
		bg_buf_printf(b, "\n[%zu more bytes of stdout not kept]\n", r->out_dropped);
	if (r->err_len) {
		bg_buf_puts(b, "\n--- stderr ---\n");
		bg_buf_append(b, r->err, r->err_len);
	}
	if (r->err_dropped)
		bg_buf_printf(b, "\n[%zu more bytes of stderr not kept]\n", r->err_dropped);
}

/* Run `command` on the devvm and turn what came back into the tool's
 * outcome, after the line `head` (may be NULL). A timeout before the
 * command started (no SSH banner from a frozen guest) is a transport
 * failure, not a command that ran: it must not read as "exit status: -1",
 * which would say the devvm answered. */
static int devvm_run(real_tools *rt, const char *command, const bg_ssh_exec_options *opts, const char *head,
		     bg_tool_out *o)
{
	bg_ssh_result r;
	bg_buf b = BG_BUF_INIT;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = bg_ssh_exec(&r, rt->devvm, command, opts);
	if (rc == BG_OK || (rc == BG_ETIMEOUT && r.timed_out)) {
		if (head)
			bg_buf_printf(&b, "%s\n", head);
		render_exec(&b, &r, opts->timeout_s);
		o->ok = rc == BG_OK && r.exit_code == 0;
		o->exit_code = r.exit_code;
		o->dropped = r.out_dropped + r.err_dropped;
		o->output = bg_buf_detach(&b);
		rc = BG_OK;
	}
	bg_ssh_result_clear(&r);
	return rc;
}

static int real_exec(void *impl, const char *command, int timeout_s, bg_tool_out *o)
{
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;

	opts.timeout_s = timeout_s;
	return devvm_run(impl, command, &opts, NULL, o);
}

/* "- SEVERITY RULE: summary" per finding, and "  culprit: KIND:WHAT"
 * under it when the finding names one (what the offline playbook reads
 * to choose a remedy). The guest wrote these strings: a line break in one
 * would forge a line of ours, so each is cut at its first control byte. */
void bg_agent_render_findings(bg_buf *b, const bg_triage *t)
{
	size_t i, n = bg_triage_finding_count(t);

	bg_buf_puts(b, n ? "findings:\n" : "findings: none\n");
	for (i = 0; i < n; i++) {
		const bg_triage_finding *f = bg_triage_finding_at(t, i);

		bg_buf_printf(b, "- %s %.*s: %.*s\n", bg_severity_name(f->severity), (int)bg_agent_line_len(f->rule),
			      f->rule, (int)bg_agent_line_len(f->summary), f->summary);
		if (f->culprit && *f->culprit)
			bg_buf_printf(b, "  culprit: %.*s\n", (int)bg_agent_line_len(f->culprit), f->culprit);
	}
}

size_t bg_agent_line_len(const char *s)
{
	size_t n = 0;

	while (s && (unsigned char)s[n] >= 0x20 && s[n] != 0x7f)
		n++;
	return n;
}

static int real_triage(void *impl, int timeout_s, bg_tool_out *o)
{
	real_tools *rt = impl;
	bg_triage *t = NULL;
	bg_buf b = BG_BUF_INIT;
	char *text = NULL;
	int rc = bg_triage_run(&t, rt->devvm, timeout_s);

	if (rc != BG_OK)
		return rc;
	bg_agent_render_findings(&b, t);
	bg_buf_putc(&b, '\n');
	if (bg_triage_to_text(&text, t) == BG_OK)
		bg_buf_puts(&b, text);
	free(text);
	bg_triage_free(t);
	o->ok = 1;
	o->exit_code = 0;
	o->output = bg_buf_detach(&b);
	return BG_OK;
}

static void render_pve(bg_buf *b, const bg_pve_result *r, const char *verb)
{
	bg_buf_printf(b, "verb: %s\nexit status: %d%s\n", verb, r->exit_code, r->rejected ? " (rejected)" : "");
	if (r->status)
		bg_buf_printf(b, "status: %s\n", r->status);
	if (r->verdict)
		bg_buf_printf(b, "verdict: %s\n", r->verdict);
	if (r->recommended_verb)
		bg_buf_printf(b, "recommended_verb: %s\n", r->recommended_verb);
	if (r->forensics_id)
		bg_buf_printf(b, "forensics: %s\n", r->forensics_id);
	if (r->stdout_text && *r->stdout_text)
		bg_buf_printf(b, "\n%s", r->stdout_text);
	if (r->stderr_text && *r->stderr_text)
		bg_buf_printf(b, "\n--- stderr ---\n%s", r->stderr_text);
}

static int real_pve(void *impl, const char *verb, int timeout_s, bg_tool_out *o)
{
	real_tools *rt = impl;
	bg_pve_result r;
	bg_buf b = BG_BUF_INIT;
	int rc;

	memset(&r, 0, sizeof(r));
	r.exit_code = -1;
	rc = bg_pve_run(&r, rt->pve, verb, timeout_s, NULL, NULL);
	/* A verb that ran and failed is an outcome for the model to read. */
	if (rc == BG_OK || r.exit_code >= 0) {
		render_pve(&b, &r, verb);
		o->ok = rc == BG_OK;
		o->exit_code = r.exit_code;
		o->output = bg_buf_detach(&b);
		rc = BG_OK;
	}
	bg_pve_result_clear(&r);
	return rc;
}

static int real_remedy(void *impl, const bg_remedy *rem, int timeout_s, bg_tool_out *o)
{
	real_tools *rt = impl;
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	char *command = bg_remedy_command(rem, rt->sudo), head[BG_REMEDY_TARGET_MAX + 64];
	int rc;

	if (!command)
		return bg_error_oom();
	opts.timeout_s = timeout_s;
	opts.remote_timeout = 1;
	snprintf(head, sizeof(head), "remedy: %s %s", bg_remedy_action_name(rem->action), rem->target);
	rc = devvm_run(rt, command, &opts, head, o);
	free(command);
	return rc;
}

static void real_cancel(void *impl)
{
	real_tools *rt = impl;

	bg_ssh_cancel(rt->devvm);
	bg_ssh_cancel(rt->pve);
}

static void real_destroy(void *impl)
{
	real_tools *rt = impl;

	if (!rt)
		return;
	bg_ssh_free(rt->devvm);
	bg_ssh_free(rt->pve);
	free(rt->sudo);
	free(rt);
}

static const bg_agent_tools real_vtable = {real_exec, real_triage, real_pve, real_cancel, real_destroy, real_remedy};

int bg_agent_tools_real(const bg_agent_tools **tools, void **impl, const bg_config *cfg, const bg_secret *key)
{
	real_tools *rt = calloc(1, sizeof(*rt));
	int rc;

	if (!rt)
		return bg_error_oom();
	rt->sudo = strdup(bg_config_client(cfg)->devvm.sudo ? bg_config_client(cfg)->devvm.sudo : "sudo -n");
	if (!rt->sudo) {
		free(rt);
		return bg_error_oom();
	}
	rc = bg_ssh_new_from_config(&rt->devvm, cfg, "devvm", key);
	if (rc == BG_OK)
		rc = bg_ssh_new_from_config(&rt->pve, cfg, "pve", key);
	if (rc != BG_OK) {
		real_destroy(rt);
		return rc;
	}
	*tools = &real_vtable;
	*impl = rt;
	return BG_OK;
}
