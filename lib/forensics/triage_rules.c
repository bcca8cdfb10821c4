/* The triage's rules: each reads the sections it needs, and when its
 * condition holds adds one finding that quotes the lines it rests on.
 * Thresholds are chosen to stay quiet on a busy but healthy box: an
 * operator in an incident needs the few things that are really wrong. */
#include "forensics/triage_int.h"
#include "core/buf.h"
#include "core/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FULL_WARN_PCT     90
#define FULL_CRIT_PCT     98
#define PSI_SOME_WARN     20.0 /* % of time some task waited for memory (avg10) */
#define PSI_FULL_WARN     5.0  /* % of time all tasks waited */
#define PSI_FULL_CRIT     20.0
#define IO_FULL_WARN      10.0 /* % of time all tasks waited for I/O (avg10) */
#define IO_FULL_CRIT      50.0
#define SWAPIN_THRASH     100 /* pages swapped in per second */
#define SWAP_PSI_THRASH   10.0
#define SWAP_HOLDER_PCT   30 /* % of the RAM a process holds to be the cause of a thrash */
#define AVAIL_WARN_PCT    5.0
#define AVAIL_CRIT_PCT    2.0
#define LOAD_WARN_PER_CPU 2.0
#define LOAD_CRIT_PER_CPU 8.0
#define MAX_EVIDENCE      12
#define RUNAWAY_PCT       80.0 /* % of one CPU */
#define RUNAWAY_MIN_CPU_S 10
#define RUNAWAY_BUSY_PCT  50.0 /* … while the CPUs are saturated */
#define TMPFS_WARN_PCT    25.0 /* Shmem, % of MemTotal */
#define TMPFS_CRIT_PCT    50.0
#define STORM_PCT         80 /* threads or processes, % of pid_max / threads-max */
#define STORM_CRIT_PCT    95
#define STORM_CHILDREN    500  /* children of one parent, half of all processes */
#define STORM_MIN_PARENT  20   /* children before a parent is named the culprit */
#define HUNG_UNIT_S       30.0 /* activating or deactivating this long */

/* Iterate over the lines of `text`: `line` and `len` receive each. */
static int next_line(const char **p, const char **line, size_t *len)
{
	if (!*p || !**p)
		return 0;
	*line = *p;
	*len = strcspn(*p, "\n");
	*p += *len;
	if (**p == '\n')
		(*p)++;
	return 1;
}

static int line_has(const char *line, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (strncasecmp(line + i, needle, n) == 0)
			return 1;
	return 0;
}

static void add_line(bg_buf *b, const char *line, size_t len)
{
	bg_buf_append(b, line, len);
	bg_buf_putc(b, '\n');
}

/* The guest prints these counters: a hostile or broken one may print
 * anything. Clamped to [0, 2^50] (kB: an exbibyte; pages: more than any
 * machine swaps), sums and differences of a few of them cannot overflow. */
#define COUNTER_MAX (1LL << 50)

static long long counter(const char *s)
{
	long long v = strtoll(s, NULL, 10);
	return v < 0 ? 0 : v > COUNTER_MAX ? COUNTER_MAX : v;
}

/* The line of `text` that starts with `prefix`, as a number after it. */
static int value_after(const char *text, const char *prefix, long long *out)
{
	const char *p = text, *line;
	size_t len, n = strlen(prefix);

	while (next_line(&p, &line, &len))
		if (len > n && strncmp(line, prefix, n) == 0) {
			*out = counter(line + n);
			return 1;
		}
	return 0;
}

/* Add the finding; `culprit` (may be NULL or "") names what to act on. */
static int finish_c(bg_triage *t, const char *rule, bg_severity sev, bg_buf *summary, bg_buf *evidence,
		    const char *culprit)
{
	int rc = BG_ENOMEM;

	if (summary->data && evidence->data)
		rc = bg_triage_add_finding(t, rule, sev, summary->data, evidence->data,
					   culprit && culprit[0] ? culprit : NULL);
	bg_buf_free(summary);
	bg_buf_free(evidence);
	return rc == BG_ENOMEM ? bg_error_oom() : rc;
}

static int finish(bg_triage *t, const char *rule, bg_severity sev, bg_buf *summary, bg_buf *evidence)
{
	return finish_c(t, rule, sev, summary, evidence, NULL);
}

/* ---- names the guest printed -------------------------------------------- */

/* A name or path from the guest, made safe to carry in a culprit or a
 * summary: control bytes become '?', the length is bounded. */
static void clean_copy(char *dst, size_t n, const char *src, size_t len)
{
	size_t i;

	if (n == 0)
		return;
	if (len >= n)
		len = n - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[len] = '\0';
}

typedef struct fld {
	const char *s;
	size_t n;
} fld;

/* The blank-separated fields of a line, at most `max`; the last one keeps
 * the rest of the line (a command name may hold blanks). */
static size_t split_fields(const char *line, size_t len, fld *f, size_t max)
{
	size_t i = 0, k = 0, start;

	while (k < max) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		if (k == max - 1) {
			size_t e = len;
			while (e > i && isspace((unsigned char)line[e - 1]))
				e--;
			f[k].s = line + i;
			f[k++].n = e - i;
			break;
		}
		while (i < len && !isspace((unsigned char)line[i]))
			i++;
		f[k].s = line + start;
		f[k++].n = i - start;
	}
	return k;
}

static int fld_is(const fld *f, const char *word)
{
	return f->n == strlen(word) && strncmp(f->s, word, f->n) == 0;
}

/* A line that starts with `prefix` (the rest after it in *rest). */
static int starts(const char *line, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && strncmp(line, prefix, n) == 0;
}

/* The lines of `text` after the line that starts with `header`, up to
 * the next line that starts with `stop` (NULL: to the end); *p is left
 * at the first of them. Returns 0 when there is no such header. */
static int block_after(const char *text, const char *header, const char **p)
{
	const char *q = text, *line;
	size_t len;

	while (text && next_line(&q, &line, &len))
		if (starts(line, len, header)) {
			*p = q;
			return 1;
		}
	return 0;
}

/* "culprit" strings, exactly as fixed for the remedies: pid:PID:COMM,
 * unit:NAME, mount:PATH, file:PATH. */
static void culprit_pid(char *buf, size_t n, long long pid, const char *comm)
{
	int k = snprintf(buf, n, "pid:%lld:", pid);

	if (k > 0 && (size_t)k < n)
		clean_copy(buf + k, n - (size_t)k, comm, strlen(comm));
}

static void culprit_of(char *buf, size_t n, const char *kind, const char *name, size_t len)
{
	size_t k = strlen(kind);

	buf[0] = '\0';
	if (n < k + 2)
		return;
	memcpy(buf, kind, k);
	buf[k] = ':';
	clean_copy(buf + k + 1, n - k - 1, name, len);
}

/* ---- process tables ------------------------------------------------------ */

typedef struct proc_row {
	long long pid;
	char comm[64];
	double pcpu;      /* % of one CPU; < 0 unknown */
	long long rss_kb; /* < 0 unknown */
	long long cpu_s;  /* CPU time in seconds; < 0 unknown */
	const char *line; /* the row as printed */
	size_t len;
} proc_row;

#define MAX_ROWS 16

/* "[DD-]HH:MM:SS" or "MM:SS" as seconds, -1 when not a time. */
static long long cpu_time(const fld *f)
{
	long long parts[4] = {0}, v = 0;
	size_t i, np = 0;
	long long days = 0;

	for (i = 0; i < f->n; i++) {
		char c = f->s[i];
		if (isdigit((unsigned char)c)) {
			v = v * 10 + (c - '0');
			if (v > 1000000)
				return -1;
		} else if (c == '-' && np == 0) {
			days = v;
			v = 0;
		} else if (c == ':' && np < 3) {
			parts[np++] = v;
			v = 0;
		} else {
			return -1;
		}
	}
	if (np == 0)
		return -1;
	parts[np++] = v;
	v = 0;
	for (i = 0; i < np; i++)
		v = v * 60 + parts[i];
	return days * 86400 + v;
}

/* The command name a remedy can check against /proc/PID/comm: ps's comm
 * as it is; from busybox top's command line, "{comm} args" or the first
 * word's last path element (the kernel keeps 15 bytes of it). */
static void row_comm(proc_row *r, const fld *cmd, int args)
{
	const char *s = cmd->s;
	size_t n = cmd->n, i;

	if (args) {
		if (n > 1 && s[0] == '{') {
			s++;
			n = strcspn(s, "}");
			n = n > cmd->n - 1 ? cmd->n - 1 : n;
		} else {
			if (n > 1 && s[0] == '[') { /* [kthread] */
				s++;
				n = strcspn(s, "]");
				n = n > cmd->n - 1 ? cmd->n - 1 : n;
			}
			n = strcspn(s, " \t") < n ? strcspn(s, " \t") : n;
			for (i = n; i > 0; i--)
				if (s[i - 1] == '/') {
					s += i;
					n -= i;
					break;
				}
			if (n > 15)
				n = 15;
		}
	}
	clean_copy(r->comm, sizeof(r->comm), s, n);
}

/* The rows of a process table with a header line (ps -o …, the busybox
 * /proc listing "PID RSS_KB STAT NAME", busybox top's batch output after
 * its summary lines), in the order printed. The last column is the
 * command. Busybox top's %CPU is a share of all CPUs: scaled to one CPU. */
static size_t proc_table(const char *text, long long cpus, proc_row *rows, size_t max)
{
	const char *p = text, *line;
	size_t len, n = 0, ncols = 0, i, k;
	int c_pid = -1, c_cpu = -1, c_rss = -1, c_time = -1, args = 0;
	fld f[16];

	while (text && next_line(&p, &line, &len)) {
		if (c_pid < 0) {
			k = split_fields(line, len, f, 16);
			if (k < 2 || !fld_is(&f[0], "PID"))
				continue;
			ncols = k;
			for (i = 0; i < k; i++) {
				if (fld_is(&f[i], "PID"))
					c_pid = (int)i;
				else if (fld_is(&f[i], "%CPU"))
					c_cpu = (int)i;
				else if (fld_is(&f[i], "RSS") || fld_is(&f[i], "RSS_KB"))
					c_rss = (int)i;
				else if (fld_is(&f[i], "TIME"))
					c_time = (int)i;
				else if (fld_is(&f[i], "%VSZ"))
					args = 1;
			}
			continue;
		}
		if (n >= max)
			break;
		k = split_fields(line, len, f, ncols);
		if (k < ncols || !isdigit((unsigned char)f[c_pid].s[0]))
			continue;
		memset(&rows[n], 0, sizeof(rows[n]));
		rows[n].pid = counter(f[c_pid].s);
		rows[n].pcpu = c_cpu >= 0 ? strtod(f[c_cpu].s, NULL) : -1;
		if (args && rows[n].pcpu > 0)
			rows[n].pcpu *= (double)(cpus > 0 ? cpus : 1);
		rows[n].rss_kb = c_rss >= 0 ? counter(f[c_rss].s) : -1;
		rows[n].cpu_s = c_time >= 0 ? cpu_time(&f[c_time]) : -1;
		row_comm(&rows[n], &f[ncols - 1], args);
		rows[n].line = line;
		rows[n].len = len;
		n++;
	}
	return n;
}

static long long section_cpus(const bg_triage *t)
{
	long long cpus = 0;
	const char *up = bg_triage_output(t, "uptime");

	if (!up || !value_after(up, "cpus: ", &cpus) || cpus <= 0)
		return 1;
	return cpus;
}

/* "pid 1234 (java) 812 MiB, …" of the top memory consumers (up to 3) into
 * `summary`, their rows into `evidence`, the first as the culprit. */
static void top_memory(const bg_triage *t, bg_buf *summary, bg_buf *evidence, char *culprit, size_t n)
{
	proc_row rows[MAX_ROWS];
	size_t i, nrows = proc_table(bg_triage_output(t, "top_mem"), 1, rows, MAX_ROWS);

	for (i = 0; i < nrows && i < 3; i++) {
		if (rows[i].rss_kb < 0)
			break;
		bg_buf_printf(summary, "%s pid %lld (%s) %lld MiB", i ? "," : "; top memory:", rows[i].pid,
			      rows[i].comm, rows[i].rss_kb / 1024);
		add_line(evidence, rows[i].line, rows[i].len);
		if (i == 0)
			culprit_pid(culprit, n, rows[i].pid, rows[i].comm);
	}
}

/* ---- where the space went ----------------------------------------------- */

/* After the line "<label> <mount>:", "SIZE PATH" lines, largest first.
 * Cumulative sizes (du -a): the most specific path below the mount that
 * holds at least half of the largest one (so /var/log/big.log rather than
 * /var). Otherwise (entries per directory) the first. 1 when found. */
static int du_culprit(const char *text, const char *label, const char *mount, size_t mlen, int cumulative, char *path,
		      size_t n, long long *kb, bg_buf *evidence)
{
	const char *p = text, *line;
	size_t len, shown = 0, plen = 0;
	int found = 0, in = 0;
	fld f[2];

	while (text && next_line(&p, &line, &len)) {
		if (!in) {
			size_t l = strlen(label);
			in = len == l + 1 + mlen + 1 && starts(line, len, label) && line[l] == ' ' &&
			     strncmp(line + l + 1, mount, mlen) == 0 && line[len - 1] == ':';
			continue;
		}
		if (split_fields(line, len, f, 2) != 2 || !isdigit((unsigned char)f[0].s[0]))
			break;
		if (evidence && shown++ < 4)
			add_line(evidence, line, len);
		if (cumulative && f[1].n == mlen && strncmp(f[1].s, mount, mlen) == 0)
			continue;
		if (!cumulative && found)
			continue;
		if (!found || (f[1].n > plen && strncmp(f[1].s, path, plen) == 0 && f[1].s[plen] == '/' &&
			       counter(f[0].s) * 2 >= *kb)) {
			clean_copy(path, n, f[1].s, f[1].n);
			plen = strlen(path);
			*kb = counter(f[0].s);
			found = 1;
		}
	}
	return found;
}

/* ---- disk and inodes ---------------------------------------------------- */

/* The use percentage of one `df -P` line (the last field ending in %) and
 * where its mount point starts; -1 for a header, a "-" or a pseudo fs. */
static int df_use(const char *line, size_t len, const char **mount)
{
	size_t i = 0, start;
	int pct = -1;

	if (len >= 9 && (strncmp(line, "/dev/loop", 9) == 0))
		return -1; /* snaps and images: always 100% by design */
	while (i < len) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		start = i;
		while (i < len && !isspace((unsigned char)line[i]))
			i++;
		if (i > start + 1 && line[i - 1] == '%' && isdigit((unsigned char)line[start])) {
			pct = (int)strtol(line + start, NULL, 10);
			while (i < len && isspace((unsigned char)line[i]))
				i++;
			*mount = line + i;
			return (strncmp(*mount, "/snap/", 6) == 0) ? -1 : pct;
		}
	}
	return pct;
}

/* The fullest filesystems of a `df -P` listing (90 % and more), then
 * what fills the worst one: the script lists, under "<label> MOUNT:", its
 * biggest entries (disk: du sizes) or its directories with the most
 * entries (inodes). The culprit is that path, else the mount. */
static int rule_full(bg_triage *t, const char *section, const char *rule, const char *what, const char *label,
		     const char *unit)
{
	const char *text = bg_triage_output(t, section), *p = text, *line, *mount, *worst_mount = NULL;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t len, nfull = 0, worst_len = 0;
	int worst = 0, pct;
	char path[512], culprit[600] = "";
	long long kb = 0;

	if (!text)
		return BG_OK;
	while (next_line(&p, &line, &len)) {
		if (starts(line, len, label))
			break; /* the listings that follow are not df rows */
		if ((pct = df_use(line, len, &mount)) < FULL_WARN_PCT)
			continue;
		bg_buf_printf(&summary, "%s%.*s %d%%", nfull ? ", " : "", (int)(len - (size_t)(mount - line)), mount,
			      pct);
		add_line(&evidence, line, len);
		if (pct > worst) {
			worst = pct;
			worst_mount = mount;
			worst_len = len - (size_t)(mount - line);
		}
		nfull++;
	}
	if (nfull == 0)
		return BG_OK;
	bg_buf_printf(&summary, ": %s nearly exhausted", what);
	if (du_culprit(text, label, worst_mount, worst_len, strcmp(unit, "KiB") == 0, path, sizeof(path), &kb,
		       &evidence)) {
		if (strcmp(unit, "KiB") == 0)
			bg_buf_printf(&summary, "; largest: %s (%lld MiB)", path, kb / 1024);
		else
			bg_buf_printf(&summary, "; most entries: %s (%lld)", path, kb);
		culprit_of(culprit, sizeof(culprit), "file", path, strlen(path));
	} else {
		culprit_of(culprit, sizeof(culprit), "mount", worst_mount, worst_len);
	}
	return finish_c(t, rule, worst >= FULL_CRIT_PCT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary, &evidence,
			culprit);
}

static int rule_disk(bg_triage *t)
{
	return rule_full(t, "disk", "disk_full", "disk space", "largest under", "KiB");
}

static int rule_inodes(bg_triage *t)
{
	return rule_full(t, "inodes", "inodes_full", "inodes (too many files)", "most entries under", "entries");
}

/* ---- kernel log ---------------------------------------------------------- */

/* Lines of the kernel log matching any of `needles`; the last ones kept. */
static size_t grep_kernel(const bg_triage *t, const char *const *needles, bg_buf *evidence, bg_buf *last)
{
	const char *text = bg_triage_output(t, "kernel_log"), *p = text, *line;
	size_t len, n = 0, i, total = 0;

	if (!text)
		return 0;
	while (next_line(&p, &line, &len))
		for (i = 0; needles[i]; i++)
			if (line_has(line, len, needles[i])) {
				total++;
				break;
			}
	p = text;
	while (next_line(&p, &line, &len))
		for (i = 0; needles[i]; i++)
			if (line_has(line, len, needles[i])) {
				if (++n + MAX_EVIDENCE > total)
					add_line(evidence, line, len);
				if (last) {
					bg_buf_clear(last);
					bg_buf_append(last, line, len);
				}
				break;
			}
	return total;
}

/* "Killed process 1234 (java) total-vm:…": the part worth a summary. */
static void victim(const char *line, char *buf, size_t n)
{
	const char *k = line ? strstr(line, "Killed process ") : NULL;
	size_t len;

	buf[0] = '\0';
	if (!k)
		return;
	k += strlen("Killed process ");
	len = strcspn(k, ")");
	if (k[len] == ')')
		len++;
	snprintf(buf, n, "%.*s", (int)len, k);
}

/* The culprit of an OOM kill: the unit whose cgroup the victim was in
 * ("oom-kill:…,task_memcg=/system.slice/NAME.service,…", restartable),
 * else the victim "Killed process PID (COMM)" (gone now, but named). */
static void oom_culprit(const bg_triage *t, const char *last_kill, char *buf, size_t n)
{
	static const char *const memcg_lines[] = {"task_memcg=", NULL};
	bg_buf ev = BG_BUF_INIT, last = BG_BUF_INIT;
	const char *k;

	buf[0] = '\0';
	if (grep_kernel(t, memcg_lines, &ev, &last) && last.data && (k = strstr(last.data, "task_memcg=")) != NULL) {
		size_t len = strcspn(k, ","), i, start = 0;
		for (i = 0; i < len; i++)
			if (k[i] == '/')
				start = i + 1;
		if (len > start + 8 && strncmp(k + len - 8, ".service", 8) == 0)
			culprit_of(buf, n, "unit", k + start, len - start);
	}
	bg_buf_free(&ev);
	bg_buf_free(&last);
	if (!buf[0] && last_kill && (k = strstr(last_kill, "Killed process ")) != NULL) {
		long long pid = counter(k + strlen("Killed process "));
		const char *open = strchr(k, '('), *close = open ? strchr(open, ')') : NULL;
		char comm[64];
		if (pid > 0 && close) {
			clean_copy(comm, sizeof(comm), open + 1, (size_t)(close - open - 1));
			culprit_pid(buf, n, pid, comm);
		}
	}
}

static int rule_oom(bg_triage *t)
{
	static const char *const kill_lines[] = {"Killed process", NULL};
	static const char *const oom_lines[] = {"out of memory", "oom-kill", "Killed process", "oom_reaper", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT, last = BG_BUF_INIT;
	char who[128], culprit[600];
	size_t kills;

	kills = grep_kernel(t, kill_lines, &summary, &last);
	bg_buf_clear(&summary);
	if (grep_kernel(t, oom_lines, &evidence, NULL) == 0) {
		bg_buf_free(&summary);
		bg_buf_free(&evidence);
		bg_buf_free(&last);
		return BG_OK;
	}
	victim(last.data, who, sizeof(who));
	oom_culprit(t, last.data, culprit, sizeof(culprit));
	bg_buf_free(&last);
	if (kills)
		bg_buf_printf(&summary, "the kernel's OOM killer killed %zu process%s (last: %s): memory ran out",
			      kills, kills == 1 ? "" : "es", who[0] ? who : "?");
	else
		bg_buf_puts(&summary, "the kernel ran out of memory (OOM)");
	if (strncmp(culprit, "unit:", 5) == 0)
		bg_buf_printf(&summary, "; in %s", culprit + 5);
	return finish_c(t, "oom_kill", BG_SEVERITY_CRITICAL, &summary, &evidence, culprit);
}

static int rule_kernel(bg_triage *t, const char *rule, const char *const *needles, const char *what,
		       const char *culprit, const char *extra)
{
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t n = grep_kernel(t, needles, &evidence, NULL);

	if (n == 0) {
		bg_buf_free(&evidence);
		return BG_OK;
	}
	bg_buf_printf(&summary, "%s (%zu kernel log line%s)", what, n, n == 1 ? "" : "s");
	if (extra && extra[0])
		bg_buf_puts(&summary, extra);
	return finish_c(t, rule, BG_SEVERITY_CRITICAL, &summary, &evidence, culprit);
}

/* "INFO: task NAME:PID blocked for more than …" of the first hung task
 * (the others usually wait behind it) as pid:PID:NAME. */
static void hung_culprit(const bg_triage *t, char *buf, size_t n, char *extra, size_t en)
{
	const char *p = bg_triage_output(t, "kernel_log"), *line;
	size_t len;

	buf[0] = extra[0] = '\0';
	while (p && next_line(&p, &line, &len)) {
		const char *task, *blocked;
		size_t i;
		if (!line_has(line, len, "blocked for more than"))
			continue;
		task = strstr(line, "task ");
		blocked = strstr(line, " blocked for more than");
		if (!task || !blocked || task > blocked || blocked > line + len)
			continue;
		task += 5;
		for (i = (size_t)(blocked - task); i > 0 && task[i - 1] != ':'; i--)
			;
		if (i > 1) {
			char comm[64];
			clean_copy(comm, sizeof(comm), task, i - 1);
			culprit_pid(buf, n, counter(task + i), comm);
			snprintf(extra, en, "; first: pid %lld (%s)", counter(task + i), comm);
			return;
		}
	}
}

static int rule_hung_task(bg_triage *t)
{
	static const char *const needles[] = {"blocked for more than", "hung_task", NULL};
	char culprit[600], extra[128];

	hung_culprit(t, culprit, sizeof(culprit), extra, sizeof(extra));
	return rule_kernel(t, "hung_task", needles, "tasks hung in the kernel for minutes: I/O is stalled", culprit,
			   extra);
}

static int rule_io_error(bg_triage *t)
{
	static const char *const needles[] = {"I/O error", "EXT4-fs error", "Buffer I/O", NULL};
	return rule_kernel(t, "io_error", needles, "the kernel logged I/O errors: the disk or its storage path fails",
			   NULL, NULL);
}

/* ---- memory, swap, PSI -------------------------------------------------- */

typedef struct psi {
	int have;
	double some10, full10;
	char some_line[160], full_line[160];
} psi;

static void read_psi(const bg_triage *t, const char *resource, psi *out)
{
	const char *p = bg_triage_output(t, "psi"), *line;
	size_t len, n = strlen(resource);

	memset(out, 0, sizeof(*out));
	while (next_line(&p, &line, &len)) {
		const char *avg = NULL;
		if (len <= n + 1 || strncmp(line, resource, n) != 0 || line[n] != ' ')
			continue;
		avg = strstr(line, "avg10=");
		if (!avg || (size_t)(avg - line) > len)
			continue;
		if (strncmp(line + n + 1, "some", 4) == 0) {
			out->some10 = strtod(avg + 6, NULL);
			snprintf(out->some_line, sizeof(out->some_line), "%.*s", (int)len, line);
			out->have = 1;
		} else if (strncmp(line + n + 1, "full", 4) == 0) {
			out->full10 = strtod(avg + 6, NULL);
			snprintf(out->full_line, sizeof(out->full_line), "%.*s", (int)len, line);
			out->have = 1;
		}
	}
}

typedef struct mem {
	int have;
	long long total, avail, swap_total, swap_free;
	int have_rate;
	long long swapin_rate; /* pages per second over the script's 1 s sample */
} mem;

/* The n-th (0-based) "pswpin N" value of the memory section. */
static int pswpin(const char *text, int nth, long long *out)
{
	const char *p = text, *line;
	size_t len;
	int seen = 0;

	while (next_line(&p, &line, &len))
		if (len > 7 && strncmp(line, "pswpin ", 7) == 0 && seen++ == nth) {
			*out = counter(line + 7);
			return 1;
		}
	return 0;
}

static void read_mem(const bg_triage *t, mem *m)
{
	const char *text = bg_triage_output(t, "memory");
	long long a, b, free_kb = 0, cached = 0, buffers = 0;

	memset(m, 0, sizeof(*m));
	if (!text || !value_after(text, "MemTotal:", &m->total) || m->total <= 0)
		return;
	m->have = 1;
	if (!value_after(text, "MemAvailable:", &m->avail)) {
		/* kernels before 3.14: a rough stand-in */
		value_after(text, "MemFree:", &free_kb);
		value_after(text, "Cached:", &cached);
		value_after(text, "Buffers:", &buffers);
		m->avail = free_kb + cached + buffers;
	}
	value_after(text, "SwapTotal:", &m->swap_total);
	value_after(text, "SwapFree:", &m->swap_free);
	if (pswpin(text, 0, &a) && pswpin(text, 1, &b) && b >= a) {
		m->have_rate = 1;
		m->swapin_rate = b - a;
	}
}

/* The memory section's lines that start with any of `prefixes`. */
static void mem_evidence(const bg_triage *t, bg_buf *ev, const char *const *prefixes)
{
	const char *p = bg_triage_output(t, "memory"), *line;
	size_t len, i;

	while (next_line(&p, &line, &len))
		for (i = 0; prefixes[i]; i++)
			if (strncmp(line, prefixes[i], strlen(prefixes[i])) == 0) {
				add_line(ev, line, len);
				break;
			}
}

/* "KB PID NAME" lines after "top swap users": the first three in the
 * summary, the first as the culprit (its kB in *top_kb). */
static void top_swappers(const bg_triage *t, bg_buf *summary, bg_buf *evidence, char *culprit, size_t n,
			 long long *top_kb)
{
	const char *p = NULL, *line;
	size_t len, k = 0;
	fld f[3];

	culprit[0] = '\0';
	*top_kb = 0;
	if (!block_after(bg_triage_output(t, "memory"), "top swap users", &p))
		return;
	while (k < 3 && next_line(&p, &line, &len)) {
		char comm[64];
		if (split_fields(line, len, f, 3) != 3 || !isdigit((unsigned char)f[0].s[0]) ||
		    !isdigit((unsigned char)f[1].s[0]))
			break;
		clean_copy(comm, sizeof(comm), f[2].s, f[2].n);
		bg_buf_printf(summary, "%s pid %lld (%s) %lld MiB", k ? "," : "; top swap users:", counter(f[1].s),
			      comm, counter(f[0].s) / 1024);
		add_line(evidence, line, len);
		if (k++ == 0) {
			culprit_pid(culprit, n, counter(f[1].s), comm);
			*top_kb = counter(f[0].s);
		}
	}
}

static int rule_swap_thrash(bg_triage *t)
{
	static const char *const prefixes[] = {"SwapTotal:", "SwapFree:", "pswpin ", "after 1 s", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	char culprit[600];
	mem m;
	psi pm;
	long long used, top_kb;
	proc_row rows[MAX_ROWS];
	size_t nrows;

	read_mem(t, &m);
	read_psi(t, "memory", &pm);
	used = m.swap_total - m.swap_free;
	if (!m.have || !m.have_rate || used <= 0 || m.swapin_rate == 0)
		return BG_OK;
	if (m.swapin_rate < SWAPIN_THRASH && !(pm.have && pm.some10 >= SWAP_PSI_THRASH))
		return BG_OK;
	bg_buf_printf(&summary, "swap thrash: %lld MiB of swap in use, %lld pages/s swapped in", used / 1024,
		      m.swapin_rate);
	if (pm.have)
		bg_buf_printf(&summary, ", memory pressure %.1f%%", pm.some10);
	mem_evidence(t, &evidence, prefixes);
	if (pm.have)
		bg_buf_printf(&evidence, "%s\n", pm.some_line);
	top_swappers(t, &summary, &evidence, culprit, sizeof(culprit), &top_kb);
	/* A process that holds a good share of the RAM, many times what the
	 * top swap user has out, pushes the others to swap: it is the cause,
	 * they are its victims (the lab's memory-low hog kept out of swap). */
	nrows = proc_table(bg_triage_output(t, "top_mem"), 1, rows, MAX_ROWS);
	if (nrows > 0 && rows[0].rss_kb * 100 >= m.total * SWAP_HOLDER_PCT && rows[0].rss_kb >= top_kb * 4) {
		bg_buf_printf(&summary, "; holding the RAM: pid %lld (%s) %lld MiB", rows[0].pid, rows[0].comm,
			      rows[0].rss_kb / 1024);
		add_line(&evidence, rows[0].line, rows[0].len);
		culprit_pid(culprit, sizeof(culprit), rows[0].pid, rows[0].comm);
	}
	return finish_c(t, "swap_thrash", BG_SEVERITY_CRITICAL, &summary, &evidence, culprit);
}

static int rule_memory_pressure(bg_triage *t)
{
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	char culprit[600] = "";
	psi pm;
	bg_severity sev = BG_SEVERITY_WARN;

	read_psi(t, "memory", &pm);
	if (!pm.have || (pm.some10 < PSI_SOME_WARN && pm.full10 < PSI_FULL_WARN))
		return BG_OK;
	if (pm.full10 >= PSI_FULL_CRIT)
		sev = BG_SEVERITY_CRITICAL;
	bg_buf_printf(&summary, "memory pressure: tasks stalled on memory %.1f%% of the last 10 s (all tasks %.1f%%)",
		      pm.some10, pm.full10);
	bg_buf_printf(&evidence, "%s\n%s\n", pm.some_line, pm.full_line);
	top_memory(t, &summary, &evidence, culprit, sizeof(culprit));
	return finish_c(t, "memory_pressure", sev, &summary, &evidence, culprit);
}

/* The guest's view of a stalled disk path: every task waits on I/O. */
static int rule_io_pressure(bg_triage *t)
{
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	psi pio;

	read_psi(t, "io", &pio);
	if (!pio.have || pio.full10 < IO_FULL_WARN)
		return BG_OK;
	bg_buf_printf(&summary,
		      "I/O pressure: all tasks stalled on I/O %.1f%% of the last 10 s: a slow or stalled disk",
		      pio.full10);
	bg_buf_printf(&evidence, "%s\n%s\n", pio.some_line, pio.full_line);
	return finish(t, "io_pressure", pio.full10 >= IO_FULL_CRIT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary,
		      &evidence);
}

static int rule_memory_low(bg_triage *t)
{
	static const char *const prefixes[] = {"MemTotal:", "MemFree:", "MemAvailable:", "Shmem:", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	char culprit[600] = "";
	mem m;
	double pct;

	read_mem(t, &m);
	if (!m.have)
		return BG_OK;
	pct = 100.0 * (double)m.avail / (double)m.total;
	if (pct >= AVAIL_WARN_PCT)
		return BG_OK;
	bg_buf_printf(&summary, "low memory: %lld MiB available of %lld MiB (%.1f%%)", m.avail / 1024, m.total / 1024,
		      pct);
	mem_evidence(t, &evidence, prefixes);
	top_memory(t, &summary, &evidence, culprit, sizeof(culprit));
	return finish_c(t, "memory_low", pct < AVAIL_CRIT_PCT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary,
			&evidence, culprit);
}

/* ---- units, processes, load -------------------------------------------- */

static int rule_failed_units(bg_triage *t)
{
	const char *p = bg_triage_output(t, "failed_units"), *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT, names = BG_BUF_INIT;
	size_t len, n = 0;
	char culprit[600] = "";

	while (next_line(&p, &line, &len)) {
		size_t w = strcspn(line, " \t\n");
		if (!line_has(line, len, " failed ") || w == 0 || w > len)
			continue;
		if (n == 0)
			culprit_of(culprit, sizeof(culprit), "unit", line, w);
		bg_buf_printf(&names, "%s%.*s", n ? ", " : "", (int)w, line);
		add_line(&evidence, line, len);
		n++;
	}
	if (n == 0) {
		bg_buf_free(&names);
		return BG_OK;
	}
	bg_buf_printf(&summary, "%zu failed systemd unit%s: %s", n, n == 1 ? "" : "s", names.data);
	bg_buf_free(&names);
	return finish_c(t, "failed_units", BG_SEVERITY_WARN, &summary, &evidence, culprit);
}

/* The state-D rows ("PID STAT [WCHAN] COMMAND"): each named with its
 * wait channel; the culprit is the first that is not a kernel thread
 * (a name without '/': jbd2/vda1-8 and kworker/u2:1 wait for the others). */
static int rule_dstate(bg_triage *t)
{
	const char *p = bg_triage_output(t, "dstate"), *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT, who = BG_BUF_INIT;
	size_t len, n = 0, ncols = 3;
	char culprit[600] = "", first[600] = "";
	fld f[4];

	while (p && next_line(&p, &line, &len)) {
		size_t k = split_fields(line, len, f, 4);
		char comm[64], wchan[64] = "";
		if (k >= 1 && fld_is(&f[0], "PID")) {
			ncols = (k >= 4 && fld_is(&f[2], "WCHAN")) ? 4 : 3;
			continue;
		}
		k = split_fields(line, len, f, ncols);
		if (k < ncols || !isdigit((unsigned char)f[0].s[0]) || f[1].s[0] != 'D')
			continue;
		if (n < MAX_EVIDENCE)
			add_line(&evidence, line, len);
		{
			fld c = f[ncols - 1];
			if (c.n > 1 && c.s[0] == '[') { /* busybox ps: [kthread] */
				c.s++;
				c.n = strcspn(c.s, "]") < c.n - 1 ? strcspn(c.s, "]") : c.n - 1;
			} else if (ncols == 3) { /* busybox ps: the command line */
				c.n = strcspn(c.s, " ") < c.n ? strcspn(c.s, " ") : c.n;
			}
			clean_copy(comm, sizeof(comm), c.s, c.n);
		}
		if (ncols == 4 && !(f[2].n == 1 && (f[2].s[0] == '-' || f[2].s[0] == '0'))) /* - or 0: unknown */
			clean_copy(wchan, sizeof(wchan), f[2].s, f[2].n);
		if (n < 3) {
			bg_buf_printf(&who, "%s pid %lld (%s)", n ? "," : ":", counter(f[0].s), comm);
			if (wchan[0])
				bg_buf_printf(&who, " in %s", wchan);
		}
		if (!first[0])
			culprit_pid(first, sizeof(first), counter(f[0].s), comm);
		if (!culprit[0] && !strchr(comm, '/'))
			culprit_pid(culprit, sizeof(culprit), counter(f[0].s), comm);
		n++;
	}
	if (n == 0) {
		bg_buf_free(&who);
		return BG_OK;
	}
	bg_buf_printf(&summary, "%zu process%s in uninterruptible sleep (state D)%s%s: stuck on I/O or in the kernel",
		      n, n == 1 ? "" : "es", who.data ? who.data : "", n > 3 ? ", …" : "");
	bg_buf_free(&who);
	return finish_c(t, "dstate", BG_SEVERITY_WARN, &summary, &evidence, culprit[0] ? culprit : first);
}

static int rule_load(bg_triage *t)
{
	const char *text = bg_triage_output(t, "uptime"), *p = text, *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	double l1 = 0, l5 = 0, l15 = 0;
	long long cpus = 0;
	size_t len;
	int have = 0;

	while (next_line(&p, &line, &len)) {
		if (strncmp(line, "loadavg: ", 9) == 0 && sscanf(line + 9, "%lf %lf %lf", &l1, &l5, &l15) == 3) {
			have = 1;
			add_line(&evidence, line, len);
		} else if (strncmp(line, "cpus: ", 6) == 0) {
			cpus = strtoll(line + 6, NULL, 10);
			add_line(&evidence, line, len);
		}
	}
	if (!have || cpus <= 0 || l1 < LOAD_WARN_PER_CPU * (double)cpus || l5 < (double)cpus) {
		bg_buf_free(&evidence);
		return BG_OK;
	}
	bg_buf_printf(&summary, "load %.2f on %lld CPU%s (%.1f per CPU): runnable or D-state tasks pile up", l1, cpus,
		      cpus == 1 ? "" : "s", l1 / (double)cpus);
	return finish(t, "load_high", l1 >= LOAD_CRIT_PER_CPU * (double)cpus ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN,
		      &summary, &evidence);
}

/* ---- CPU ------------------------------------------------------------------- */

/* The 1-minute load, -1 when not known. */
static double load1(const bg_triage *t)
{
	const char *p = bg_triage_output(t, "uptime"), *line;
	size_t len;
	double l = -1;

	while (p && next_line(&p, &line, &len))
		if (starts(line, len, "loadavg: ") && sscanf(line + 9, "%lf", &l) == 1)
			return l;
	return -1;
}

/* One process holding a CPU (the script's %CPU: over the last second;
 * older recordings: ps's average over the process's life, or busybox
 * top's snapshot) for RUNAWAY_MIN_CPU_S at least, so that a short compile
 * step is not called a runaway: RUNAWAY_PCT of a CPU, or RUNAWAY_BUSY_PCT
 * while the CPUs are saturated (load >= 0.8 per CPU: the runaway shares
 * them). Without the CPU time (busybox top), RUNAWAY_PCT. */
static int rule_cpu_runaway(bg_triage *t)
{
	proc_row rows[MAX_ROWS];
	long long cpus = section_cpus(t);
	size_t i, n = proc_table(bg_triage_output(t, "top_cpu"), cpus, rows, MAX_ROWS), best = 0;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	char culprit[600];
	double need = RUNAWAY_PCT;

	for (i = 1; i < n; i++)
		if (rows[i].pcpu > rows[best].pcpu)
			best = i;
	if (n == 0 || (rows[best].cpu_s >= 0 && rows[best].cpu_s < RUNAWAY_MIN_CPU_S))
		return BG_OK;
	if (rows[best].cpu_s >= 0 && load1(t) >= 0.8 * (double)cpus)
		need = RUNAWAY_BUSY_PCT;
	if (rows[best].pcpu < need)
		return BG_OK;
	bg_buf_printf(&summary, "CPU saturated by a runaway: pid %lld (%s) at %.0f%% of a CPU", rows[best].pid,
		      rows[best].comm, rows[best].pcpu);
	if (rows[best].cpu_s >= 0)
		bg_buf_printf(&summary, ", %lld s of CPU time", rows[best].cpu_s);
	add_line(&evidence, rows[best].line, rows[best].len);
	culprit_pid(culprit, sizeof(culprit), rows[best].pid, rows[best].comm);
	return finish_c(t, "cpu_runaway", BG_SEVERITY_WARN, &summary, &evidence, culprit);
}

/* ---- RAM held by tmpfs ---------------------------------------------------- */

/* Shmem (tmpfs files and shared memory) against MemTotal; the tmpfs
 * holding the most and its largest file, which is the culprit. */
static int rule_tmpfs(bg_triage *t)
{
	const char *text = bg_triage_output(t, "tmpfs"), *p = text, *line, *best_mount = NULL;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	long long total = 0, shmem = 0, best_used = -1, kb = 0;
	size_t len, best_len = 0;
	char path[512], culprit[600], mount[512];
	double pct;
	fld f[6];

	if (!text || !value_after(text, "MemTotal:", &total) || total <= 0 || !value_after(text, "Shmem:", &shmem))
		return BG_OK;
	pct = 100.0 * (double)shmem / (double)total;
	if (pct < TMPFS_WARN_PCT)
		return BG_OK;
	while (next_line(&p, &line, &len)) {
		if (starts(line, len, "largest under"))
			break;
		if (starts(line, len, "MemTotal:") || starts(line, len, "Shmem:")) {
			add_line(&evidence, line, len);
			continue;
		}
		if (split_fields(line, len, f, 6) == 6 && isdigit((unsigned char)f[2].s[0]) &&
		    counter(f[2].s) > best_used) {
			best_used = counter(f[2].s);
			best_mount = f[5].s;
			best_len = f[5].n;
			add_line(&evidence, line, len);
		}
	}
	bg_buf_printf(&summary, "RAM held by tmpfs/shared memory: %lld MiB (%.0f%% of RAM)", shmem / 1024, pct);
	if (!best_mount) {
		culprit[0] = '\0';
	} else {
		clean_copy(mount, sizeof(mount), best_mount, best_len);
		bg_buf_printf(&summary, "; fullest tmpfs %s (%lld MiB)", mount, best_used / 1024);
		if (du_culprit(text, "largest under", best_mount, best_len, 1, path, sizeof(path), &kb, &evidence)) {
			bg_buf_printf(&summary, ", largest: %s (%lld MiB)", path, kb / 1024);
			culprit_of(culprit, sizeof(culprit), "file", path, strlen(path));
		} else {
			culprit_of(culprit, sizeof(culprit), "mount", mount, strlen(mount));
		}
	}
	return finish_c(t, "tmpfs_ram", pct >= TMPFS_CRIT_PCT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary,
			&evidence, culprit);
}

/* ---- a filesystem gone read-only ------------------------------------------ */

/* Kernel log lines about device `dev` (its last path element, as the
 * kernel names it: "EXT4-fs (vda): Remounting filesystem read-only"):
 * all of them that speak of errors, or (remount_only) only the remount. */
static size_t kernel_about(const bg_triage *t, const char *dev, size_t dlen, int remount_only, bg_buf *evidence)
{
	const char *p = bg_triage_output(t, "kernel_log"), *line;
	char a[96], b[96];
	size_t len, n = 0, i, start = 0;

	for (i = 0; i < dlen; i++)
		if (dev[i] == '/')
			start = i + 1;
	if (dlen - start == 0 || dlen - start > 64)
		return 0;
	snprintf(a, sizeof(a), "(%.*s)", (int)(dlen - start), dev + start);
	snprintf(b, sizeof(b), "(device %.*s)", (int)(dlen - start), dev + start);
	while (p && next_line(&p, &line, &len)) {
		if (!line_has(line, len, a) && !line_has(line, len, b))
			continue;
		if (remount_only ? line_has(line, len, "Remounting filesystem read-only")
				 : (line_has(line, len, "read-only") || line_has(line, len, "error") ||
				    line_has(line, len, "abort"))) {
			if (evidence && n < MAX_EVIDENCE)
				add_line(evidence, line, len);
			n++;
		}
	}
	return n;
}

static int opt_ro(const fld *opts)
{
	return (opts->n == 2 && strncmp(opts->s, "ro", 2) == 0) || (opts->n > 2 && strncmp(opts->s, "ro,", 3) == 0);
}

/* A real filesystem that the kernel switched to read-only after errors
 * (its log says "Remounting filesystem read-only" for the device: ext4
 * then still shows rw in the mount table), or mounted read-only now though
 * /etc/fstab mounts it read-write or the kernel logged errors for it.
 * The mounts section lists "DEV MOUNT TYPE OPTIONS KNAME" (older
 * recordings: /proc/mounts lines of the read-only mounts alone). */
static int rule_fs_readonly(bg_triage *t)
{
	const char *text = bg_triage_output(t, "mounts"), *p = NULL, *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t len, n = 0;
	char culprit[600] = "";
	int all = 0;
	fld f[6];

	if (!text)
		return BG_OK;
	if (block_after(text, "mounts (", &p))
		all = 1;
	else if (!block_after(text, "read-only mounts:", &p))
		return BG_OK;
	while (next_line(&p, &line, &len) && !starts(line, len, "fstab:")) {
		const char *q = NULL, *fl;
		size_t flen, nk = 0, nr = 0, k = split_fields(line, len, f, all ? 5 : 4);
		int fstab_rw = 0, ro;
		fld g[4];
		const fld *kname;
		char mnt[512], dev[256];
		if (k < 4)
			continue;
		ro = all ? opt_ro(&f[3]) : 1;
		kname = all && k == 5 ? &f[4] : &f[0];
		if (ro && block_after(text, "fstab:", &q))
			while (next_line(&q, &fl, &flen))
				if (split_fields(fl, flen, g, 4) == 4 && g[1].n == f[1].n &&
				    strncmp(g[1].s, f[1].s, f[1].n) == 0 && !opt_ro(&g[3]) &&
				    !line_has(g[3].s, g[3].n, ",ro,") &&
				    !(g[3].n > 3 && strncmp(g[3].s + g[3].n - 3, ",ro", 3) == 0)) {
					fstab_rw = 1;
					add_line(&evidence, fl, flen);
				}
		if (ro)
			nk = kernel_about(t, kname->s, kname->n, 0, &evidence);
		else
			nr = kernel_about(t, kname->s, kname->n, 1, &evidence);
		if (!(ro && (fstab_rw || nk)) && !nr)
			continue;
		add_line(&evidence, line, len);
		clean_copy(mnt, sizeof(mnt), f[1].s, f[1].n);
		clean_copy(dev, sizeof(dev), f[0].s, f[0].n);
		bg_buf_printf(&summary, "%s%s (%s) is read-only", n ? "; " : "", mnt, dev);
		if (nr)
			bg_buf_puts(&summary, ": the kernel switched it after errors (the mount table still says rw)");
		else if (nk)
			bg_buf_puts(&summary, ": the kernel remounted it after filesystem errors");
		else
			bg_buf_puts(&summary, " though /etc/fstab mounts it read-write");
		if (n++ == 0)
			culprit_of(culprit, sizeof(culprit), "mount", mnt, strlen(mnt));
	}
	if (n == 0) {
		bg_buf_free(&summary);
		bg_buf_free(&evidence);
		return BG_OK;
	}
	bg_buf_puts(&summary, "; writes there fail");
	return finish_c(t, "fs_readonly", BG_SEVERITY_CRITICAL, &summary, &evidence, culprit);
}

/* ---- a process storm --------------------------------------------------- */

/* Journal and kernel log lines that say a fork failed. */
static size_t fork_failures(const bg_triage *t, bg_buf *evidence, char *unit, size_t un)
{
	static const char *const sections[] = {"kernel_log", "units", NULL};
	static const char *const needles[] = {"fork rejected", "fork: retry", "Resource temporarily unavailable",
					      "fork: Cannot allocate", NULL};
	size_t s, i, len, n = 0;
	const char *p, *line;

	for (s = 0; sections[s]; s++) {
		p = bg_triage_output(t, sections[s]);
		while (p && next_line(&p, &line, &len))
			for (i = 0; needles[i]; i++)
				if (line_has(line, len, needles[i])) {
					const char *svc;
					if (n++ < MAX_EVIDENCE)
						add_line(evidence, line, len);
					/* "fork rejected by pids controller in /system.slice/x.service" */
					svc = strstr(line, ".service");
					if (!unit[0] && i == 0 && svc && svc < line + len) {
						const char *b = svc;
						while (b > line && b[-1] != '/' && b[-1] != ' ')
							b--;
						culprit_of(unit, un, "unit", b, (size_t)(svc + 8 - b));
					}
					break;
				}
	}
	return n;
}

static int rule_process_storm(bg_triage *t)
{
	const char *text = bg_triage_output(t, "procs"), *p = NULL, *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	long long pid_max = 0, threads_max = 0, threads = 0, procs = 0, limit, used;
	long long top_n = 0, top_pid = 0;
	char culprit[600] = "", unit[600] = "", top_comm[64] = "", cg[512] = "";
	size_t len, nfork, ncg = 0;
	fld f[3];
	int storm;

	if (!text)
		return BG_OK;
	value_after(text, "pid_max: ", &pid_max);
	value_after(text, "threads_max: ", &threads_max);
	value_after(text, "threads: ", &threads);
	value_after(text, "processes: ", &procs);
	limit = pid_max > 0 && (threads_max <= 0 || pid_max < threads_max) ? pid_max : threads_max;
	used = threads > procs ? threads : procs;
	if (block_after(text, "cgroups near pids.max", &p))
		while (next_line(&p, &line, &len) && !starts(line, len, "top parents"))
			if (split_fields(line, len, f, 3) == 3 && isdigit((unsigned char)f[0].s[0])) {
				if (ncg++ == 0) {
					bg_buf_printf(&summary, "%scgroup %.*s at %lld of %lld pids", "", (int)f[2].n,
						      f[2].s, counter(f[0].s), counter(f[1].s));
					clean_copy(cg, sizeof(cg), f[2].s, f[2].n);
				}
				add_line(&evidence, line, len);
			}
	if (block_after(text, "top parents", &p)) /* before or after the cgroups: either order */
		while (next_line(&p, &line, &len) && !starts(line, len, "cgroups near"))
			if (split_fields(line, len, f, 3) == 3 && isdigit((unsigned char)f[0].s[0]) &&
			    counter(f[1].s) > 2) { /* not init, not kthreadd */
				top_n = counter(f[0].s);
				top_pid = counter(f[1].s);
				clean_copy(top_comm, sizeof(top_comm), f[2].s, f[2].n);
				add_line(&evidence, line, len);
				break;
			}
	nfork = fork_failures(t, &evidence, unit, sizeof(unit));
	storm = (limit > 0 && used * 100 >= limit * STORM_PCT) || ncg > 0 || nfork > 0 ||
		(top_n >= STORM_CHILDREN && procs > 0 && top_n * 2 >= procs);
	if (!storm) {
		bg_buf_free(&summary);
		bg_buf_free(&evidence);
		return BG_OK;
	}
	{
		bg_buf head = BG_BUF_INIT;
		bg_buf_printf(&head, "process storm: %lld threads, %lld processes (limit %lld, %s)", threads, procs,
			      limit, limit == pid_max ? "pid_max" : "threads-max");
		if (summary.data)
			bg_buf_printf(&head, "; %s", summary.data);
		if (nfork)
			bg_buf_printf(&head, "; %zu fork failure%s logged", nfork, nfork == 1 ? "" : "s");
		if (top_n > 0)
			bg_buf_printf(&head, "; parent pid %lld (%s) has %lld children", top_pid, top_comm, top_n);
		bg_buf_free(&summary);
		summary = head;
	}
	value_after(text, "threads: ", &threads);
	bg_buf_printf(&evidence, "pid_max %lld, threads-max %lld, threads %lld, processes %lld\n", pid_max, threads_max,
		      threads, procs);
	/* A pids cgroup of a service at its limit: that service; else the
	 * parent with the most children when it has a good share of them. */
	if (cg[0] && strlen(cg) > 8 && strcmp(cg + strlen(cg) - 8, ".service") == 0) {
		const char *b = strrchr(cg, '/');
		culprit_of(culprit, sizeof(culprit), "unit", b ? b + 1 : cg, strlen(b ? b + 1 : cg));
	} else if (unit[0]) {
		snprintf(culprit, sizeof(culprit), "%s", unit);
	} else if (top_n >= STORM_MIN_PARENT) {
		culprit_pid(culprit, sizeof(culprit), top_pid, top_comm);
	}
	return finish_c(t, "process_storm",
			(limit > 0 && used * 100 >= limit * STORM_CRIT_PCT) || nfork ? BG_SEVERITY_CRITICAL
										     : BG_SEVERITY_WARN,
			&summary, &evidence, culprit);
}

/* ---- a hung unit ------------------------------------------------------------ */

/* The unit named in a journal line: the word ending in ".service:". */
static int journal_unit(const char *line, size_t len, char *buf, size_t n)
{
	const char *s = line, *end = line + len, *svc;

	while ((svc = strstr(s, ".service:")) != NULL && svc < end) {
		const char *b = svc;
		while (b > line && b[-1] != ' ' && b[-1] != '/')
			b--;
		if (svc > b) {
			culprit_of(buf, n, "unit", b, (size_t)(svc + 8 - b));
			return 1;
		}
		s = svc + 1;
	}
	return 0;
}

static int rule_hung_unit(bg_triage *t)
{
	static const char *const needles[] = {"Watchdog timeout",       "operation timed out",    "timed out. Killing",
					      "timed out. Terminating", "stop-sigterm timed out", NULL};
	const char *text = bg_triage_output(t, "units"), *p = NULL, *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	char culprit[600] = "", u[600];
	size_t len, n = 0, i;
	double up = 0;
	const char *v;

	if (!text)
		return BG_OK;
	if ((v = strstr(text, "uptime_s: ")) != NULL)
		up = strtod(v + 10, NULL);
	if (block_after(text, "stuck units:", &p))
		while (next_line(&p, &line, &len) && !starts(line, len, "journal:")) {
			const char *id = strstr(line, "Id="), *st = strstr(line, "ActiveState="),
				   *ts = strstr(line, "StateChangeTimestampMonotonic=");
			double since;
			if (!id || !st || !ts || id > line + len || st > line + len || ts > line + len)
				continue;
			since = up - (double)counter(ts + 30) / 1e6;
			if (since < HUNG_UNIT_S)
				continue;
			add_line(&evidence, line, len);
			culprit_of(u, sizeof(u), "unit", id + 3, strcspn(id + 3, " \n"));
			bg_buf_printf(&summary, "%s%s %.*s for %.0f s", n ? "; " : "", u + 5,
				      (int)strcspn(st + 12, " \n"), st + 12, since);
			if (n++ == 0)
				snprintf(culprit, sizeof(culprit), "%s", u);
		}
	if (block_after(text, "journal:", &p))
		while (next_line(&p, &line, &len))
			for (i = 0; needles[i]; i++)
				if (line_has(line, len, needles[i])) {
					add_line(&evidence, line, len);
					if (journal_unit(line, len, u, sizeof(u))) {
						if (!culprit[0]) {
							snprintf(culprit, sizeof(culprit), "%s", u);
							bg_buf_printf(&summary, "%s%s: %s", n ? "; " : "", u + 5,
								      needles[i]);
						}
						n++;
					}
					break;
				}
	if (n == 0) {
		bg_buf_free(&summary);
		bg_buf_free(&evidence);
		return BG_OK;
	}
	{
		bg_buf head = BG_BUF_INIT;
		bg_buf_printf(&head, "hung unit: %s", summary.data ? summary.data : "?");
		bg_buf_free(&summary);
		summary = head;
	}
	return finish_c(t, "hung_unit", BG_SEVERITY_WARN, &summary, &evidence, culprit);
}

/* ---- all of them ---------------------------------------------------------- */

/* Most severe first, keeping the rules' order among equals (insertion
 * sort: stable, and there are a handful of findings at most). */
static void sort_by_severity(bg_triage *t)
{
	size_t i, j;

	for (i = 1; i < t->nfindings; i++) {
		bg_triage_finding f = t->findings[i];
		for (j = i; j > 0 && t->findings[j - 1].severity < f.severity; j--)
			t->findings[j] = t->findings[j - 1];
		t->findings[j] = f;
	}
}

int bg_triage_apply_rules(bg_triage *t)
{
	static int (*const rules[])(bg_triage *) = {
		rule_oom,          rule_hung_task,  rule_fs_readonly,   rule_io_error,    rule_disk,
		rule_inodes,       rule_tmpfs,      rule_process_storm, rule_swap_thrash, rule_memory_pressure,
		rule_io_pressure,  rule_memory_low, rule_dstate,        rule_cpu_runaway, rule_hung_unit,
		rule_failed_units, rule_load,
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if ((rc = rules[i](t)) != BG_OK)
			return rc;
	sort_by_severity(t);
	return BG_OK;
}
