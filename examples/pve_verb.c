/* Run one Proxmox verb through the forced command and print what it did.
 *
 *   pve_verb CONFIG VERB        e.g. pve_verb /etc/breakglass/breakglass.conf status
 *
 * Exit status: 0 when the verb succeeded, 1 otherwise. */
#include <breakglass.h>
#include <stdio.h>

static int fail(const char *what)
{
	fprintf(stderr, "pve_verb: %s: %s\n", what, bg_error_last()->message);
	return 1;
}

int main(int argc, char **argv)
{
	bg_config *cfg = NULL;
	bg_secret *key = NULL;
	bg_ssh *pve = NULL;
	bg_pve_result res = {0};
	size_t i;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: pve_verb CONFIG VERB\n");
		return 2;
	}
	if (bg_config_load(&cfg, BG_CONFIG_CLIENT, argv[1]) < 0)
		return fail(argv[1]);
	/* No key in the configuration is fine when ssh-agent is used. */
	if (bg_ssh_key_load(&key, NULL, cfg, NULL, 0) < 0 && bg_error_last()->code != BG_ENOTFOUND) {
		rc = fail("key");
		goto out;
	}
	if (bg_ssh_new_from_config(&pve, cfg, "pve", key) < 0) {
		rc = fail("pve");
		goto out;
	}
	/* The forced command's own time limit is the verb's; 300 s covers a
	 * cycle with a slow stop and the forensics before it. */
	rc = bg_pve_run(&res, pve, argv[2], 300, NULL, NULL);
	if (rc < 0 && res.exit_code < 0) {
		rc = fail(argv[2]); /* it never ran: transport or usage */
		goto out;
	}
	printf("%s on VM %s: %s, VM %s\n", argv[2], res.vmid ? res.vmid : "?", res.ok ? "ok" : "failed",
	       res.status ? res.status : "unknown");
	for (i = 0; i < res.nsteps; i++)
		printf("  %s %-10s %6lld ms  %s\n", res.steps[i].ok ? "ok  " : "FAIL", res.steps[i].name,
		       res.steps[i].elapsed_ms, res.steps[i].detail ? res.steps[i].detail : "");
	if (res.verdict)
		printf("verdict: %s (recommends %s)\n", res.verdict,
		       res.recommended_verb ? res.recommended_verb : "nothing");
	if (rc < 0)
		printf("exit %d: %s\n", res.exit_code, bg_error_last()->message);
	rc = rc < 0 ? 1 : 0;
out:
	bg_pve_result_clear(&res);
	bg_ssh_free(pve);
	bg_secret_free(key);
	bg_config_free(cfg);
	return rc;
}
