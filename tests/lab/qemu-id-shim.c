/*
 * qemu-id-shim: an LD_PRELOAD library that lets upstream QEMU run with
 * Proxmox's command line. Proxmox starts every VM as
 * `/usr/bin/kvm -id <vmid> -name <name>,debug-threads=on …`; `-id` comes
 * from a Proxmox patch to QEMU, and upstream QEMU (Debian's) refuses it.
 *
 * Before QEMU's main() runs, this points the two argv slots of `-id N` at
 * a harmless `-msg timestamp=off` (QEMU's default) so QEMU parses that,
 * while the bytes the kernel shows as /proc/PID/cmdline still read
 * `-id N`: the identity checks of breakglass-pve see what they would see
 * on Proxmox. It also drops LD_PRELOAD so that nothing QEMU starts
 * inherits it. Tests only (the qm stand-in, tests/unit/bg_qemu.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

static char opt_msg[] = "-msg";
static char opt_val[] = "timestamp=off";

__attribute__((constructor)) static void hide_id(int argc, char **argv, char **envp)
{
	int i;

	(void)envp;
	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-id") == 0) {
			argv[i] = opt_msg;
			argv[i + 1] = opt_val;
			i++;
		}
	}
	unsetenv("LD_PRELOAD");
}
