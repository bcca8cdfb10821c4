/* The forensics bundle of SPEC §6: "autopsy before shooting". Every
 * section has its own deadline and its own error; a failing section is
 * evidence too, never a reason to stop. The time-sensitive evidence (the
 * process, QMP, the block counters) comes first, the slow or intrusive
 * (qm, gdb) after it. Files are written as each section ends, so whatever
 * was collected survives if the verb is interrupted. */
#include "host/bundle.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "host/proc.h"
#include "host/qm.h"
#include "host/qmp.h"
#include "host/wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GDB_PATH        "/usr/bin/gdb"
#define AGENT_MAX_MS    3000
#define KMSG_MS         2000
#define KMSG_TAIL_LINES 100
#define ID_PREFIX_LEN   17 /* "20260611T164742Z-" */

struct bg_forensics {
	bg_forensics_options o;
	int64_t started_wall_ms; /* the bundle's time: when collection began */
	char id[96];
	char *dir;         /* where stored, or NULL */
	char *store_error; /* why not stored */
	char pidfile[512], qmp_path[512], qga_path[512];
	json_object *summary;
	json_object *sections;
	bg_buf evidence;
	bg_buf text;
	bg_verdict verdict;
	int qemu_pid;
	char qemu_state;
	int qemu_running;
	int qmp_answered;
	char qmp_status[32];
	int blockstats_sampled, block_io_moved, block_io_pending;
	int agent_answered;
	int agent_unconfigured; /* qm config read, and no `agent: 1` in it */
	char io_status[160];
	const char *qmp_skip; /* why later QMP sections are skipped, or NULL */
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
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return bg_error_set(BG_EIO, "cannot write %s: %s", path, strerror(e));
		}
		data += n;
		len -= (size_t)n;
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
		json_object_array_add(f->sections, j);
	}
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
	char path[64], buf[1024], *p;
	long long ut = -1, st = -1;
	int fd, field;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (field = 2; p && field < 14; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p && sscanf(p + 1, "%lld %lld", &ut, &st) == 2)
		return ut + st;
	return -1;
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
	rc = bg_qmp_command(f->qmp_path, command, NULL, f->o.qmp_timeout_ms, &ret);
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

static void collect_qmp_blockstats(bg_forensics *f)
{
	json_object *first = NULL, *second = NULL, *all;
	long long cpu0, cpu1;
	section s;
	int rc, devices = 0;
	long hz = sysconf(_SC_CLK_TCK);

	section_begin(&s, "query-blockstats", "qmp-query-blockstats.json");
	if (!f->qemu_running || f->qmp_skip) {
		section_end(f, &s, BG_OK, f->qemu_running ? f->qmp_skip : "QEMU is not running");
		return;
	}
	cpu0 = cpu_ticks(f->qemu_pid);
	rc = bg_qmp_command(f->qmp_path, "query-blockstats", NULL, f->o.qmp_timeout_ms, &first);
	if (rc == BG_OK) {
		bg_sleep_ms(f->o.blockstats_interval_ms);
		rc = bg_qmp_command(f->qmp_path, "query-blockstats", NULL, f->o.qmp_timeout_ms, &second);
		if (rc != BG_OK)
			bg_error_prefix("second sample: ");
	}
	cpu1 = cpu_ticks(f->qemu_pid);
	all = json_object_new_object();
	if (all) {
		bg_json_add_int(all, "interval_ms", f->o.blockstats_interval_ms);
		json_object_object_add(all, "first", json_object_get(first));
		json_object_object_add(all, "second", json_object_get(second));
	}
	if (rc == BG_OK) {
		f->block_io_moved = bg_forensics_blockstats_moved(first, second, &devices);
		f->blockstats_sampled = devices > 0;
		if (all) {
			bg_json_add_int(all, "devices_compared", devices);
			bg_json_add_bool(all, "moved", f->block_io_moved);
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
	}
	if (all)
		put_json(&s.out, all);
	json_object_put(all);
	json_object_put(first);
	json_object_put(second);
	section_end(f, &s, rc, NULL);
}

/* --- the guest agent ------------------------------------------------------- */

typedef struct line_conn {
	int fd;
	bg_buf in;
	bg_deadline d;
} line_conn;

static int lc_wait(line_conn *c, short ev)
{
	struct pollfd p = {c->fd, ev, 0};

	for (;;) {
		int n = poll(&p, 1, bg_deadline_poll_ms(c->d));
		if (n > 0)
			return BG_OK;
		if (n == 0)
			return BG_ETIMEOUT;
		if (errno != EINTR)
			return BG_EIO;
	}
}

static int lc_connect(line_conn *c, const char *path)
{
	struct sockaddr_un a;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path))
		return bg_error_set(BG_EINVAL, "socket path too long: %s", path);
	memcpy(a.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return bg_error_set(BG_EIO, "socket: %s", strerror(errno));
	for (;;) {
		if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return BG_OK;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && !bg_deadline_expired(c->d)) {
			bg_sleep_ms(20);
			continue;
		}
		if (errno == ENOENT)
			return bg_error_set(BG_ENOTFOUND, "no guest agent socket %s (agent not configured?)", path);
		return bg_error_set(errno == EAGAIN ? BG_ETIMEOUT : BG_ECONNECT, "guest agent socket %s: %s", path,
				    strerror(errno));
	}
}

static int lc_send(line_conn *c, const char *line)
{
	size_t len = strlen(line);

	while (len) {
		ssize_t n = send(c->fd, line, len, MSG_NOSIGNAL);
		if (n > 0) {
			line += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			if (lc_wait(c, POLLOUT) != BG_OK)
				return bg_error_set(BG_ETIMEOUT, "guest agent: write timed out");
		} else if (!(n < 0 && errno == EINTR)) {
			return bg_error_set(BG_EIO, "guest agent: write: %s", strerror(errno));
		}
	}
	return BG_OK;
}

int bg_qga_take_message(bg_buf *in, json_object **msg)
{
	char *nl;

	*msg = NULL;
	while ((nl = in->data ? memchr(in->data, '\n', in->len) : NULL)) {
		size_t len = (size_t)(nl - in->data), skip = 0;
		while (skip < len && (unsigned char)in->data[skip] == 0xFF)
			skip++;
		*nl = '\0';
		*msg = json_tokener_parse(in->data + skip);
		memmove(in->data, nl + 1, in->len - len - 1);
		in->len -= len + 1;
		if (*msg)
			return 1;
	}
	return 0;
}

/* The next JSON line; the agent's 0xFF sync sentinel and garbage are
 * skipped (NULL parse results are retried). */
static int lc_recv(line_conn *c, json_object **msg)
{
	char chunk[4096];

	*msg = NULL;
	for (;;) {
		if (bg_qga_take_message(&c->in, msg))
			return BG_OK;
		if (c->in.len > 65536)
			return bg_error_set(BG_EPROTO, "guest agent: an over-long line");
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n > 0) {
			if (bg_buf_append(&c->in, chunk, (size_t)n) != BG_OK)
				return BG_ENOMEM;
		} else if (n == 0) {
			return bg_error_set(BG_EPROTO, "guest agent: socket closed");
		} else if (errno == EAGAIN) {
			if (lc_wait(c, POLLIN) != BG_OK)
				return bg_error_set(BG_ETIMEOUT, "guest agent: no answer in time");
		} else if (errno != EINTR) {
			return bg_error_set(BG_EIO, "guest agent: read: %s", strerror(errno));
		}
	}
}

/* guest-sync with a fresh id flushes stale replies, then guest-ping. */
static int agent_ping(const char *path, int timeout_ms)
{
	line_conn c = {-1, BG_BUF_INIT, bg_deadline_in(timeout_ms)};
	long long sync_id = (long long)(bg_wall_ms() % 1000000000);
	json_object *msg = NULL;
	char req[128];
	int rc;

	rc = lc_connect(&c, path);
	snprintf(req, sizeof(req), "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":%lld}}\n", sync_id);
	if (rc == BG_OK)
		rc = lc_send(&c, req);
	while (rc == BG_OK) {
		rc = lc_recv(&c, &msg);
		if (rc == BG_OK && bg_json_int(msg, "return", -1) == sync_id) {
			json_object_put(msg);
			break;
		}
		json_object_put(msg);
	}
	if (rc == BG_OK)
		rc = lc_send(&c, "{\"execute\":\"guest-ping\"}\n");
	while (rc == BG_OK) {
		rc = lc_recv(&c, &msg);
		if (rc != BG_OK)
			break;
		json_object *err = bg_json_obj(msg, "error");
		int done = err || json_object_object_get_ex(msg, "return", NULL);
		if (err)
			rc = bg_error_set(BG_EPROTO, "guest agent: guest-ping failed: %s",
					  bg_json_str(err, "desc", "?"));
		json_object_put(msg);
		if (done)
			break;
	}
	if (c.fd >= 0)
		close(c.fd);
	bg_buf_free(&c.in);
	if (rc == BG_ETIMEOUT)
		bg_error_set(BG_ETIMEOUT, "guest agent did not answer guest-ping within %d ms", timeout_ms);
	return rc;
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
	if (f->qmp_skip) {
		/* The agent's channel is served by the same hung main loop. */
		section_end(f, &s, BG_OK, "QMP did not answer: the agent channel is served by the same QEMU main loop");
		return;
	}
	rc = agent_ping(f->qga_path, ms);
	if (rc == BG_OK) {
		f->agent_answered = 1;
		bg_buf_printf(&s.out, "guest-ping answered in %lld ms\n", (long long)(bg_now_ms() - s.t0));
	}
	section_end(f, &s, rc, NULL);
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
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n;

	bg_buf_printf(b, "--- %s\n", path);
	if (fd < 0) {
		bg_buf_printf(b, "(unreadable: %s)\n", strerror(errno));
		return;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			bg_buf_append(b, chunk, (size_t)n);
	close(fd);
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

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[1024], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return bg_error_set(BG_EINVAL, "path too long: %s", path);
	for (p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return bg_error_set(BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
			*p = '/';
		}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return bg_error_set(BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
	return BG_OK;
}

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

static void open_store(bg_forensics *f)
{
	char base[768], path[1024];
	int n, rc;

	if (!f->o.state_dir || !f->o.state_dir[0]) {
		f->store_error = strdup("no state_dir configured");
		return;
	}
	snprintf(base, sizeof(base), "%s/forensics", f->o.state_dir);
	rc = mkdir_p(base, 0700);
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

static void remove_bundle(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char file[1280];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
			unlink(file);
		}
	closedir(d);
	rmdir(path);
}

static void prune(bg_forensics *f)
{
	char base[768], path[1024];
	struct dirent **names = NULL;
	int n, i;

	if (f->o.keep <= 0 || !f->dir)
		return;
	snprintf(base, sizeof(base), "%s/forensics", f->o.state_dir);
	n = scandir(base, &names, bundle_filter, alphasort); /* the UTC time sorts */
	for (i = 0; i < n; i++) {
		if (i < n - f->o.keep && strcmp(names[i]->d_name, f->id) != 0) {
			snprintf(path, sizeof(path), "%s/%s", base, names[i]->d_name);
			remove_bundle(path);
		}
		free(names[i]);
	}
	free(names);
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
	facts.agent_answered = f->agent_answered;
	facts.agent_unconfigured = f->agent_unconfigured;
	facts.io_status = f->io_status[0] ? f->io_status : NULL;
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
	bg_json_add_bool(s, "qmp_answered", f->qmp_answered);
	bg_json_add_bool(s, "agent_answered", f->agent_answered);
	json_object_object_add(s, "sections", json_object_get(f->sections));
	bg_json_add_str(s, "stored", f->dir);
	bg_json_add_str(s, "store_error", f->store_error);
	f->summary = s;
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
	if (f->dir)
		bg_buf_printf(t, "stored: %s\n", f->dir);
	else
		bg_buf_printf(t, "not stored: %s\n", f->store_error ? f->store_error : "unknown reason");
}

/* --- the whole ------------------------------------------------------------- */

static int check_options(const bg_forensics_options *o)
{
	if (!o || o->vmid <= 0 || !o->qm || !o->run_dir)
		return bg_error_set(BG_EINVAL, "forensics: vmid, qm and run_dir are required");
	if (o->qm_timeout_ms <= 0 || o->qmp_timeout_ms <= 0 || o->blockstats_interval_ms < 0)
		return bg_error_set(BG_EINVAL, "forensics: timeouts must be positive");
	return BG_OK;
}

int bg_forensics_collect(bg_forensics **out, const bg_forensics_options *opts)
{
	static const char *const qm_status[] = {"status", "{vmid}", "--verbose", NULL};
	static const char *const qm_config[] = {"config", "{vmid}", NULL};
	static const char *const qm_pending[] = {"pending", "{vmid}", NULL};
	bg_buf config = BG_BUF_INIT;
	bg_forensics *f;
	char *summary;
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
	f->started_wall_ms = bg_wall_ms();
	snprintf(f->pidfile, sizeof(f->pidfile), "%s/%d.pid", opts->run_dir, opts->vmid);
	snprintf(f->qmp_path, sizeof(f->qmp_path), "%s/%d.qmp", opts->run_dir, opts->vmid);
	snprintf(f->qga_path, sizeof(f->qga_path), "%s/%d.qga", opts->run_dir, opts->vmid);
	make_id(f);
	open_store(f);

	collect_process(f);
	collect_qmp_status(f);
	collect_qmp_block(f);
	collect_qmp_blockstats(f);
	qmp_section(f, "query-jobs", "qmp-query-jobs.json", NULL);
	collect_agent(f);
	collect_qm(f, "qm-status", "qm-status.txt", qm_status, NULL);
	collect_qm(f, "qm-config", "qm-config.txt", qm_config, &config);
	/* A silent agent is evidence only where one is configured; an unread
	 * config keeps the stricter reading. */
	f->agent_unconfigured = config.data && !config_enables_agent(config.data);
	bg_buf_free(&config);
	collect_qm(f, "qm-pending", "qm-pending.txt", qm_pending, NULL);
	collect_gdb(f);
	collect_host(f);
	collect_kernel_log(f);

	conclude(f);
	build_summary(f);
	if (f->dir && f->summary) {
		summary = bg_json_dump(f->summary);
		if (summary && write_file(f->dir, "summary.json", summary, strlen(summary)) != BG_OK && !f->store_error)
			f->store_error = strdup(bg_error_last()->message);
		free(summary);
	}
	prune(f);
	build_text(f);
	bg_error_clear();
	*out = f;
	return BG_OK;
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
	json_object_put(f->summary);
	json_object_put(f->sections);
	bg_buf_free(&f->evidence);
	bg_buf_free(&f->text);
	free(f->dir);
	free(f->store_error);
	free(f);
}
