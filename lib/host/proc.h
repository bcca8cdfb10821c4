/*
 * Internal (host side): reading a process from /proc — the QEMU of a VM —
 * without ever trusting a pidfile blindly. Owned by the pve-forensics room.
 */
#ifndef BG_PVE_PROC_H
#define BG_PVE_PROC_H

#include <stddef.h>

typedef struct bg_proc_thread {
	int tid;
	char state; /* R S D Z T t X I */
	char comm[32];
	char wchan[64];
	char *stack; /* /proc/PID/task/TID/stack, or NULL when unreadable */
} bg_proc_thread;

typedef struct bg_proc_info {
	int pid;
	char state;
	char comm[32];
	char *exe;     /* readlink of /proc/PID/exe */
	char *cmdline; /* arguments joined by spaces */
	char *status;  /* /proc/PID/status text */
	char *io;      /* /proc/PID/io text, or NULL */
	long long start_time_ticks;
	bg_proc_thread *threads;
	size_t nthreads;
} bg_proc_info;

/* Read a pidfile: BG_OK with *pid, BG_ENOTFOUND when absent, BG_EPROTO when
 * it does not hold a pid. */
int bg_pidfile_read(const char *path, int *pid);

/* The state letter of `pid` ('R', 'S', 'D', 'Z', …); BG_ENOTFOUND when the
 * process is gone. */
int bg_proc_state(int pid, char *state);

/*
 * 1 when `pid` is a QEMU process (its exe is qemu-system-* or kvm) started
 * for this VM (its command line names `pidfile` as -pidfile, or has
 * `-id VMID`); 0 when it is some other process (the reason is recorded in
 * bg_error_last()); BG_ENOTFOUND when it does not exist.
 */
int bg_proc_is_qemu_for_vm(int pid, int vmid, const char *pidfile);

/* Everything forensics wants of a process, threads included. */
int bg_proc_read(bg_proc_info *out, int pid);
void bg_proc_info_clear(bg_proc_info *p);

#endif
