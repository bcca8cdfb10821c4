#include "config_keys.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

/* Longest line accepted; inih (built with INI_MAX_LINE 200) would split a
 * longer one silently, so the reader refuses it first. */
#define BG_CONFIG_LINE_MAX 190
#define BG_ENV_PREFIX      "BREAKGLASS_"

struct bg_config {
	bg_config_kind kind;
	union {
		bg_client_settings client;
		bg_pve_settings pve;
	} s;
	char *origin[BG_CONFIG_MAX_KEYS];              /* per key of this kind, by table index */
	unsigned char set_in_file[BG_CONFIG_MAX_KEYS]; /* to refuse a key twice in one file */
	char text[BG_CONFIG_MAX_KEYS][24];             /* numbers as text, for bg_config_get */
};

/* Environment variables that start with the prefix but are not config keys
 * even though their first word is a section name. */
static const char *const env_reserved[] = {"BREAKGLASS_SSH_KEY", NULL};

static void *field(bg_config *cfg, const bg_config_key *k)
{
	return (void *)((char *)&cfg->s + k->offset);
}

static int key_belongs(const bg_config *cfg, size_t i)
{
	return bg_config_keys[i].kind == cfg->kind;
}

static const bg_config_key *find_key(const bg_config *cfg, const char *section, const char *key, size_t *index)
{
	size_t i;

	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		if (key_belongs(cfg, i) && strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0) {
			*index = i;
			return k;
		}
	}
	return NULL;
}

static int section_exists(const bg_config *cfg, const char *section)
{
	size_t i;

	for (i = 0; i < bg_config_nkeys; i++)
		if (key_belongs(cfg, i) && strcmp(bg_config_keys[i].section, section) == 0)
			return 1;
	return 0;
}

/* "did you mean" for a key that differs only in case or in '-' vs '_'. */
static const char *suggest(const bg_config *cfg, const char *section, const char *key)
{
	size_t i, j;

	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		if (!key_belongs(cfg, i) || strcasecmp(k->section, section) != 0 || strlen(k->key) != strlen(key))
			continue;
		for (j = 0; key[j]; j++) {
			char a = (char)tolower((unsigned char)key[j]), b = k->key[j];
			if (a != b && !(a == '-' && b == '_'))
				break;
		}
		if (!key[j])
			return k->key;
	}
	return NULL;
}

static const char *section_list(const bg_config *cfg, char *buf, size_t n)
{
	const char *last = "";
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < bg_config_nkeys && used < n; i++) {
		if (!key_belongs(cfg, i) || strcmp(bg_config_keys[i].section, last) == 0)
			continue;
		last = bg_config_keys[i].section;
		used += (size_t)snprintf(buf + used, n - used, "%s[%s]", used ? " " : "", last);
	}
	return buf;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

/* Convert and store one value. `where` prefixes the error ("FILE:LINE"). */
static int store(bg_config *cfg, size_t idx, const char *value, const char *where)
{
	const bg_config_key *k = &bg_config_keys[idx];
	bg_buf why = BG_BUF_INIT;
	char *origin;
	int rc = BG_OK;

	if (k->check && k->check(value, &why) < 0) {
		rc = bg_error_set(BG_ECONFIG, "%s: [%s] %s = '%s': %s", where, k->section, k->key, value,
				  why.data ? why.data : "bad value");
		bg_buf_free(&why);
		return rc;
	}
	if (k->type == BG_CONF_INT) {
		char *end;
		long long n;
		errno = 0;
		n = strtoll(value, &end, 10);
		if (!*value || *end || errno || isspace((unsigned char)value[0]))
			return bg_error_set(BG_ECONFIG, "%s: [%s] %s = '%s': not a number", where, k->section, k->key,
					    value);
		if (n < k->min || n > k->max)
			return bg_error_set(BG_ECONFIG, "%s: [%s] %s = %lld: out of range (%lld to %lld)", where,
					    k->section, k->key, n, k->min, k->max);
		*(int *)field(cfg, k) = (int)n;
		snprintf(cfg->text[idx], sizeof(cfg->text[idx]), "%lld", n);
	} else if (k->type == BG_CONF_BOOL) {
		int b;
		if (parse_bool(value, &b) < 0)
			return bg_error_set(BG_ECONFIG, "%s: [%s] %s = '%s': not a boolean (true or false)", where,
					    k->section, k->key, value);
		*(int *)field(cfg, k) = b;
		snprintf(cfg->text[idx], sizeof(cfg->text[idx]), "%s", b ? "true" : "false");
	} else {
		char *copy = strdup(value);
		char **slot = (char **)field(cfg, k);
		if (!copy)
			return bg_error_oom();
		free(*slot);
		*slot = copy;
	}
	origin = strdup(where);
	if (!origin)
		return bg_error_oom();
	free(cfg->origin[idx]);
	cfg->origin[idx] = origin;
	return rc;
}

int bg_config_new(bg_config **out, bg_config_kind kind)
{
	bg_config *cfg;
	size_t i;

	*out = NULL;
	if (kind != BG_CONFIG_CLIENT && kind != BG_CONFIG_PVE)
		return bg_error_set(BG_EINVAL, "unknown configuration kind %d", (int)kind);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return bg_error_oom();
	cfg->kind = kind;
	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		int rc;
		if (!key_belongs(cfg, i))
			continue;
		if (!k->def) {
			/* A required key starts empty and unset: validate() reports it
			 * unless a source sets it. */
			if (k->type == BG_CONF_STRING && !(*(char **)field(cfg, k) = strdup(""))) {
				bg_config_free(cfg);
				return bg_error_oom();
			}
			continue;
		}
		rc = store(cfg, i, k->def, "default");
		if (rc < 0) {
			bg_config_free(cfg);
			return rc;
		}
	}
	*out = cfg;
	return BG_OK;
}

/* The reader inih pulls lines from: it counts lines (inih 55 does not pass
 * line numbers to the handler), refuses over-long ones, drops leading
 * whitespace (so inih's multi-line continuation never applies) and cuts
 * inline " #" comments as well as inih's own " ;". */
typedef struct file_reader {
	FILE *f;
	const char *path;
	int lineno;
	int error; /* a BG_E* code set by the reader or handler */
	bg_config *cfg;
	char *line;
	size_t cap;
} file_reader;

/* inih only reports a section through the keys under it; checking the
 * header itself puts the error on the right line, even for an empty
 * section. */
static int check_section_line(file_reader *r, const char *line)
{
	const char *end = strchr(line, ']');
	char name[64], sections[256];
	size_t n;

	if (!end) {
		r->error = bg_error_set(BG_ECONFIG, "%s:%d: section header without ']'", r->path, r->lineno);
		return -1;
	}
	n = (size_t)(end - line - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, line + 1, n);
	name[n] = '\0';
	if (section_exists(r->cfg, name))
		return 0;
	r->error = bg_error_set(BG_ECONFIG, "%s:%d: unknown section [%s] (sections: %s)", r->path, r->lineno, name,
				section_list(r->cfg, sections, sizeof(sections)));
	return -1;
}

static char *read_line(char *str, int num, void *stream)
{
	file_reader *r = stream;
	ssize_t n;
	char *p, *start;

	if (r->error)
		return NULL;
	n = getline(&r->line, &r->cap, r->f);
	if (n < 0)
		return NULL;
	r->lineno++;
	if (memchr(r->line, '\0', (size_t)n)) {
		r->error = bg_error_set(BG_ECONFIG, "%s:%d: NUL byte in the file", r->path, r->lineno);
		return NULL;
	}
	if (n > BG_CONFIG_LINE_MAX || num < BG_CONFIG_LINE_MAX + 2) {
		r->error = bg_error_set(BG_ECONFIG, "%s:%d: line longer than %d characters", r->path, r->lineno,
					BG_CONFIG_LINE_MAX);
		return NULL;
	}
	for (start = r->line; *start == ' ' || *start == '\t'; start++)
		;
	if (*start == '[' && check_section_line(r, start) < 0)
		return NULL;
	for (p = start; *p; p++) {
		if (*p == '#' && p > start && (p[-1] == ' ' || p[-1] == '\t')) {
			p[0] = '\n';
			p[1] = '\0';
			break;
		}
	}
	snprintf(str, (size_t)num, "%s", start);
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	file_reader *r = user;
	bg_config *cfg = r->cfg;
	const bg_config_key *k;
	char where[512], sections[256];
	const char *hint;
	size_t idx;

	snprintf(where, sizeof(where), "%s:%d", r->path, r->lineno);
	if (!*section) {
		r->error = bg_error_set(BG_ECONFIG, "%s: key '%s' outside any section (sections: %s)", where, name,
					section_list(cfg, sections, sizeof(sections)));
		return 0;
	}
	if (!section_exists(cfg, section)) {
		r->error = bg_error_set(BG_ECONFIG, "%s: unknown section [%s] (sections: %s)", where, section,
					section_list(cfg, sections, sizeof(sections)));
		return 0;
	}
	k = find_key(cfg, section, name, &idx);
	if (!k) {
		hint = suggest(cfg, section, name);
		r->error = bg_error_set(BG_ECONFIG, "%s: unknown key '%s' in [%s]%s%s%s", where, name, section,
					hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
		return 0;
	}
	if (cfg->set_in_file[idx]) {
		r->error = bg_error_set(BG_ECONFIG, "%s: [%s] %s is set twice in this file", where, section, name);
		return 0;
	}
	cfg->set_in_file[idx] = 1;
	if (store(cfg, idx, value, where) < 0) {
		r->error = BG_ECONFIG;
		return 0;
	}
	return 1;
}

static int load_stream(bg_config *cfg, FILE *f, const char *name)
{
	file_reader r = {0};
	int line;

	r.f = f;
	r.path = name;
	r.cfg = cfg;
	memset(cfg->set_in_file, 0, sizeof(cfg->set_in_file));
	line = ini_parse_stream(read_line, &r, on_key, &r);
	free(r.line);
	if (r.error)
		return r.error;
	if (line > 0)
		return bg_error_set(BG_ECONFIG, "%s:%d: not a [section] or key = value line", name, line);
	if (line < 0)
		return bg_error_set(BG_ECONFIG, "%s: cannot parse (out of memory)", name);
	return BG_OK;
}

int bg_config_load_file(bg_config *cfg, const char *path, int missing_ok)
{
	FILE *f;
	int rc;

	if (!cfg || !path)
		return bg_error_set(BG_EINVAL, "no configuration or path");
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && missing_ok)
			return BG_OK;
		return bg_error_set(BG_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
	}
	rc = load_stream(cfg, f, path);
	fclose(f);
	return rc;
}

int bg_config_load_string(bg_config *cfg, const char *name, const char *text, size_t len)
{
	FILE *f;
	int rc;

	if (!cfg || !name || (!text && len))
		return bg_error_set(BG_EINVAL, "no configuration, name or text");
	if (len == 0)
		return BG_OK;
	f = fmemopen((void *)text, len, "r");
	if (!f)
		return bg_error_oom();
	rc = load_stream(cfg, f, name);
	fclose(f);
	return rc;
}

static int env_reserved_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; env_reserved[i]; i++)
		if (strlen(env_reserved[i]) == len && strncmp(env_reserved[i], name, len) == 0)
			return 1;
	return 0;
}

static int apply_env(bg_config *cfg, const char *entry)
{
	const char *eq = strchr(entry, '='), *rest = entry + strlen(BG_ENV_PREFIX), *us;
	char section[32], key[64], where[128];
	size_t i, n;
	size_t idx;

	if (!eq || env_reserved_name(entry, (size_t)(eq - entry)))
		return BG_OK;
	us = memchr(rest, '_', (size_t)(eq - rest));
	if (!us || (size_t)(us - rest) >= sizeof(section) || (size_t)(eq - us - 1) >= sizeof(key))
		return BG_OK;
	for (i = 0, n = (size_t)(us - rest); i < n; i++)
		section[i] = (char)tolower((unsigned char)rest[i]);
	section[n] = '\0';
	if (!section_exists(cfg, section))
		return BG_OK; /* BREAKGLASS_SERVER and the like: not config keys */
	for (i = 0, n = (size_t)(eq - us - 1); i < n; i++)
		key[i] = (char)tolower((unsigned char)us[1 + i]);
	key[n] = '\0';
	snprintf(where, sizeof(where), "environment %.*s", (int)(eq - entry), entry);
	if (!find_key(cfg, section, key, &idx))
		return bg_error_set(BG_ECONFIG, "%s: unknown key '%s' in [%s]", where, key, section);
	return store(cfg, idx, eq + 1, where);
}

int bg_config_load_env(bg_config *cfg, char *const *envp)
{
	char *const *e;
	int rc;

	if (!cfg)
		return bg_error_set(BG_EINVAL, "no configuration");
	if (cfg->kind == BG_CONFIG_PVE)
		return bg_error_set(BG_EINVAL, "pve.conf is never overridden from the environment (under sshd it "
					       "is the client's)");
	for (e = envp ? envp : environ; e && *e; e++) {
		if (strncmp(*e, BG_ENV_PREFIX, strlen(BG_ENV_PREFIX)) != 0)
			continue;
		rc = apply_env(cfg, *e);
		if (rc < 0)
			return rc;
	}
	return BG_OK;
}

int bg_config_set(bg_config *cfg, const char *section, const char *key, const char *value, const char *origin)
{
	size_t idx;

	if (!cfg || !section || !key || !value)
		return bg_error_set(BG_EINVAL, "bg_config_set: missing argument");
	if (!find_key(cfg, section, key, &idx))
		return bg_error_set(BG_ECONFIG, "%s: unknown key [%s] %s", origin ? origin : "command line", section,
				    key);
	return store(cfg, idx, value, origin ? origin : "command line");
}

static int validate_client(bg_config *cfg)
{
	const bg_client_settings *c = &cfg->s.client;
	char host[64];
	int port;

	if (strstr(c->web.auth, "none") &&
	    (bg_config_split_listen(c->web.listen, host, sizeof(host), &port) < 0 || !bg_config_is_loopback(host)))
		return bg_error_set(
			BG_ECONFIG,
			"%s: [web] auth = none is refused unless listen is a loopback address (listen = %s)",
			bg_config_origin(cfg, "web", "auth"), c->web.listen);
	if (strcmp(c->devvm.host_key_policy, "pin") == 0 && !*c->devvm.host_key)
		return bg_error_set(BG_ECONFIG, "%s: [devvm] host_key_policy = pin but [devvm] host_key is not set",
				    bg_config_origin(cfg, "devvm", "host_key_policy"));
	if (strcmp(c->pve.host_key_policy, "pin") == 0 && !*c->pve.host_key)
		return bg_error_set(BG_ECONFIG, "%s: [pve] host_key_policy = pin but [pve] host_key is not set",
				    bg_config_origin(cfg, "pve", "host_key_policy"));
	if (strstr(c->web.auth, "basic") && !*c->web.htpasswd_file)
		return bg_error_set(BG_ECONFIG, "%s: [web] auth includes basic but [web] htpasswd_file is not set",
				    bg_config_origin(cfg, "web", "auth"));
	return BG_OK;
}

int bg_config_validate(bg_config *cfg)
{
	size_t i;

	if (!cfg)
		return bg_error_set(BG_EINVAL, "no configuration");
	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		if (key_belongs(cfg, i) && !k->def && !cfg->origin[i])
			return bg_error_set(
				BG_ECONFIG, "[%s] %s is required (%s) and no source sets it%s%s%s", k->section, k->key,
				k->help, cfg->kind == BG_CONFIG_CLIENT ? ": set it in the file or as $BREAKGLASS_" : "",
				cfg->kind == BG_CONFIG_CLIENT ? k->section : "",
				cfg->kind == BG_CONFIG_CLIENT ? "_…" : "");
	}
	return cfg->kind == BG_CONFIG_CLIENT ? validate_client(cfg) : BG_OK;
}

int bg_config_load(bg_config **out, bg_config_kind kind, const char *path)
{
	bg_config *cfg;
	int rc;
	const char *def = kind == BG_CONFIG_PVE ? BG_CONFIG_PVE_DEFAULT_PATH : BG_CONFIG_CLIENT_DEFAULT_PATH;

	*out = NULL;
	rc = bg_config_new(&cfg, kind);
	if (rc < 0)
		return rc;
	rc = bg_config_load_file(cfg, path ? path : def, path == NULL);
	if (rc == BG_OK && kind == BG_CONFIG_CLIENT)
		rc = bg_config_load_env(cfg, NULL);
	if (rc == BG_OK)
		rc = bg_config_validate(cfg);
	if (rc < 0) {
		bg_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return BG_OK;
}

bg_config_kind bg_config_get_kind(const bg_config *cfg)
{
	return cfg->kind;
}

const bg_client_settings *bg_config_client(const bg_config *cfg)
{
	return cfg && cfg->kind == BG_CONFIG_CLIENT ? &cfg->s.client : NULL;
}

const bg_pve_settings *bg_config_pve(const bg_config *cfg)
{
	return cfg && cfg->kind == BG_CONFIG_PVE ? &cfg->s.pve : NULL;
}

static const char *value_text(const bg_config *cfg, size_t idx)
{
	const bg_config_key *k = &bg_config_keys[idx];

	const char *value;

	if (k->type != BG_CONF_STRING)
		return cfg->text[idx];
	/* memcpy: the field is a char * at an offset the table computed with
	 * offsetof, so it is aligned, but the compiler cannot see that. */
	memcpy(&value, (const char *)&cfg->s + k->offset, sizeof(value));
	return value;
}

const char *bg_config_get(const bg_config *cfg, const char *section, const char *key)
{
	size_t idx;

	if (!cfg || !section || !key || !find_key(cfg, section, key, &idx)) {
		bg_error_set(BG_ENOTFOUND, "unknown key [%s] %s", section ? section : "", key ? key : "");
		return NULL;
	}
	return value_text(cfg, idx);
}

int bg_config_get_int(int *out, const bg_config *cfg, const char *section, const char *key)
{
	const bg_config_key *k;
	size_t idx;

	*out = 0;
	if (!cfg || !section || !key || !(k = find_key(cfg, section, key, &idx)))
		return bg_error_set(BG_ENOTFOUND, "unknown key [%s] %s", section ? section : "", key ? key : "");
	if (k->type == BG_CONF_STRING)
		return bg_error_set(BG_EINVAL, "[%s] %s is text, not a number: read it with bg_config_get", section,
				    key);
	memcpy(out, (const char *)field((bg_config *)cfg, k), sizeof(*out));
	return BG_OK;
}

const char *bg_config_origin(const bg_config *cfg, const char *section, const char *key)
{
	size_t idx;

	if (!cfg || !section || !key || !find_key(cfg, section, key, &idx))
		return NULL;
	return cfg->origin[idx] ? cfg->origin[idx] : "unset";
}

int bg_config_foreach(const bg_config *cfg, bg_config_visit_fn fn, void *payload)
{
	size_t i;
	int rc;

	for (i = 0; cfg && i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		if (!key_belongs(cfg, i))
			continue;
		rc = fn(k->section, k->key, value_text(cfg, i), cfg->origin[i] ? cfg->origin[i] : "unset", payload);
		if (rc)
			return rc;
	}
	return BG_OK;
}

void bg_config_free(bg_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < bg_config_nkeys; i++) {
		if (!key_belongs(cfg, i))
			continue;
		if (bg_config_keys[i].type == BG_CONF_STRING)
			free(*(char **)field(cfg, &bg_config_keys[i]));
		free(cfg->origin[i]);
	}
	free(cfg);
}
