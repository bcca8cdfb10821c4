/* The smallest program against the installed library: print the version,
 * then load and check a breakglass.conf given on the command line. */
#include <breakglass.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	bg_config *cfg = NULL;
	int rc;

	printf("libbreakglass %s\n", bg_version());
	if (argc < 2)
		return 0;
	rc = bg_config_load(&cfg, BG_CONFIG_CLIENT, argv[1]);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], bg_error_last()->message);
		return 2;
	}
	printf("devvm %s:%s as %s\n", bg_config_get(cfg, "devvm", "host"), bg_config_get(cfg, "devvm", "port"),
	       bg_config_get(cfg, "devvm", "user"));
	bg_config_free(cfg);
	return 0;
}
