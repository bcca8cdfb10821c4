/*
 * breakglass-pve: the SSH forced command on the Proxmox host (docs/forced-command.md).
 *
 * It trusts nothing from the client but one short request, checked byte
 * for byte against the verb grammar before anything runs; the VMID, the
 * paths and the limits come from pve.conf, named on the admin's command
 * line, never from the environment.
 */
#include <breakglass.h>

#include "host/pve_host.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM   "breakglass-pve"
#define SAFE_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define INPUT_MAX 4096

typedef struct invocation {
	const char *config_path;
	char input[INPUT_MAX + 1];
	size_t input_len;
	int truncated; /* the request was longer than we keep: rejected anyway */
	char client[64];
} invocation;

/* Writes to a vanished client fail with EPIPE (SIGPIPE is caught): the
 * verb goes on regardless, so errors are deliberately dropped. */
static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void write_line(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
	if (!*s || s[strlen(s) - 1] != '\n')
		write_all(fd, "\n", 1);
}

static void usage(void)
{
	fputs("usage: " PROGRAM " [--config FILE] [VERB [--json]]\n"
	      "Under sshd (SSH_CONNECTION set) the request is SSH_ORIGINAL_COMMAND; otherwise\n"
	      "the words after the options. Default config: " BG_CONFIG_PVE_DEFAULT_PATH "\n",
	      stderr);
}

static void append_input(invocation *inv, const char *s, size_t n)
{
	size_t room = INPUT_MAX - inv->input_len;

	if (n > room) {
		n = room;
		inv->truncated = 1;
	}
	memcpy(inv->input + inv->input_len, s, n);
	inv->input_len += n;
	inv->input[inv->input_len] = '\0';
}

/* The client address is the first word of SSH_CONNECTION. */
static void set_client(invocation *inv, const char *conn)
{
	size_t n = strcspn(conn, " ");

	if (n >= sizeof(inv->client))
		n = sizeof(inv->client) - 1;
	memcpy(inv->client, conn, n);
	inv->client[n] = '\0';
}

/* Options first; under sshd the words on the command line are the admin's,
 * and the request is SSH_ORIGINAL_COMMAND alone (unset counts as empty). */
static int parse_invocation(invocation *inv, int argc, char **argv)
{
	const char *conn = getenv("SSH_CONNECTION");
	int i = 1;

	memset(inv, 0, sizeof(*inv));
	inv->config_path = BG_CONFIG_PVE_DEFAULT_PATH;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			inv->config_path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			inv->config_path = argv[i] + 9;
		else if (strcmp(argv[i], "--help") == 0 && !conn) {
			usage();
			exit(0);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			break;
	}
	if (conn) {
		const char *cmd = getenv("SSH_ORIGINAL_COMMAND");
		set_client(inv, conn);
		if (cmd)
			append_input(inv, cmd, strlen(cmd));
		return 0;
	}
	for (; i < argc; i++) {
		if (inv->input_len > 0)
			append_input(inv, " ", 1);
		append_input(inv, argv[i], strlen(argv[i]));
	}
	return 0;
}

/* Children (qm, and the QEMU that `qm start` leaves behind) get a fixed
 * PATH and nothing of what the SSH client sent. */
static void clean_environment(void)
{
	clearenv();
	setenv("PATH", SAFE_PATH, 1);
	setenv("LC_ALL", "C", 1);
}

/* A handler, not SIG_IGN: dispositions set to "ignore" survive exec and
 * would leak into qm and QEMU; caught ones are reset to default there. */
static void note_signal(int sig)
{
	(void)sig;
}

static void survive_hangup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = note_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

static void lib_log(bg_log_level level, const char *module, const char *message, void *payload)
{
	char line[1200];

	(void)payload;
	snprintf(line, sizeof(line), PROGRAM ": %s: %s: %s\n", bg_log_level_name(level), module, message);
	write_all(2, line, strlen(line));
}

static int progress_line(const char *line, void *payload)
{
	(void)payload;
	write_line(1, line);
	return 0;
}

static int load_config(bg_config **cfg, const char *path)
{
	if (bg_pve_host_check_config(path) != BG_OK || bg_config_load(cfg, BG_CONFIG_PVE, path) != BG_OK ||
	    bg_pve_check_allow(bg_config_get(*cfg, "verbs", "allow")) != BG_OK) {
		fprintf(stderr, PROGRAM ": %s\n", bg_error_last()->message);
		return -1;
	}
	return 0;
}

static int reject(bg_pve_host *h, const invocation *inv, const char *allow)
{
	char reason[512];

	snprintf(reason, sizeof(reason), "%s", inv->truncated ? "request too long" : bg_error_last()->message);
	bg_pve_host_log_rejected(h, inv->input, inv->input_len, reason);
	fprintf(stderr, PROGRAM ": rejected (%s); allowed: VERB or VERB --json, VERB one of: %s\n", reason, allow);
	return BG_PVE_EXIT_REJECTED;
}

/* The client's channel (our stdin, stdout and stderr) let go: sshd ends
 * the session when the process it waits for has exited and nothing holds
 * the channel any more. */
static void let_go_of_client(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		(void)dup2(null, 0);
		(void)dup2(null, 1);
		(void)dup2(null, 2);
		close(null);
	}
	(void)setsid();
}

/* `status_fd` >= 0: this is the child of run_forensics_answering_first(),
 * which waits there for the exit status. */
static int run(bg_pve_host *h, const bg_pve_request *req, int status_fd)
{
	bg_pve_host_report *report = NULL;
	int code;

	if (bg_pve_host_run(&report, h, req) != BG_OK && !report) {
		fprintf(stderr, PROGRAM ": %s\n", bg_error_last()->message);
		return BG_PVE_EXIT_ERROR;
	}
	write_line(1, req->json ? bg_pve_host_report_json(report) : bg_pve_host_report_text(report));
	code = bg_pve_host_report_exit_code(report);
	if (code != BG_PVE_EXIT_OK && bg_pve_host_report_error(report)) {
		char line[2100];
		snprintf(line, sizeof(line), PROGRAM ": %s\n", bg_pve_host_report_error(report));
		write_all(2, line, strlen(line));
	}
	if (status_fd >= 0) {
		unsigned char b = (unsigned char)code;
		write_all(status_fd, (const char *)&b, 1);
		close(status_fd);
		if (bg_pve_host_report_pending(report)) {
			survive_hangup();
			let_go_of_client();
		}
	}
	bg_pve_host_report_free(report); /* completes a bundle still completing, then releases the VM lock */
	return code;
}

/*
 * The forensics verb of a QEMU whose QMP is silent has its verdict well
 * within a second, but `qm status` waits out qm's own QMP timeout (3 s on
 * Proxmox) before its section can be written. sshd reports our exit
 * status only when the process it started exits, so the verb runs in a
 * child: it answers, hands its exit status up through a pipe, lets go of
 * the client's channel, and only then completes the bundle, holding the
 * VM lock until it has (a cycle asked meanwhile waits for it). This
 * process exits with that status as soon as it has it. Where no child can
 * be made, the verb runs here and completes before answering.
 */
static int run_forensics_answering_first(bg_pve_host *h, const bg_pve_request *req)
{
	unsigned char b;
	int p[2], st = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return run(h, req, -1);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return run(h, req, -1);
	}
	if (pid == 0) {
		close(p[0]);
		return run(h, req, p[1]); /* main frees and exits, as without the child */
	}
	close(p[1]);
	do
		n = read(p[0], &b, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1)
		return b;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	fprintf(stderr, PROGRAM ": the forensics process ended without an answer (%s %d)\n",
		WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	return BG_PVE_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	static invocation inv;
	bg_pve_host_options opts = BG_PVE_HOST_OPTIONS_INIT;
	bg_pve_host *h = NULL;
	bg_config *cfg = NULL;
	bg_pve_request req;
	int code, parsed;

	umask(027);
	parse_invocation(&inv, argc, argv);
	clean_environment();
	bg_log_set_handler(lib_log, BG_LOG_WARN, NULL);
	if (load_config(&cfg, inv.config_path) != 0)
		return BG_PVE_EXIT_ERROR;
	/* Parsing has no side effect; only then does anything else happen. */
	parsed = !inv.truncated &&
		 bg_pve_parse_request(&req, inv.input, inv.input_len, bg_config_get(cfg, "verbs", "allow")) == BG_OK;
	opts.config = cfg;
	opts.client = inv.client[0] ? inv.client : NULL;
	opts.use_syslog = 1;
	opts.progress = parsed && !req.json && req.verb->mutating ? progress_line : NULL;
	opts.background_completion = parsed && strcmp(req.verb->name, "forensics") == 0;
	if (bg_pve_host_new(&h, &opts) != BG_OK) {
		fprintf(stderr, PROGRAM ": %s\n", bg_error_last()->message);
		bg_config_free(cfg);
		return BG_PVE_EXIT_ERROR;
	}
	if (!parsed) {
		code = reject(h, &inv, bg_config_get(cfg, "verbs", "allow"));
	} else {
		if (req.verb->mutating)
			survive_hangup();
		if (opts.background_completion)
			code = run_forensics_answering_first(h, &req);
		else
			code = run(h, &req, -1);
	}
	bg_pve_host_free(h);
	bg_config_free(cfg);
	return code;
}
