/* `version`: the program's and the library's version. */
#include "ctl.h"

static int run_version(ctl_ctx *ctx, int argc, char **argv)
{
	if (argc > 1)
		return ctl_usage_error(ctx, "version: unexpected argument '%s'", argv[1]);
	if (ctx->json) {
		fputs("{\"program\":\"breakglassctl\",\"version\":", stdout);
		ctl_json_str(stdout, bg_version());
		fputs("}\n", stdout);
	} else {
		printf("breakglassctl %s (libbreakglass %s)\n", bg_version(), bg_version());
	}
	return CTL_EXIT_OK;
}

const ctl_command ctl_cmd_version = {"version", "", "the version of breakglassctl and libbreakglass", CTL_CONFIG_NONE,
				     run_version};
