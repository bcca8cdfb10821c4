/* Running qm (or any helper) without a shell, bounded in time and output.
 * The forced command runs as root on the Proxmox host: nothing of the
 * caller's environment, file descriptors or signal dispositions may leak
 * into the child, and nothing the child leaves behind may outlive us. */
#include "host/qm.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
/* After the program exits, members of its group that still hold the pipe
 * get this long to finish writing before they are killed. */
#define LINGER_MS 200
/* A SIGKILLed process normally goes within milliseconds; one stuck in
 * uninterruptible sleep never does, and we must not wait for it forever. */
#define REAP_MS 2000

void bg_run_result_clear(bg_run_result *r)
{
	if (!r)
		return;
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/* Only async-signal-safe calls between fork and exec. */
static void child_exec(const char *const *argv, int out_fd, int err_fd)
{
	static char *const envp[] = {(char *)RUN_PATH, (char *)"LANG=C", NULL};
	struct sigaction sa;
	sigset_t none;
	int null_fd, sig, e;

	setpgid(0, 0);
	/* breakglass-pve runs under umask 027; qm and the QEMU it starts get
	 * the 022 they have under Proxmox's own daemons */
	umask(022);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* ignored dispositions survive exec */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		goto fail;
	/* Every descriptor above stderr goes on exec, whatever the caller
	 * forgot to mark; err_fd is already close-on-exec. */
	if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
		long fd, max = sysconf(_SC_OPEN_MAX);
		for (fd = 3; fd < (max > 0 ? max : 1024); fd++)
			if (fd != err_fd)
				fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	execve(argv[0], (char *const *)argv, envp);
fail:
	e = errno;
	while (write(err_fd, &e, sizeof(e)) < 0 && errno == EINTR)
		;
	_exit(127);
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		return (int)fd;
	}
#else
	(void)pid;
#endif
	return -1;
}

/* Whether `pid` has exited, without reaping it: the group id stays ours
 * while the leader is a zombie, so a later killpg cannot hit a stranger. */
static int has_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		if (errno != EINTR)
			return 1;
	return si.si_pid == pid;
}

/* Reap `pid`, giving up after REAP_MS (a process in state D). */
static int reap(pid_t pid, int *status)
{
	bg_deadline d = bg_deadline_in(REAP_MS);

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (bg_deadline_expired(d))
			return -1;
		bg_sleep_ms(5);
	}
}

typedef struct run_state {
	bg_buf out;
	size_t dropped;
	int eof;
} run_state;

static int drain(run_state *st, int fd)
{
	char chunk[8192];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0) {
			st->eof = 1;
			return 0;
		}
		size_t room = st->out.len < BG_RUN_OUTPUT_CAP ? BG_RUN_OUTPUT_CAP - st->out.len : 0;
		size_t keep = (size_t)n < room ? (size_t)n : room;
		if (keep && bg_buf_append(&st->out, chunk, keep) != BG_OK)
			return -1;
		st->dropped += (size_t)n - keep;
	}
}

/* Read output until the program has exited and the pipe is closed, or the
 * deadline. Returns 1 when the deadline fired. */
static int watch(run_state *st, pid_t pid, int fd, int pidfd, bg_deadline deadline)
{
	int exited = 0;
	bg_deadline linger = BG_DEADLINE_NONE;

	while (!(exited && st->eof)) {
		bg_deadline d = bg_deadline_min(deadline, linger);
		struct pollfd p[2];
		int n = 0, timeout;

		if (bg_deadline_expired(deadline))
			return 1;
		if (exited && bg_deadline_expired(linger))
			return 0; /* leftovers of the group get killed by the caller */
		if (!st->eof) {
			p[n].fd = fd;
			p[n].events = POLLIN;
			p[n++].revents = 0;
		}
		if (!exited && pidfd >= 0) {
			p[n].fd = pidfd;
			p[n].events = POLLIN;
			p[n++].revents = 0;
		}
		timeout = bg_deadline_poll_ms(d);
		if (!exited && pidfd < 0 && (timeout < 0 || timeout > 10))
			timeout = 10; /* no pidfd: look at the child now and then */
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return 1;
		if (!st->eof && drain(st, fd) < 0)
			st->eof = 1;
		if (!exited && has_exited(pid)) {
			exited = 1;
			linger = bg_deadline_in(LINGER_MS);
		}
	}
	return 0;
}

static int start_child(pid_t *pid, const char *const *argv, int pipe_out[2])
{
	int err_pipe[2], e = 0;
	ssize_t n;

	if (pipe2(pipe_out, O_CLOEXEC) != 0)
		return bg_error_set(BG_EIO, "cannot run %s: pipe: %s", argv[0], strerror(errno));
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		close(pipe_out[0]);
		close(pipe_out[1]);
		return bg_error_set(BG_EIO, "cannot run %s: pipe: %s", argv[0], strerror(errno));
	}
	*pid = fork();
	if (*pid == 0) {
		close(pipe_out[0]);
		close(err_pipe[0]);
		child_exec(argv, pipe_out[1], err_pipe[1]);
	}
	e = errno;
	close(pipe_out[1]);
	close(err_pipe[1]);
	if (*pid < 0) {
		close(pipe_out[0]);
		close(err_pipe[0]);
		return bg_error_set(BG_EIO, "cannot run %s: fork: %s", argv[0], strerror(e));
	}
	setpgid(*pid, *pid); /* also from here: no window where a kill misses it */
	/* The error pipe closes on a successful exec, or carries errno. */
	while ((n = read(err_pipe[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(err_pipe[0]);
	if (n == (ssize_t)sizeof(e)) {
		int status;
		close(pipe_out[0]);
		while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
			;
		return bg_error_set(e == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot run %s: %s", argv[0], strerror(e));
	}
	fcntl(pipe_out[0], F_SETFL, fcntl(pipe_out[0], F_GETFL) | O_NONBLOCK);
	return BG_OK;
}

int bg_run(bg_run_result *result, const char *const *argv, int timeout_ms)
{
	run_state st = {BG_BUF_INIT, 0, 0};
	int64_t t0 = bg_now_ms();
	bg_deadline deadline = bg_deadline_in(timeout_ms);
	int pipe_out[2], pidfd, timed_out, status = 0, rc;
	pid_t pid = -1;

	if (!result || !argv || !argv[0])
		return bg_error_set(BG_EINVAL, "bg_run: no program given");
	memset(result, 0, sizeof(*result));
	if (argv[0][0] != '/')
		return bg_error_set(BG_EINVAL, "cannot run %s: the program must be an absolute path", argv[0]);
	if (access(argv[0], X_OK) != 0)
		return bg_error_set(errno == ENOENT ? BG_ENOTFOUND : BG_EIO,
				    "cannot run %s: %s (check the path in the configuration)", argv[0],
				    strerror(errno));
	rc = start_child(&pid, argv, pipe_out);
	if (rc != BG_OK)
		return rc;

	pidfd = open_pidfd(pid);
	timed_out = watch(&st, pid, pipe_out[0], pidfd, deadline);
	/* Kill the whole group: a timed-out program, or what it left behind. */
	kill(-pid, SIGKILL);
	if (!st.eof)
		drain(&st, pipe_out[0]);
	close(pipe_out[0]);
	if (pidfd >= 0)
		close(pidfd);
	if (reap(pid, &status) != 0)
		status = -1;

	result->elapsed_ms = bg_now_ms() - t0;
	result->timed_out = timed_out;
	result->exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
	result->signal = (status != -1 && WIFSIGNALED(status)) ? WTERMSIG(status) : 0;
	result->out_len = st.out.len;
	result->out_dropped = st.dropped;
	result->out = bg_buf_detach(&st.out);
	if (!result->out)
		return bg_error_oom();
	if (timed_out)
		return bg_error_set(BG_ETIMEOUT, "%s did not finish within %d ms: killed it and its process group",
				    argv[0], timeout_ms);
	return BG_OK;
}

int bg_qm(bg_run_result *result, const char *qm_path, int timeout_ms, const char *const *args, int vmid)
{
	const char *argv[32];
	char id[16];
	size_t i, n = 0;

	if (!qm_path || !args)
		return bg_error_set(BG_EINVAL, "bg_qm: no qm path or arguments");
	snprintf(id, sizeof(id), "%d", vmid);
	argv[n++] = qm_path;
	for (i = 0; args[i]; i++) {
		if (n >= sizeof(argv) / sizeof(argv[0]) - 1)
			return bg_error_set(BG_EINVAL, "bg_qm: too many arguments for qm");
		argv[n++] = strcmp(args[i], "{vmid}") == 0 ? id : args[i];
	}
	argv[n] = NULL;
	return bg_run(result, argv, timeout_ms);
}
