/* Run one command on the devvm, its output streamed as it comes.
 *
 *   devvm_exec CONFIG 'COMMAND'
 *
 * Exit status: the command's, 124 when it timed out, 255 when the devvm
 * could not be reached (as ssh does). */
#include <breakglass.h>
#include <stdio.h>

static int print_output(bg_ssh_stream stream, const char *data, size_t len, void *payload)
{
	(void)payload;
	fwrite(data, 1, len, stream == BG_SSH_STDERR ? stderr : stdout);
	return 0; /* negative would abort the command */
}

int main(int argc, char **argv)
{
	bg_config *cfg = NULL;
	bg_secret *key = NULL;
	bg_ssh *devvm = NULL;
	bg_ssh_exec_options opts;
	bg_ssh_result res = {0};
	int rc = 255;

	if (argc != 3) {
		fprintf(stderr, "usage: devvm_exec CONFIG 'COMMAND'\n");
		return 2;
	}
	if (bg_config_load(&cfg, BG_CONFIG_CLIENT, argv[1]) < 0) {
		fprintf(stderr, "devvm_exec: %s\n", bg_error_last()->message);
		return 2;
	}
	if ((bg_ssh_key_load(&key, NULL, cfg, NULL, 0) < 0 && bg_error_last()->code != BG_ENOTFOUND) ||
	    bg_ssh_new_from_config(&devvm, cfg, "devvm", key) < 0) {
		fprintf(stderr, "devvm_exec: %s\n", bg_error_last()->message);
		goto out;
	}
	/* ctypes and other languages cannot see the _INIT macros: _init() is
	 * the same thing as a function. */
	bg_ssh_exec_options_init(&opts, BG_SSH_EXEC_OPTIONS_VERSION);
	opts.timeout_s = 30;
	opts.on_output = print_output;
	switch (bg_ssh_exec(&res, devvm, argv[2], &opts)) {
	case BG_OK: rc = res.timed_out ? 124 : res.exit_code >= 0 ? res.exit_code : 255; break;
	case BG_ETIMEOUT:
		fprintf(stderr, "devvm_exec: %s\n", bg_error_last()->message);
		rc = 124;
		break;
	default: fprintf(stderr, "devvm_exec: %s\n", bg_error_last()->message); rc = 255;
	}
out:
	bg_ssh_result_clear(&res);
	bg_ssh_free(devvm);
	bg_secret_free(key);
	bg_config_free(cfg);
	return rc;
}
