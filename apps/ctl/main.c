/* breakglassctl: the CLI over libbreakglass (breakglassctl(1)). Global options,
 * configuration, then one command from the table below. */
#include "applog.h"
#include "ctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The commands, in the order the help lists them. Registering a command
 * is one line here: X(name) for a `const ctl_command ctl_cmd_name` defined
 * in its own cmd_*.c (CMake picks up every .c of this directory). `ask`
 * and `chat` come this way from cmd_agent.c. */
#define CTL_COMMANDS(X)    \
	X(pve)             \
	X(exec)            \
	X(triage)          \
	X(ask)             \
	X(chat)            \
	X(doctor)          \
	X(authorized_keys) \
	X(version)

#define CTL_DECLARE(n) extern const ctl_command ctl_cmd_##n;
CTL_COMMANDS(CTL_DECLARE)
#define CTL_ENTRY(n) &ctl_cmd_##n,
static const ctl_command *const commands[] = {CTL_COMMANDS(CTL_ENTRY)};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f, const char *prog)
{
	size_t i;

	fprintf(f, "usage: %s [--config FILE] [--json] [--server URL] [-v] COMMAND [ARGS]\n\ncommands:\n", prog);
	for (i = 0; i < NCOMMANDS; i++) {
		char head[160];
		snprintf(head, sizeof(head), "%s%s%s", commands[i]->name, commands[i]->args[0] ? " " : "",
			 commands[i]->args);
		if (strlen(head) > 28)
			fprintf(f, "  %s\n  %-28s %s\n", head, "", commands[i]->summary);
		else
			fprintf(f, "  %-28s %s\n", head, commands[i]->summary);
	}
	fputs("\noptions:\n"
	      "  --config FILE   configuration file (default " BG_CONFIG_CLIENT_DEFAULT_PATH ",\n"
	      "                  which may be missing); BREAKGLASS_<SECTION>_<KEY> variables override it\n"
	      "  --json          print one JSON document on stdout and nothing else\n"
	      "  --server URL    (or $BREAKGLASS_SERVER) pve, triage, ask and chat through a running\n"
	      "                  breakglass-web (http://HOST:PORT), with the bearer token from\n"
	      "                  $BREAKGLASS_TOKEN, the file $BREAKGLASS_TOKEN_FILE, or $API_BEARER_TOKEN\n"
	      "  -v, --verbose   log more on stderr (-vv: debug)\n"
	      "  -h, --help      this text\n"
	      "\nexit status: 0 done, 1 failed, 2 usage or configuration error, 255 could not reach\n"
	      "the target; `exec` passes the remote command's status through, `pve` breakglass-pve's.\n",
	      f);
}

static const char *prog_name = "breakglassctl";

int ctl_usage_error(const ctl_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", ctx ? ctx->prog : prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	print_usage(stderr, ctx ? ctx->prog : prog_name);
	return CTL_EXIT_USAGE;
}

static const ctl_command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

/* defaults < file < environment; validated for the commands that reach a
 * target, so `authorized-keys` works before the hosts are configured. */
static int load_config(ctl_ctx *ctx, ctl_config_need need)
{
	int rc;

	if (need == CTL_CONFIG_NONE)
		return BG_OK;
	if ((rc = bg_config_new(&ctx->cfg, BG_CONFIG_CLIENT)) != BG_OK)
		return rc;
	if (ctx->config_path)
		rc = bg_config_load_file(ctx->cfg, ctx->config_path, 0);
	else
		rc = bg_config_load_file(ctx->cfg, BG_CONFIG_CLIENT_DEFAULT_PATH, 1);
	if (rc == BG_OK)
		rc = bg_config_load_env(ctx->cfg, NULL);
	if (rc == BG_OK && need == CTL_CONFIG_FULL)
		rc = bg_config_validate(ctx->cfg);
	return rc;
}

typedef struct global_opts {
	int verbose;
	const char *server;
	int help;
} global_opts;

/* Options before the command; returns the index of the command word, or
 * -1 after a usage error. */
static int parse_globals(ctl_ctx *ctx, global_opts *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
		{"server", required_argument, NULL, 's'}, {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	/* "+": stop at the command, whose own options are its business */
	while ((c = getopt_long(argc, argv, "+c:jvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': ctx->config_path = optarg; break;
		case 'j': ctx->json = 1; break;
		case 's': g->server = optarg; break;
		case 'v': g->verbose++; break;
		case 'h': g->help = 1; break;
		default: ctl_usage_error(ctx, "unknown or incomplete option '%s'", argv[optind - 1]); return -1;
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	ctl_ctx ctx = {0};
	global_opts g = {0, NULL, 0};
	static ctl_http server;
	const ctl_command *cmd;
	int first, rc;

	ctx.prog = prog_name;
	ctx.progress = isatty(STDERR_FILENO);
	if ((first = parse_globals(&ctx, &g, argc, argv)) < 0)
		return CTL_EXIT_USAGE;
	bg_applog_init(prog_name, BG_APPLOG_TEXT,
		       g.verbose >= 2 ? BG_LOG_DEBUG : (g.verbose == 1 ? BG_LOG_INFO : BG_LOG_WARN));
	if (g.help) {
		print_usage(stdout, ctx.prog);
		return CTL_EXIT_OK;
	}
	if (first >= argc)
		return ctl_usage_error(&ctx, "no command given");
	if (!(cmd = find_command(argv[first])))
		return ctl_usage_error(&ctx, "unknown command '%s'", argv[first]);
	if (!g.server)
		g.server = getenv("BREAKGLASS_SERVER");
	if (g.server && *g.server) {
		char err[300];

		if (strcmp(cmd->name, "pve") != 0 && strcmp(cmd->name, "triage") != 0 &&
		    strcmp(cmd->name, "ask") != 0 && strcmp(cmd->name, "chat") != 0 &&
		    strcmp(cmd->name, "version") != 0)
			return ctl_usage_error(&ctx, "%s does not go through --server (pve, triage, ask and chat do)",
					       cmd->name);
		if (ctl_http_open(&server, g.server, err, sizeof(err)) != 0)
			return ctl_usage_error(&ctx, "%s", err);
		ctx.server = &server;
	}
	if ((rc = load_config(&ctx, cmd->config)) != BG_OK) {
		fprintf(stderr, "%s: configuration: %s\n", ctx.prog, bg_error_last()->message);
		bg_config_free(ctx.cfg);
		return CTL_EXIT_USAGE;
	}
	rc = cmd->run(&ctx, argc - first, argv + first);
	bg_config_free(ctx.cfg);
	return rc;
}
