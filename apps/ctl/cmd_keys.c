/* `authorized-keys`: the two authorized_keys lines, for the devvm and for
 * the Proxmox host, from the private key the CLI uses (its public half is
 * read from the OpenSSH key file itself). */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PVE_COMMAND "/usr/sbin/breakglass-pve --config /etc/breakglass/pve.conf"

typedef struct keys_args {
	const char *devvm_from, *pve_from, *key_file;
} keys_args;

/* from="…" takes sshd's pattern-list: addresses, CIDRs, wildcards, `!`. */
static int valid_from(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:*?/,!-_", *s))
			return 0;
	return 1;
}

static int parse_args(const ctl_ctx *ctx, keys_args *a, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(opt, "--from") && strcmp(opt, "--devvm-from") && strcmp(opt, "--pve-from") &&
		    strcmp(opt, "--key"))
			return ctl_usage_error(ctx, "authorized-keys: unknown argument '%s'", opt);
		if (!val)
			return ctl_usage_error(ctx, "authorized-keys: %s needs a value", opt);
		i++;
		if (strcmp(opt, "--key") == 0) {
			a->key_file = val;
			continue;
		}
		if (!valid_from(val))
			return ctl_usage_error(ctx,
					       "authorized-keys: %s '%s': want addresses, CIDRs or patterns "
					       "separated by commas (no spaces or quotes)",
					       opt, val);
		if (strcmp(opt, "--pve-from") != 0)
			a->devvm_from = val;
		if (strcmp(opt, "--devvm-from") != 0)
			a->pve_from = val;
	}
	return 0;
}

static int supported_type(const char *type)
{
	return strcmp(type, "ssh-ed25519") == 0 || strncmp(type, "ecdsa-sha2-nistp", 16) == 0;
}

/* The key's public line ("type base64 comment") and its type. */
typedef struct pubkey {
	bg_ssh_key_desc desc;
	char *line;
} pubkey;

static int read_public(const ctl_ctx *ctx, const char *key_file, pubkey *pk)
{
	bg_secret *key = NULL;
	char source[512];
	int rc = ctl_load_key(&key, ctx->cfg, key_file, source, sizeof(source));

	if (rc == BG_ENOTFOUND) {
		fprintf(stderr,
			"%s: authorized-keys: no private key: pass --key FILE, set [ssh] key_file, or put the "
			"key in $BREAKGLASS_SSH_KEY\n",
			ctx->prog);
		return CTL_EXIT_USAGE;
	}
	if (rc != BG_OK)
		return ctl_fail(ctx, rc, "authorized-keys: reading the key");
	rc = bg_ssh_key_describe(&pk->desc, key);
	if (rc == BG_OK)
		rc = bg_ssh_key_public(&pk->line, key, NULL);
	bg_secret_free(key);
	if (rc != BG_OK) {
		fprintf(stderr, "%s: authorized-keys: the key (%s): %s\n", ctx->prog, source, bg_error_last()->message);
		return CTL_EXIT_USAGE;
	}
	if (!supported_type(pk->desc.type)) {
		fprintf(stderr,
			"%s: authorized-keys: the key (%s) is %s: libssh2 1.10 cannot sign with it against "
			"OpenSSH >= 8.8; make an ed25519 key (ssh-keygen -t ed25519)\n",
			ctx->prog, source, pk->desc.type);
		bg_free(pk->line);
		pk->line = NULL;
		return CTL_EXIT_USAGE;
	}
	return 0;
}

static void print_line(FILE *f, const char *options, const pubkey *pk)
{
	fprintf(f, "%s %s", options, pk->line);
}

static int run_keys(ctl_ctx *ctx, int argc, char **argv)
{
	const char *source_address = ctl_conf(ctx->cfg, "ssh", "source_address");
	keys_args a = {NULL, NULL, NULL};
	pubkey pk = {.line = NULL};
	char devvm_opts[1024], pve_opts[1024];
	int rc;

	if ((rc = parse_args(ctx, &a, argc, argv)) != 0)
		return rc;
	if (source_address[0] && valid_from(source_address)) {
		a.devvm_from = a.devvm_from ? a.devvm_from : source_address;
		a.pve_from = a.pve_from ? a.pve_from : source_address;
	}
	if (!a.devvm_from || !a.pve_from)
		return ctl_usage_error(
			ctx, "authorized-keys: where do the connections come from? --from ADDR (or "
			     "--devvm-from / --pve-from, or [ssh] source_address): the pod's address or CIDR");
	if ((rc = read_public(ctx, a.key_file, &pk)) != 0)
		return rc;
	snprintf(devvm_opts, sizeof(devvm_opts), "from=\"%s\",no-port-forwarding,no-agent-forwarding,no-X11-forwarding",
		 a.devvm_from);
	snprintf(pve_opts, sizeof(pve_opts), "command=\"%s\",restrict,from=\"%s\"", PVE_COMMAND, a.pve_from);
	if (ctx->json) {
		char line[4096];
		FILE *m;
		fputs("{\"key_type\":", stdout);
		ctl_json_str(stdout, pk.desc.type);
		m = fmemopen(line, sizeof(line), "w");
		if (m) {
			print_line(m, devvm_opts, &pk);
			fputc('\0', m);
			fclose(m);
			fputs(",\"devvm\":", stdout);
			ctl_json_str(stdout, line);
		}
		m = fmemopen(line, sizeof(line), "w");
		if (m) {
			print_line(m, pve_opts, &pk);
			fputc('\0', m);
			fclose(m);
			fputs(",\"pve\":", stdout);
			ctl_json_str(stdout, line);
		}
		fputs("}\n", stdout);
	} else {
		if (isatty(STDERR_FILENO))
			fprintf(stderr,
				"# devvm: ~%s/.ssh/authorized_keys, then the Proxmox host: ~%s/.ssh/authorized_keys\n",
				ctl_conf(ctx->cfg, "devvm", "user"), ctl_conf(ctx->cfg, "pve", "user"));
		print_line(stdout, devvm_opts, &pk);
		fputc('\n', stdout);
		print_line(stdout, pve_opts, &pk);
		fputc('\n', stdout);
	}
	bg_free(pk.line);
	return CTL_EXIT_OK;
}

const ctl_command ctl_cmd_authorized_keys = {
	"authorized-keys", "[--from ADDR] [--devvm-from ADDR] [--pve-from ADDR] [--key FILE]",
	"the two authorized_keys lines, for the devvm and the Proxmox host", CTL_CONFIG_LOOSE, run_keys};
