/* bg_config_doc: the configuration reference, generated from the one key
 * table (lib/core/config_keys.c), and the check that the docs agree with it.
 *
 *   bg_config_doc markdown TEMPLATE [OUT]
 *                                     docs/config.md on stdout (or OUT): TEMPLATE
 *                                     (docs/config.md.in) with each line
 *                                     `@@KEYS breakglass.conf@@` or
 *                                     `@@KEYS pve.conf@@` replaced by that
 *                                     file's sections and keys
 *   bg_config_doc check SOURCE_DIR    fails, naming every disagreement, when
 *                                     docs/config.md is not what `markdown`
 *                                     makes, or a man page (docs/man/
 *                                     breakglass.conf.5.scd, pve.conf.5.scd)
 *                                     misses a key, lists one the table does
 *                                     not have, or gives another default or
 *                                     section
 *   bg_config_doc keys                the table, tab-separated: file section
 *                                     key type default min max help
 *
 * A man page lists a key as a line of its own, under its section's heading
 * (`# [section]` or `*[section]*`): `*key* = default` (the default may be
 * in _underscores_), `*key* =` (empty default) or `*key* (required)`. */
#include "core/config_keys.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *file_name(bg_config_kind kind)
{
	return kind == BG_CONFIG_CLIENT ? "breakglass.conf" : "pve.conf";
}

static const char *type_name(bg_config_type t)
{
	switch (t) {
	case BG_CONF_INT: return "integer";
	case BG_CONF_BOOL: return "boolean";
	default: return "string";
	}
}

/* A table cell: | and the HTML brackets would break the Markdown table. */
static void put_cell(bg_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			bg_buf_puts(out, "\\|");
		else if (*s == '<')
			bg_buf_puts(out, "&lt;");
		else if (*s == '>')
			bg_buf_puts(out, "&gt;");
		else
			bg_buf_putc(out, *s);
	}
}

static void put_env_name(bg_buf *out, const bg_config_key *k)
{
	const char *p;

	bg_buf_puts(out, "`BREAKGLASS_");
	for (p = k->section; *p; p++)
		bg_buf_putc(out, (char)toupper((unsigned char)*p));
	bg_buf_puts(out, "_");
	for (p = k->key; *p; p++)
		bg_buf_putc(out, (char)toupper((unsigned char)*p));
	bg_buf_puts(out, "`");
}

static void put_row(bg_buf *out, const bg_config_key *k)
{
	bg_buf_printf(out, "| `%s` | ", k->key);
	if (!k->def)
		bg_buf_puts(out, "**required**");
	else if (!*k->def)
		bg_buf_puts(out, "(empty)");
	else {
		bg_buf_puts(out, "`");
		put_cell(out, k->def);
		bg_buf_puts(out, "`");
	}
	bg_buf_printf(out, " | %s", type_name(k->type));
	if (k->type == BG_CONF_INT)
		bg_buf_printf(out, ", %lld to %lld", k->min, k->max);
	bg_buf_puts(out, " | ");
	put_cell(out, k->help);
	if (k->kind == BG_CONFIG_CLIENT) {
		bg_buf_puts(out, " | ");
		put_env_name(out, k);
	}
	bg_buf_puts(out, " |\n");
}

/* Every section of one file, in table order, each with its keys. */
static void put_keys(bg_buf *out, bg_config_kind kind)
{
	const char *section = NULL;
	size_t i;
	int first = 1;

	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];

		if (k->kind != kind)
			continue;
		if (!section || strcmp(section, k->section) != 0) {
			section = k->section;
			bg_buf_printf(out, "%s### `[%s]`\n\n", first ? "" : "\n", section);
			first = 0;
			if (kind == BG_CONFIG_CLIENT)
				bg_buf_puts(
					out,
					"| key | default | type | meaning | environment |\n|---|---|---|---|---|\n");
			else
				bg_buf_puts(out, "| key | default | type | meaning |\n|---|---|---|---|\n");
		}
		put_row(out, k);
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	bg_buf b = BG_BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		bg_buf_append(&b, chunk, n);
	fclose(f);
	bg_buf_puts(&b, "");
	return bg_buf_detach(&b);
}

/* The template with its @@KEYS FILE@@ lines expanded; NULL on error. */
static char *markdown(const char *template_path)
{
	char *tpl = read_file(template_path), *line, *nl;
	bg_buf out = BG_BUF_INIT;

	if (!tpl) {
		fprintf(stderr, "bg_config_doc: cannot read %s\n", template_path);
		return NULL;
	}
	for (line = tpl; *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strcmp(line, "@@KEYS breakglass.conf@@") == 0)
			put_keys(&out, BG_CONFIG_CLIENT);
		else if (strcmp(line, "@@KEYS pve.conf@@") == 0)
			put_keys(&out, BG_CONFIG_PVE);
		else
			bg_buf_printf(&out, "%s\n", line);
	}
	free(tpl);
	bg_buf_puts(&out, "");
	return bg_buf_detach(&out);
}

/* ---- the check ---------------------------------------------------------- */

typedef struct man_key {
	char section[32], key[64], def[256];
	int required, seen;
} man_key;

static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++)
		if (!(s[0] == '\\' && s[1]))
			*w++ = *s;
	*w = '\0';
}

/* One line of a man page: a section heading updates `section`; a key
 * entry fills `mk` and returns 1. */
static int man_line(const char *line, char *section, size_t seclen, man_key *mk)
{
	const char *p = NULL, *end;
	size_t n;

	if (strncmp(line, "# [", 3) == 0)
		p = line + 3;
	else if (strncmp(line, "*[", 2) == 0)
		p = line + 2;
	if (p && (end = strchr(p, ']')) && (size_t)(end - p) < seclen) {
		memcpy(section, p, (size_t)(end - p));
		section[end - p] = '\0';
		return 0;
	}
	if (line[0] != '*' || !(end = strchr(line + 1, '*')) || end == line + 1)
		return 0;
	n = (size_t)(end - line - 1);
	if (n >= sizeof(mk->key) || strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_") != n)
		return 0;
	memset(mk, 0, sizeof(*mk));
	memcpy(mk->key, line + 1, n);
	snprintf(mk->section, sizeof(mk->section), "%s", section);
	if (strcmp(end + 1, " (required)") == 0) {
		mk->required = 1;
		return 1;
	}
	if (strcmp(end + 1, " =") == 0)
		return 1;
	if (strncmp(end + 1, " = ", 3) != 0)
		return 0;
	snprintf(mk->def, sizeof(mk->def), "%s", end + 4);
	n = strlen(mk->def);
	if (n >= 2 && mk->def[0] == '_' && mk->def[n - 1] == '_') {
		memmove(mk->def, mk->def + 1, n - 2);
		mk->def[n - 2] = '\0';
	}
	unescape(mk->def);
	return 1;
}

static size_t man_keys(const char *path, man_key *keys, size_t max)
{
	char *text = read_file(path), *line, *save = NULL, section[32] = "";
	size_t n = 0;

	if (!text)
		return (size_t)-1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (n < max && man_line(line, section, sizeof(section), &keys[n]))
			n++;
	free(text);
	return n;
}

static int check_man(const char *path, bg_config_kind kind)
{
	man_key keys[BG_CONFIG_MAX_KEYS * 2];
	size_t n = man_keys(path, keys, sizeof(keys) / sizeof(keys[0])), i, j;
	int bad = 0;

	if (n == (size_t)-1) {
		printf("%s: cannot read it\n", path);
		return 1;
	}
	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];
		man_key *m = NULL;

		if (k->kind != kind)
			continue;
		for (j = 0; j < n && !m; j++)
			if (strcmp(keys[j].section, k->section) == 0 && strcmp(keys[j].key, k->key) == 0)
				m = &keys[j];
		if (!m) {
			printf("%s: [%s] %s is missing (a line `*%s*%s%s` under [%s])\n", path, k->section, k->key,
			       k->key,
			       !k->def   ? " (required)"
			       : *k->def ? " = "
					 : " =",
			       k->def ? k->def : "", k->section);
			bad = 1;
			continue;
		}
		m->seen = 1;
		if ((k->def == NULL) != (m->required != 0) || (k->def && strcmp(k->def, m->def) != 0)) {
			printf("%s: [%s] %s: the man page says %s, the table says %s\n", path, k->section, k->key,
			       m->required ? "(required)" : m->def, k->def ? k->def : "(required)");
			bad = 1;
		}
	}
	for (j = 0; j < n; j++)
		if (!keys[j].seen) {
			printf("%s: [%s] %s is not a key of %s (table: lib/core/config_keys.c)\n", path,
			       keys[j].section, keys[j].key, file_name(kind));
			bad = 1;
		}
	return bad;
}

static int check_markdown(const char *src)
{
	char tpl[1024], md[1024], *want, *have;
	int bad;

	snprintf(tpl, sizeof(tpl), "%s/docs/config.md.in", src);
	snprintf(md, sizeof(md), "%s/docs/config.md", src);
	want = markdown(tpl);
	have = read_file(md);
	bad = !want || !have || strcmp(want, have) != 0;
	if (bad)
		printf("%s is not what the key table makes: regenerate it with\n"
		       "  cmake --build BUILD --target config-doc\n",
		       md);
	free(want);
	free(have);
	return bad;
}

static int check(const char *src)
{
	char path[1024];
	int bad = check_markdown(src);

	snprintf(path, sizeof(path), "%s/docs/man/breakglass.conf.5.scd", src);
	bad |= check_man(path, BG_CONFIG_CLIENT);
	snprintf(path, sizeof(path), "%s/docs/man/pve.conf.5.scd", src);
	bad |= check_man(path, BG_CONFIG_PVE);
	if (!bad)
		printf("docs/config.md and the man pages agree with the %zu keys of lib/core/config_keys.c\n",
		       bg_config_nkeys);
	return bad;
}

static void keys(void)
{
	size_t i;

	for (i = 0; i < bg_config_nkeys; i++) {
		const bg_config_key *k = &bg_config_keys[i];

		printf("%s\t%s\t%s\t%s\t%s\t%lld\t%lld\t%s\n", file_name(k->kind), k->section, k->key,
		       type_name(k->type), k->def ? k->def : "(required)", k->min, k->max, k->help);
	}
}

int main(int argc, char **argv)
{
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "markdown") == 0) {
		char *md = markdown(argv[2]);
		FILE *out = argc == 4 ? fopen(argv[3], "w") : stdout;
		int rc = md && out && fputs(md, out) >= 0 ? 0 : 1;

		if (out && out != stdout && fclose(out) != 0)
			rc = 1;
		if (rc)
			fprintf(stderr, "bg_config_doc: could not write %s\n", argc == 4 ? argv[3] : "stdout");
		free(md);
		return rc;
	}
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return check(argv[2]);
	if (argc == 2 && strcmp(argv[1], "keys") == 0) {
		keys();
		return 0;
	}
	fprintf(stderr, "usage: bg_config_doc markdown TEMPLATE [OUT] | check SOURCE_DIR | keys\n");
	return 2;
}
