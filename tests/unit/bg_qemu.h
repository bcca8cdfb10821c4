/* Test helper: a real, tiny QEMU (no guest, -machine none) with a QMP
 * socket and a pidfile in a temporary directory, as protocols.md measured.
 * Header-only so each test program stays one file. */
#ifndef BG_TEST_QEMU_H
#define BG_TEST_QEMU_H

#include "core/clock.h"
#include "host/proc.h"
#include "host/qm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BG_TEST_QEMU "/usr/bin/qemu-system-x86_64"

typedef struct bg_test_qemu {
	char dir[64];
	char qmp[128];
	char pidfile[128];
	int pid;
} bg_test_qemu;

static inline int bg_test_qemu_available(void)
{
	return access(BG_TEST_QEMU, X_OK) == 0;
}

/* Start QEMU daemonized; 0 on success (q->pid set). */
static inline int bg_test_qemu_start(bg_test_qemu *q)
{
	char qmp_arg[160];
	bg_run_result r;
	FILE *f;
	int rc;

	memset(q, 0, sizeof(*q));
	snprintf(q->dir, sizeof(q->dir), "/tmp/bg-qemu-XXXXXX");
	if (!mkdtemp(q->dir))
		return -1;
	snprintf(q->qmp, sizeof(q->qmp), "%s/100.qmp", q->dir);
	snprintf(q->pidfile, sizeof(q->pidfile), "%s/100.pid", q->dir);
	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", q->qmp);
	const char *argv[] = {BG_TEST_QEMU, "-accel",
			      "tcg",        "-machine",
			      "none",       "-nodefaults",
			      "-display",   "none",
			      "-name",      "bgtest,debug-threads=on",
			      "-drive",     "driver=null-co,if=none,id=drive0,read-zeroes=on",
			      "-qmp",       qmp_arg,
			      "-pidfile",   q->pidfile,
			      "-daemonize", NULL};
	rc = bg_run(&r, argv, 10000);
	if (rc != 0 || r.exit_code != 0) {
		fprintf(stderr, "qemu did not start: %s\n", r.out ? r.out : "");
		bg_run_result_clear(&r);
		return -1;
	}
	bg_run_result_clear(&r);
	f = fopen(q->pidfile, "r");
	if (!f)
		return -1;
	rc = fscanf(f, "%d", &q->pid);
	fclose(f);
	return rc == 1 ? 0 : -1;
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
		rmdir(q->dir);
	}
}

#endif
