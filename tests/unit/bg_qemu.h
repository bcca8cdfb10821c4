/* Test helper: a real, tiny QEMU (no guest, -machine none) started the way
 * Proxmox starts a VM's QEMU:
 *   DIR/kvm -id VMID -name vmVMID,debug-threads=on -chardev
 *   socket,id=qmp,path=DIR/VMID.qmp,… -mon chardev=qmp,mode=control
 *   -pidfile DIR/VMID.pid …
 * reached through a symlink named `kvm` (Proxmox's /usr/bin/kvm is
 * qemu-system-x86_64). Upstream QEMU refuses Proxmox's `-id`, so it runs
 * with the qemu-id shim preloaded (tests/lab/qemu-id-shim.c; CMake passes
 * its path as BG_TEST_QEMU_ID_SHIM): /proc/PID/cmdline still reads `-id
 * VMID`. Header-only so each test program stays one file. */
#ifndef BG_TEST_QEMU_H
#define BG_TEST_QEMU_H

#include "core/clock.h"
#include "host/proc.h"
#include "host/qm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BG_TEST_QEMU "/usr/bin/qemu-system-x86_64"
#ifndef BG_TEST_QEMU_ID_SHIM
#define BG_TEST_QEMU_ID_SHIM ""
#endif

typedef struct bg_test_qemu {
	char dir[64];
	char qmp[128];
	char pidfile[128];
	char kvm[96];
	int vmid;
	int own_dir; /* dir made (and removed) by this helper */
	int pid;
} bg_test_qemu;

static inline int bg_test_qemu_available(void)
{
	return access(BG_TEST_QEMU, X_OK) == 0 && access(BG_TEST_QEMU_ID_SHIM, R_OK) == 0;
}

/* Run argv with LD_PRELOAD=shim; wait (10 s at most) for the daemonizing
 * parent. 0 when it exited 0. */
static inline int bg_test_qemu_spawn(const char *const *argv)
{
	char preload[512];
	char *const envp[] = {preload, (char *)"PATH=/usr/bin:/bin", NULL};
	int status = 0, i;
	pid_t pid, done = 0;

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", BG_TEST_QEMU_ID_SHIM);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	for (i = 0; i < 1000 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++)
		bg_sleep_ms(10);
	if (done != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Start VM `vmid`'s QEMU in `dir` (NULL: a new temporary directory). */
static inline int bg_test_qemu_start_vm(bg_test_qemu *q, const char *dir, int vmid)
{
	char qmp_arg[192], id[16], name[48];
	FILE *f;
	int rc;

	memset(q, 0, sizeof(*q));
	q->vmid = vmid;
	if (dir) {
		snprintf(q->dir, sizeof(q->dir), "%s", dir);
	} else {
		snprintf(q->dir, sizeof(q->dir), "/tmp/bg-qemu-XXXXXX");
		if (!mkdtemp(q->dir))
			return -1;
		q->own_dir = 1;
	}
	snprintf(q->kvm, sizeof(q->kvm), "%s/kvm", q->dir);
	if (symlink(BG_TEST_QEMU, q->kvm) != 0 && access(q->kvm, X_OK) != 0)
		return -1;
	snprintf(q->qmp, sizeof(q->qmp), "%s/%d.qmp", q->dir, vmid);
	snprintf(q->pidfile, sizeof(q->pidfile), "%s/%d.pid", q->dir, vmid);
	snprintf(qmp_arg, sizeof(qmp_arg), "socket,id=qmp,path=%s,server=on,wait=off", q->qmp);
	snprintf(id, sizeof(id), "%d", vmid);
	snprintf(name, sizeof(name), "vm%d,debug-threads=on", vmid);
	const char *argv[] = {q->kvm,     "-id",         id,
			      "-name",    name,          "-chardev",
			      qmp_arg,    "-mon",        "chardev=qmp,mode=control",
			      "-accel",   "tcg",         "-machine",
			      "none",     "-nodefaults", "-display",
			      "none",     "-drive",      "driver=null-co,if=none,id=drive0,read-zeroes=on",
			      "-pidfile", q->pidfile,    "-daemonize",
			      NULL};
	if (bg_test_qemu_spawn(argv) != 0) {
		fprintf(stderr, "qemu (as kvm, with -id %d) did not start\n", vmid);
		return -1;
	}
	f = fopen(q->pidfile, "r");
	if (!f)
		return -1;
	rc = fscanf(f, "%d", &q->pid);
	fclose(f);
	return rc == 1 ? 0 : -1;
}

/* VM 100 in a temporary directory of its own. */
static inline int bg_test_qemu_start(bg_test_qemu *q)
{
	return bg_test_qemu_start_vm(q, NULL, 100);
}

/* Kill it (SIGCONT first in case a test stopped it) and wait until gone. */
static inline void bg_test_qemu_stop(bg_test_qemu *q)
{
	char st;
	int i;

	if (q->pid > 0) {
		kill(q->pid, SIGCONT);
		kill(q->pid, SIGKILL);
		/* gone, or a zombie left for init to reap */
		for (i = 0; i < 300 && bg_proc_state(q->pid, &st) == 0 && st != 'Z'; i++)
			bg_sleep_ms(10);
		q->pid = 0;
	}
	if (q->dir[0]) {
		unlink(q->qmp);
		unlink(q->pidfile);
		if (q->own_dir) {
			unlink(q->kvm);
			rmdir(q->dir);
		}
	}
}

#endif
