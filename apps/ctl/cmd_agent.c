/*
 * `ask PROMPT` and `chat`: agent turns on the terminal.
 *
 * The turn runs detached in the library (bg_agent_start); this thread
 * follows the session's events like any other front end would, renders
 * them, asks approvals on /dev/tty and answers with bg_agent_decide().
 * Ctrl-C cancels the turn; a second Ctrl-C exits at once.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUTPUT_LINES 4

static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	if (++interrupts >= 2) {
		static const char msg[] = "\ninterrupted\n";

		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do on the way out */
		}
		_exit(130);
	}
}

/* No SA_RESTART: a read of /dev/tty returns EINTR on Ctrl-C. */
static void catch_sigint(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

typedef struct follow {
	ctl_ctx *ctx;
	bg_agent *agent; /* NULL through --server */
	char sid[64];    /* the server's session, through --server */
	const char *who;
	long long last;
	int done, in_text, cancel_sent;
	char last_char; /* of the text printed so far */
	int rc;         /* the turn's outcome as an exit status */
} follow;

static char *field(const char *json, size_t len, const char *path)
{
	char *v = NULL;

	if (bg_event_field(&v, json, len, path) != BG_OK)
		return NULL;
	return v;
}

/* Text from outside (the model's words, the devvm's output) on the
 * terminal: no control byte but newline and tab, no C1 control in its
 * UTF-8 form (U+0080..U+009F), so nothing can move the cursor, retitle
 * the window or talk to the terminal; each such byte shows as '?'. */
static void put_safe_to(FILE *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
			fputc('?', out);
			i++;
		} else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
			fputc('?', out);
		} else {
			fputc((int)c, out);
		}
	}
}

static void put_safe(const char *s, size_t n)
{
	put_safe_to(stdout, s, n);
}

static void end_text(follow *f)
{
	if (f->in_text && f->last_char != '\n')
		fputc('\n', stdout);
	f->in_text = 0;
}

static void printable_only(char *s);

static void show_tool(follow *f, const char *json, size_t len)
{
	char *name = field(json, len, "name");
	char *cmd = field(json, len, "input.command");
	char *verb = field(json, len, "input.verb");
	char *action = field(json, len, "input.action"), *target = field(json, len, "input.target");

	end_text(f);
	if (name && strcmp(name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0 && action && target) {
		/* a remedy: the model's (or the guest's) words, shown harmless */
		printable_only(action);
		printable_only(target);
		printf("▸ devvm_remedy: %s %s\n", action, target);
	} else {
		const char *what = cmd ? cmd : verb ? verb : "";

		fputs("▸ ", stdout);
		put_safe(name ? name : "?", strlen(name ? name : "?"));
		fputs(cmd || verb ? ": " : "", stdout);
		put_safe(what, strlen(what));
		fputc('\n', stdout);
	}
	bg_free(name);
	bg_free(cmd);
	bg_free(verb);
	bg_free(action);
	bg_free(target);
}

/* The status line and the first lines of the output, indented. */
static void show_result(follow *f, const char *json, size_t len)
{
	char *ok = field(json, len, "ok"), *code = field(json, len, "exit_code");
	char *ms = field(json, len, "elapsed_ms"), *out = field(json, len, "output");
	const char *p = out ? out : "";
	int lines = 0;

	end_text(f);
	printf("  %s exit %s, %s ms\n", ok && strcmp(ok, "true") == 0 ? "✓" : "✗", code ? code : "?", ms ? ms : "?");
	while (*p && lines < OUTPUT_LINES) {
		size_t n = strcspn(p, "\n");

		if (n) {
			fputs("  │ ", stdout);
			put_safe(p, n > 160 ? 160 : n);
			fputc('\n', stdout);
			lines++;
		}
		p += n + (p[n] == '\n');
	}
	if (*p) {
		int more = 1;

		for (; *p; p++)
			more += *p == '\n' && p[1];
		printf("  │ … %d more line%s\n", more, more == 1 ? "" : "s");
	}
	bg_free(ok);
	bg_free(code);
	bg_free(ms);
	bg_free(out);
}

/* Ask on the terminal itself, never on stdin (which may be a pipe), for at
 * most the library's approval timeout (the web's too): 1 yes, 0 no (an
 * answer, EOF, Ctrl-C), -1 no terminal, -2 no answer in time. */
static void remote_decide(follow *f, const char *nonce, const char *verb, int yes);

static int ask_tty(const char *question)
{
	char answer[16];
	struct pollfd p;
	ssize_t n;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, question, strlen(question)) < 0) {
		close(fd);
		return -1;
	}
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, BG_AGENT_APPROVAL_TIMEOUT_S * 1000) == 0) {
		close(fd);
		return -2;
	}
	n = (p.revents & POLLIN) ? read(fd, answer, sizeof(answer) - 1) : 0;
	close(fd);
	if (n <= 0)
		return 0; /* EOF or Ctrl-C: no */
	answer[n] = '\0';
	return answer[0] == 'y' || answer[0] == 'Y';
}

/* What is shown in the question comes from the session: nothing but
 * printable ASCII reaches the terminal. */
static void printable_only(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* The decision names the request's nonce and verb, as shown: a late answer
 * never approves a later request. */
static void approval(follow *f, const char *json, size_t len)
{
	char *nonce = field(json, len, "nonce"), *verb = field(json, len, "verb");
	char *name = field(json, len, "name"), *desc = field(json, len, "description");
	char question[1536], what[1280], by[160];
	int yes;

	end_text(f);
	/* A remedy on the devvm says what it will do (its target passed the
	 * library's checks: printable ASCII); a verb is named as such. */
	if (name && strcmp(name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0 && desc)
		snprintf(what, sizeof(what), "%s", desc);
	else
		snprintf(what, sizeof(what), "run `pve %s` on the VM", verb ? verb : "?");
	printable_only(what);
	snprintf(question, sizeof(question), "The agent wants to %s. Allow? [y/N] ", what);
	yes = ask_tty(question);
	if (yes == -1) {
		fprintf(stderr, "%s: approval to %s denied: no terminal to ask on\n", f->ctx->prog, what);
		snprintf(by, sizeof(by), "%s (no terminal)", f->who);
	} else if (yes == -2) {
		fprintf(stderr, "\n%s: approval to %s denied: no answer within %d s\n", f->ctx->prog, what,
			BG_AGENT_APPROVAL_TIMEOUT_S);
		snprintf(by, sizeof(by), "%s (no answer)", f->who);
	} else {
		snprintf(by, sizeof(by), "%s", f->who);
	}
	if (nonce && verb && f->agent) {
		if (bg_agent_decide(f->agent, nonce, verb, yes > 0, by) != BG_OK && yes > 0)
			fprintf(stderr, "%s: too late: %s\n", f->ctx->prog, bg_error_last()->message);
	} else if (nonce && verb) {
		remote_decide(f, nonce, verb, yes > 0);
	}
	bg_free(nonce);
	bg_free(verb);
	bg_free(name);
	bg_free(desc);
}

static void show_other(follow *f, bg_event_kind kind, const char *json, size_t len)
{
	char *v;

	switch (kind) {
	case BG_EVENT_APPROVAL:
		v = field(json, len, "approved");
		end_text(f);
		if (v && strcmp(v, "true") != 0) {
			char *by = field(json, len, "by");

			fputs("  ✗ not approved (", stdout);
			put_safe(by ? by : "?", strlen(by ? by : "?"));
			fputs(")\n", stdout);
			bg_free(by);
		}
		bg_free(v);
		break;
	case BG_EVENT_ERROR:
		v = field(json, len, "error");
		end_text(f);
		fprintf(stderr, "%s: ", f->ctx->prog);
		put_safe_to(stderr, v ? v : "error", strlen(v ? v : "error"));
		fputc('\n', stderr);
		bg_free(v);
		break;
	case BG_EVENT_CANCELLED:
		end_text(f);
		fprintf(stderr, "%s: turn cancelled\n", f->ctx->prog);
		break;
	default: break;
	}
}

static void turn_end(follow *f, const char *json, size_t len)
{
	char *reason = field(json, len, "stop_reason");

	end_text(f);
	f->done = 1;
	if (!reason || strcmp(reason, "end_turn") == 0)
		f->rc = CTL_EXIT_OK;
	else
		f->rc = CTL_EXIT_FAILED;
	bg_free(reason);
}

static int on_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	follow *f = payload;
	char *text;

	f->last = id;
	if (f->ctx->json) {
		fwrite(json, 1, len, stdout);
		fputc('\n', stdout);
	}
	if (kind == BG_EVENT_APPROVAL_REQUIRED)
		approval(f, json, len);
	if (kind == BG_EVENT_TURN_END)
		turn_end(f, json, len);
	if (f->ctx->json)
		goto out;
	if (kind == BG_EVENT_TEXT && (text = field(json, len, "text")) != NULL) {
		put_safe(text, strlen(text));
		f->in_text = 1;
		if (*text)
			f->last_char = text[strlen(text) - 1];
		bg_free(text);
	} else if (kind == BG_EVENT_TOOL) {
		show_tool(f, json, len);
	} else if (kind == BG_EVENT_TOOL_RESULT) {
		show_result(f, json, len);
	} else {
		show_other(f, kind, json, len);
	}
out:
	fflush(stdout);
	return f->done ? -1 : 0;
}

/* Follow the running turn to its turn_end, cancelling on Ctrl-C. */
static int follow_turn(follow *f)
{
	f->done = 0;
	f->cancel_sent = 0;
	f->rc = CTL_EXIT_FAILED;
	while (!f->done) {
		int n = bg_session_read(bg_agent_session(f->agent), f->last, 200, on_event, f);

		if (n < 0 && !f->done)
			break;
		if (interrupts && !f->cancel_sent) {
			end_text(f);
			fprintf(stderr, "%s: cancelling the turn (Ctrl-C again to quit)\n", f->ctx->prog);
			bg_agent_cancel(f->agent);
			f->cancel_sent = 1;
		}
	}
	bg_agent_wait(f->agent);
	interrupts = 0;
	return f->rc;
}

static const char *who_am_i(char *buf, size_t n)
{
	struct passwd *pw = getpwuid(getuid());

	snprintf(buf, n, "cli:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
	return buf;
}

typedef struct agent_env {
	bg_secret *key;
	bg_audit *audit;
	bg_session_store *store;
	bg_session *session;
	bg_agent *agent;
} agent_env;

static void env_free(agent_env *e)
{
	bg_agent_free(e->agent);
	bg_session_release(e->session);
	bg_session_store_free(e->store);
	bg_audit_free(e->audit);
	bg_secret_free(e->key);
}

/* The audit log goes where the web's goes when that is writable here,
 * else it stays in memory (a workstation has no /var/log/breakglass). */
static void open_audit(agent_env *e, const bg_config *cfg)
{
	const char *path = bg_app_conf(cfg, "web", "audit_log");

	if (*path && bg_audit_open(&e->audit, path, 0) == BG_OK)
		return;
	bg_audit_open(&e->audit, NULL, 0);
}

static int env_open(agent_env *e, ctl_ctx *ctx)
{
	bg_agent_options opts = BG_AGENT_OPTIONS_INIT;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = bg_config_validate(ctx->cfg)) != BG_OK)
		return ctl_fail(ctx, rc, "configuration");
	rc = bg_ssh_key_load(&e->key, NULL, ctx->cfg, NULL, 0);
	if (rc != BG_OK && rc != BG_ENOTFOUND)
		return ctl_fail(ctx, rc, "reading the SSH key");
	open_audit(e, ctx->cfg);
	opts.audit = e->audit;
	opts.ssh_key = e->key;
	rc = bg_session_store_open(&e->store, NULL, 1);
	if (rc == BG_OK)
		rc = bg_session_create(&e->session, e->store);
	if (rc == BG_OK)
		rc = bg_agent_new(&e->agent, ctx->cfg, e->session, &opts);
	if (rc != BG_OK) {
		env_free(e);
		return ctl_fail(ctx, rc, "starting the agent");
	}
	return CTL_EXIT_OK;
}

static int one_turn(ctl_ctx *ctx, agent_env *e, follow *f, const char *prompt)
{
	int rc = bg_agent_start(e->agent, prompt, f->who);

	if (rc != BG_OK)
		return ctl_fail(ctx, rc, "starting the turn");
	return follow_turn(f);
}

/* Follow a new agent's events from the start, as `who`, with Ctrl-C
 * cancelling the turn. */
static void follow_start(follow *f, ctl_ctx *ctx, bg_agent *agent, char *who, size_t who_len)
{
	memset(f, 0, sizeof(*f));
	f->ctx = ctx;
	f->agent = agent;
	f->who = who_am_i(who, who_len);
	f->last = -1;
	catch_sigint();
}

/* ---- through breakglass-web (--server) ----------------------------------- */

/* A JSON object {"KEY": "VALUE"...} from pairs; the caller frees. */
static char *json_pairs(const char *k1, const char *v1, const char *k2, const char *raw2)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	if (!m)
		return NULL;
	fputc('{', m);
	ctl_json_str(m, k1);
	fputc(':', m);
	ctl_json_str(m, v1);
	if (k2) {
		fputc(',', m);
		ctl_json_str(m, k2);
		fprintf(m, ":%s", raw2);
	}
	fputc('}', m);
	fclose(m);
	return buf;
}

static void remote_post(follow *f, const char *what, const char *body)
{
	char path[160], *resp = NULL;
	int status = 0;

	snprintf(path, sizeof(path), "/api/session/%s/%s", f->sid, what);
	if (ctl_server_call(f->ctx, "POST", path, body, 30, &status, &resp) == 0 && status != 200)
		ctl_server_error(f->ctx, what, status, resp);
	free(resp);
}

static void remote_decide(follow *f, const char *nonce, const char *verb, int yes)
{
	char *body = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&body, &n);

	/* the request as shown: its nonce and verb, never the model's id */
	if (!m)
		return;
	fputs("{\"nonce\":", m);
	ctl_json_str(m, nonce);
	fputs(",\"verb\":", m);
	ctl_json_str(m, verb);
	fprintf(m, ",\"approved\":%s}", yes ? "true" : "false");
	fclose(m);
	remote_post(f, "approve", body);
	free(body);
}

static int remote_session(ctl_ctx *ctx, follow *f)
{
	char *resp = NULL, *sid = NULL;
	int status = 0, rc;

	if ((rc = ctl_server_call(ctx, "POST", "/api/session", "{}", 30, &status, &resp)) != 0)
		return rc;
	if (status != 200 || bg_event_field(&sid, resp, strlen(resp), "session_id") != BG_OK) {
		ctl_server_error(ctx, "new session", status, resp);
		free(resp);
		return CTL_EXIT_FAILED;
	}
	snprintf(f->sid, sizeof(f->sid), "%s", sid);
	free(sid);
	free(resp);
	return CTL_EXIT_OK;
}

/* Attach to the session's stream (everything up to now is replayed and
 * skipped by id), send the prompt, render the events to turn_end. */
static int remote_turn(follow *f, const char *prompt)
{
	char path[160], err[300], *body, *resp = NULL, *event, *data, *kind;
	long long id;
	ctl_sse s;
	int status = 0, rc;

	snprintf(path, sizeof(path), "/api/session/%s/stream", f->sid);
	if (ctl_sse_open(&s, f->ctx->server, path, &status, err, sizeof(err)) != 0 || status != 200) {
		fprintf(stderr, "%s: --server: %s\n", f->ctx->prog, status ? "the event stream was refused" : err);
		if (status)
			ctl_sse_close(&s);
		return status == 401 ? CTL_EXIT_FAILED : CTL_EXIT_UNREACHABLE;
	}
	body = json_pairs("prompt", prompt, NULL, NULL);
	snprintf(path, sizeof(path), "/api/session/%s/prompt", f->sid);
	rc = body ? ctl_server_call(f->ctx, "POST", path, body, 30, &status, &resp) : CTL_EXIT_FAILED;
	free(body);
	if (rc == 0 && status != 202) {
		ctl_server_error(f->ctx, "prompt", status, resp);
		rc = CTL_EXIT_FAILED;
	}
	free(resp);
	f->done = 0;
	f->cancel_sent = 0;
	f->rc = CTL_EXIT_FAILED;
	while (rc == 0 && !f->done) {
		int n = ctl_sse_next(&s, 200, &event, &data, &id);

		if (n < 0) {
			fprintf(stderr, "%s: --server: the event stream ended before the turn did\n", f->ctx->prog);
			f->rc = CTL_EXIT_UNREACHABLE;
			break;
		}
		if (n == 1 && data && id > f->last && event && !*event &&
		    bg_event_field(&kind, data, strlen(data), "kind") == BG_OK) {
			on_event(id, (bg_event_kind)bg_event_kind_from_name(kind), data, strlen(data), f);
			free(kind);
		} else if (n == 1 && event && strcmp(event, "shutdown") == 0) {
			fprintf(stderr, "%s: --server: the server is stopping; the turn was cancelled\n", f->ctx->prog);
		}
		free(event);
		free(data);
		if (interrupts && !f->cancel_sent) {
			end_text(f);
			fprintf(stderr, "%s: cancelling the turn (Ctrl-C again to quit)\n", f->ctx->prog);
			remote_post(f, "cancel", "{}");
			f->cancel_sent = 1;
		}
	}
	ctl_sse_close(&s);
	interrupts = 0;
	return rc ? rc : f->rc;
}

static int run_ask(ctl_ctx *ctx, int argc, char **argv)
{
	agent_env e;
	follow f;
	char who[96];
	int rc;

	if (argc != 2 || !*argv[1])
		return ctl_usage_error(ctx, "ask: one PROMPT argument is needed (quote it)");
	if (ctx->server) {
		follow_start(&f, ctx, NULL, who, sizeof(who));
		rc = remote_session(ctx, &f);
		return rc ? rc : remote_turn(&f, argv[1]);
	}
	rc = env_open(&e, ctx);
	if (rc != CTL_EXIT_OK)
		return rc;
	follow_start(&f, ctx, e.agent, who, sizeof(who));
	rc = one_turn(ctx, &e, &f, argv[1]);
	env_free(&e);
	return rc;
}

static char *read_prompt(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (isatty(STDIN_FILENO)) {
		fputs("\nyou> ", stdout);
		fflush(stdout);
	}
	n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int run_chat(ctl_ctx *ctx, int argc, char **argv)
{
	agent_env e;
	follow f;
	char who[96], *line;
	int rc = CTL_EXIT_OK;

	(void)argv;
	if (argc > 1)
		return ctl_usage_error(ctx, "chat: no arguments (type prompts, /quit or Ctrl-D to leave)");
	memset(&e, 0, sizeof(e));
	if (ctx->server) {
		follow_start(&f, ctx, NULL, who, sizeof(who));
		if ((rc = remote_session(ctx, &f)) != CTL_EXIT_OK)
			return rc;
	} else {
		rc = env_open(&e, ctx);
		if (rc != CTL_EXIT_OK)
			return rc;
		follow_start(&f, ctx, e.agent, who, sizeof(who));
	}
	if (isatty(STDIN_FILENO) && !ctx->json)
		printf("breakglass chat — session %s. Ctrl-C cancels a turn, /quit or Ctrl-D leaves.\n",
		       ctx->server ? f.sid : bg_session_id(bg_agent_session(e.agent)));
	while ((line = read_prompt()) != NULL) {
		if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0) {
			free(line);
			break;
		}
		if (*line)
			rc = ctx->server ? remote_turn(&f, line) : one_turn(ctx, &e, &f, line);
		free(line);
	}
	if (!ctx->server)
		env_free(&e);
	return rc;
}

const ctl_command ctl_cmd_ask = {"ask", "PROMPT", "one agent turn, streamed to the terminal", CTL_CONFIG_LOOSE,
				 run_ask};
const ctl_command ctl_cmd_chat = {"chat", "", "an interactive agent session", CTL_CONFIG_LOOSE, run_chat};
