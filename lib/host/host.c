/* The verb engine of the forced command (docs/forced-command.md): runs one parsed request
 * against the VM of pve.conf and reports what happened, step by step. */
#include "host/pve_host.h"

#include "pve/steps.h"
#include "core/buf.h"
#include "core/config_settings.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/futil.h"
#include "core/json.h"
#include "host/bundle.h"
#include "host/lock.h"
#include "host/host_test.h"
#include "host/proc.h"
#include "host/pvestate.h"
#include "host/qm.h"
#include "host/qmp.h"
#include "host/rate.h"
#include "host/safe_path.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#define STATUS_POLL_MS 300

struct bg_pve_host {
	const bg_pve_settings *s;
	char client[64];
	int use_syslog;
	int syslog_open;
	bg_pve_host_progress_fn progress;
	void *payload;
	int deadline_ms; /* 0: verb_budget_ms() */
	int background;  /* options' background_completion */
};

struct bg_pve_host_report {
	const char *verb;
	int vmid;
	int exit_code;
	char status[32];
	bg_pve_step *steps;
	size_t nsteps;
	int have_forensics;
	int f_reused; /* the bundle was taken seconds before, not by this verb */
	char *f_id, *f_verdict, *f_recommended, *f_evidence, *f_path;
	char *error;
	bg_pve_state pve; /* copied from the run, for the JSON */
	int pve_read;
	char pve_version[128], qemu_version[64]; /* status only */
	long long elapsed_ms;
	/* the forensics verb's bundle, still completing (background
	 * completion): its deferred sections, and the VM lock held until
	 * they end (bg_pve_host_report_complete) */
	bg_pve_host *pending_host;
	bg_forensics *pending_f;
	bg_vm_lock pending_lock;
	bg_buf text;
	char *json;
};

typedef struct run_ctx {
	bg_pve_host *h;
	bg_pve_host_report *r;
	const char *verb;
	char pidfile[512];
	char qmp_path[512];
	int qmp_answered;     /* from the forensics just taken */
	bg_deadline deadline; /* the verb's one overall deadline (verb_budget_ms) */
	int deadline_hit;     /* its step was recorded */
	bg_pve_state pve;     /* lock, HA: what Proxmox says (pvestate.h) */
	int pve_read;
	int stop_requested, start_requested; /* cycle: qm stop / qm start issued */
	bg_forensics *f_pending;             /* its qm sections still running (defer_qm) */
} run_ctx;

/* ---- the verb's overall deadline --------------------------------------- */

/* Every step already has its own limit; the verb has one more, over the
 * whole: the sum of the limits of the steps it may take, so that no
 * combination of slow peers (a hung qm, a QEMU that trickles, a guest
 * that floods) keeps the VM lock past it. Each step's limit is clamped to
 * what is left; once it has passed, no further step starts, the verb
 * records it (step "deadline"), releases the lock and ends (exit 4). */
static int64_t verb_budget_ms(const bg_pve_settings *s)
{
	return ((int64_t)s->timeouts.lock_wait + s->timeouts.stop + s->timeouts.kill + 6LL * s->timeouts.qm +
		4LL * s->timeouts.qmp + 5) *
		       1000 +
	       s->forensics.blockstats_interval_ms;
}

static int clamp_ms(const struct run_ctx *c, int ms)
{
	int64_t left = bg_deadline_left(c->deadline);
	return left < ms ? (int)left : ms;
}

/* ---- the event log --------------------------------------------------- */

static void log_write_line(bg_pve_host *h, const char *msg)
{
	char when[32], head[96];
	bg_buf line = BG_BUF_INIT;
	int fd;

	bg_time_iso8601(bg_wall_ms(), when, sizeof(when));
	snprintf(head, sizeof(head), "%s breakglass-pve[%d]: ", when, (int)getpid());
	if (bg_buf_puts(&line, head) == BG_OK && bg_buf_puts(&line, msg) == BG_OK &&
	    bg_buf_putc(&line, '\n') == BG_OK) {
		fd = open(h->s->paths.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
		if (fd >= 0 && bg_host_check_opened(fd, h->s->paths.log) != BG_OK) {
			close(fd); /* a hard link or a stranger's file: never write to it */
			fd = -1;
		}
		if (fd >= 0) {
			/* One write per line: O_APPEND keeps concurrent lines whole. */
			(void)!write(fd, line.data, line.len);
			close(fd);
		}
	}
	bg_buf_free(&line);
	if (h->use_syslog) {
		if (!h->syslog_open) {
			openlog("breakglass-pve", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
			h->syslog_open = 1;
		}
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", msg);
	}
}

/* Append one event line to the log (and syslog):
 * `TIME breakglass-pve[PID]: event=EVENT verb=VERB from=CLIENT FIELDS`.
 * `fields` (may be NULL) is appended as given: the caller escapes it.
 * Logging never fails the caller: errors are swallowed. Only the verb
 * engine logs events; the forced command logs rejections through
 * bg_pve_host_log_rejected. */
static void bg_pve_host_log(bg_pve_host *h, const char *event, const char *verb, const char *fields)
{
	bg_buf msg = BG_BUF_INIT;

	if (!h)
		return;
	if (bg_buf_printf(&msg, "event=%s verb=%s from=%s", event, verb ? verb : "-", h->client) == BG_OK &&
	    (!fields || !*fields || (bg_buf_putc(&msg, ' ') == BG_OK && bg_buf_puts(&msg, fields) == BG_OK)))
		log_write_line(h, msg.data);
	bg_buf_free(&msg);
}

static int put_quoted(bg_buf *b, const char *key, const char *value, size_t len)
{
	int rc = bg_buf_printf(b, " %s=\"", key);
	if (rc == BG_OK)
		rc = bg_buf_escape(b, value ? value : "", value ? len : 0);
	if (rc == BG_OK)
		rc = bg_buf_putc(b, '"');
	return rc;
}

/* Rejected requests cost an attacker nothing: their lines are rate-limited
 * by a token bucket shared by all our processes (rate.h) and carry at most
 * BG_REJECT_INPUT_LOGGED bytes of the input; the first line logged after a
 * drop says how many were dropped. */
static int rejected_may_log(bg_pve_host *h, long long *suppressed)
{
	char path[512];

	*suppressed = 0;
	if (bg_host_ensure_dir(h->s->paths.lock_dir, "[paths] lock_dir") != BG_OK) {
		bg_error_clear();
		return 1;
	}
	snprintf(path, sizeof(path), "%s/breakglass-pve-rejected.bucket", h->s->paths.lock_dir);
	return bg_rate_take(path, bg_wall_ms(), suppressed);
}

void bg_pve_host_log_rejected(bg_pve_host *h, const char *input, size_t len, const char *reason)
{
	size_t logged = len > BG_REJECT_INPUT_LOGGED ? BG_REJECT_INPUT_LOGGED : len;
	bg_buf f = BG_BUF_INIT;
	long long suppressed = 0;

	if (!h || !rejected_may_log(h, &suppressed))
		return;
	if (bg_buf_printf(&f, "len=%zu", len) == BG_OK && put_quoted(&f, "input", input, input ? logged : 0) == BG_OK &&
	    (logged == len || bg_buf_printf(&f, " input_cut=%zu", len - logged) == BG_OK) &&
	    put_quoted(&f, "reason", reason, reason ? strnlen(reason, 512) : 0) == BG_OK &&
	    (!suppressed || bg_buf_printf(&f, " suppressed=%lld", suppressed) == BG_OK))
		bg_pve_host_log(h, "rejected", NULL, f.data);
	bg_buf_free(&f);
}

/* ---- engine ---------------------------------------------------------- */

int bg_pve_host_options_init(bg_pve_host_options *opts, unsigned int version)
{
	bg_pve_host_options init = BG_PVE_HOST_OPTIONS_INIT;

	if (!opts || version != BG_PVE_HOST_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL, "bg_pve_host_options_init: unknown options version %u", version);
	*opts = init;
	return BG_OK;
}

/* Client addresses come from SSH_CONNECTION, which the client cannot set
 * but which we still refuse to copy raw into a log. */
static void set_client(bg_pve_host *h, const char *client)
{
	size_t i, n = 0;

	if (!client || !*client) {
		snprintf(h->client, sizeof(h->client), "local");
		return;
	}
	for (i = 0; client[i] && n + 1 < sizeof(h->client); i++) {
		char c = client[i];
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
			 c == ':' || c == '%';
		h->client[n++] = ok ? c : '?';
	}
	h->client[n] = '\0';
}

int bg_pve_host_check_config(const char *path)
{
	return bg_host_check_file(path, "the config file");
}

/* The directories of pve.conf that exist must be safe (StrictModes); a
 * missing one is created later (lock_dir, state_dir) or is reported by the
 * step that needs it. */
static int check_paths(const bg_pve_settings *s)
{
	char logdir[4096], *slash;
	const struct {
		const char *key, *path;
	} dirs[] = {{"[paths] state_dir", s->paths.state_dir},
		    {"[paths] lock_dir", s->paths.lock_dir},
		    {"[paths] run_dir", s->paths.run_dir},
		    {"the directory of [paths] log", logdir}};
	size_t i;

	snprintf(logdir, sizeof(logdir), "%s", s->paths.log);
	slash = strrchr(logdir, '/');
	if (slash)
		slash[slash == logdir ? 1 : 0] = '\0';
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		int rc = bg_host_check_dir(dirs[i].path, dirs[i].key);
		if (rc != BG_OK && rc != BG_ENOTFOUND)
			return rc;
	}
	bg_error_clear();
	return BG_OK;
}

int bg_pve_host_new(bg_pve_host **out, const bg_pve_host_options *opts)
{
	bg_pve_host *h;
	const bg_pve_settings *s;

	*out = NULL;
	if (!opts || opts->version != BG_PVE_HOST_OPTIONS_VERSION || !opts->config)
		return bg_error_set(BG_EINVAL, "bg_pve_host_new: options missing or of an unknown version");
	s = bg_config_pve(opts->config);
	if (!s)
		return bg_error_set(BG_EINVAL, "bg_pve_host_new: the config is not a pve.conf");
	if (strlen(s->paths.run_dir) > 400 || strlen(s->paths.lock_dir) > 400)
		return bg_error_set(BG_ECONFIG, "[paths] run_dir and lock_dir must be shorter than 400 bytes");
	if (check_paths(s) != BG_OK)
		return bg_error_last()->code;
	h = calloc(1, sizeof(*h));
	if (!h)
		return bg_error_oom();
	h->s = s;
	h->use_syslog = opts->use_syslog;
	h->progress = opts->progress;
	h->payload = opts->payload;
	h->deadline_ms = opts->deadline_ms > 0 ? opts->deadline_ms : 0;
	h->background = opts->background_completion;
	set_client(h, opts->client);
	*out = h;
	return BG_OK;
}

void bg_pve_host_free(bg_pve_host *h)
{
	if (!h)
		return;
	if (h->syslog_open)
		closelog();
	free(h);
}

/* ---- steps ----------------------------------------------------------- */

/* Text for a terminal: every control byte (ESC, CR, BEL, …), DEL and
 * non-ASCII byte escaped as \xHH, as the log escapes them, so that no text
 * a guest or QEMU supplied (an agent's error, a QMP error, a device name)
 * can move the cursor, retitle the window or forge a line. `keep_newlines`
 * keeps the report's own line structure; the parts that came from outside
 * are escaped where they are read, newlines included. */
static int escape_for_terminal(bg_buf *out, const char *s, size_t len, int keep_newlines)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;
	int rc = BG_OK;

	for (i = 0; i < len && rc == BG_OK; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 0x20 && ch < 0x7f) || ch == '\t' || (keep_newlines && ch == '\n')) {
			rc = bg_buf_putc(out, (char)ch);
		} else {
			char esc[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
			rc = bg_buf_append(out, esc, 4);
		}
	}
	if (rc == BG_OK && !out->data)
		rc = bg_buf_puts(out, "");
	return rc;
}

static void progress(run_ctx *c, const char *fmt, ...) BG_PRINTF(2, 3);
static void progress(run_ctx *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!c->h->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	{
		bg_buf safe = BG_BUF_INIT;
		if (escape_for_terminal(&safe, line, strlen(line), 0) == BG_OK && safe.data)
			(void)c->h->progress(safe.data, c->h->payload);
		bg_buf_free(&safe);
	}
}

static void log_step(run_ctx *c, const bg_pve_step *st)
{
	bg_buf f = BG_BUF_INIT;

	if (bg_buf_printf(&f, "step=%s ok=%d elapsed_ms=%lld", st->name, st->ok, st->elapsed_ms) == BG_OK &&
	    put_quoted(&f, "detail", st->detail, strlen(st->detail)) == BG_OK)
		bg_pve_host_log(c->h, "step", c->verb, f.data);
	bg_buf_free(&f);
}

/* Record a finished step (started at t0 on the monotonic clock). */
static void step_done(run_ctx *c, const char *name, int ok, int64_t t0, const char *fmt, ...) BG_PRINTF(5, 6);
static void step_done(run_ctx *c, const char *name, int ok, int64_t t0, const char *fmt, ...)
{
	bg_pve_host_report *r = c->r;
	bg_pve_step *grown, *st;
	char detail[4096]; /* room for a kernel stack */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	grown = realloc(r->steps, (r->nsteps + 1) * sizeof(*grown));
	if (!grown)
		return;
	r->steps = grown;
	st = &r->steps[r->nsteps];
	st->name = strdup(name);
	st->detail = strdup(detail);
	if (!st->name || !st->detail) {
		free(st->name);
		free(st->detail);
		return;
	}
	st->ok = ok;
	st->elapsed_ms = bg_now_ms() - t0;
	r->nsteps++;
	log_step(c, st);
	progress(c, "%s: %s (%lld ms)%s%s", name, ok ? "ok" : "FAILED", st->elapsed_ms, *detail ? ": " : "", detail);
}

static void set_error(run_ctx *c, int exit_code, const char *fmt, ...) BG_PRINTF(3, 4);
static void set_error(run_ctx *c, int exit_code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->r->exit_code = exit_code;
	if (!c->r->error)
		c->r->error = strdup(msg);
}

/* Whether the verb's deadline has passed (recorded once, as a failed step
 * and the verb's error); `next` names what will not be done. */
static int out_of_time(run_ctx *c, const char *next)
{
	if (!bg_deadline_expired(c->deadline))
		return 0;
	if (!c->deadline_hit) {
		c->deadline_hit = 1;
		step_done(c, "deadline", 0, bg_now_ms(), "the verb's overall deadline has passed: %s not done", next);
		free(c->r->error);
		c->r->error = NULL;
		set_error(c, BG_PVE_EXIT_FAILED,
			  "the verb ran out of its overall deadline before %s; what was collected is recorded (the "
			  "bundle, the steps), the VM lock is released",
			  next);
	}
	return 1;
}

/* The first line of qm output, flattened, for step details. */
static const char *first_line(const bg_run_result *res, char *buf, size_t n)
{
	size_t i;

	snprintf(buf, n, "%s", res->out ? res->out : "");
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\n' || buf[i] == '\r') {
			buf[i] = '\0';
			break;
		}
	return buf;
}

/* Run `qm ARGS…` and describe the outcome in `why` (empty on success). */
static int qm_call(run_ctx *c, const char *const *args, int timeout_ms, bg_run_result *res, char *why, size_t n)
{
	char line[256];
	int rc;

	memset(res, 0, sizeof(*res));
	timeout_ms = clamp_ms(c, timeout_ms);
	if (timeout_ms <= 0) {
		snprintf(why, n, "qm %s not run: the verb's overall deadline has passed", args[0]);
		return BG_ETIMEOUT;
	}
	rc = bg_qm(res, c->h->s->paths.qm, timeout_ms, args, c->h->s->vmid);
	if (rc == BG_ETIMEOUT || res->timed_out) {
		snprintf(why, n, "qm %s did not finish in %d ms: killed", args[0], timeout_ms);
		return BG_ETIMEOUT;
	}
	if (rc != BG_OK) {
		snprintf(why, n, "qm %s could not run: %s", args[0], bg_error_last()->message);
		return rc;
	}
	if (res->exit_code != 0) {
		snprintf(why, n, "qm %s exited %d: %s", args[0], res->exit_code, first_line(res, line, sizeof(line)));
		return BG_EFAILED;
	}
	why[0] = '\0';
	return BG_OK;
}

/* `qm status VMID` → "running", "stopped", … */
static int vm_status(run_ctx *c, char *status, size_t n, char *why, size_t wn)
{
	static const char *const args[] = {"status", "{vmid}", NULL};
	bg_run_result res;
	const char *p;
	size_t i = 0;
	int rc = qm_call(c, args, c->h->s->timeouts.qm * 1000, &res, why, wn);

	if (rc == BG_OK) {
		p = res.out ? strstr(res.out, "status: ") : NULL;
		if (!p) {
			snprintf(why, wn, "qm status printed no 'status:' line");
			rc = BG_EPROTO;
		} else {
			for (p += 8; p[i] && p[i] != '\n' && p[i] != ' ' && i + 1 < n; i++)
				status[i] = p[i];
			status[i] = '\0';
		}
	}
	bg_run_result_clear(&res);
	return rc;
}

/* Poll `qm status` until it says `want` or timeout_ms passes. The last
 * look is taken at the end of timeout_ms, so "not within N s" means N s
 * were waited (it used to stop when less than a poll was left: 4.95 s of
 * a 5 s ha_start wait). Only the verb's overall deadline ends it sooner,
 * and then without starting a look that the deadline would cut. */
static int wait_status(run_ctx *c, const char *want, int timeout_ms, char *seen, size_t n)
{
	bg_deadline d = bg_deadline_in(timeout_ms);
	char why[512];
	int64_t left;

	for (;;) {
		if (vm_status(c, seen, n, why, sizeof(why)) != BG_OK)
			snprintf(seen, n, "unknown");
		else if (strcmp(seen, want) == 0)
			return 1;
		left = bg_deadline_left(d);
		if (left <= 0 || bg_deadline_left(c->deadline) < STATUS_POLL_MS)
			return 0;
		bg_sleep_ms(left < STATUS_POLL_MS ? left : STATUS_POLL_MS);
	}
}

/* ---- forensics ------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* How old a bundle of the same QEMU process a mutating verb may reuse. */
#define FORENSICS_REUSE_S 30

static int take_forensics(run_ctx *c, int print_all)
{
	const bg_pve_settings *s = c->h->s;
	bg_forensics_options o;
	bg_forensics *f = NULL;
	int64_t t0 = bg_now_ms();
	char facts[1024];
	bg_verdict v;
	int rc;

	memset(&o, 0, sizeof(o));
	o.vmid = s->vmid;
	o.qm = s->paths.qm;
	o.run_dir = s->paths.run_dir;
	o.state_dir = s->paths.state_dir;
	o.verb = c->verb;
	o.keep = s->forensics.keep;
	o.qm_timeout_ms = clamp_ms(c, s->timeouts.qm * 1000);
	o.qmp_timeout_ms = clamp_ms(c, s->timeouts.qmp * 1000);
	if (o.qm_timeout_ms <= 0 || o.qmp_timeout_ms <= 0) {
		(void)out_of_time(c, "forensics");
		return bg_error_set(BG_ETIMEOUT, "the verb's overall deadline has passed before forensics");
	}
	o.blockstats_interval_ms = s->forensics.blockstats_interval_ms;
	o.gdb = s->forensics.gdb;
	o.agent_exec = s->forensics.agent_exec;
	/* A mutating verb: qm status never gates the kill. The forensics
	 * verb, where its caller completes the bundle after answering: qm
	 * status never delays the verdict. */
	o.defer_qm = !print_all || c->h->background;
	if (c->pve_read) {
		bg_pve_state_describe(&c->pve, facts, sizeof(facts));
		o.proxmox_facts = facts;
		o.config_lock = c->pve.config_read ? c->pve.lock : NULL;
	}
	/* A mutating verb seconds after a forensics of the same QEMU process
	 * uses that bundle: the evidence is still taken once before any
	 * power action, not twice (issue 13: the playbook's cycle spent 3 s
	 * taking again what it had just read). */
	if (print_all || bg_forensics_reuse(&f, &o, FORENSICS_REUSE_S) != BG_OK)
		rc = bg_forensics_collect(&f, &o);
	else
		rc = BG_OK;
	if (rc != BG_OK) {
		step_done(c, "forensics", 0, t0, "%s", bg_error_last()->message);
		return rc;
	}
	v = bg_forensics_verdict(f);
	c->qmp_answered = bg_forensics_qmp_answered(f);
	c->r->have_forensics = 1;
	c->r->f_reused = bg_forensics_reused(f);
	c->r->f_id = dup_or_null(bg_forensics_id(f));
	c->r->f_verdict = dup_or_null(bg_verdict_name(v));
	c->r->f_recommended = dup_or_null(bg_verdict_recommended_verb(v));
	c->r->f_evidence = dup_or_null(bg_forensics_evidence(f));
	c->r->f_path = dup_or_null(bg_forensics_path(f));
	if (print_all && bg_forensics_text(f))
		bg_buf_puts(&c->r->text, bg_forensics_text(f));
	step_done(c, "forensics", 1, t0, "%sbundle %s, verdict %s%s%s%s",
		  bg_forensics_reused(f) ? "reused (same QEMU process, taken seconds before) " : "",
		  c->r->f_id ? c->r->f_id : "?", bg_verdict_name(v), c->qmp_answered ? "" : ", QMP not answering",
		  c->r->f_path ? "" : " (not stored)",
		  bg_forensics_pending(f) ? "; qm status (waiting out its QMP timeout) ends into the bundle later"
					  : "");
	if (bg_forensics_pending(f))
		c->f_pending = f; /* completed by forensics_settle */
	else
		bg_forensics_free(f);
	return BG_OK;
}

/* The bundle's deferred sections (`qm status`, `qm pending`, `qm config` and
 * the agent ping of a QEMU whose QMP was silent) ended: waited for before a QEMU is started again (their
 * QMP query must never reach the new one) and before the lock is released.
 * After the kill they end at once: the socket they waited on is gone. */
static void forensics_settle(run_ctx *c)
{
	int64_t t0 = bg_now_ms();

	if (!c->f_pending)
		return;
	bg_forensics_finish(c->f_pending);
	bg_forensics_free(c->f_pending);
	c->f_pending = NULL;
	step_done(c, "forensics-end", 1, t0,
		  "qm status, qm pending, qm config and the agent ping, run on past the verdict (QMP silent), are in "
		  "the bundle");
}

/* ---- status ---------------------------------------------------------- */

/* Seconds the process has run, from /proc/PID/stat's start time. */
static long long process_uptime_s(int pid)
{
	bg_proc_stat st;
	double up = 0;
	FILE *f;

	if (bg_proc_stat_read(&st, pid, 0) != BG_OK)
		return -1;
	f = fopen("/proc/uptime", "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lf", &up) != 1)
		up = 0;
	fclose(f);
	return (long long)(up - (double)st.starttime / (double)sysconf(_SC_CLK_TCK));
}

/* The QEMU pid of this VM, checked: > 0 the pid; 0 when there is no QEMU
 * (no pidfile, no such process); -1 when the pidfile names a process that
 * is not this VM's QEMU, or cannot be read — never to be signalled. */
static int checked_pid(run_ctx *c, char *why, size_t n)
{
	int pid = 0, rc = bg_pidfile_read(c->pidfile, &pid);

	if (rc == BG_ENOTFOUND) {
		snprintf(why, n, "no pidfile %s", c->pidfile);
		return 0;
	}
	if (rc != BG_OK) {
		snprintf(why, n, "%s", bg_error_last()->message);
		return -1;
	}
	rc = bg_proc_is_qemu_for_vm(pid, c->h->s->vmid, c->pidfile);
	if (rc == 1)
		return pid;
	if (rc == BG_ENOTFOUND) {
		snprintf(why, n, "pidfile names %d: no such process", pid);
		return 0;
	}
	snprintf(why, n, "pidfile names %d, which is not this VM's QEMU: %s", pid, bg_error_last()->message);
	return -1;
}

static void human_duration(long long s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "unknown");
	else if (s < 3600)
		snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, n, "%lldd%02lldh%02lldm", s / 86400, (s / 3600) % 24, (s / 60) % 60);
}

/* A QEMU in state T (SIGSTOPped, or traced) cannot greet: /proc says so
 * at once, so QMP gets a short look instead of the whole [timeouts] qmp
 * (issue 13: status of a frozen QEMU took 5.2 s). */
#define STATUS_QMP_STOPPED_MS 250

static void status_qmp(run_ctx *c, int pid)
{
	json_object *ret = NULL;
	int64_t t0 = bg_now_ms();
	int wait_ms = c->h->s->timeouts.qmp * 1000;
	char pst = 0;
	int rc;

	if (bg_proc_state(pid, &pst) == BG_OK && (pst == 'T' || pst == 't') && wait_ms > STATUS_QMP_STOPPED_MS)
		wait_ms = STATUS_QMP_STOPPED_MS;
	wait_ms = clamp_ms(c, wait_ms) > 0 ? clamp_ms(c, wait_ms) : 1;
	rc = bg_qmp_command(c->qmp_path, "query-status", NULL, wait_ms, &ret);

	if (rc == BG_OK) {
		const char *st = NULL;
		json_object *v;
		if (json_object_object_get_ex(ret, "status", &v))
			st = json_object_get_string(v);
		bg_buf_printf(&c->r->text, "qmp: answering (%s)\n", st ? st : "?");
		step_done(c, "qmp", 1, t0, "query-status: %s", st ? st : "?");
	} else {
		char why[600];
		snprintf(why, sizeof(why), "%s%s", bg_error_last()->message,
			 pst == 'T' || pst == 't' ? " (QEMU is stopped: state T)" : "");
		bg_buf_printf(&c->r->text, "qmp: not answering (%s)\n", why);
		step_done(c, "qmp", 0, t0, "%s", why);
	}
	json_object_put(ret);
}

/* The VM's QEMU, when it is stopped by a signal (state T): its QMP cannot
 * answer, and Proxmox's `qm status` would wait out its own QMP timeout
 * (3 s) and then report "running" for the live process (vmstatus() in
 * qemu-server). That answer is known at once: > 0 the pid, else 0. */
static int stopped_qemu(run_ctx *c)
{
	char why[512], st = 0;
	int pid = checked_pid(c, why, sizeof(why));

	return pid > 0 && bg_proc_state(pid, &st) == BG_OK && (st == 'T' || st == 't') ? pid : 0;
}

static void verb_status(run_ctx *c)
{
	char why[1024], up[64];
	int64_t t0 = bg_now_ms();
	int pid = stopped_qemu(c);

	if (pid > 0) {
		snprintf(c->r->status, sizeof(c->r->status), "running");
		step_done(c, "qm-status", 1, t0,
			  "status: running (QEMU pid %d is stopped, state T; qm status not asked: it would wait 3 s "
			  "for the silent QMP, then say running)",
			  pid);
		bg_buf_printf(&c->r->text, "status: running (QEMU stopped: state T)\n");
	} else if (vm_status(c, c->r->status, sizeof(c->r->status), why, sizeof(why)) != BG_OK) {
		snprintf(c->r->status, sizeof(c->r->status), "unknown");
		step_done(c, "qm-status", 0, t0, "%s", why);
		bg_buf_printf(&c->r->text, "status: unknown\nerror: %s\n", why);
		set_error(c, BG_PVE_EXIT_FAILED, "%s", why);
		return;
	} else {
		step_done(c, "qm-status", 1, t0, "status: %s", c->r->status);
		bg_buf_printf(&c->r->text, "status: %s\n", c->r->status);
	}
	pid = checked_pid(c, why, sizeof(why));
	if (pid <= 0) {
		bg_buf_printf(&c->r->text, "pid: none (%s)\n", why);
		return;
	}
	human_duration(process_uptime_s(pid), up, sizeof(up));
	bg_buf_printf(&c->r->text, "pid: %d\n", pid);
	status_qmp(c, pid);
	bg_buf_printf(&c->r->text, "uptime: %s\n", up);
}

/* ---- Proxmox: config lock, HA (pvestate.h) ---------------------------- */

static void pve_paths(run_ctx *c, bg_pve_state_paths *p)
{
	const bg_pve_settings *s = c->h->s;

	p->qm = s->paths.qm;
	p->ha_manager = s->proxmox.ha_manager;
	p->ha_resources = s->proxmox.ha_resources;
	p->tasks_active = s->proxmox.tasks_active;
	p->timeout_ms = s->timeouts.qm * 1000;
}

/* Read the lock and the HA state once, before the verb (read-only). */
static void read_pve_state(run_ctx *c)
{
	bg_pve_state_paths p;

	pve_paths(c, &p);
	bg_pve_state_read(&c->pve, &p, c->h->s->vmid);
	c->pve_read = 1;
}

/* How long to wait for `want` after qm said yes: an HA-managed VM (or one
 * whose HA state is unknown) is started by the HA stack, later. */
static int verify_ms(run_ctx *c, const char *want)
{
	const bg_pve_settings *s = c->h->s;

	if (strcmp(want, "running") == 0 && c->pve_read && c->pve.ha_managed != 0 &&
	    s->proxmox.ha_start > s->timeouts.qm)
		return s->proxmox.ha_start * 1000;
	return s->timeouts.qm * 1000;
}

/* A lock kind as printable as we print it: [a-z-], else '?'. */
static void clean_kind(char *kind)
{
	for (; *kind; kind++)
		if (!((*kind >= 'a' && *kind <= 'z') || *kind == '-'))
			*kind = '?';
}

/* The outcome every lock case shares: exit 4, the lock, what it means and
 * what a human must check. Replaces a vaguer error. */
static void set_locked_error(run_ctx *c, const char *kind, const char *what)
{
	free(c->r->error);
	c->r->error = NULL;
	set_error(c, BG_PVE_EXIT_FAILED,
		  "config-locked: %s: the VM config is locked (%s): %s. A human must check %s. breakglass-pve never "
		  "overrides a lock (no --skiplock, no qm unlock)",
		  what, kind, bg_pve_lock_meaning(kind), bg_pve_lock_check(kind));
}

/* qm's "VM is locked (KIND)" in `why`: say so plainly, exit 4. */
static int qm_refused_lock(run_ctx *c, const char *why, const char *qm_verb)
{
	const char *p = strstr(why, "VM is locked (");
	char kind[BG_PVE_LOCK_MAX], what[64];
	size_t k;

	if (!p)
		return 0;
	p += 14;
	k = strcspn(p, ")");
	if (k >= sizeof(kind))
		k = sizeof(kind) - 1;
	memcpy(kind, p, k);
	kind[k] = '\0';
	clean_kind(kind);
	if (!c->pve.lock[0])
		snprintf(c->pve.lock, sizeof(c->pve.lock), "%s", kind);
	snprintf(what, sizeof(what), "qm %s refused", qm_verb);
	set_locked_error(c, kind, what);
	return 1;
}

/* The HA stack is itself fencing, recovering or moving the VM: a verb
 * must not race it. Returns 1 (and sets exit 4) when it is. */
static int ha_busy_refusal(run_ctx *c)
{
	if (!c->pve_read || c->pve.ha_managed != 1 || !bg_pve_ha_busy(c->pve.ha_state))
		return 0;
	step_done(c, "ha", 0, bg_now_ms(), "the HA stack is acting on the VM (state %s): not raced", c->pve.ha_state);
	set_error(c, BG_PVE_EXIT_FAILED,
		  "ha-busy: the HA stack is acting on this VM (service state %s); breakglass-pve does not race it. "
		  "Wait for it to finish, or check `ha-manager status` and the cluster's nodes",
		  c->pve.ha_state);
	return 1;
}

/* `qm unlock`, only called when bg_pve_lock_clearable() said so. */
static void unlock_step(run_ctx *c, const char *reason)
{
	static const char *const unlock[] = {"unlock", "{vmid}", NULL};
	char why[1024];
	bg_run_result res;
	int64_t t0 = bg_now_ms();
	int rc = qm_call(c, unlock, c->h->s->timeouts.qm * 1000, &res, why, sizeof(why));

	step_done(c, "qm-unlock", rc == BG_OK, t0, "%s%s%s", reason, rc == BG_OK ? "" : ": ", rc == BG_OK ? "" : why);
	bg_run_result_clear(&res);
}

/* The first line of `pveversion` ("pve-manager/8.2.4/… (running kernel:
 * …)"), or "" when it cannot be asked. */
static void read_pve_version(run_ctx *c, char *out, size_t n)
{
	const char *prog = c->h->s->proxmox.pveversion;
	const char *argv[] = {prog, NULL};
	bg_run_result res;
	char line[128];

	out[0] = '\0';
	if (!prog || !*prog || access(prog, X_OK) != 0)
		return;
	if (bg_run(&res, argv, c->h->s->timeouts.qm * 1000) == BG_OK && res.exit_code == 0)
		snprintf(out, n, "%.120s", first_line(&res, line, sizeof(line)));
	bg_run_result_clear(&res);
}

/* The running QEMU's version from QMP query-version ("7.2.22"). */
static void read_qemu_version(run_ctx *c, char *out, size_t n)
{
	json_object *ret = NULL, *q;

	out[0] = '\0';
	if (bg_qmp_command(c->qmp_path, "query-version", NULL, c->h->s->timeouts.qmp * 1000, &ret) == BG_OK &&
	    json_object_object_get_ex(ret, "qemu", &q))
		snprintf(out, n, "%lld.%lld.%lld", (long long)bg_json_int(q, "major", 0),
			 (long long)bg_json_int(q, "minor", 0), (long long)bg_json_int(q, "micro", 0));
	json_object_put(ret);
}

/* status's Proxmox lines: the lock, HA, the versions (also in --json, for
 * `breakglassctl doctor`). Text from the host's own tools, escaped. */
static void status_proxmox(run_ctx *c)
{
	bg_pve_host_report *r = c->r;
	const bg_pve_state *st = &c->pve;
	char why[256];
	size_t i;
	int qmp_ok = 0;

	read_pve_state(c);
	for (i = 0; i < r->nsteps; i++)
		if (strcmp(r->steps[i].name, "qmp") == 0)
			qmp_ok = r->steps[i].ok;
	if (!st->config_read)
		bg_buf_puts(&r->text, "lock: unknown (qm config did not answer)\n");
	else if (!st->lock[0])
		bg_buf_puts(&r->text, "lock: none\n");
	else
		bg_buf_printf(&r->text, "lock: %s (%s)\n", st->lock, bg_pve_lock_meaning(st->lock));
	if (st->ha_managed == 1)
		bg_buf_printf(&r->text, "ha: managed, state %s\n", st->ha_state);
	else
		bg_buf_puts(&r->text, st->ha_managed == 0 ? "ha: not managed\n" : "ha: unknown\n");
	read_pve_version(c, r->pve_version, sizeof(r->pve_version));
	if (qmp_ok && checked_pid(c, why, sizeof(why)) > 0)
		read_qemu_version(c, r->qemu_version, sizeof(r->qemu_version));
	bg_buf_puts(&r->text, "proxmox: ");
	bg_buf_escape(&r->text, r->pve_version[0] ? r->pve_version : "unknown",
		      strlen(r->pve_version[0] ? r->pve_version : "unknown"));
	bg_buf_printf(&r->text, "\nqemu: %s\n",
		      r->qemu_version[0] ? r->qemu_version : "unknown (not running, or QMP silent)");
}

/* ---- mutating verbs -------------------------------------------------- */

/* `qm VERB VMID`, then wait for `want`. */
static int qm_and_verify(run_ctx *c, const char *const *args, int qm_ms, const char *want)
{
	char why[1024], seen[32];
	bg_run_result res;
	int64_t t0 = bg_now_ms();
	char name[32];
	int rc = qm_call(c, args, qm_ms, &res, why, sizeof(why));

	snprintf(name, sizeof(name), "qm-%s", args[0]);
	step_done(c, name, rc == BG_OK, t0, "%s", rc == BG_OK ? "exit 0" : why);
	bg_run_result_clear(&res);
	t0 = bg_now_ms();
	/* a failed qm gets one look, not a long wait for what will not come */
	if (wait_status(c, want, rc == BG_OK ? verify_ms(c, want) : 0, seen, sizeof(seen))) {
		snprintf(c->r->status, sizeof(c->r->status), "%s", seen);
		step_done(c, "verify", 1, t0, "status: %s", seen);
		/* a refused reset finds the VM running all the same: not done */
		return rc != BG_OK && qm_refused_lock(c, why, args[0]) ? BG_EFAILED : BG_OK;
	}
	snprintf(c->r->status, sizeof(c->r->status), "%s", seen);
	step_done(c, "verify", 0, t0, "status: %s, wanted %s", seen, want);
	if (rc != BG_OK && qm_refused_lock(c, why, args[0]))
		return BG_EFAILED;
	if (rc == BG_OK && c->pve.ha_managed == 1 && strcmp(want, "running") == 0)
		set_error(c, BG_PVE_EXIT_FAILED,
			  "ha-start-timeout: the VM is %s: the HA stack did not start it within %d s (qm start only "
			  "asks it to); check `ha-manager status` and the HA stack's log on the node",
			  seen, verify_ms(c, want) / 1000);
	else if (rc == BG_OK)
		set_error(c, BG_PVE_EXIT_FAILED, "the VM is %s, not %s", seen, want);
	else
		set_error(c, BG_PVE_EXIT_FAILED, "the VM is %s, not %s (%s)", seen, want, why);
	return BG_EFAILED;
}

static void verb_start(run_ctx *c)
{
	static const char *const args[] = {"start", "{vmid}", NULL};
	(void)qm_and_verify(c, args, c->h->s->timeouts.qm * 1000, "running");
}

static void verb_reset(run_ctx *c)
{
	static const char *const args[] = {"reset", "{vmid}", NULL};
	(void)qm_and_verify(c, args, c->h->s->timeouts.qm * 1000, "running");
}

/* Whether pid is gone (or a zombie: dead, not yet reaped). */
static int process_gone(int pid)
{
	char st = 0;
	int rc = bg_proc_state(pid, &st);
	return rc == BG_ENOTFOUND || (rc == BG_OK && (st == 'Z' || st == 'X'));
}

/* The kernel stacks of pid's threads: all of them into `all` (the text
 * report), the main thread's plus one line per other thread into `brief`
 * (a step detail, which also goes to the log). */
static void describe_stacks(int pid, bg_buf *all, bg_buf *brief)
{
	bg_proc_info info;
	size_t i;

	memset(&info, 0, sizeof(info));
	if (bg_proc_read(&info, pid) != BG_OK) {
		bg_buf_printf(all, "(unreadable: %s)\n", bg_error_last()->message);
		bg_buf_printf(brief, "; kernel stack unreadable: %s", bg_error_last()->message);
		return;
	}
	for (i = 0; i < info.nthreads; i++) {
		const bg_proc_thread *t = &info.threads[i];
		const char *stack = t->stack ? t->stack : "(kernel stack unreadable)\n";
		bg_buf_printf(all, "thread %d (%s) state %c wchan %s\n%s", t->tid, t->comm, t->state,
			      t->wchan[0] ? t->wchan : "-", stack);
		if (t->tid == pid)
			bg_buf_printf(brief, "; kernel stack of pid %d:\n%s", pid, stack);
		else
			bg_buf_printf(brief, "%sthread %d (%s) state %c wchan %s", brief->len ? "; " : "", t->tid,
				      t->comm, t->state, t->wchan[0] ? t->wchan : "-");
	}
	bg_proc_info_clear(&info);
}

/* A QEMU that outlived SIGKILL (sent by us, or by `qm stop`, named in
 * `after`): say so with its state and kernel stacks, as step `name`. */
static void report_unkillable(run_ctx *c, int pid, int64_t t0, const char *name, const char *after,
			      const char *consequence)
{
	bg_buf all = BG_BUF_INIT, brief = BG_BUF_INIT;
	char st = '?';

	(void)bg_proc_state(pid, &st);
	describe_stacks(pid, &all, &brief);
	snprintf(c->r->status, sizeof(c->r->status), "running");
	step_done(c, name, 0, t0, "QEMU pid %d is still alive in state %c after %s%s%s", pid, st, after,
		  st == 'D' ? " (uninterruptible sleep): it waits for the kernel (storage?)" : "",
		  brief.data ? brief.data : "");
	bg_buf_printf(&c->r->text, "QEMU pid %d did not die on SIGKILL (state %c); kernel stacks:\n%s", pid, st,
		      all.data ? all.data : "(unreadable)\n");
	/* more precise than whatever failed before ("the VM is running, not …") */
	free(c->r->error);
	c->r->error = NULL;
	set_error(c, BG_PVE_EXIT_FAILED,
		  "qemu-uninterruptible: QEMU pid %d did not die on SIGKILL (state %c); %s. Only the storage coming "
		  "back or a host reboot ends it",
		  pid, st, consequence);
	bg_buf_free(&all);
	bg_buf_free(&brief);
}

static void verb_stop(run_ctx *c)
{
	const bg_pve_settings *s = c->h->s;
	char tmo[16];
	const char *args[] = {"stop", "{vmid}", "--timeout", tmo, NULL};
	char why[1024], st = 0;
	int pid;

	snprintf(tmo, sizeof(tmo), "%d", s->timeouts.stop);
	if (qm_and_verify(c, args, (s->timeouts.stop + s->timeouts.kill + s->timeouts.qm) * 1000, "stopped") == BG_OK)
		return;
	/* qm stop ends with SIGKILL: a QEMU still there in state D is the
	 * storage's doing, and the operator needs to know that, not "running" */
	pid = checked_pid(c, why, sizeof(why));
	if (pid > 0 && bg_proc_state(pid, &st) == BG_OK && st == 'D')
		report_unkillable(c, pid, bg_now_ms(), "qemu-state", "qm stop (which ends with SIGKILL)",
				  "the VM is not stopped");
}

/* Signal `pid` through a pidfd taken before a second identity check, so
 * that a pid that died and was reused since the first check is never hit:
 * the pidfd pins the process that was checked. Kernels without pidfds
 * (< 5.3) fall back to kill(2) right after the second check. */
static int kill_checked_pid(run_ctx *c, int pid, char *why, size_t n)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int rc = bg_proc_is_qemu_for_vm(pid, c->h->s->vmid, c->pidfile);

	if (rc != 1) {
		snprintf(why, n, "pid %d changed between checks: %s", pid,
			 rc == BG_ENOTFOUND ? "gone" : bg_error_last()->message);
		if (fd >= 0)
			close(fd);
		return rc == BG_ENOTFOUND ? BG_OK : BG_EDENIED;
	}
	if (fd >= 0) {
		rc = (int)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		close(fd);
	} else {
		rc = kill(pid, SIGKILL);
	}
	if (rc != 0 && errno != ESRCH) {
		snprintf(why, n, "kill %d: %s", pid, strerror(errno));
		return BG_EIO;
	}
	return BG_OK;
}

static bg_pve_host_kill_hook_fn kill_hook;
static void *kill_hook_arg;

void bg_pve_host_set_kill_hook(bg_pve_host_kill_hook_fn fn, void *arg)
{
	kill_hook = fn;
	kill_hook_arg = arg;
}

/* SIGKILL this VM's QEMU, never another process, and wait for it. */
static int checked_kill(run_ctx *c)
{
	int64_t t0 = bg_now_ms();
	char why[1024];
	bg_deadline d;
	int pid = checked_pid(c, why, sizeof(why));

	if (pid == 0) {
		step_done(c, "kill", 1, t0, "no QEMU process to kill (%s)", why);
		return BG_OK;
	}
	if (pid < 0) {
		step_done(c, "kill", 0, t0, "not killed: %s", why);
		return BG_EDENIED;
	}
	if (kill_hook)
		kill_hook(pid, kill_hook_arg);
	if (kill_checked_pid(c, pid, why, sizeof(why)) != BG_OK) {
		step_done(c, "kill", 0, t0, "not killed: %s", why);
		return BG_EDENIED;
	}
	step_done(c, "kill", 1, t0, "SIGKILL sent to QEMU pid %d", pid);
	t0 = bg_now_ms();
	d = bg_deadline_min(bg_deadline_in((int64_t)c->h->s->timeouts.kill * 1000), c->deadline);
	while (!process_gone(pid) && !bg_deadline_expired(d))
		bg_sleep_ms(50);
	if (!process_gone(pid)) {
		report_unkillable(c, pid, t0, "kill-wait", "SIGKILL", "the VM was not started");
		return BG_EFAILED;
	}
	step_done(c, "kill-wait", 1, t0, "QEMU pid %d is gone", pid);
	return BG_OK;
}

/* The clean stop of cycle; returns 1 when the VM is stopped. */
static int cycle_clean_stop(run_ctx *c)
{
	const bg_pve_settings *s = c->h->s;
	char tmo[16], why[1024], seen[32];
	const char *args[] = {"stop", "{vmid}", "--timeout", tmo, NULL};
	bg_deadline d = bg_deadline_in((int64_t)s->timeouts.stop * 1000);
	int64_t t0 = bg_now_ms();
	bg_run_result res;
	int rc;

	if (!c->qmp_answered) {
		step_done(c, "clean-stop", 0, t0, "skipped: QMP is not answering, so a clean stop cannot work");
		return 0;
	}
	snprintf(tmo, sizeof(tmo), "%d", s->timeouts.stop);
	rc = qm_call(c, args, s->timeouts.stop * 1000, &res, why, sizeof(why));
	bg_run_result_clear(&res);
	if (wait_status(c, "stopped", (int)bg_deadline_left(d), seen, sizeof(seen))) {
		step_done(c, "clean-stop", 1, t0, "stopped%s%s%s", rc == BG_OK ? "" : " (", rc == BG_OK ? "" : why,
			  rc == BG_OK ? "" : ")");
		return 1;
	}
	step_done(c, "clean-stop", 0, t0, "still %s after %d s%s%s", seen, s->timeouts.stop, rc == BG_OK ? "" : ": ",
		  rc == BG_OK ? "" : why);
	return 0;
}

/* cycle's end when the lock is not known to be safe to clear: the VM
 * stays as the kill left it (stopped), for a human. */
static void cycle_locked_finish(run_ctx *c)
{
	char seen[32], what[96];
	int64_t t0 = bg_now_ms();

	(void)wait_status(c, "stopped", 0, seen, sizeof(seen));
	snprintf(c->r->status, sizeof(c->r->status), "%s", seen);
	if (!c->pve.config_read) {
		step_done(c, "qm-unlock", 0, t0, "not run: qm config did not answer, so the config lock is unknown");
		free(c->r->error);
		c->r->error = NULL;
		set_error(
			c, BG_PVE_EXIT_FAILED,
			"config-lock-unknown: qm config did not answer, so whether the VM config is locked is unknown; "
			"the VM was left %s, neither unlocked nor started. A human must check `qm config %d` and start "
			"it",
			seen, c->h->s->vmid);
		return;
	}
	step_done(c, "qm-unlock", 0, t0, "not run: the config lock %s is not known to be safe to clear%s%s",
		  c->pve.lock, c->pve.vzdump_alive == 1 ? "; vzdump task alive: " : "",
		  c->pve.vzdump_alive == 1 ? c->pve.vzdump_task : "");
	snprintf(what, sizeof(what), "cycle left the VM %s, neither unlocked nor started", seen);
	set_locked_error(c, c->pve.lock, what);
}

static void cycle_body(run_ctx *c)
{
	static const char *const start[] = {"start", "{vmid}", NULL};
	char seen[32], reason[128];
	bg_pve_state_paths p;
	int rc, clearable = bg_pve_lock_clearable(&c->pve);

	if (c->pve.lock[0] && clearable) {
		snprintf(reason, sizeof(reason), "lock %s cleared: no vzdump task of this VM is alive", c->pve.lock);
		unlock_step(c, reason); /* so that the clean stop is not refused */
	}
	if (!clearable)
		step_done(c, "clean-stop", 0, bg_now_ms(),
			  "skipped: the config lock (%s) is not known to be safe to clear, and qm refuses a locked VM",
			  c->pve.config_read ? c->pve.lock : "unknown");
	c->stop_requested = clearable && c->qmp_answered;
	if (!clearable || !cycle_clean_stop(c)) {
		rc = checked_kill(c);
		if (rc == BG_EFAILED)
			return; /* state D: starting would only fail, or worse */
		if (rc != BG_OK && !wait_status(c, "stopped", 0, seen, sizeof(seen))) {
			snprintf(c->r->status, sizeof(c->r->status), "%s", seen);
			set_error(c, BG_PVE_EXIT_FAILED, "the VM did not stop and its QEMU could not be killed safely");
			return;
		}
	}
	forensics_settle(c); /* before any QEMU starts */
	if (!clearable) {
		cycle_locked_finish(c);
		return;
	}
	if (out_of_time(c, "qm unlock and qm start"))
		return;
	/* a lock may have come since it was read (a backup starting) */
	pve_paths(c, &p);
	bg_pve_state_read_lock(&c->pve, &p, c->h->s->vmid);
	if (!bg_pve_lock_clearable(&c->pve)) {
		cycle_locked_finish(c);
		return;
	}
	if (c->pve.lock[0]) {
		snprintf(reason, sizeof(reason), "lock %s cleared: no vzdump task of this VM is alive", c->pve.lock);
		unlock_step(c, reason);
	}
	c->start_requested = 1;
	(void)qm_and_verify(c, start, c->h->s->timeouts.qm * 1000, "running");
}

/* An HA-managed VM whose clean stop set its requested state to stopped is
 * never left so: `qm start` on it only asks the HA stack for started, as
 * it was before the cycle. */
static void ha_restore(run_ctx *c)
{
	static const char *const start[] = {"start", "{vmid}", NULL};
	char why[1024];
	bg_run_result res;
	int64_t t0 = bg_now_ms();
	int rc = qm_call(c, start, c->h->s->timeouts.qm * 1000, &res, why, sizeof(why));

	step_done(c, "ha-restore", rc == BG_OK, t0, "%s",
		  rc == BG_OK ? "HA requested state set back to started (qm start on an HA-managed VM)" : why);
	bg_run_result_clear(&res);
}

static void verb_cycle(run_ctx *c)
{
	cycle_body(c);
	if (c->pve.ha_managed == 1 && c->stop_requested && !c->start_requested)
		ha_restore(c);
}

/* ---- report ---------------------------------------------------------- */

static json_object *steps_json(const bg_pve_host_report *r)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr && i < r->nsteps; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(r->steps[i].name));
		json_object_object_add(o, "ok", json_object_new_boolean(r->steps[i].ok));
		json_object_object_add(o, "elapsed_ms", json_object_new_int64(r->steps[i].elapsed_ms));
		json_object_object_add(o, "detail", json_object_new_string(r->steps[i].detail));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *forensics_json(const bg_pve_host_report *r)
{
	json_object *o;

	if (!r->have_forensics)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "id", str_or_null(r->f_id));
	json_object_object_add(o, "verdict", str_or_null(r->f_verdict));
	json_object_object_add(o, "recommended_verb", str_or_null(r->f_recommended));
	json_object_object_add(o, "evidence", str_or_null(r->f_evidence));
	json_object_object_add(o, "path", str_or_null(r->f_path));
	json_object_object_add(o, "reused", json_object_new_boolean(r->f_reused));
	/* false: sections still running, added to the bundle in `path` when
	 * they end (the forensics verb's background completion) */
	json_object_object_add(o, "complete", json_object_new_boolean(r->pending_f == NULL));
	return o;
}

static json_object *lock_json(const bg_pve_host_report *r)
{
	json_object *o;

	if (!r->pve_read || !r->pve.lock[0])
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(r->pve.lock));
	json_object_object_add(o, "meaning", json_object_new_string(bg_pve_lock_meaning(r->pve.lock)));
	json_object_object_add(o, "check", json_object_new_string(bg_pve_lock_check(r->pve.lock)));
	json_object_object_add(o, "clearable", json_object_new_boolean(bg_pve_lock_clearable(&r->pve)));
	json_object_object_add(o, "vzdump_task", str_or_null(r->pve.vzdump_alive == 1 ? r->pve.vzdump_task : NULL));
	return o;
}

static json_object *ha_json(const bg_pve_host_report *r)
{
	json_object *o;

	if (!r->pve_read)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "managed", r->pve.ha_managed < 0 ? NULL : json_object_new_boolean(r->pve.ha_managed));
	json_object_object_add(o, "state", str_or_null(r->pve.ha_managed == 1 ? r->pve.ha_state : NULL));
	return o;
}

static json_object *versions_json(const bg_pve_host_report *r)
{
	json_object *o;

	if (strcmp(r->verb, "status") != 0)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "proxmox", str_or_null(r->pve_version[0] ? r->pve_version : NULL));
	json_object_object_add(o, "qemu", str_or_null(r->qemu_version[0] ? r->qemu_version : NULL));
	return o;
}

static void build_json(bg_pve_host_report *r)
{
	json_object *o = json_object_new_object();
	char vmid[16];

	snprintf(vmid, sizeof(vmid), "%d", r->vmid);
	json_object_object_add(o, "verb", json_object_new_string(r->verb));
	json_object_object_add(o, "vmid", json_object_new_string(vmid));
	json_object_object_add(o, "ok", json_object_new_boolean(r->exit_code == 0));
	json_object_object_add(o, "status", str_or_null(r->status[0] ? r->status : NULL));
	json_object_object_add(o, "steps", steps_json(r));
	json_object_object_add(o, "forensics", forensics_json(r));
	json_object_object_add(o, "lock_read", json_object_new_boolean(r->pve_read && r->pve.config_read));
	json_object_object_add(o, "lock", lock_json(r));
	json_object_object_add(o, "ha", ha_json(r));
	json_object_object_add(o, "versions", versions_json(r));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(r->elapsed_ms));
	json_object_object_add(o, "exit_code", json_object_new_int(r->exit_code));
	json_object_object_add(o, "error", str_or_null(r->error));
	r->json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* The closing text of a mutating verb (or the status of any verb). */
static void finish_text(run_ctx *c, const bg_pve_verb *verb)
{
	bg_pve_host_report *r = c->r;

	if (verb->mutating) {
		if (r->have_forensics)
			bg_buf_printf(&r->text, "forensics: %s verdict %s%s%s%s\n", r->f_id ? r->f_id : "?",
				      r->f_verdict ? r->f_verdict : "unknown",
				      r->f_reused ? " (reused: taken seconds before, of the same QEMU process)" : "",
				      r->f_path ? " stored in " : "", r->f_path ? r->f_path : "");
		bg_buf_printf(&r->text, "%s: %s, status: %s (%.1f s)\n", r->verb, r->exit_code == 0 ? "done" : "FAILED",
			      r->status[0] ? r->status : "unknown", (double)r->elapsed_ms / 1000.0);
	}
	if (r->error && (verb->mutating || strcmp(r->verb, "status") != 0))
		bg_buf_printf(&r->text, "error: %s\n", r->error);
}

static void log_complete(run_ctx *c)
{
	bg_buf f = BG_BUF_INIT;
	const bg_pve_host_report *r = c->r;

	if (bg_buf_printf(&f, "ok=%d exit=%d status=%s elapsed_ms=%lld", r->exit_code == 0, r->exit_code,
			  r->status[0] ? r->status : "-", r->elapsed_ms) == BG_OK &&
	    (!r->f_id || bg_buf_printf(&f, " forensics=%s verdict=%s", r->f_id, r->f_verdict) == BG_OK) &&
	    (!r->error || put_quoted(&f, "error", r->error, strlen(r->error)) == BG_OK))
		bg_pve_host_log(c->h, r->exit_code == BG_PVE_EXIT_ERROR ? "error" : "complete", c->verb, f.data);
	bg_buf_free(&f);
}

static void verb_forensics(run_ctx *c)
{
	read_pve_state(c);
	if (take_forensics(c, 1) != BG_OK)
		set_error(c, BG_PVE_EXIT_ERROR, "forensics could not be taken: %s", bg_error_last()->message);
}

/* How much longer than lock_wait a verb waits for a forensics that has
 * answered and only completes its bundle: its qm sections' own limit, and
 * the agent ping after qm config. */
static int completing_wait_ms(const bg_pve_settings *s)
{
	return s->timeouts.qm * 1000 + 3000;
}

static void run_mutating(run_ctx *c, const bg_pve_verb *verb)
{
	bg_vm_lock lock;
	const bg_pve_settings *s = c->h->s;
	int64_t t0 = bg_now_ms();
	int rc = bg_host_ensure_dir(s->paths.lock_dir, "[paths] lock_dir");

	if (rc == BG_OK)
		rc = bg_vm_lock_acquire_ex(&lock, s->paths.lock_dir, s->vmid, verb->name, c->h->client,
					   s->timeouts.lock_wait * 1000, completing_wait_ms(s));

	if (rc != BG_OK) {
		set_error(c, rc == BG_EBUSY ? BG_PVE_EXIT_BUSY : BG_PVE_EXIT_ERROR, "%s", bg_error_last()->message);
		if (rc == BG_EBUSY)
			bg_pve_host_log(c->h, "busy", c->verb, NULL);
		step_done(c, "lock", 0, t0, "%s", c->r->error ? c->r->error : "");
		return;
	}
	step_done(c, "lock", 1, t0, "%s", lock.path);
	read_pve_state(c);
	(void)take_forensics(c, 0); /* the evidence first; a failed bundle never blocks recovery */
	if (ha_busy_refusal(c)) {
		forensics_settle(c);
		bg_vm_lock_release(&lock);
		return;
	}
	if (out_of_time(c, verb->name))
		; /* recorded: the lock is released below */
	else if (strcmp(verb->name, "cycle") == 0)
		verb_cycle(c);
	else if (strcmp(verb->name, "start") == 0)
		verb_start(c);
	else if (strcmp(verb->name, "stop") == 0)
		verb_stop(c);
	else if (strcmp(verb->name, "reset") == 0)
		verb_reset(c);
	forensics_settle(c);
	bg_vm_lock_release(&lock);
}

/* The forensics verb: one at a time per VM (a bundle samples QMP, the
 * agent and the block counters, which one client at a time must do, and a
 * flood of forensics requests must not pile up). It takes the VM lock
 * that the mutating verbs take for their own forensics: the next waits up
 * to lock_wait, then is busy (exit 3). */
static void run_forensics_locked(run_ctx *c)
{
	const bg_pve_settings *s = c->h->s;
	bg_vm_lock lock;
	int rc = bg_host_ensure_dir(s->paths.lock_dir, "[paths] lock_dir");

	if (rc == BG_OK)
		rc = bg_vm_lock_acquire_ex(&lock, s->paths.lock_dir, s->vmid, "forensics", c->h->client,
					   s->timeouts.lock_wait * 1000, completing_wait_ms(s));
	if (rc != BG_OK) {
		set_error(c, rc == BG_EBUSY ? BG_PVE_EXIT_BUSY : BG_PVE_EXIT_ERROR, "%s", bg_error_last()->message);
		if (rc == BG_EBUSY)
			bg_pve_host_log(c->h, "busy", c->verb, NULL);
		bg_buf_printf(&c->r->text, "%s\n", c->r->error ? c->r->error : "");
		return;
	}
	verb_forensics(c);
	if (c->f_pending) {
		/* the verdict is out; the bundle ends under the same lock, after
		 * the caller has answered (bg_pve_host_report_complete) */
		c->r->pending_host = c->h;
		c->r->pending_f = c->f_pending;
		c->r->pending_lock = lock;
		c->f_pending = NULL;
		bg_vm_lock_relabel(&c->r->pending_lock, BG_VM_LOCK_COMPLETING, c->h->client);
		return;
	}
	bg_vm_lock_release(&lock);
}

/* The text report goes to a terminal: no raw control byte in it. */
static void terminal_safe_text(bg_pve_host_report *r)
{
	bg_buf safe = BG_BUF_INIT;

	if (!r->text.data)
		return;
	if (escape_for_terminal(&safe, r->text.data, r->text.len, 1) == BG_OK) {
		bg_buf_free(&r->text);
		r->text = safe;
	} else {
		bg_buf_free(&safe);
	}
}

static int exit_status(int exit_code)
{
	switch (exit_code) {
	case BG_PVE_EXIT_OK: return BG_OK;
	case BG_PVE_EXIT_BUSY: return bg_error_set(BG_EBUSY, "the VM lock is held by another verb");
	case BG_PVE_EXIT_FAILED: return bg_error_set(BG_EFAILED, "the verb failed");
	default: return bg_error_set(BG_ERROR, "the verb could not run");
	}
}

static void run_ctx_init(run_ctx *c, bg_pve_host *h, bg_pve_host_report *r, const char *verb)
{
	memset(c, 0, sizeof(*c));
	c->h = h;
	c->r = r;
	c->verb = verb;
	c->qmp_answered = 1;
	c->deadline = bg_deadline_in(h->deadline_ms > 0 ? h->deadline_ms : verb_budget_ms(h->s));
	snprintf(c->pidfile, sizeof(c->pidfile), "%s/%d.pid", h->s->paths.run_dir, h->s->vmid);
	snprintf(c->qmp_path, sizeof(c->qmp_path), "%s/%d.qmp", h->s->paths.run_dir, h->s->vmid);
}

int bg_pve_host_run(bg_pve_host_report **out, bg_pve_host *h, const bg_pve_request *req)
{
	bg_pve_host_report *r;
	int64_t t0 = bg_now_ms();
	run_ctx c;

	*out = NULL;
	if (!h || !req || !req->verb)
		return bg_error_set(BG_EINVAL, "bg_pve_host_run: no request");
	r = calloc(1, sizeof(*r));
	if (!r)
		return bg_error_oom();
	r->verb = req->verb->name;
	r->vmid = h->s->vmid;
	run_ctx_init(&c, h, r, req->verb->name);
	bg_pve_host_log(h, "request", r->verb, req->json ? "json=1" : "json=0");
	if (req->verb->mutating)
		run_mutating(&c, req->verb);
	else if (strcmp(r->verb, "status") == 0) {
		verb_status(&c);
		status_proxmox(&c);
	} else
		run_forensics_locked(&c);
	if (req->verb->mutating && r->exit_code == BG_PVE_EXIT_OK && bg_deadline_expired(c.deadline))
		(void)out_of_time(&c, "the verification");
	r->elapsed_ms = bg_now_ms() - t0;
	r->pve = c.pve;
	r->pve_read = c.pve_read;
	finish_text(&c, req->verb);
	terminal_safe_text(r);
	log_complete(&c);
	build_json(r);
	*out = r;
	return exit_status(r->exit_code);
}

int bg_pve_host_report_exit_code(const bg_pve_host_report *r)
{
	return r ? r->exit_code : BG_PVE_EXIT_ERROR;
}

const char *bg_pve_host_report_text(const bg_pve_host_report *r)
{
	return r && r->text.data ? r->text.data : "";
}

const char *bg_pve_host_report_json(const bg_pve_host_report *r)
{
	return r && r->json ? r->json : "{}";
}

const char *bg_pve_host_report_error(const bg_pve_host_report *r)
{
	return r ? r->error : NULL;
}

int bg_pve_host_report_pending(const bg_pve_host_report *r)
{
	return r && r->pending_f;
}

void bg_pve_host_report_complete(bg_pve_host_report *r)
{
	int64_t t0 = bg_now_ms();
	char fields[256];

	if (!r || !r->pending_f)
		return;
	bg_forensics_finish(r->pending_f);
	snprintf(fields, sizeof(fields), "forensics=%s elapsed_ms=%lld", r->f_id ? r->f_id : "-",
		 (long long)(bg_now_ms() - t0));
	bg_pve_host_log(r->pending_host, "forensics-end", r->verb, fields);
	bg_forensics_free(r->pending_f);
	r->pending_f = NULL;
	bg_vm_lock_release(&r->pending_lock);
}

void bg_pve_host_report_free(bg_pve_host_report *r)
{
	if (!r)
		return;
	bg_pve_host_report_complete(r); /* never leave a section's thread or the lock behind */
	bg_pve_steps_free(r->steps, r->nsteps);
	free(r->f_id);
	free(r->f_verdict);
	free(r->f_recommended);
	free(r->f_evidence);
	free(r->f_path);
	free(r->error);
	bg_buf_free(&r->text);
	free(r->json);
	free(r);
}
