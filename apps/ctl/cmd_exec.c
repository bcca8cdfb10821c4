/* `exec [--timeout S] -- CMD...`: one command on the devvm, its output
 * streamed as it comes, its exit status passed through. The words after
 * `--` are joined by spaces and run by the devvm's shell, as ssh does. */
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TIMEOUT_S 86400

/* libssh2 cannot signal the remote process: on Ctrl-C the command goes on
 * until the `timeout` it runs under on the devvm. Say so on the way out. */
static void on_interrupt(int sig)
{
	static const char msg[] = "\nbreakglassctl: interrupted; the command may go on running on the devvm "
				  "until its --timeout\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)n;
	_exit(128 + sig);
}

static int stream_out(bg_ssh_stream stream, const char *data, size_t len, void *payload)
{
	FILE *f = stream == BG_SSH_STDERR ? stderr : stdout;

	(void)payload;
	fwrite(data, 1, len, f);
	fflush(f);
	return 0;
}

/* 128 + the signal's number, as a shell reports a command killed by it. */
static int signal_status(const char *name)
{
	static const struct {
		const char *name;
		int num;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ABRT", SIGABRT}, {"KILL", SIGKILL},
		    {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"BUS", SIGBUS}};
	size_t i;

	for (i = 0; name && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(name, sigs[i].name) == 0)
			return 128 + sigs[i].num;
	return CTL_EXIT_FAILED;
}

static void print_json(const bg_ssh_result *res, const char *command, int rc)
{
	fputs("{\"command\":", stdout);
	ctl_json_str(stdout, command);
	printf(",\"exit_code\":%d,\"signal\":", res->exit_code);
	ctl_json_str(stdout, res->exit_signal);
	printf(",\"timed_out\":%s,\"stdout\":", res->timed_out ? "true" : "false");
	ctl_json_string(stdout, res->out ? res->out : "", res->out ? res->out_len : 0);
	printf(",\"stdout_dropped\":%zu,\"stderr\":", res->out_dropped);
	ctl_json_string(stdout, res->err ? res->err : "", res->err ? res->err_len : 0);
	printf(",\"stderr_dropped\":%zu,\"elapsed_ms\":%lld", res->err_dropped, res->elapsed_ms);
	if (rc != BG_OK) {
		fputs(",\"error\":", stdout);
		ctl_json_str(stdout, bg_error_last()->message);
	}
	fputs("}\n", stdout);
}

typedef struct exec_args {
	int timeout_s; /* 0: [devvm] command_timeout */
	char *command; /* joined words, malloc'd */
} exec_args;

static int parse_timeout(const ctl_ctx *ctx, const char *text, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = text ? strtol(text, &end, 10) : 0;
	if (!text || errno || end == text || *end || v < 1 || v > MAX_TIMEOUT_S)
		return ctl_usage_error(ctx, "exec: --timeout wants whole seconds from 1 to %d, not '%s'", MAX_TIMEOUT_S,
				       text ? text : "");
	*out = (int)v;
	return 0;
}

static char *join_words(int argc, char **argv)
{
	size_t len = 1, used = 0, n;
	int i;
	char *s;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (!(s = calloc(1, len)))
		return NULL;
	for (i = 0; i < argc; i++) {
		if (i)
			s[used++] = ' ';
		n = strlen(argv[i]);
		memcpy(s + used, argv[i], n);
		used += n;
	}
	return s;
}

static int parse_args(const ctl_ctx *ctx, exec_args *a, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--timeout") == 0) {
			if (parse_timeout(ctx, i + 1 < argc ? argv[++i] : NULL, &a->timeout_s))
				return CTL_EXIT_USAGE;
		} else if (strncmp(argv[i], "--timeout=", 10) == 0) {
			if (parse_timeout(ctx, argv[i] + 10, &a->timeout_s))
				return CTL_EXIT_USAGE;
		} else {
			return ctl_usage_error(ctx, "exec: put the command after `--` (got '%s'): exec -- CMD...",
					       argv[i]);
		}
	}
	if (i >= argc)
		return ctl_usage_error(ctx, "exec: the command goes after `--`: exec [--timeout S] -- CMD...");
	if (i + 1 >= argc)
		return ctl_usage_error(ctx, "exec: no command after `--`");
	a->command = join_words(argc - i - 1, argv + i + 1);
	return a->command ? 0 : CTL_EXIT_FAILED;
}

static int run_exec(ctl_ctx *ctx, int argc, char **argv)
{
	exec_args a = {0, NULL};
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result res;
	bg_ssh *ssh = NULL;
	bg_secret *key = NULL;
	int rc, status;

	if ((rc = parse_args(ctx, &a, argc, argv)) != 0)
		return rc;
	if ((rc = bg_config_validate(ctx->cfg)) != BG_OK) {
		free(a.command);
		return ctl_fail(ctx, rc, "configuration");
	}
	if ((rc = ctl_open_target(&ssh, &key, ctx, "devvm")) != BG_OK) {
		free(a.command);
		return ctl_exit_for(rc);
	}
	opts.timeout_s = a.timeout_s ? a.timeout_s : bg_app_conf_int(ctx->cfg, "devvm", "command_timeout");
	opts.remote_timeout = 1;
	opts.on_output = ctx->json ? NULL : stream_out;
	memset(&res, 0, sizeof(res));
	signal(SIGINT, on_interrupt);
	rc = bg_ssh_exec(&res, ssh, a.command, &opts);
	if (ctx->json)
		print_json(&res, a.command, rc);
	if (rc == BG_OK && res.exit_code >= 0)
		status = res.exit_code;
	else if (rc == BG_OK && res.exit_signal)
		status = signal_status(res.exit_signal);
	else if (res.timed_out || (rc == BG_ETIMEOUT && bg_ssh_host_key_fingerprint(ssh)))
		status = 124; /* as timeout(1) */
	else
		status = rc == BG_OK ? CTL_EXIT_FAILED : ctl_exit_for(rc);
	if (rc != BG_OK)
		fprintf(stderr, "%s: exec on the devvm: %s\n", ctx->prog, bg_error_last()->message);
	else if (ctx->json && (res.out_dropped || res.err_dropped))
		fprintf(stderr, "%s: output over the cap: %zu bytes of stdout and %zu of stderr not kept\n", ctx->prog,
			res.out_dropped, res.err_dropped);
	bg_ssh_result_clear(&res);
	bg_ssh_free(ssh);
	bg_secret_free(key);
	free(a.command);
	return status;
}

const ctl_command ctl_cmd_exec = {"exec", "[--timeout S] -- CMD...",
				  "one command on the devvm (exit status = the remote one)", CTL_CONFIG_LOOSE,
				  run_exec};
