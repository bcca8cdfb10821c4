/* The devvm triage (docs/forensics.md, guest side): one shell script, sent in one
 * exec, prints every section between markers, each section under its own
 * `timeout`. The script is lib/forensics/triage.sh (embedded at build time
 * as bg_triage_sh); it sticks to what both Debian (coreutils, procps) and
 * busybox (the lab guest: no `ps --sort`, no systemd) provide. */
#include "forensics/triage_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "triage_sh.h" /* bg_triage_sh[]: lib/forensics/triage.sh, embedded by the build */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_TIMEOUT_S 60

const char *const bg_triage_section_names[] = {"uptime",       "memory",  "psi",     "disk",   "inodes",
					       "failed_units", "top_mem", "top_cpu", "dstate", "kernel_log",
					       "tmpfs",        "mounts",  "procs",   "units",  NULL};

const char *bg_severity_name(bg_severity s)
{
	switch (s) {
	case BG_SEVERITY_CRITICAL: return "critical";
	case BG_SEVERITY_WARN: return "warn";
	default: return "info";
	}
}

/* The script as sent: without its comment lines and indentation, which
 * the shell does not need. Dropbear refuses a command over 9000 bytes
 * (MAX_CMD_LEN), and the command is the script quoted for `sh -c`. */
char *bg_triage_script(const char *nonce)
{
	bg_buf b = BG_BUF_INIT;
	const char *p = bg_triage_sh;
	int rc = bg_buf_printf(&b, "N=%s\n", nonce);

	while (rc == BG_OK && *p) {
		size_t n = strcspn(p, "\n"), lead = strspn(p, " \t");
		if (lead < n && p[lead] != '#')
			rc = bg_buf_printf(&b, "%.*s\n", (int)(n - lead), p + lead);
		p += n;
		if (*p == '\n')
			p++;
	}
	if (rc != BG_OK) {
		bg_buf_free(&b);
		return NULL;
	}
	return bg_buf_detach(&b);
}

int bg_triage_new_empty(bg_triage **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? BG_OK : bg_error_oom();
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

int bg_triage_add_section(bg_triage *t, const char *name, int ok, const char *output, size_t len, const char *error)
{
	bg_triage_section *grown, *s;

	grown = realloc(t->sections, (t->nsections + 1) * sizeof(*grown));
	if (!grown)
		return bg_error_oom();
	t->sections = grown;
	s = &t->sections[t->nsections];
	s->name = strdup(name);
	s->ok = ok;
	s->output = dup_n(output ? output : "", output ? len : 0);
	s->error = error ? strdup(error) : NULL;
	t->nsections++;
	if (!s->name || !s->output || (error && !s->error))
		return bg_error_oom();
	return BG_OK;
}

int bg_triage_add_finding(bg_triage *t, const char *rule, bg_severity sev, const char *summary, const char *evidence,
			  const char *culprit)
{
	bg_triage_finding *grown, *f;

	grown = realloc(t->findings, (t->nfindings + 1) * sizeof(*grown));
	if (!grown)
		return bg_error_oom();
	t->findings = grown;
	f = &t->findings[t->nfindings];
	f->rule = strdup(rule);
	f->severity = sev;
	f->summary = strdup(summary);
	f->evidence = strdup(evidence ? evidence : "");
	f->culprit = culprit ? strdup(culprit) : NULL;
	t->nfindings++;
	if (!f->rule || !f->summary || !f->evidence || (culprit && !f->culprit))
		return bg_error_oom();
	return BG_OK;
}

const char *bg_triage_output(const bg_triage *t, const char *name)
{
	size_t i;

	/* A section that failed or was cut short still shows what it printed
	 * until then (on a guest too slow for a section's time limit, the
	 * first lines are there): the rules read whatever came. */
	for (i = 0; i < t->nsections; i++)
		if (strcmp(t->sections[i].name, name) == 0)
			return t->sections[i].ok || t->sections[i].output[0] ? t->sections[i].output : NULL;
	return NULL;
}

static const bg_triage_section *find_section(const bg_triage *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nsections; i++)
		if (strcmp(t->sections[i].name, name) == 0)
			return &t->sections[i];
	return NULL;
}

/* ---- the script's output ---------------------------------------------- */

typedef struct marker {
	int begin; /* 1 begin, 0 end */
	char name[32];
	int rc;
} marker;

/* Whether the line (start, len) is one of our markers. */
static int parse_marker(const char *line, size_t len, const char *nonce, marker *m)
{
	char buf[128], word[16];
	size_t prefix = strlen(nonce) + 2;

	if (len >= sizeof(buf) || len < prefix || line[0] != '@' || line[1] != '@' ||
	    memcmp(line + 2, nonce, prefix - 2) != 0)
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	m->rc = -1;
	if (sscanf(buf + prefix, " %15s %31s %d", word, m->name, &m->rc) < 2)
		return 0;
	m->begin = strcmp(word, "begin") == 0;
	return m->begin || strcmp(word, "end") == 0;
}

static void describe_rc(int rc, const char *name, char *buf, size_t n)
{
	if (rc == 124 || rc == 137)
		snprintf(buf, n, "%s: timed out on the devvm", name);
	else if (rc == 127)
		snprintf(buf, n, "%s: a command was not found on the devvm", name);
	else
		snprintf(buf, n, "%s: exit status %d", name, rc);
}

static int close_section(bg_triage *t, const marker *m, const char *text, size_t len)
{
	char why[128];

	/* drop the newline the end marker brought */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (m->rc == 0)
		return bg_triage_add_section(t, m->name, 1, text, len, NULL);
	describe_rc(m->rc, m->name, why, sizeof(why));
	return bg_triage_add_section(t, m->name, 0, text, len, why);
}

static int add_missing(bg_triage *t)
{
	size_t i;
	int rc = BG_OK;

	for (i = 0; bg_triage_section_names[i] && rc == BG_OK; i++)
		if (!find_section(t, bg_triage_section_names[i]))
			rc = bg_triage_add_section(t, bg_triage_section_names[i], 0, "", 0,
						   "not run: the triage ended before this section");
	return rc;
}

static int split_sections(bg_triage *t, const char *text, size_t len, const char *nonce)
{
	size_t pos = 0, start = 0;
	int open = 0, rc = BG_OK;
	marker cur = {0, "", 0}, m;

	while (pos < len && rc == BG_OK) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (parse_marker(text + pos, line_len, nonce, &m)) {
			if (m.begin) {
				cur = m;
				open = 1;
				start = pos + line_len + (nl ? 1 : 0);
			} else if (open && strcmp(m.name, cur.name) == 0) {
				rc = close_section(t, &m, text + start, pos - start);
				open = 0;
			}
		}
		pos += line_len + (nl ? 1 : 0);
	}
	if (rc == BG_OK && open)
		rc = bg_triage_add_section(t, cur.name, 0, text + start, len - start,
					   "cut short: the triage's time limit ended during this section");
	return rc;
}

int bg_triage_parse_output(bg_triage **out, const char *text, size_t len, const char *nonce)
{
	bg_triage *t;
	int rc;

	*out = NULL;
	if ((rc = bg_triage_new_empty(&t)) != BG_OK)
		return rc;
	rc = split_sections(t, text ? text : "", text ? len : 0, nonce);
	if (rc == BG_OK)
		rc = add_missing(t);
	if (rc == BG_OK)
		rc = bg_triage_apply_rules(t);
	if (rc != BG_OK) {
		bg_triage_free(t);
		return rc;
	}
	*out = t;
	return BG_OK;
}

int bg_triage_from_sections(bg_triage **out, const char *const *names, const char *const *outputs, size_t count)
{
	bg_triage *t;
	size_t i;
	int rc;

	if (!out || (count && (!names || !outputs)))
		return bg_error_set(BG_EINVAL, "bg_triage_from_sections: NULL argument");
	*out = NULL;
	if ((rc = bg_triage_new_empty(&t)) != BG_OK)
		return rc;
	for (i = 0; i < count && rc == BG_OK; i++) {
		if (!names[i])
			continue;
		if (outputs[i])
			rc = bg_triage_add_section(t, names[i], 1, outputs[i], strlen(outputs[i]), NULL);
		else
			rc = bg_triage_add_section(t, names[i], 0, "", 0, "not recorded");
	}
	if (rc == BG_OK)
		rc = bg_triage_apply_rules(t);
	if (rc != BG_OK) {
		bg_triage_free(t);
		return rc;
	}
	*out = t;
	return BG_OK;
}

/* ---- running it ---------------------------------------------------------- */

static void make_nonce(char *buf, size_t n)
{
	unsigned char raw[8];
	size_t i;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		int64_t x = bg_wall_ms() ^ bg_now_ms();
		memcpy(raw, &x, sizeof(raw));
	}
	buf[0] = '\0';
	for (i = 0; i < sizeof(raw) && 2 * i + 3 < n; i++)
		snprintf(buf + 2 * i, n - 2 * i, "%02x", raw[i]);
}

int bg_triage_run(bg_triage **out, bg_ssh *ssh, int timeout_s)
{
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result res;
	char nonce[24], *script;
	int64_t t0 = bg_now_ms();
	int rc;

	if (!out || !ssh)
		return bg_error_set(BG_EINVAL, "bg_triage_run: NULL argument");
	*out = NULL;
	make_nonce(nonce, sizeof(nonce));
	script = bg_triage_script(nonce);
	if (!script)
		return bg_error_oom();
	opts.timeout_s = timeout_s > 0 ? timeout_s : DEFAULT_TIMEOUT_S;
	opts.remote_timeout = 1;
	memset(&res, 0, sizeof(res));
	rc = bg_ssh_exec(&res, ssh, script, &opts);
	free(script);
	if (rc != BG_OK && rc != BG_ETIMEOUT) {
		bg_ssh_result_clear(&res);
		return bg_error_prefix("devvm triage: ");
	}
	if (rc == BG_ETIMEOUT)
		bg_warn("forensics", "devvm triage cut short after %d s; keeping the sections that finished",
			opts.timeout_s);
	rc = bg_triage_parse_output(out, res.out, res.out_len, nonce);
	bg_ssh_result_clear(&res);
	if (rc == BG_OK)
		(*out)->elapsed_ms = bg_now_ms() - t0;
	return rc;
}

/* ---- accessors and renderings ------------------------------------------ */

size_t bg_triage_section_count(const bg_triage *t)
{
	return t ? t->nsections : 0;
}

const bg_triage_section *bg_triage_section_at(const bg_triage *t, size_t i)
{
	return t && i < t->nsections ? &t->sections[i] : NULL;
}

size_t bg_triage_finding_count(const bg_triage *t)
{
	return t ? t->nfindings : 0;
}

const bg_triage_finding *bg_triage_finding_at(const bg_triage *t, size_t i)
{
	return t && i < t->nfindings ? &t->findings[i] : NULL;
}

static json_object *findings_json(const bg_triage *t)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr && i < t->nfindings; i++) {
		const bg_triage_finding *f = &t->findings[i];
		json_object *o = json_object_new_object();
		if (!o)
			break;
		bg_json_add_str(o, "rule", f->rule);
		bg_json_add_str(o, "severity", bg_severity_name(f->severity));
		bg_json_add_str(o, "summary", f->summary);
		bg_json_add_str(o, "evidence", f->evidence);
		bg_json_add_str(o, "culprit", f->culprit);
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *sections_json(const bg_triage *t)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr && i < t->nsections; i++) {
		const bg_triage_section *s = &t->sections[i];
		json_object *o = json_object_new_object();
		if (!o)
			break;
		bg_json_add_str(o, "name", s->name);
		bg_json_add_bool(o, "ok", s->ok);
		bg_json_add_str(o, "output", s->output);
		bg_json_add_str(o, "error", s->error);
		json_object_array_add(arr, o);
	}
	return arr;
}

int bg_triage_to_json(char **json_out, const bg_triage *t)
{
	json_object *o;

	if (!t || !json_out)
		return bg_error_set(BG_EINVAL, "bg_triage_to_json: NULL argument");
	o = json_object_new_object();
	if (!o)
		return bg_error_oom();
	json_object_object_add(o, "sections", sections_json(t));
	json_object_object_add(o, "findings", findings_json(t));
	bg_json_add_int(o, "elapsed_ms", t->elapsed_ms);
	*json_out = bg_json_dump(o);
	json_object_put(o);
	return *json_out ? BG_OK : bg_error_oom();
}

static void indent_into(bg_buf *b, const char *text)
{
	const char *p = text;

	while (*p) {
		size_t n = strcspn(p, "\n");
		bg_buf_printf(b, "    %.*s\n", (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

int bg_triage_to_text(char **text_out, const bg_triage *t)
{
	bg_buf b = BG_BUF_INIT;
	size_t i;

	if (!t || !text_out)
		return bg_error_set(BG_EINVAL, "bg_triage_to_text: NULL argument");
	if (t->nfindings == 0)
		bg_buf_puts(&b, "findings: none (no rule fired)\n");
	else
		bg_buf_printf(&b, "findings: %zu\n", t->nfindings);
	for (i = 0; i < t->nfindings; i++) {
		const bg_triage_finding *f = &t->findings[i];
		bg_buf_printf(&b, "  [%s] %s: %s\n", bg_severity_name(f->severity), f->rule, f->summary);
		if (f->culprit)
			bg_buf_printf(&b, "    culprit: %s\n", f->culprit);
		indent_into(&b, f->evidence);
	}
	for (i = 0; i < t->nsections; i++) {
		const bg_triage_section *s = &t->sections[i];
		bg_buf_printf(&b, "\n== %s%s%s%s\n", s->name, s->ok ? "" : " (FAILED: ", s->ok ? "" : s->error,
			      s->ok ? "" : ")");
		bg_buf_puts(&b, s->output);
		if (s->output[0] && s->output[strlen(s->output) - 1] != '\n')
			bg_buf_putc(&b, '\n');
	}
	*text_out = bg_buf_detach(&b);
	return *text_out ? BG_OK : bg_error_oom();
}

void bg_triage_free(bg_triage *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nsections; i++) {
		free((char *)t->sections[i].name);
		free((char *)t->sections[i].output);
		free((char *)t->sections[i].error);
	}
	for (i = 0; i < t->nfindings; i++) {
		free((char *)t->findings[i].rule);
		free((char *)t->findings[i].summary);
		free((char *)t->findings[i].evidence);
		free((char *)t->findings[i].culprit);
	}
	free(t->sections);
	free(t->findings);
	free(t);
}
