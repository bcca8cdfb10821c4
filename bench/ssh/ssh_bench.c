/*
 * Per-command latency of `true` on the loopback sshd fixture, three ways,
 * in one run: N execs through one reused bg_ssh (the command as is, and
 * under the remote timeout(1) wrapper); `ssh host true` N times;
 * `ssh` through a ControlMaster N times. Prints medians and the ratios.
 *
 *   ssh_bench N   (the fixture's SSHD_* variables in the environment)
 */
#include "breakglass.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "ssh_bench: $%s is not set (use bench/ssh/run)\n", name);
		exit(2);
	}
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int spawn_wait(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double bench_lib(int n, double *t, double *connect_ms, int remote_timeout)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh_exec_options eo = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result r;
	bg_ssh *s = NULL;
	double t0;
	int i;

	o.host = "127.0.0.1";
	o.port = (int)strtol(env("SSHD_PORT"), NULL, 10);
	o.user = env("SSHD_USER");
	o.key_file = env("SSHD_CLIENT_KEY");
	o.host_key = env("SSHD_HOST_KEY_FPR");
	eo.timeout_s = 10;
	eo.remote_timeout = remote_timeout;
	if (bg_ssh_new(&s, &o) != BG_OK) {
		fprintf(stderr, "bg_ssh_new: %s\n", bg_error_last()->message);
		exit(1);
	}
	t0 = now_ms();
	if (bg_ssh_connect(s) != BG_OK) {
		fprintf(stderr, "connect: %s\n", bg_error_last()->message);
		exit(1);
	}
	*connect_ms = now_ms() - t0;
	for (i = 0; i < n; i++) {
		t0 = now_ms();
		if (bg_ssh_exec(&r, s, "true", &eo) != BG_OK || r.exit_code != 0) {
			fprintf(stderr, "exec: %s\n", bg_error_last()->message);
			exit(1);
		}
		t[i] = now_ms() - t0;
		bg_ssh_result_clear(&r);
	}
	bg_ssh_free(s);
	return median(t, n);
}

/* `ssh … [extra…] user@127.0.0.1 CMD` n times; the median. */
static double bench_ssh(int n, double *t, const char *const *extra, const char *cmd)
{
	char port[16], dest[128];
	char *argv[24];
	int a = 0, i;
	double t0;

	snprintf(port, sizeof(port), "%s", env("SSHD_PORT"));
	snprintf(dest, sizeof(dest), "%s@127.0.0.1", env("SSHD_USER"));
	argv[a++] = (char *)"/usr/bin/ssh";
	argv[a++] = (char *)"-F";
	argv[a++] = (char *)"/dev/null";
	argv[a++] = (char *)"-i";
	argv[a++] = (char *)env("SSHD_CLIENT_KEY");
	argv[a++] = (char *)"-p";
	argv[a++] = port;
	argv[a++] = (char *)"-oBatchMode=yes";
	argv[a++] = (char *)"-oStrictHostKeyChecking=no";
	argv[a++] = (char *)"-oUserKnownHostsFile=/dev/null";
	argv[a++] = (char *)"-oLogLevel=ERROR";
	argv[a++] = (char *)"-oIdentitiesOnly=yes";
	while (extra && *extra && a < 20)
		argv[a++] = (char *)*extra++;
	argv[a++] = dest;
	if (cmd)
		argv[a++] = (char *)cmd;
	argv[a] = NULL;
	for (i = 0; i < n; i++) {
		t0 = now_ms();
		if (spawn_wait(argv) != 0) {
			fprintf(stderr, "ssh failed\n");
			exit(1);
		}
		t[i] = now_ms() - t0;
	}
	return median(t, n);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 200;
	int n_plain = n < 30 ? n : 30;
	char cm[512], cmopt[600];
	double *t, lib, lib_wrapped, plain, mux, connect_ms, connect2_ms;

	if (n < 1)
		n = 1;
	t = calloc((size_t)n, sizeof(*t));
	if (!t)
		return 1;
	snprintf(cm, sizeof(cm), "%s/cm.sock", env("SSHD_DIR"));
	snprintf(cmopt, sizeof(cmopt), "-oControlPath=%s", cm);

	{
		/* The master: started by a first ssh, kept by ControlPersist. */
		const char *start[] = {"-oControlMaster=yes", "-oControlPersist=120", cmopt, NULL};
		const char *use[] = {"-oControlMaster=no", cmopt, NULL};
		const char *stop[] = {"-q", "-O", "exit", cmopt, NULL};

		lib = bench_lib(n, t, &connect_ms, 0);
		lib_wrapped = bench_lib(n, t, &connect2_ms, 1);
		plain = bench_ssh(n_plain, t, NULL, "true");
		bench_ssh(1, t, start, "true");
		mux = bench_ssh(n, t, use, "true");
		bench_ssh(1, t, stop, NULL);
	}
	printf("bg_ssh connect+auth (once):        %8.2f ms\n", connect_ms);
	printf("bg_ssh exec true, reused session:  %8.2f ms median over %d\n", lib, n);
	printf("  same under `timeout -k 5 T sh -c` %8.2f ms median over %d (remote_timeout=1, the default)\n",
	       lib_wrapped, n);
	printf("ssh host true:                     %8.2f ms median over %d\n", plain, n_plain);
	printf("ssh via ControlMaster:             %8.2f ms median over %d\n", mux, n);
	printf("RATIO ssh/bg_ssh:                  %8.1fx\n", plain / lib);
	printf("RATIO ssh-ControlMaster/bg_ssh:    %8.1fx\n", mux / lib);
	printf("RATIO ssh/bg_ssh (remote_timeout=1): %6.1fx\n", plain / lib_wrapped);
	printf("RATIO ssh-ControlMaster/bg_ssh (remote_timeout=1): %4.1fx\n", mux / lib_wrapped);
	free(t);
	return 0;
}
