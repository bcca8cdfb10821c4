/* The forensics bundle of docs/forensics.md: "autopsy before shooting". Every
 * section has its own deadline and its own error; a failing section is
 * evidence too, never a reason to stop. The time-sensitive evidence (the
 * process, QMP, the block counters) comes first, the slow or intrusive
 * (qm, gdb) after it. Files are written as each section ends, so whatever
 * was collected survives if the verb is interrupted. */
#include "host/bundle.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/futil.h"
#include "core/json.h"
#include "host/proc.h"
#include "host/qm.h"
#include "host/qga.h"
#include "host/qmp.h"
#include "host/safe_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GDB_PATH     "/usr/bin/gdb"
#define AGENT_MAX_MS 3000
/* A VM whose config has no agent gets a short look only: its silence is
 * expected, and waiting for it cost forensics 2 s (issue 13). */
#define AGENT_UNCONFIGURED_MS 300
/* The exec probe: a fork in the guest and two or three short exchanges. */
#define AGENT_EXEC_MS 2000
/* A stopped (T) QEMU cannot greet: QMP gets a short look, recorded, not
 * the full [timeouts] qmp; one in state D a little longer (D is often
 * brief). */
#define QMP_STOPPED_MS  250
#define QMP_DSTATE_MS   1000
#define KMSG_MS         2000
#define KMSG_TAIL_LINES 100
#define ID_PREFIX_LEN   17 /* "20260611T164742Z-" */

struct bg_forensics {
	bg_forensics_options o;
	int64_t started_wall_ms; /* the bundle's time: when collection began */
	char id[96];
	char *dir;          /* where stored, or NULL */
	int dir_lock;       /* the bundle directory, open and flock'ed while written; -1 */
	pthread_mutex_t mu; /* sections end from several threads (collect_in_parallel) */
	int qmp_wait_ms;    /* per QMP exchange: qmp_timeout_ms, less for a stopped QEMU */
	char *store_error;  /* why not stored */
	char pidfile[512], qmp_path[512], qga_path[512];
	json_object *summary;
	json_object *sections;
	bg_buf evidence;
	bg_buf text;
	bg_verdict verdict;
	int qemu_pid;
	long long qemu_start_ticks; /* the process's start time: with the pid, its identity */
	int reused;                 /* taken from an earlier bundle (bg_forensics_reuse) */
	char qemu_state;
	int qemu_running;
	int qmp_answered;
	char qmp_status[32];
	int blockstats_sampled, block_io_moved, block_io_pending;
	int agent_answered;
	int agent_unconfigured; /* qm config read, and no `agent: 1` in it */
	int agent_exec_failed;  /* the exec probe: the guest could not start /bin/true */
	char agent_exec[240];   /* what the exec probe found, one line ("" not tried) */
	char io_status[160];
	int inflight_known, inflight; /* requests in the guest's virtio block queues */
	char inflight_why[200];
	int vcpus, vcpu_busy_pct, vcpu_oncpu_pct;
	int qemu_dthreads;
	int failed_ops_moved;
	const char *qmp_skip; /* why later QMP sections are skipped, or NULL */
	/* the qm sections' threads (qm status; qm pending; qm config then the
	 * agent ping), still running past the verdict when qm_pending (options'
	 * defer_qm, QMP silent): joined by bg_forensics_finish */
	pthread_t workers[3];
	int started[3];
	int qm_pending;
	int finished; /* the bundle is complete: summary written, pruned */
};

typedef struct section {
	const char *name;
	const char *file;
	int64_t t0;
	bg_buf out;
} section;

/* --- sections and their files -------------------------------------------- */

static void section_begin(section *s, const char *name, const char *file)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->file = file;
	s->t0 = bg_now_ms();
}

static int write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return bg_error_set(BG_EIO, "cannot write %s: %s", path, strerror(errno));
	/* a file we own, regular, one link: not a hard link planted in the store */
	if (bg_host_check_opened(fd, path) != BG_OK || bg_write_all(fd, data, len) != BG_OK) {
		int code = bg_error_last()->code;
		close(fd);
		return code;
	}
	if (close(fd) != 0)
		return bg_error_set(BG_EIO, "cannot write %s: %s", path, strerror(errno));
	return BG_OK;
}

/* End a section: rc is BG_OK or its failure; skipped is a reason or NULL. */
static void section_end(bg_forensics *f, section *s, int rc, const char *skipped)
{
	json_object *j = json_object_new_object();
	const char *err = NULL;
	char errbuf[512];

	if (skipped) {
		snprintf(errbuf, sizeof(errbuf), "skipped: %s", skipped);
		err = errbuf;
	} else if (rc != BG_OK) {
		snprintf(errbuf, sizeof(errbuf), "%s", bg_error_last()->message);
		err = errbuf;
	}
	if (err) {
		if (s->out.len)
			bg_buf_putc(&s->out, '\n');
		bg_buf_printf(&s->out, "error: %s\n", err);
	}
	pthread_mutex_lock(&f->mu);
	if (f->dir && write_file(f->dir, s->file, s->out.data ? s->out.data : "", s->out.len) != BG_OK &&
	    !f->store_error)
		f->store_error = strdup(bg_error_last()->message);
	if (j) {
		bg_json_add_str(j, "name", s->name);
		bg_json_add_str(j, "file", s->file);
		bg_json_add_bool(j, "ok", err == NULL);
		bg_json_add_bool(j, "skipped", skipped != NULL);
		bg_json_add_str(j, "error", err);
		bg_json_add_int(j, "elapsed_ms", bg_now_ms() - s->t0);
		if (f->qm_pending)
			bg_json_add_bool(j, "deferred", 1);
		json_object_array_add(f->sections, j);
	}
	pthread_mutex_unlock(&f->mu);
	bg_buf_free(&s->out);
}

static void put_json(bg_buf *b, json_object *o)
{
	bg_buf_puts(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	bg_buf_putc(b, '\n');
}

/* --- the QEMU process ---------------------------------------------------- */

/* utime+stime of a process in clock ticks, or -1. */
static long long cpu_ticks(int pid)
{
	bg_proc_stat st;

	if (bg_proc_stat_read(&st, pid, 0) != BG_OK)
		return -1;
	return (long long)(st.utime + st.stime);
}

static void put_proc(bg_buf *b, const bg_proc_info *p)
{
	size_t i;

	bg_buf_printf(b, "pid %d state %c comm %s start_time_ticks %lld\n", p->pid, p->state, p->comm,
		      p->start_time_ticks);
	bg_buf_printf(b, "exe: %s\ncmdline: %s\n", p->exe ? p->exe : "(unreadable)", p->cmdline ? p->cmdline : "");
	bg_buf_printf(b, "\n--- /proc/%d/status\n%s", p->pid, p->status ? p->status : "");
	bg_buf_printf(b, "\n--- /proc/%d/io\n%s", p->pid, p->io ? p->io : "(unreadable)\n");
	bg_buf_printf(b, "\n--- threads (%zu)\n", p->nthreads);
	for (i = 0; i < p->nthreads; i++) {
		const bg_proc_thread *t = &p->threads[i];
		bg_buf_printf(b, "tid %d state %c comm %s wchan %s\n", t->tid, t->state, t->comm,
			      t->wchan[0] ? t->wchan : "-");
		bg_buf_puts(b, t->stack ? t->stack : "(kernel stack unreadable: needs root)\n");
	}
}

/* Thread states in one line of evidence: "threads: 7 (S 6, D 1)". */
static void thread_summary(bg_forensics *f, const bg_proc_info *p)
{
	const char *letters = "RSDTtZXI";
	int counts[8] = {0};
	bg_buf line = BG_BUF_INIT;
	size_t i;
	int k, first = 1;

	for (i = 0; i < p->nthreads; i++) {
		const char *at = strchr(letters, p->threads[i].state);
		if (at && *at)
			counts[at - letters]++;
	}
	bg_buf_printf(&line, "QEMU pid %d state %c, threads: %zu (", p->pid, p->state, p->nthreads);
	for (k = 0; k < 8; k++)
		if (counts[k]) {
			bg_buf_printf(&line, "%s%c %d", first ? "" : ", ", letters[k], counts[k]);
			first = 0;
		}
	bg_buf_puts(&line, ")\n");
	bg_buf_puts(&f->evidence, line.data);
	bg_buf_free(&line);
	for (i = 0; i < p->nthreads; i++)
		f->qemu_dthreads += p->threads[i].state == 'D';
	for (i = 0; i < p->nthreads; i++)
		if (p->threads[i].state == 'D')
			bg_buf_printf(&f->evidence, "thread %d (%s) in state D, wchan %s\n", p->threads[i].tid,
				      p->threads[i].comm, p->threads[i].wchan[0] ? p->threads[i].wchan : "-");
}

static void collect_process(bg_forensics *f)
{
	section s;
	bg_proc_info p;
	int pid = 0, rc, is;

	section_begin(&s, "process", "process.txt");
	rc = bg_pidfile_read(f->pidfile, &pid);
	if (rc == BG_ENOTFOUND || rc == BG_EPROTO) {
		bg_buf_printf(&s.out, "no QEMU process: %s\n", bg_error_last()->message);
		section_end(f, &s, BG_OK, NULL);
		return;
	}
	if (rc != BG_OK) {
		section_end(f, &s, rc, NULL);
		return;
	}
	bg_buf_printf(&s.out, "pidfile %s: %d\n", f->pidfile, pid);
	is = bg_proc_is_qemu_for_vm(pid, f->o.vmid, f->pidfile);
	if (is != 1) {
		bg_buf_printf(&s.out, "no QEMU process for VM %d: %s\n", f->o.vmid, bg_error_last()->message);
		section_end(f, &s, BG_OK, NULL);
		return;
	}
	f->qemu_running = 1;
	f->qemu_pid = pid;
	bg_buf_printf(&s.out, "QEMU for VM %d: yes\n", f->o.vmid);
	rc = bg_proc_read(&p, pid);
	if (rc == BG_OK) {
		f->qemu_state = p.state;
		f->qemu_start_ticks = p.start_time_ticks;
		put_proc(&s.out, &p);
		thread_summary(f, &p);
		bg_proc_info_clear(&p);
	} else if (bg_proc_state(pid, &f->qemu_state) != BG_OK) {
		f->qemu_running = 0; /* it went away while we looked */
	}
	section_end(f, &s, rc, NULL);
}

/* --- QMP ----------------------------------------------------------------- */

static int qmp_section(bg_forensics *f, const char *command, const char *file, json_object **keep)
{
	section s;
	json_object *ret = NULL;
	int rc;

	section_begin(&s, command, file);
	if (!f->qemu_running || f->qmp_skip) {
		section_end(f, &s, BG_OK, f->qemu_running ? f->qmp_skip : "QEMU is not running");
		return BG_ECANCELLED;
	}
	rc = bg_qmp_command(f->qmp_path, command, NULL, f->qmp_wait_ms, &ret);
	if (rc == BG_OK)
		put_json(&s.out, ret);
	section_end(f, &s, rc, NULL);
	if (keep)
		*keep = ret;
	else
		json_object_put(ret);
	return rc;
}

static void collect_qmp_status(bg_forensics *f)
{
	json_object *ret = NULL;
	int rc = qmp_section(f, "query-status", "qmp-query-status.json", &ret);

	if (rc == BG_OK) {
		f->qmp_answered = 1;
		snprintf(f->qmp_status, sizeof(f->qmp_status), "%s", bg_json_str(ret, "status", "unknown"));
	} else if (rc != BG_ECANCELLED) {
		/* Each further command would wait as long again. */
		f->qmp_skip = "QMP did not answer query-status";
		bg_buf_printf(&f->evidence, "QMP query-status failed: %s\n", bg_error_last()->message);
	}
	json_object_put(ret);
}

static void collect_qmp_block(bg_forensics *f)
{
	json_object *ret = NULL;

	if (qmp_section(f, "query-block", "qmp-query-block.json", &ret) == BG_OK)
		bg_forensics_block_io_status(ret, f->io_status, sizeof(f->io_status));
	json_object_put(ret);
}

static long long stat_of(json_object *dev, const char *key)
{
	return (long long)bg_json_int(bg_json_obj(dev, "stats"), key, -1);
}

int bg_forensics_blockstats_moved(json_object *first, json_object *second, int *devices)
{
	static const char *const keys[] = {"rd_bytes",      "wr_bytes",         "rd_operations",
					   "wr_operations", "flush_operations", "unmap_operations"};
	size_t i, j, k, n1, n2;
	int moved = 0, n = 0;

	n1 = json_object_is_type(first, json_type_array) ? json_object_array_length(first) : 0;
	n2 = json_object_is_type(second, json_type_array) ? json_object_array_length(second) : 0;
	for (i = 0; i < n1; i++) {
		json_object *a = json_object_array_get_idx(first, i);
		const char *name = bg_json_str(a, "device", "");
		const char *node = bg_json_str(a, "node-name", "");
		for (j = 0; j < n2; j++) {
			json_object *b = json_object_array_get_idx(second, j);
			if (strcmp(bg_json_str(b, "device", ""), name) != 0 ||
			    strcmp(bg_json_str(b, "node-name", ""), node) != 0)
				continue;
			n++;
			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (stat_of(a, keys[k]) != stat_of(b, keys[k]))
					moved = 1;
			break;
		}
	}
	if (devices)
		*devices = n;
	return moved;
}

long long bg_forensics_blockstats_ops_done(json_object *first, json_object *second)
{
	static const char *const ops[] = {"rd_operations", "wr_operations", "flush_operations", "unmap_operations"};
	size_t i, j, k, n1, n2;
	long long done = 0;

	n1 = json_object_is_type(first, json_type_array) ? json_object_array_length(first) : 0;
	n2 = json_object_is_type(second, json_type_array) ? json_object_array_length(second) : 0;
	for (i = 0; i < n1; i++) {
		json_object *a = json_object_array_get_idx(first, i);
		for (j = 0; j < n2; j++) {
			json_object *b = json_object_array_get_idx(second, j);
			if (strcmp(bg_json_str(b, "device", ""), bg_json_str(a, "device", "")) != 0 ||
			    strcmp(bg_json_str(b, "node-name", ""), bg_json_str(a, "node-name", "")) != 0)
				continue;
			for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
				long long d = stat_of(b, ops[k]) - stat_of(a, ops[k]);
				if (d > 0 && d < (1LL << 40)) /* a counter reset or a guest's nonsense counts nothing */
					done += d;
			}
			break;
		}
	}
	return done;
}

int bg_forensics_block_io_status(json_object *query_block, char *out, size_t out_len)
{
	size_t i, n;

	if (out && out_len)
		out[0] = '\0';
	n = json_object_is_type(query_block, json_type_array) ? json_object_array_length(query_block) : 0;
	for (i = 0; i < n; i++) {
		json_object *dev = json_object_array_get_idx(query_block, i);
		const char *st = bg_json_str(dev, "io-status", NULL);
		if (st && strcmp(st, "ok") != 0) {
			if (out && out_len)
				snprintf(out, out_len, "%s: %s", bg_json_str(dev, "device", "?"), st);
			return 1;
		}
	}
	return 0;
}

/* --- the vCPUs and the requests in flight ------------------------------------ */

/*
 * Frozen block counters say nothing by themselves: a dead block path and a
 * guest that asks nothing of its disk (out of memory, a process storm)
 * look the same there (issue 14). Two more facts, sampled across the same
 * interval, tell them apart: the requests the guest's virtio queues hold
 * in flight (taken from the guest, not completed), and whether its vCPUs
 * want a CPU. The vCPU threads are named "CPU n/KVM" (or "/TCG") when QEMU
 * runs with -name …,debug-threads=on, as Proxmox starts it.
 */

#define VCPU_MAX 256

typedef struct vcpu_sample {
	int tid;
	char comm[32];
	long long run_ns, wait_ns; /* /proc/…/schedstat: on a CPU, waiting on a runqueue; -1: unreadable */
	long long ticks;           /* utime + stime */
} vcpu_sample;

static int is_vcpu_comm(const char *comm)
{
	const char *p = comm + 4;

	if (strncmp(comm, "CPU ", 4) != 0 || *p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return p[0] == '/' && p[1] != '\0';
}

/* The vCPU threads of pid, at most max. */
static size_t vcpus_sample(int pid, vcpu_sample *out, size_t max)
{
	char path[96];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)) && n < max) {
		bg_proc_stat st;
		char *end, *text = NULL;
		size_t len = 0;
		long tid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || tid <= 0 || bg_proc_stat_read(&st, pid, (int)tid) != BG_OK ||
		    !is_vcpu_comm(st.comm))
			continue;
		out[n].tid = (int)tid;
		snprintf(out[n].comm, sizeof(out[n].comm), "%s", st.comm);
		out[n].ticks = (long long)(st.utime + st.stime);
		out[n].run_ns = out[n].wait_ns = -1;
		snprintf(path, sizeof(path), "/proc/%d/task/%ld/schedstat", pid, tid);
		if (bg_read_file(&text, &len, path, 256) == BG_OK &&
		    sscanf(text, "%lld %lld", &out[n].run_ns, &out[n].wait_ns) != 2)
			out[n].run_ns = out[n].wait_ns = -1;
		free(text);
		n++;
	}
	closedir(d);
	bg_error_clear();
	return n;
}

/* Each vCPU's share of the interval wanting a CPU (on one, or waiting on a
 * runqueue: a loaded host lends a spinning vCPU little time, but it waits
 * for the rest) and on one; the busiest into f; each into arr. */
static void vcpus_compare(bg_forensics *f, const vcpu_sample *a, size_t na, const vcpu_sample *b, size_t nb,
			  int64_t wall_ms, json_object *arr)
{
	long hz = sysconf(_SC_CLK_TCK);
	size_t i, j;

	if (wall_ms <= 0)
		wall_ms = 1;
	for (j = 0; j < nb; j++)
		for (i = 0; i < na; i++) {
			long long on_ms, want_ms;
			int busy, oncpu;
			json_object *o;

			if (a[i].tid != b[j].tid)
				continue;
			if (a[i].run_ns >= 0 && b[j].run_ns >= 0) {
				on_ms = (b[j].run_ns - a[i].run_ns) / 1000000;
				want_ms = on_ms + (b[j].wait_ns - a[i].wait_ns) / 1000000;
			} else {
				on_ms = want_ms = hz > 0 ? (b[j].ticks - a[i].ticks) * 1000 / hz : 0;
			}
			oncpu = (int)(on_ms * 100 / wall_ms);
			busy = (int)(want_ms * 100 / wall_ms);
			if (busy > 100)
				busy = 100; /* the reads are not exactly at the interval's ends */
			if (oncpu > busy)
				oncpu = busy;
			if (!f->vcpus || busy > f->vcpu_busy_pct) {
				f->vcpu_busy_pct = busy;
				f->vcpu_oncpu_pct = oncpu;
			}
			f->vcpus++;
			if (arr && (o = json_object_new_object())) {
				bg_json_add_int(o, "tid", b[j].tid);
				bg_json_add_str(o, "comm", b[j].comm);
				bg_json_add_int(o, "oncpu_ms", on_ms);
				bg_json_add_int(o, "wanted_ms", want_ms);
				bg_json_add_int(o, "busy_pct", busy);
				json_object_array_add(arr, o);
			}
			break;
		}
}

int bg_forensics_virtio_inuse(json_object *queue_status)
{
	json_object *v;

	if (!json_object_object_get_ex(queue_status, "inuse", &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int(v) < 0 ? -1 : json_object_get_int(v);
}

static int is_virtio_block(const char *name)
{
	return strcmp(name, "virtio-blk") == 0 || strcmp(name, "virtio-scsi") == 0;
}

#define VIRTIO_QUEUES_MAX 64

/* The requests in flight on every queue of every virtio block device:
 * BG_OK with *inflight (the sum) and *devices; each device's count into
 * rec. Any failure (a QEMU before 7.2 has no x-query-virtio) is returned
 * with its reason. */
static int virtio_inflight(bg_forensics *f, int *inflight, int *devices, json_object *rec)
{
	bg_deadline d = bg_deadline_in(f->o.qmp_timeout_ms);
	json_object *list = NULL;
	bg_qmp *q = NULL;
	size_t i, n;
	int rc;

	*inflight = 0;
	*devices = 0;
	rc = bg_qmp_connect(&q, f->qmp_path, (int)bg_deadline_left(d));
	if (rc == BG_OK)
		rc = bg_qmp_execute(q, "x-query-virtio", NULL, (int)bg_deadline_left(d), &list);
	n = rc == BG_OK && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
	for (i = 0; rc == BG_OK && i < n; i++) {
		json_object *dev = json_object_array_get_idx(list, i), *args, *st = NULL, *o;
		const char *path = bg_json_str(dev, "path", NULL);
		int vqs, k, dev_inuse = 0;

		if (!path || !is_virtio_block(bg_json_str(dev, "name", "")))
			continue;
		args = json_object_new_object();
		bg_json_add_str(args, "path", path);
		rc = bg_qmp_execute(q, "x-query-virtio-status", args, (int)bg_deadline_left(d), &st);
		vqs = (int)bg_json_int(st, "num-vqs", -1);
		json_object_put(st);
		if (rc == BG_OK && (vqs < 0 || vqs > VIRTIO_QUEUES_MAX))
			rc = bg_error_set(BG_EPROTO, "x-query-virtio-status of %s: no usable num-vqs", path);
		for (k = 0; rc == BG_OK && k < vqs; k++) {
			json_object *qs = NULL;
			int inuse;
			bg_json_add_int(args, "queue", k);
			rc = bg_qmp_execute(q, "x-query-virtio-queue-status", args, (int)bg_deadline_left(d), &qs);
			inuse = rc == BG_OK ? bg_forensics_virtio_inuse(qs) : 0;
			json_object_put(qs);
			if (rc == BG_OK && inuse < 0)
				rc = bg_error_set(BG_EPROTO, "x-query-virtio-queue-status of %s queue %d: no inuse",
						  path, k);
			dev_inuse += inuse;
		}
		json_object_put(args);
		if (rc != BG_OK)
			break;
		*inflight += dev_inuse;
		(*devices)++;
		if (rec && (o = json_object_new_object())) {
			bg_json_add_str(o, "path", path);
			bg_json_add_str(o, "name", bg_json_str(dev, "name", ""));
			bg_json_add_int(o, "queues", vqs);
			bg_json_add_int(o, "inuse", dev_inuse);
			json_object_array_add(rec, o);
		}
	}
	json_object_put(list);
	bg_qmp_close(q);
	if (rc == BG_OK && *devices == 0)
		rc = bg_error_set(BG_ENOTFOUND,
				  "x-query-virtio lists no virtio block device (virtio-blk, virtio-scsi)");
	return rc;
}

/* Any failed_* operation counted between two query-blockstats replies. */
/* A trickle is no working disk path: a throttled or failing device lets
 * one request through now and then while the rest wait (the lab's Debian
 * devvm under `wedge --io`: 13 requests stuck at both samples, one 84 KiB
 * read completed between them, and the counters "moved"). When fewer
 * operations completed in the interval than stayed in flight at both
 * samples, the backlog did not turn over once: the counters count as
 * frozen. A working disk, even a slow one, completes its queue many times
 * a second. */
static void trickle_is_not_moving(bg_forensics *f, json_object *first, json_object *second, json_object *all)
{
	long long done;

	if (!f->block_io_moved || f->inflight <= 0)
		return;
	done = bg_forensics_blockstats_ops_done(first, second);
	if (all)
		bg_json_add_int(all, "ops_done", done);
	if (done >= f->inflight)
		return;
	f->block_io_moved = 0;
	if (all)
		bg_json_add_bool(all, "moved", 0);
	bg_buf_printf(&f->evidence,
		      "only %lld block operation(s) completed in the %d ms between the samples while %d request(s) "
		      "stayed in flight at both: the backlog does not drain\n",
		      done, f->o.blockstats_interval_ms, f->inflight);
}

static int failed_ops_moved(json_object *first, json_object *second)
{
	static const char *const keys[] = {"failed_rd_operations", "failed_wr_operations", "failed_flush_operations",
					   "failed_unmap_operations"};
	size_t i, j, k, n1, n2;

	n1 = json_object_is_type(first, json_type_array) ? json_object_array_length(first) : 0;
	n2 = json_object_is_type(second, json_type_array) ? json_object_array_length(second) : 0;
	for (i = 0; i < n1; i++)
		for (j = 0; j < n2; j++) {
			json_object *a = json_object_array_get_idx(first, i), *b = json_object_array_get_idx(second, j);
			if (strcmp(bg_json_str(a, "device", ""), bg_json_str(b, "device", "")) != 0 ||
			    strcmp(bg_json_str(a, "node-name", ""), bg_json_str(b, "node-name", "")) != 0)
				continue;
			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (stat_of(b, keys[k]) > stat_of(a, keys[k]))
					return 1;
		}
	return 0;
}

/* The in-flight count at one sample; on failure the reason goes to
 * f->inflight_why and -1 is returned. */
static int inflight_sample(bg_forensics *f, json_object *all, const char *key)
{
	json_object *rec = json_object_new_array();
	int n = 0, devices = 0;
	int rc = virtio_inflight(f, &n, &devices, rec);

	if (rc != BG_OK) {
		snprintf(f->inflight_why, sizeof(f->inflight_why), "%s", bg_error_last()->message);
		json_object_put(rec);
		return -1;
	}
	if (all)
		json_object_object_add(all, key, rec);
	else
		json_object_put(rec);
	return n;
}

static void collect_qmp_blockstats(bg_forensics *f)
{
	json_object *first = NULL, *second = NULL, *all, *vcpu_arr;
	vcpu_sample *v0 = calloc(VCPU_MAX, sizeof(*v0)), *v1 = calloc(VCPU_MAX, sizeof(*v1));
	size_t nv0 = 0, nv1 = 0;
	int64_t t0, t1;
	long long cpu0, cpu1;
	section s;
	int rc, devices = 0, in0 = -1, in1 = -1;
	long hz = sysconf(_SC_CLK_TCK);

	section_begin(&s, "query-blockstats", "qmp-query-blockstats.json");
	if (!f->qemu_running || f->qmp_skip || !v0 || !v1) {
		section_end(f, &s, f->qemu_running && !f->qmp_skip ? bg_error_oom() : BG_OK,
			    !f->qemu_running ? "QEMU is not running" : f->qmp_skip);
		free(v0);
		free(v1);
		return;
	}
	all = json_object_new_object();
	cpu0 = cpu_ticks(f->qemu_pid);
	t0 = bg_now_ms();
	nv0 = vcpus_sample(f->qemu_pid, v0, VCPU_MAX);
	rc = bg_qmp_command(f->qmp_path, "query-blockstats", NULL, f->o.qmp_timeout_ms, &first);
	if (rc == BG_OK) {
		in0 = inflight_sample(f, all, "inflight_first");
		bg_sleep_ms(f->o.blockstats_interval_ms);
		rc = bg_qmp_command(f->qmp_path, "query-blockstats", NULL, f->o.qmp_timeout_ms, &second);
		if (rc != BG_OK)
			bg_error_prefix("second sample: ");
		else if (in0 >= 0)
			in1 = inflight_sample(f, all, "inflight_second");
	}
	nv1 = vcpus_sample(f->qemu_pid, v1, VCPU_MAX);
	t1 = bg_now_ms();
	cpu1 = cpu_ticks(f->qemu_pid);
	if (all) {
		bg_json_add_int(all, "interval_ms", f->o.blockstats_interval_ms);
		json_object_object_add(all, "first", json_object_get(first));
		json_object_object_add(all, "second", json_object_get(second));
	}
	if (rc == BG_OK) {
		f->block_io_moved = bg_forensics_blockstats_moved(first, second, &devices);
		f->blockstats_sampled = devices > 0;
		f->failed_ops_moved = failed_ops_moved(first, second);
		if (all) {
			bg_json_add_int(all, "devices_compared", devices);
			bg_json_add_bool(all, "moved", f->block_io_moved);
			bg_json_add_bool(all, "failed_ops_moved", f->failed_ops_moved);
		}
		if (cpu0 >= 0 && cpu1 >= 0 && hz > 0 && f->o.blockstats_interval_ms > 0) {
			long long cpu_ms = (cpu1 - cpu0) * 1000 / hz;
			/* A guest piling up behind dead storage burns CPU (the
			 * incident went from 11% to ~50%). */
			f->block_io_pending = cpu_ms * 100 / f->o.blockstats_interval_ms >= 20;
			if (all)
				bg_json_add_int(all, "qemu_cpu_ms", cpu_ms);
			bg_buf_printf(&f->evidence, "QEMU used %lld ms of CPU in the %d ms between the block samples\n",
				      cpu_ms, f->o.blockstats_interval_ms);
		}
		if (devices == 0)
			bg_buf_puts(&f->evidence, "query-blockstats lists no block device to compare\n");
		/* requests still in flight at both ends of the interval */
		if (in0 >= 0 && in1 >= 0) {
			f->inflight_known = 1;
			f->inflight = in0 < in1 ? in0 : in1;
			trickle_is_not_moving(f, first, second, all);
		} else if (!f->inflight_why[0]) {
			snprintf(f->inflight_why, sizeof(f->inflight_why), "not read at both samples");
		}
		vcpu_arr = json_object_new_array();
		vcpus_compare(f, v0, nv0, v1, nv1, t1 - t0, vcpu_arr);
		if (all) {
			json_object_object_add(all, "vcpus", vcpu_arr);
			bg_json_add_int(all, "vcpus_wall_ms", t1 - t0);
			if (f->inflight_known)
				bg_json_add_int(all, "inflight", f->inflight);
			else
				bg_json_add_str(all, "inflight_unknown", f->inflight_why);
		} else {
			json_object_put(vcpu_arr);
		}
	}
	if (all)
		put_json(&s.out, all);
	json_object_put(all);
	json_object_put(first);
	json_object_put(second);
	free(v0);
	free(v1);
	section_end(f, &s, rc, NULL);
}

/* --- the guest agent ------------------------------------------------------- */

/* The ping needs no fork: an agent already running answers it in a guest
 * that can start no process (pids or memory exhausted: SSH dead, the
 * heartbeat stopped). Starting one program tells (issue 14's wedge-storm
 * on the Debian devvm was called healthy). Its outcome is evidence, not
 * the section's success. */
static void probe_agent_exec(bg_forensics *f, section *s)
{
	bg_buf why = BG_BUF_INIT;
	int rc = bg_qga_exec_probe(f->qga_path, AGENT_EXEC_MS, &why);

	bg_buf_printf(&s->out, "exec probe (guest-exec /bin/true): %s\n", why.data ? why.data : "");
	pthread_mutex_lock(&f->mu);
	f->agent_exec_failed = rc == BG_EFAILED;
	snprintf(f->agent_exec, sizeof(f->agent_exec), "%s", why.data ? why.data : "");
	pthread_mutex_unlock(&f->mu);
	bg_buf_free(&why);
}

static void collect_agent(bg_forensics *f)
{
	int ms = f->o.qmp_timeout_ms < AGENT_MAX_MS ? f->o.qmp_timeout_ms : AGENT_MAX_MS;
	section s;
	int rc;

	section_begin(&s, "agent-ping", "agent-ping.txt");
	if (!f->qemu_running) {
		section_end(f, &s, BG_OK, "QEMU is not running");
		return;
	}
	if (f->qemu_state == 'T' || f->qemu_state == 't') {
		/* The agent's channel is served by the QEMU main loop, stopped. */
		section_end(f, &s, BG_OK, "QEMU is stopped (state T): the agent channel is served by its main loop");
		return;
	}
	if (f->agent_unconfigured && ms > AGENT_UNCONFIGURED_MS)
		ms = AGENT_UNCONFIGURED_MS; /* a look, in case one answers anyway */
	rc = bg_qga_ping(f->qga_path, ms);
	if (rc == BG_OK) {
		pthread_mutex_lock(&f->mu); /* read by conclude while deferred */
		f->agent_answered = 1;
		pthread_mutex_unlock(&f->mu);
		bg_buf_printf(&s.out, "guest-ping answered in %lld ms\n", (long long)(bg_now_ms() - s.t0));
		if (f->o.agent_exec)
			probe_agent_exec(f, &s);
	}
	section_end(f, &s, rc, NULL);
}

/* --- Proxmox: the config lock and HA, read by the verb engine -------------- */

static void collect_proxmox(bg_forensics *f)
{
	section s;

	if (!f->o.proxmox_facts)
		return;
	section_begin(&s, "proxmox", "proxmox.txt");
	bg_buf_puts(&s.out, f->o.proxmox_facts);
	bg_buf_puts(&f->evidence, f->o.proxmox_facts); /* one fact a line, as the evidence is */
	section_end(f, &s, BG_OK, NULL);
}

/* --- qm, gdb --------------------------------------------------------------- */

/* Whether a VM config enables the guest agent: a line `agent: 1` or
 * `agent: enabled=1,…` / `agent: 1,…` (Proxmox's property string). */
static int config_enables_agent(const char *config)
{
	const char *line = config;

	while (line && *line) {
		if (strncmp(line, "agent:", 6) == 0) {
			const char *v = line + 6;
			while (*v == ' ' || *v == '\t')
				v++;
			return (v[0] == '1' && (v[1] == '\0' || v[1] == '\n' || v[1] == ',')) ||
			       strncmp(v, "enabled=1", 9) == 0;
		}
		if (strncmp(line, "[", 1) == 0)
			break; /* [PENDING] or a snapshot: not the running config */
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

/* Run one qm command as a section; `keep` (may be NULL) receives its
 * output when it succeeded. */
static void collect_qm(bg_forensics *f, const char *name, const char *file, const char *const *args, bg_buf *keep)
{
	bg_run_result r;
	section s;
	int rc;

	section_begin(&s, name, file);
	rc = bg_qm(&r, f->o.qm, f->o.qm_timeout_ms, args, f->o.vmid);
	if (r.out)
		bg_buf_append(&s.out, r.out, r.out_len);
	if (r.out_dropped)
		bg_buf_printf(&s.out, "\n[%zu bytes of output dropped]\n", r.out_dropped);
	if (rc == BG_OK && r.exit_code != 0)
		rc = bg_error_set(BG_EFAILED, "qm %s exited with status %d", args[0], r.exit_code);
	if (rc == BG_OK && keep && r.out)
		bg_buf_append(keep, r.out, r.out_len);
	bg_run_result_clear(&r);
	section_end(f, &s, rc, NULL);
}

static void collect_gdb(bg_forensics *f)
{
	char pid[16];
	bg_run_result r;
	section s;
	int rc;

	if (!f->o.gdb)
		return; /* not asked for: no section at all */
	section_begin(&s, "gdb", "gdb.txt");
	if (!f->qemu_running) {
		section_end(f, &s, BG_OK, "QEMU is not running");
		return;
	}
	if (access(GDB_PATH, X_OK) != 0) {
		section_end(f, &s, BG_OK, GDB_PATH " is not installed");
		return;
	}
	snprintf(pid, sizeof(pid), "%d", f->qemu_pid);
	const char *argv[] = {GDB_PATH, "-nx", "-batch", "-p", pid, "-ex", "thread apply all bt", NULL};
	rc = bg_run(&r, argv, f->o.qm_timeout_ms);
	if (r.out)
		bg_buf_append(&s.out, r.out, r.out_len);
	if (rc == BG_OK && r.exit_code != 0)
		rc = bg_error_set(BG_EFAILED, "gdb exited with status %d (ptrace not permitted?)", r.exit_code);
	bg_run_result_clear(&r);
	section_end(f, &s, rc, NULL);
}

/* --- the host -------------------------------------------------------------- */

static void append_file(bg_buf *b, const char *path)
{
	char *text;
	size_t len;

	bg_buf_printf(b, "--- %s\n", path);
	if (bg_read_file(&text, &len, path, 1024 * 1024) != BG_OK) {
		bg_buf_printf(b, "(unreadable: %s)\n", bg_error_last()->message);
		return;
	}
	bg_buf_append(b, text, len);
	free(text);
}

static void collect_host(bg_forensics *f)
{
	static const char *const files[] = {"/proc/loadavg", "/proc/pressure/cpu", "/proc/pressure/io",
					    "/proc/pressure/memory", "/proc/meminfo"};
	section s;
	size_t i;

	section_begin(&s, "host", "host.txt");
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		append_file(&s.out, files[i]);
	section_end(f, &s, BG_OK, NULL);
}

static int is_hung_task_line(const char *msg)
{
	return strstr(msg, "blocked for more than") || strstr(msg, "hung_task") || strstr(msg, "INFO: task ");
}

/* /dev/kmsg, non-blocking: each read is one record; EPIPE means records
 * were overwritten while we read, so carry on. */
static void collect_kernel_log(bg_forensics *f)
{
	char *ring[KMSG_TAIL_LINES] = {0};
	bg_buf hung = BG_BUF_INIT;
	bg_deadline d = bg_deadline_in(KMSG_MS);
	size_t count = 0, i;
	char rec[8192];
	section s;
	int fd, rc = BG_OK;

	section_begin(&s, "kernel-log", "kernel-log.txt");
	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = bg_error_set(BG_EIO, "cannot read /dev/kmsg: %s (a container without the host's kernel log?)",
				  strerror(errno));
		section_end(f, &s, rc, NULL);
		return;
	}
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue;
		if (n < 0 && errno != EAGAIN)
			rc = bg_error_set(BG_EIO, "reading /dev/kmsg: %s", strerror(errno));
		if (n <= 0)
			break;
		if (bg_deadline_expired(d)) {
			rc = bg_error_set(BG_ETIMEOUT, "reading /dev/kmsg took over %d ms: tail incomplete", KMSG_MS);
			break;
		}
		rec[n] = '\0';
		/* "prio,seq,usec,flags;message\n continuation lines" */
		char *semi = strchr(rec, ';'), *nl;
		unsigned long long usec = 0;
		sscanf(rec, "%*u,%*u,%llu", &usec);
		if (!semi)
			continue;
		if ((nl = strchr(semi + 1, '\n')))
			*nl = '\0';
		bg_buf line = BG_BUF_INIT;
		bg_buf_printf(&line, "[%5llu.%06llu] %s\n", usec / 1000000, usec % 1000000, semi + 1);
		if (is_hung_task_line(semi + 1))
			bg_buf_puts(&hung, line.data);
		free(ring[count % KMSG_TAIL_LINES]);
		ring[count % KMSG_TAIL_LINES] = bg_buf_detach(&line);
		count++;
	}
	close(fd);
	bg_buf_printf(&s.out, "--- hung-task lines\n%s", hung.data ? hung.data : "(none)\n");
	bg_buf_printf(&s.out, "--- last %zu of %zu records\n", count < KMSG_TAIL_LINES ? count : KMSG_TAIL_LINES,
		      count);
	for (i = count > KMSG_TAIL_LINES ? count - KMSG_TAIL_LINES : 0; i < count; i++)
		bg_buf_puts(&s.out, ring[i % KMSG_TAIL_LINES] ? ring[i % KMSG_TAIL_LINES] : "");
	if (hung.len)
		bg_buf_puts(&f->evidence, "the host kernel log has hung-task lines (see kernel-log.txt)\n");
	for (i = 0; i < KMSG_TAIL_LINES; i++)
		free(ring[i]);
	bg_buf_free(&hung);
	section_end(f, &s, rc, NULL);
}

/* --- storage and pruning --------------------------------------------------- */

static void make_id(bg_forensics *f)
{
	char verb[32];
	time_t now = (time_t)(f->started_wall_ms / 1000);
	struct tm tm;
	size_t i;

	snprintf(verb, sizeof(verb), "%s", f->o.verb && f->o.verb[0] ? f->o.verb : "forensics");
	for (i = 0; verb[i]; i++)
		if (!((verb[i] >= 'a' && verb[i] <= 'z') || (verb[i] >= '0' && verb[i] <= '9') || verb[i] == '-'))
			verb[i] = '_';
	gmtime_r(&now, &tm);
	strftime(f->id, sizeof(f->id), "%Y%m%dT%H%M%SZ-", &tm);
	snprintf(f->id + strlen(f->id), sizeof(f->id) - strlen(f->id), "%s", verb);
}

/* The new bundle's directory, open and flock'ed until the bundle is
 * written: a concurrent run's pruning skips it. -1 when that fails (the
 * bundle is still written). */
static int lock_bundle_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void open_store(bg_forensics *f)
{
	char base[768], path[1024];
	int n, rc;

	if (!f->o.state_dir || !f->o.state_dir[0]) {
		f->store_error = strdup("no state_dir configured");
		return;
	}
	snprintf(base, sizeof(base), "%s/forensics", f->o.state_dir);
	rc = bg_mkdir_p(base, 0700);
	if (rc != BG_OK) {
		f->store_error = strdup(bg_error_last()->message);
		return;
	}
	/* Two bundles in one second (a forensics then a cycle) get a suffix. */
	for (n = 1; n < 100; n++) {
		if (n > 1) {
			size_t len = strlen(f->id);
			char *dash = strrchr(f->id, '.');
			if (dash)
				len = (size_t)(dash - f->id);
			snprintf(f->id + len, sizeof(f->id) - len, ".%d", n);
		}
		snprintf(path, sizeof(path), "%s/%s", base, f->id);
		if (mkdir(path, 0700) == 0) {
			f->dir = strdup(path);
			f->dir_lock = lock_bundle_dir(path);
			return;
		}
		if (errno != EEXIST)
			break;
	}
	snprintf(path, sizeof(path), "cannot create a bundle directory under %s: %s", base, strerror(errno));
	f->store_error = strdup(path);
}

static int is_bundle_name(const char *name)
{
	int i;

	for (i = 0; i < 8; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	if (name[8] != 'T')
		return 0;
	for (i = 9; i < 15; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return name[15] == 'Z' && name[16] == '-';
}

static int bundle_filter(const struct dirent *de)
{
	return strlen(de->d_name) > ID_PREFIX_LEN && is_bundle_name(de->d_name);
}

/* Delete one bundle directory `name` under the open store `base_fd`,
 * without ever leaving it: the bundle is opened with O_NOFOLLOW|
 * O_DIRECTORY (a planted symlink or file is left alone), its entries are
 * unlinked relative to it (unlinkat never follows a symlink), and a bundle
 * whose writer still holds its flock is skipped. */
static void remove_bundle(int base_fd, const char *name)
{
	int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd); /* a concurrent run is still writing it */
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	(void)unlinkat(base_fd, name, AT_REMOVEDIR);
	closedir(d); /* drops the flock after the directory is gone */
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest `keep` bundles (the UTC time in their names sorts). */
static void prune(bg_forensics *f)
{
	char base[768];
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	int base_fd, list_fd;
	DIR *d;

	if (f->o.keep <= 0 || !f->dir)
		return;
	snprintf(base, sizeof(base), "%s/forensics", f->o.state_dir);
	base_fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (base_fd < 0)
		return;
	list_fd = dup(base_fd);
	d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
	if (!d) {
		if (list_fd >= 0)
			close(list_fd);
		close(base_fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!bundle_filter(de))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **grown = realloc(names, ncap * sizeof(*names));
			if (!grown)
				break;
			names = grown;
			cap = ncap;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		if (i + (size_t)f->o.keep < n && strcmp(names[i], f->id) != 0)
			remove_bundle(base_fd, names[i]);
		free(names[i]);
	}
	free(names);
	close(base_fd);
}

/* --- verdict, summary, text ------------------------------------------------ */

static void conclude(bg_forensics *f)
{
	bg_forensics_facts facts;
	char ev[2048];

	memset(&facts, 0, sizeof(facts));
	facts.qemu_running = f->qemu_running;
	facts.qemu_state = f->qemu_state;
	facts.qmp_answered = f->qmp_answered;
	facts.qmp_status = f->qmp_answered ? f->qmp_status : NULL;
	facts.blockstats_sampled = f->blockstats_sampled;
	facts.block_io_moved = f->block_io_moved;
	facts.block_io_pending = f->block_io_pending;
	pthread_mutex_lock(&f->mu); /* the agent's thread may still run (deferred) */
	facts.agent_answered = f->agent_answered;
	facts.agent_unconfigured = f->agent_unconfigured;
	facts.agent_exec_failed = f->agent_exec_failed;
	facts.agent_exec_why = f->agent_exec[0] ? f->agent_exec : NULL;
	pthread_mutex_unlock(&f->mu);
	facts.io_status = f->io_status[0] ? f->io_status : NULL;
	facts.inflight_known = f->inflight_known;
	facts.inflight = f->inflight;
	facts.inflight_why = f->inflight_why[0] ? f->inflight_why : NULL;
	facts.vcpus = f->vcpus;
	facts.vcpu_busy_pct = f->vcpu_busy_pct;
	facts.vcpu_oncpu_pct = f->vcpu_oncpu_pct;
	facts.qemu_dthreads = f->qemu_dthreads;
	facts.failed_ops_moved = f->failed_ops_moved;
	f->verdict = bg_forensics_rules(&facts, ev, sizeof(ev));
	/* The rules' reasons first, then the supporting observations. */
	{
		bg_buf all = BG_BUF_INIT;
		bg_buf_puts(&all, ev);
		if (f->evidence.data)
			bg_buf_puts(&all, f->evidence.data);
		bg_buf_free(&f->evidence);
		f->evidence = all;
	}
}

static void build_summary(bg_forensics *f)
{
	json_object *s = json_object_new_object(), *ev = json_object_new_array();
	char when[40];
	const char *p, *nl;

	if (!s || !ev) {
		json_object_put(s);
		json_object_put(ev);
		return;
	}
	bg_json_add_str(s, "id", f->id);
	bg_json_add_str(s, "verb", f->o.verb ? f->o.verb : "forensics");
	bg_json_add_int(s, "vmid", f->o.vmid);
	bg_json_add_str(s, "time", bg_time_iso8601(f->started_wall_ms, when, sizeof(when)));
	bg_json_add_str(s, "verdict", bg_verdict_name(f->verdict));
	for (p = f->evidence.data ? f->evidence.data : ""; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p) - 1;
		json_object_array_add(ev, json_object_new_string_len(p, (int)(nl - p + (*nl != '\n'))));
	}
	json_object_object_add(s, "evidence", ev);
	bg_json_add_str(s, "recommended_verb", bg_verdict_recommended_verb(f->verdict));
	bg_json_add_int(s, "qemu_pid", f->qemu_pid);
	bg_json_add_int(s, "qemu_start_ticks", f->qemu_start_ticks);
	if (f->qemu_state) {
		char st[2] = {f->qemu_state, '\0'};
		bg_json_add_str(s, "qemu_state", st);
	}
	bg_json_add_int(s, "time_ms", f->started_wall_ms);
	bg_json_add_bool(s, "qmp_answered", f->qmp_answered);
	bg_json_add_bool(s, "agent_answered", f->agent_answered);
	bg_json_add_str(s, "agent_exec", f->agent_exec[0] ? f->agent_exec : NULL);
	bg_json_add_str(s, "config_lock", f->o.config_lock);
	json_object_object_add(s, "sections", json_object_get(f->sections));
	bg_json_add_str(s, "stored", f->dir);
	bg_json_add_str(s, "store_error", f->store_error);
	/* false while deferred sections still run: bg_forensics_finish
	 * rewrites the summary with them and sets it */
	bg_json_add_bool(s, "complete", !f->qm_pending);
	f->summary = s;
}

/* The deferred sections that have not ended yet, comma-separated. */
static void still_running(const bg_forensics *f, bg_buf *out)
{
	static const char *const deferred[] = {"qm-status", "qm-pending", "qm-config", "agent-ping"};
	size_t i, j, n = json_object_array_length(f->sections);

	for (i = 0; i < sizeof(deferred) / sizeof(deferred[0]); i++) {
		int ended = 0;
		for (j = 0; j < n && !ended; j++)
			ended = strcmp(bg_json_str(json_object_array_get_idx(f->sections, j), "name", ""),
				       deferred[i]) == 0;
		if (!ended)
			bg_buf_printf(out, "%s%s", out->len ? ", " : "", deferred[i]);
	}
}

static void build_text(bg_forensics *f)
{
	bg_buf *t = &f->text;
	const char *verb = bg_verdict_recommended_verb(f->verdict);
	const char *p, *nl;
	size_t i, n = json_object_array_length(f->sections);

	bg_buf_printf(t, "forensics %s (VM %d)\n", f->id, f->o.vmid);
	bg_buf_printf(t, "verdict: %s\n", bg_verdict_name(f->verdict));
	bg_buf_printf(t, "recommended verb: %s\n", verb ? verb : "none (look inside the guest, or at the host)");
	bg_buf_puts(t, "evidence:\n");
	for (p = f->evidence.data ? f->evidence.data : ""; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p) - 1;
		bg_buf_puts(t, "  - ");
		bg_buf_append(t, p, (size_t)(nl - p + (*nl != '\n')));
		bg_buf_putc(t, '\n');
	}
	bg_buf_puts(t, "sections:\n");
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(f->sections, i);
		const char *err = bg_json_str(s, "error", NULL);
		bg_buf_printf(t, "  %-18s %-5s %6lld ms%s%s\n", bg_json_str(s, "name", "?"),
			      bg_json_bool(s, "skipped", 0) ? "skip"
			      : err                         ? "FAIL"
							    : "ok",
			      (long long)bg_json_int(s, "elapsed_ms", 0), err ? "  " : "", err ? err : "");
	}
	if (f->qm_pending) {
		bg_buf names = BG_BUF_INIT;
		still_running(f, &names);
		if (names.len)
			bg_buf_printf(t,
				      "  still running: %s (QMP is silent: qm status waits out its own QMP timeout, "
				      "3 s on Proxmox); the bundle gets them when they end\n",
				      names.data);
		bg_buf_free(&names);
	}
	if (f->dir)
		bg_buf_printf(t, "stored: %s\n", f->dir);
	else
		bg_buf_printf(t, "not stored: %s\n", f->store_error ? f->store_error : "unknown reason");
}

/* --- the whole ------------------------------------------------------------- */

/* --- the sections that wait, side by side -------------------------------------- */

/* The qm calls that need nothing else, each in its own thread: qm status
 * waits on QMP (3 s on Proxmox when it is silent), qm pending does not. */
static void *qm_worker(void *arg)
{
	static const char *const qm_status[] = {"status", "{vmid}", "--verbose", NULL};
	bg_forensics *f = arg;

	collect_qm(f, "qm-status", "qm-status.txt", qm_status, NULL);
	return NULL;
}

static void *pending_worker(void *arg)
{
	static const char *const qm_pending[] = {"pending", "{vmid}", NULL};
	bg_forensics *f = arg;

	collect_qm(f, "qm-pending", "qm-pending.txt", qm_pending, NULL);
	return NULL;
}

/* qm config, then the agent ping, whose wait depends on it. */
static void *agent_worker(void *arg)
{
	static const char *const qm_config[] = {"config", "{vmid}", NULL};
	bg_forensics *f = arg;
	bg_buf config = BG_BUF_INIT;

	collect_qm(f, "qm-config", "qm-config.txt", qm_config, &config);
	/* A silent agent is evidence only where one is configured; an unread
	 * config keeps the stricter reading. */
	pthread_mutex_lock(&f->mu); /* read by conclude while deferred */
	f->agent_unconfigured = config.data && !config_enables_agent(config.data);
	pthread_mutex_unlock(&f->mu);
	bg_buf_free(&config);
	collect_agent(f);
	return NULL;
}

/* Where each section stands in the bundle, whatever order they ended in. */
static int section_rank(json_object *s)
{
	static const char *const order[] = {"process",    "query-status", "query-block", "query-blockstats",
					    "query-jobs", "agent-ping",   "qm-status",   "qm-config",
					    "qm-pending", "proxmox",      "gdb",         "host",
					    "kernel-log"};
	const char *name = bg_json_str(s, "name", "");
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(name, order[i]) == 0)
			return (int)i;
	return 100;
}

static int section_cmp(const void *a, const void *b)
{
	json_object *const *x = a, *const *y = b;
	int d = section_rank(*x) - section_rank(*y);
	return d ? d : strcmp(bg_json_str(*x, "name", ""), bg_json_str(*y, "name", ""));
}

/*
 * The sections that wait (QMP and the block counters' sample, the guest
 * agent, qm) run side by side under their own deadlines, so a frozen QEMU
 * costs the longest wait, not their sum (issue 13: a SIGSTOPped QEMU took
 * 5 s before the kill). The process was read first: a QEMU in state T
 * cannot answer QMP, so QMP gets a short look. This thread keeps the QMP
 * sections (the only ones that add evidence lines while others run); the
 * workers only end sections, which section_end serialises. Where a thread
 * cannot start, its sections run here, one after another.
 */
static void collect_in_parallel(bg_forensics *f)
{
	static void *(*const worker[3])(void *) = {qm_worker, pending_worker, agent_worker};
	int i;

	if (f->qemu_state == 'T' || f->qemu_state == 't')
		f->qmp_wait_ms = f->o.qmp_timeout_ms < QMP_STOPPED_MS ? f->o.qmp_timeout_ms : QMP_STOPPED_MS;
	else if (f->qemu_state == 'D')
		f->qmp_wait_ms = f->o.qmp_timeout_ms < QMP_DSTATE_MS ? f->o.qmp_timeout_ms : QMP_DSTATE_MS;
	for (i = 0; i < 3; i++)
		f->started[i] = pthread_create(&f->workers[i], NULL, worker[i], f) == 0;
	collect_qmp_status(f);
	collect_qmp_block(f);
	collect_qmp_blockstats(f);
	qmp_section(f, "query-jobs", "qmp-query-jobs.json", NULL);
	collect_host(f);
	collect_kernel_log(f);
	collect_proxmox(f);
	for (i = 0; i < 3; i++)
		if (!f->started[i])
			worker[i](f); /* no thread: here, one after another */
	if (f->o.defer_qm && !f->qmp_answered && f->qemu_running) {
		/* QMP is silent: the verdict is drawn from the process and QMP
		 * alone (qmp-unresponsive), so the qm sections feed nothing,
		 * and `qm status` waits out qm's own QMP timeout (3 s on Proxmox,
		 * for plain and --verbose alike), `qm config` costs a program's
		 * start, the agent ping its wait. They run on; the caller acts,
		 * then bg_forensics_finish completes the bundle. */
		pthread_mutex_lock(&f->mu);
		f->qm_pending = 1;
		pthread_mutex_unlock(&f->mu);
		return;
	}
	for (i = 0; i < 3; i++)
		if (f->started[i])
			pthread_join(f->workers[i], NULL);
}

static int check_options(const bg_forensics_options *o)
{
	if (!o || o->vmid <= 0 || !o->qm || !o->run_dir)
		return bg_error_set(BG_EINVAL, "forensics: vmid, qm and run_dir are required");
	if (o->qm_timeout_ms <= 0 || o->qmp_timeout_ms <= 0 || o->blockstats_interval_ms < 0)
		return bg_error_set(BG_EINVAL, "forensics: timeouts must be positive");
	return BG_OK;
}

/* summary.json, (re)written; under f->mu. */
static void write_summary(bg_forensics *f)
{
	char *summary;

	if (!f->dir || !f->summary)
		return;
	summary = bg_json_dump(f->summary);
	if (summary && write_file(f->dir, "summary.json", summary, strlen(summary)) != BG_OK && !f->store_error)
		f->store_error = strdup(bg_error_last()->message);
	free(summary);
}

/* Every section is in: prune, and let the bundle be pruned in turn. */
static void complete(bg_forensics *f)
{
	prune(f);
	if (f->dir_lock >= 0) {
		close(f->dir_lock); /* written: prunable from now on */
		f->dir_lock = -1;
	}
	f->finished = 1;
}

int bg_forensics_collect(bg_forensics **out, const bg_forensics_options *opts)
{
	bg_forensics *f;
	int rc;

	if (!out)
		return bg_error_set(BG_EINVAL, "bg_forensics_collect: no output");
	*out = NULL;
	rc = check_options(opts);
	if (rc != BG_OK)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->sections = json_object_new_array())) {
		free(f);
		return bg_error_oom();
	}
	f->o = *opts;
	f->dir_lock = -1;
	f->qmp_wait_ms = opts->qmp_timeout_ms;
	pthread_mutex_init(&f->mu, NULL);
	f->started_wall_ms = bg_wall_ms();
	snprintf(f->pidfile, sizeof(f->pidfile), "%s/%d.pid", opts->run_dir, opts->vmid);
	snprintf(f->qmp_path, sizeof(f->qmp_path), "%s/%d.qmp", opts->run_dir, opts->vmid);
	snprintf(f->qga_path, sizeof(f->qga_path), "%s/%d.qga", opts->run_dir, opts->vmid);
	make_id(f);
	open_store(f);

	collect_process(f);
	collect_in_parallel(f);
	collect_gdb(f);

	conclude(f);
	pthread_mutex_lock(&f->mu); /* a deferred qm section may end meanwhile */
	json_object_array_sort(f->sections, section_cmp);
	build_summary(f);
	write_summary(f);
	build_text(f);
	pthread_mutex_unlock(&f->mu);
	if (!f->qm_pending)
		complete(f);
	bg_error_clear();
	*out = f;
	return BG_OK;
}

int bg_forensics_pending(const bg_forensics *f)
{
	return f && f->qm_pending && !f->finished;
}

void bg_forensics_finish(bg_forensics *f)
{
	if (!f || f->finished || f->reused)
		return;
	if (f->qm_pending) {
		int i;
		for (i = 0; i < 3; i++)
			if (f->started[i])
				pthread_join(f->workers[i], NULL);
		pthread_mutex_lock(&f->mu);
		json_object_array_sort(f->sections, section_cmp);
		if (f->summary) {
			bg_json_add_bool(f->summary, "agent_answered", f->agent_answered);
			bg_json_add_str(f->summary, "agent_exec", f->agent_exec[0] ? f->agent_exec : NULL);
			bg_json_add_bool(f->summary, "complete", 1);
		}
		write_summary(f); /* now with every section */
		pthread_mutex_unlock(&f->mu);
	}
	complete(f);
}

/* --- reuse of a bundle taken seconds before ----------------------------------- */

/* The summary.json of bundle `name` in the store, parsed, or NULL. */
static json_object *read_summary(const char *base, const char *name)
{
	char path[1024], *buf;
	json_object *doc = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/summary.json", base, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	buf = malloc(256 * 1024);
	if (buf && bg_host_check_opened(fd, path) == BG_OK) {
		while (len < 256 * 1024 - 1 && (n = read(fd, buf + len, 256 * 1024 - 1 - len)) > 0)
			len += (size_t)n;
		doc = bg_json_parse(buf, len, "summary.json");
	}
	free(buf);
	close(fd);
	return doc;
}

/* The newest bundle's name in the store (caller frees), or NULL. */
static char *newest_bundle(const char *base)
{
	struct dirent *de;
	char *best = NULL;
	DIR *d = opendir(base);

	if (!d)
		return NULL;
	while ((de = readdir(d)))
		if (bundle_filter(de) && (!best || strcmp(de->d_name, best) > 0)) {
			free(best);
			best = strdup(de->d_name);
		}
	closedir(d);
	return best;
}

int bg_forensics_reuse(bg_forensics **out, const bg_forensics_options *opts, int max_age_s)
{
	char pidfile[512], base[768], *name = NULL;
	json_object *doc = NULL, *ev;
	bg_proc_info p;
	bg_forensics *f = NULL;
	int pid = 0, rc = BG_ENOTFOUND;
	int64_t age_ms;
	size_t i;

	*out = NULL;
	if (check_options(opts) != BG_OK || !opts->state_dir || max_age_s <= 0)
		return BG_EINVAL;
	snprintf(pidfile, sizeof(pidfile), "%s/%d.pid", opts->run_dir, opts->vmid);
	snprintf(base, sizeof(base), "%s/forensics", opts->state_dir);
	memset(&p, 0, sizeof(p));
	if (bg_pidfile_read(pidfile, &pid) != BG_OK || bg_proc_is_qemu_for_vm(pid, opts->vmid, pidfile) != 1 ||
	    bg_proc_read(&p, pid) != BG_OK)
		goto done;
	if (!(name = newest_bundle(base)) || !(doc = read_summary(base, name)))
		goto done;
	age_ms = bg_wall_ms() - bg_json_int(doc, "time_ms", 0);
	/* the same process (pid and start time), in the same state, seconds ago */
	if (bg_json_int(doc, "qemu_pid", -1) != pid || bg_json_int(doc, "qemu_start_ticks", -1) != p.start_time_ticks ||
	    bg_json_str(doc, "qemu_state", "")[0] != p.state || age_ms < 0 || age_ms > (int64_t)max_age_s * 1000 ||
	    bg_verdict_from_name(bg_json_str(doc, "verdict", "")) == BG_VERDICT_UNKNOWN)
		goto done;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->sections = json_object_new_array())) {
		free(f);
		f = NULL;
		rc = bg_error_oom();
		goto done;
	}
	f->o = *opts;
	f->dir_lock = -1;
	pthread_mutex_init(&f->mu, NULL);
	f->reused = 1;
	f->started_wall_ms = bg_json_int(doc, "time_ms", 0);
	snprintf(f->id, sizeof(f->id), "%s", bg_json_str(doc, "id", name));
	f->dir = malloc(strlen(base) + strlen(name) + 2);
	if (f->dir)
		snprintf(f->dir, strlen(base) + strlen(name) + 2, "%s/%s", base, name);
	f->verdict = bg_verdict_from_name(bg_json_str(doc, "verdict", ""));
	f->qemu_pid = pid;
	f->qemu_running = 1;
	f->qemu_state = p.state;
	f->qemu_start_ticks = p.start_time_ticks;
	f->qmp_answered = bg_json_bool(doc, "qmp_answered", 0);
	f->agent_answered = bg_json_bool(doc, "agent_answered", 0);
	ev = bg_json_arr(doc, "evidence");
	for (i = 0; ev && i < json_object_array_length(ev); i++)
		bg_buf_printf(&f->evidence, "%s\n", json_object_get_string(json_object_array_get_idx(ev, i)));
	bg_buf_printf(&f->text, "reused forensics %s (VM %d): taken %lld s ago of the same QEMU (pid %d, state %c)\n",
		      f->id, opts->vmid, (long long)(age_ms / 1000), pid, p.state);
	f->summary = json_object_get(doc);
	*out = f;
	rc = BG_OK;
done:
	bg_proc_info_clear(&p);
	json_object_put(doc);
	free(name);
	return rc;
}

int bg_forensics_reused(const bg_forensics *f)
{
	return f ? f->reused : 0;
}

bg_verdict bg_forensics_verdict(const bg_forensics *f)
{
	return f ? f->verdict : BG_VERDICT_UNKNOWN;
}

const char *bg_forensics_id(const bg_forensics *f)
{
	return f ? f->id : NULL;
}

const char *bg_forensics_evidence(const bg_forensics *f)
{
	return f && f->evidence.data ? f->evidence.data : "";
}

const char *bg_forensics_path(const bg_forensics *f)
{
	return f ? f->dir : NULL;
}

int bg_forensics_qmp_answered(const bg_forensics *f)
{
	return f ? f->qmp_answered : 0;
}

int bg_forensics_qemu_pid(const bg_forensics *f)
{
	return f ? f->qemu_pid : 0;
}

const char *bg_forensics_text(const bg_forensics *f)
{
	return f && f->text.data ? f->text.data : "";
}

json_object *bg_forensics_summary(const bg_forensics *f)
{
	return f ? f->summary : NULL;
}

void bg_forensics_free(bg_forensics *f)
{
	if (!f)
		return;
	bg_forensics_finish(f); /* never leave a section's thread behind */
	pthread_mutex_destroy(&f->mu);
	json_object_put(f->summary);
	json_object_put(f->sections);
	bg_buf_free(&f->evidence);
	bg_buf_free(&f->text);
	free(f->dir);
	free(f->store_error);
	free(f);
}
