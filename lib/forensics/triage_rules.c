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
#define AVAIL_WARN_PCT    5.0
#define AVAIL_CRIT_PCT    2.0
#define LOAD_WARN_PER_CPU 2.0
#define LOAD_CRIT_PER_CPU 8.0
#define MAX_EVIDENCE      12

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

static int finish(bg_triage *t, const char *rule, bg_severity sev, bg_buf *summary, bg_buf *evidence)
{
	int rc = BG_ENOMEM;

	if (summary->data && evidence->data)
		rc = bg_triage_add_finding(t, rule, sev, summary->data, evidence->data);
	bg_buf_free(summary);
	bg_buf_free(evidence);
	return rc == BG_ENOMEM ? bg_error_oom() : rc;
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

static int rule_full(bg_triage *t, const char *section, const char *rule, const char *what)
{
	const char *text = bg_triage_output(t, section), *p = text, *line, *mount;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t len, nfull = 0;
	int worst = 0, pct;

	if (!text)
		return BG_OK;
	while (next_line(&p, &line, &len)) {
		if ((pct = df_use(line, len, &mount)) < FULL_WARN_PCT)
			continue;
		bg_buf_printf(&summary, "%s%.*s %d%%", nfull ? ", " : "", (int)(len - (size_t)(mount - line)), mount,
			      pct);
		add_line(&evidence, line, len);
		worst = pct > worst ? pct : worst;
		nfull++;
	}
	if (nfull == 0)
		return BG_OK;
	bg_buf_printf(&summary, ": %s nearly exhausted", what);
	return finish(t, rule, worst >= FULL_CRIT_PCT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary, &evidence);
}

static int rule_disk(bg_triage *t)
{
	return rule_full(t, "disk", "disk_full", "disk space");
}

static int rule_inodes(bg_triage *t)
{
	return rule_full(t, "inodes", "inodes_full", "inodes (too many files)");
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

static int rule_oom(bg_triage *t)
{
	static const char *const kill_lines[] = {"Killed process", NULL};
	static const char *const oom_lines[] = {"out of memory", "oom-kill", "Killed process", "oom_reaper", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT, last = BG_BUF_INIT;
	char who[128];
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
	bg_buf_free(&last);
	if (kills)
		bg_buf_printf(&summary, "the kernel's OOM killer killed %zu process%s (last: %s): memory ran out",
			      kills, kills == 1 ? "" : "es", who[0] ? who : "?");
	else
		bg_buf_puts(&summary, "the kernel ran out of memory (OOM)");
	return finish(t, "oom_kill", BG_SEVERITY_CRITICAL, &summary, &evidence);
}

static int rule_kernel(bg_triage *t, const char *rule, const char *const *needles, const char *what)
{
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t n = grep_kernel(t, needles, &evidence, NULL);

	if (n == 0) {
		bg_buf_free(&evidence);
		return BG_OK;
	}
	bg_buf_printf(&summary, "%s (%zu kernel log line%s)", what, n, n == 1 ? "" : "s");
	return finish(t, rule, BG_SEVERITY_CRITICAL, &summary, &evidence);
}

static int rule_hung_task(bg_triage *t)
{
	static const char *const needles[] = {"blocked for more than", "hung_task", NULL};
	return rule_kernel(t, "hung_task", needles, "tasks hung in the kernel for minutes: I/O is stalled");
}

static int rule_io_error(bg_triage *t)
{
	static const char *const needles[] = {"I/O error", "EXT4-fs error", "Buffer I/O", NULL};
	return rule_kernel(t, "io_error", needles, "the kernel logged I/O errors: the disk or its storage path fails");
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

static int rule_swap_thrash(bg_triage *t)
{
	static const char *const prefixes[] = {"SwapTotal:", "SwapFree:", "pswpin ", "after 1 s", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	mem m;
	psi pm;
	long long used;

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
	return finish(t, "swap_thrash", BG_SEVERITY_CRITICAL, &summary, &evidence);
}

static int rule_memory_pressure(bg_triage *t)
{
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
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
	return finish(t, "memory_pressure", sev, &summary, &evidence);
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
	static const char *const prefixes[] = {"MemTotal:", "MemFree:", "MemAvailable:", NULL};
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
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
	return finish(t, "memory_low", pct < AVAIL_CRIT_PCT ? BG_SEVERITY_CRITICAL : BG_SEVERITY_WARN, &summary,
		      &evidence);
}

/* ---- units, processes, load -------------------------------------------- */

static int rule_failed_units(bg_triage *t)
{
	const char *p = bg_triage_output(t, "failed_units"), *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT, names = BG_BUF_INIT;
	size_t len, n = 0;

	while (next_line(&p, &line, &len)) {
		size_t w = strcspn(line, " \t\n");
		if (!line_has(line, len, " failed ") || w == 0 || w > len)
			continue;
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
	return finish(t, "failed_units", BG_SEVERITY_WARN, &summary, &evidence);
}

static int rule_dstate(bg_triage *t)
{
	const char *p = bg_triage_output(t, "dstate"), *line;
	bg_buf summary = BG_BUF_INIT, evidence = BG_BUF_INIT;
	size_t len, n = 0;

	while (next_line(&p, &line, &len)) {
		size_t i = 0;
		/* PID then STAT: the second field starts with D */
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len || !isdigit((unsigned char)line[i]))
			continue;
		while (i < len && !isspace((unsigned char)line[i]))
			i++;
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i < len && line[i] == 'D') {
			if (n < MAX_EVIDENCE)
				add_line(&evidence, line, len);
			n++;
		}
	}
	if (n == 0)
		return BG_OK;
	bg_buf_printf(&summary, "%zu process%s in uninterruptible sleep (state D): stuck on I/O or in the kernel", n,
		      n == 1 ? "" : "es");
	return finish(t, "dstate", BG_SEVERITY_WARN, &summary, &evidence);
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
		rule_oom,        rule_hung_task,   rule_io_error,        rule_disk,
		rule_inodes,     rule_swap_thrash, rule_memory_pressure, rule_io_pressure,
		rule_memory_low, rule_dstate,      rule_failed_units,    rule_load,
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if ((rc = rules[i](t)) != BG_OK)
			return rc;
	sort_by_severity(t);
	return BG_OK;
}
