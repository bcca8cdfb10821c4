/* `authorized-keys`: the two authorized_keys lines, for the devvm and for
 * the Proxmox host, from the private key the CLI uses (its public half is
 * read from the OpenSSH key file itself). */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct keys_args {
	const char *devvm_from, *pve_from, *key_file;
} keys_args;

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
		if (strcmp(opt, "--pve-from") != 0)
			a->devvm_from = val;
		if (strcmp(opt, "--devvm-from") != 0)
			a->pve_from = val;
	}
	return 0;
}

/* Both lines, built by the library (which checks `from` and the key). */
typedef struct lines {
	bg_ssh_key_desc desc;
	char *devvm, *pve;
} lines;

static int build_lines(const ctl_ctx *ctx, const keys_args *a, lines *l)
{
	bg_ssh_authorized_options o = BG_SSH_AUTHORIZED_OPTIONS_INIT;
	bg_secret *key = NULL;
	char *source = NULL;
	int rc = bg_ssh_key_load(&key, &source, ctx->cfg, a->key_file, BG_SSH_KEY_LOAD_ANY);

	if (rc == BG_ENOTFOUND) {
		fprintf(stderr,
			"%s: authorized-keys: no private key: pass --key FILE, set [ssh] key_file, or put the "
			"key in $BREAKGLASS_SSH_KEY\n",
			ctx->prog);
		return CTL_EXIT_USAGE;
	}
	if (rc != BG_OK) {
		bg_free(source);
		return ctl_fail(ctx, rc, "authorized-keys: reading the key");
	}
	rc = bg_ssh_key_describe(&l->desc, key);
	o.target = "devvm";
	o.from = a->devvm_from;
	if (rc == BG_OK)
		rc = bg_ssh_authorized_key_line(&l->devvm, key, &o);
	o.target = "pve";
	o.from = a->pve_from;
	if (rc == BG_OK)
		rc = bg_ssh_authorized_key_line(&l->pve, key, &o);
	bg_secret_free(key);
	if (rc == BG_EINVAL)
		rc = ctl_usage_error(ctx, "authorized-keys (key from %s): %s", source, bg_error_last()->message);
	else if (rc != BG_OK)
		rc = ctl_fail(ctx, rc, "authorized-keys");
	bg_free(source);
	return rc;
}

static int run_keys(ctl_ctx *ctx, int argc, char **argv)
{
	const char *source_address = bg_app_conf(ctx->cfg, "ssh", "source_address");
	keys_args a = {NULL, NULL, NULL};
	lines l = {.devvm = NULL, .pve = NULL};
	int rc;

	if ((rc = parse_args(ctx, &a, argc, argv)) != 0)
		return rc;
	if (source_address[0]) {
		a.devvm_from = a.devvm_from ? a.devvm_from : source_address;
		a.pve_from = a.pve_from ? a.pve_from : source_address;
	}
	if (!a.devvm_from || !a.pve_from)
		return ctl_usage_error(
			ctx, "authorized-keys: where do the connections come from? --from ADDR (or "
			     "--devvm-from / --pve-from, or [ssh] source_address): the pod's address or CIDR");
	if ((rc = build_lines(ctx, &a, &l)) == 0) {
		if (ctx->json) {
			fputs("{\"key_type\":", stdout);
			ctl_json_str(stdout, l.desc.type);
			fputs(",\"devvm\":", stdout);
			ctl_json_str(stdout, l.devvm);
			fputs(",\"pve\":", stdout);
			ctl_json_str(stdout, l.pve);
			fputs("}\n", stdout);
		} else {
			if (isatty(STDERR_FILENO))
				fprintf(stderr,
					"# devvm: ~%s/.ssh/authorized_keys, then the Proxmox host: "
					"~%s/.ssh/authorized_keys\n",
					bg_app_conf(ctx->cfg, "devvm", "user"), bg_app_conf(ctx->cfg, "pve", "user"));
			printf("%s\n%s\n", l.devvm, l.pve);
		}
	}
	bg_free(l.devvm);
	bg_free(l.pve);
	return rc == 0 ? CTL_EXIT_OK : rc;
}

const ctl_command ctl_cmd_authorized_keys = {
	"authorized-keys", "[--from ADDR] [--devvm-from ADDR] [--pve-from ADDR] [--key FILE]",
	"the two authorized_keys lines, for the devvm and the Proxmox host", CTL_CONFIG_LOOSE, run_keys};
