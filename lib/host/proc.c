/* Reading the QEMU of a VM from /proc. A pidfile can be stale and its pid
 * reused by anything: before the verb engine signals a pid it asks
 * bg_proc_is_qemu_for_vm, which checks both the program and its
 * command line. */
#include "host/proc.h"
#include "host/wire.h"

#include "core/buf.h"
#include "core/error.h"
#include "core/futil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc files are small; a kernel stack or status is a few KiB. */
#define PROC_FILE_CAP (1024 * 1024)

int bg_pidfile_read(const char *path, int *pid)
{
	char *text;
	int rc;

	rc = bg_read_file(&text, NULL, path, PROC_FILE_CAP);
	if (rc != BG_OK)
		return rc == BG_ENOTFOUND ? bg_error_set(BG_ENOTFOUND, "no pidfile %s: the VM is not running", path)
					  : rc;
	rc = bg_proc_parse_pid(text, pid);
	if (rc != BG_OK)
		bg_error_set(BG_EPROTO, "pidfile %s does not hold a pid (\"%.20s\")", path, text);
	free(text);
	return rc;
}

int bg_proc_parse_pid(const char *text, int *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	while (end && isspace((unsigned char)*end))
		end++;
	if (errno || end == text || *end || v <= 0 || v > INT_MAX)
		return BG_EPROTO;
	*pid = (int)v;
	return BG_OK;
}

int bg_proc_state(int pid, char *state)
{
	bg_proc_stat st;
	int rc = bg_proc_stat_read(&st, pid, 0);

	*state = rc == BG_OK ? st.state : '?';
	if (rc == BG_ENOTFOUND)
		return bg_error_set(BG_ENOTFOUND, "process %d does not exist", pid);
	return rc;
}

static int read_cmdline(int pid, char **args, size_t *len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	return bg_read_file(args, len, path, PROC_FILE_CAP);
}

static int exe_is_qemu(const char *exe)
{
	const char *base = strrchr(exe, '/');

	base = base ? base + 1 : exe;
	return strncmp(base, "qemu-system-", 12) == 0 || strcmp(base, "kvm") == 0 ||
	       strncmp(base, "kvm ", 4) == 0; /* "kvm (deleted)" after an upgrade */
}

/* Whether the NUL-separated args name this VM: `-pidfile PIDFILE` (or
 * --pidfile, or =PIDFILE) or Proxmox's `-id VMID`. */
static int args_name_vm(const char *args, size_t len, int vmid, const char *pidfile)
{
	const char *a = args, *end = args + len, *next;
	char id[16];

	snprintf(id, sizeof(id), "%d", vmid);
	for (; a < end; a = next) {
		next = a + strlen(a) + 1;
		const char *opt = (a[0] == '-' && a[1] == '-') ? a + 1 : a;
		const char *val = next < end ? next : NULL;
		if (pidfile && strncmp(opt, "-pidfile=", 9) == 0 && strcmp(opt + 9, pidfile) == 0)
			return 1;
		if (pidfile && strcmp(opt, "-pidfile") == 0 && val && strcmp(val, pidfile) == 0)
			return 1;
		if (strcmp(opt, "-id") == 0 && val && strcmp(val, id) == 0)
			return 1;
	}
	return 0;
}

static char *read_exe(int pid, int *err)
{
	char path[64], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		*err = errno;
		return NULL;
	}
	target[n] = '\0';
	return strdup(target);
}

int bg_proc_is_qemu_for_vm(int pid, int vmid, const char *pidfile)
{
	char state, *exe, *args = NULL;
	size_t len = 0;
	int rc, err = 0, yes;

	if (pid <= 0)
		return bg_error_set(BG_EINVAL, "pid %d is not a process id", pid);
	rc = bg_proc_state(pid, &state);
	if (rc != BG_OK)
		return rc;
	if (state == 'Z' || state == 'X') {
		bg_error_set(BG_ESTATE, "process %d is a zombie (already dead), not a running QEMU", pid);
		return 0;
	}
	exe = read_exe(pid, &err);
	if (!exe) {
		if (err == ENOENT && bg_proc_state(pid, &state) == BG_ENOTFOUND)
			return bg_error_set(BG_ENOTFOUND, "process %d does not exist", pid);
		bg_error_set(BG_ESTATE, "process %d: cannot read its program (%s): not treated as QEMU", pid,
			     strerror(err));
		return 0;
	}
	if (!exe_is_qemu(exe)) {
		bg_error_set(BG_ESTATE, "process %d is %s, not QEMU: the pidfile is stale, leave that process alone",
			     pid, exe);
		free(exe);
		return 0;
	}
	rc = read_cmdline(pid, &args, &len);
	if (rc != BG_OK) {
		free(exe);
		if (rc == BG_ENOTFOUND)
			return bg_error_set(BG_ENOTFOUND, "process %d does not exist", pid);
		return 0;
	}
	yes = args_name_vm(args, len, vmid, pidfile);
	if (!yes)
		bg_error_set(BG_ESTATE,
			     "process %d is QEMU (%s) but not for VM %d: its command line has neither -pidfile %s "
			     "nor -id %d",
			     pid, exe, vmid, pidfile ? pidfile : "(none)", vmid);
	free(exe);
	free(args);
	return yes;
}

static void strip_newline(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static void read_thread(bg_proc_thread *t, int pid, int tid)
{
	char path[96], *text = NULL;
	bg_proc_stat st;

	t->tid = tid;
	if (bg_proc_stat_read(&st, pid, tid) == BG_OK) {
		t->state = st.state;
		memcpy(t->comm, st.comm, sizeof(t->comm));
	} else {
		t->state = '?';
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	if (bg_read_file(&text, NULL, path, PROC_FILE_CAP) == BG_OK) {
		snprintf(t->wchan, sizeof(t->wchan), "%s", text);
		strip_newline(t->wchan);
		free(text);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	if (bg_read_file(&t->stack, NULL, path, PROC_FILE_CAP) != BG_OK)
		t->stack = NULL; /* needs root (CAP_SYS_ADMIN) */
}

static int cmp_thread(const void *a, const void *b)
{
	return ((const bg_proc_thread *)a)->tid - ((const bg_proc_thread *)b)->tid;
}

static int read_threads(bg_proc_info *out, int pid)
{
	char path[64];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return bg_error_set(errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot list %s: %s", path,
				    strerror(errno));
	while ((de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10);
		if (tid <= 0)
			continue;
		if (out->nthreads == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			bg_proc_thread *nt = realloc(out->threads, ncap * sizeof(*nt));
			if (!nt) {
				closedir(d);
				return bg_error_oom();
			}
			out->threads = nt;
			cap = ncap;
		}
		memset(&out->threads[out->nthreads], 0, sizeof(bg_proc_thread));
		read_thread(&out->threads[out->nthreads++], pid, (int)tid);
	}
	closedir(d);
	if (out->nthreads)
		qsort(out->threads, out->nthreads, sizeof(bg_proc_thread), cmp_thread);
	return BG_OK;
}

static int join_args(char **out, int pid)
{
	char *args;
	size_t len, i;
	int rc = read_cmdline(pid, &args, &len);

	if (rc != BG_OK)
		return rc;
	for (i = 0; len && i < len - 1; i++)
		if (args[i] == '\0')
			args[i] = ' ';
	*out = args;
	return BG_OK;
}

int bg_proc_read(bg_proc_info *out, int pid)
{
	bg_proc_stat st;
	char path[64];
	int rc, err = 0;

	if (!out)
		return bg_error_set(BG_EINVAL, "bg_proc_read: no output");
	memset(out, 0, sizeof(*out));
	out->pid = pid;
	rc = bg_proc_stat_read(&st, pid, 0);
	if (rc != BG_OK)
		return rc == BG_ENOTFOUND ? bg_error_set(BG_ENOTFOUND, "process %d does not exist", pid) : rc;
	out->state = st.state;
	memcpy(out->comm, st.comm, sizeof(out->comm));
	out->start_time_ticks = (long long)st.starttime;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	rc = bg_read_file(&out->status, NULL, path, PROC_FILE_CAP);
	if (rc == BG_OK)
		rc = join_args(&out->cmdline, pid);
	if (rc == BG_OK)
		rc = read_threads(out, pid);
	if (rc != BG_OK) {
		bg_proc_info_clear(out);
		return rc;
	}
	out->exe = read_exe(pid, &err); /* NULL for a zombie or kernel thread */
	snprintf(path, sizeof(path), "/proc/%d/io", pid);
	if (bg_read_file(&out->io, NULL, path, PROC_FILE_CAP) != BG_OK)
		out->io = NULL;
	bg_error_clear();
	return BG_OK;
}

void bg_proc_info_clear(bg_proc_info *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nthreads; i++)
		free(p->threads[i].stack);
	free(p->threads);
	free(p->exe);
	free(p->cmdline);
	free(p->status);
	free(p->io);
	memset(p, 0, sizeof(*p));
}

/* The parsers above, without the files, for the fuzz target (host/wire.h). */
int bg_proc_args_name_vm(const char *args, size_t len, int vmid, const char *pidfile)
{
	return args_name_vm(args, len, vmid, pidfile);
}

int bg_proc_exe_is_qemu(const char *exe)
{
	return exe_is_qemu(exe);
}

void bg_proc_wchan(char *out, size_t out_len, const char *text)
{
	snprintf(out, out_len, "%s", text);
	strip_newline(out);
}
