/* A minimal sudo for the lab guest (busybox has none).
 *
 * Installed setuid root in the initramfs. The devvm's operator account
 * `breakglass` has passwordless sudo on the real devvm; here that is the
 * whole policy: uid 0 and uid 1000 (breakglass) may run any command as
 * root, anyone else is refused. sudo's own options are accepted and
 * ignored, except -u with a user other than root, which is refused, so a
 * command written for the real sudo behaves the same here.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BREAKGLASS_UID = 1000 };

static int takes_value(const char *opt)
{
	static const char *const with_value[] = {"-u", "-g", "-p", "-C", "-h", "-D", "-r", "-t", "-U"};
	for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
		if (strcmp(opt, with_value[i]) == 0)
			return 1;
	return 0;
}

static int is_root_name(const char *user)
{
	return strcmp(user, "root") == 0 || strcmp(user, "#0") == 0;
}

int main(int argc, char **argv)
{
	uid_t caller = getuid();
	int i = 1;

	if (caller != 0 && caller != BREAKGLASS_UID) {
		fprintf(stderr, "sudo: uid %u is not allowed to run commands as root\n", (unsigned)caller);
		return 1;
	}
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (takes_value(argv[i])) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sudo: option %s needs a value\n", argv[i]);
				return 1;
			}
			if (strcmp(argv[i], "-u") == 0 && !is_root_name(argv[i + 1])) {
				fprintf(stderr, "sudo: only root is available in the lab guest\n");
				return 1;
			}
			i += 2;
			continue;
		}
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: sudo [-n] [-E] [-u root] [--] COMMAND [ARG...]\n");
		return 1;
	}
	if (setgroups(0, NULL) != 0 || setgid(0) != 0 || setuid(0) != 0) {
		perror("sudo: cannot become root (is the binary setuid root?)");
		return 1;
	}
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("USER", "root", 1);
	setenv("LOGNAME", "root", 1);
	execvp(argv[i], argv + i);
	fprintf(stderr, "sudo: %s: command not found\n", argv[i]);
	return 127;
}
