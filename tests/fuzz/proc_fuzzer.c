/* Fuzz the /proc parsing of lib/host/proc.c. A process chooses its comm
 * (prctl), rewrites its command line, and a pidfile may hold anything:
 * every parser gets the same bytes, as the file it reads would hold them
 * (NUL-terminated, as the reader leaves them). */
#include "core/futil.h"
#include "host/wire.h"

#include <breakglass/common.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), wchan[64];
	bg_proc_stat st;
	int pid = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* stat (one parser for the whole library, lib/core/futil.h) */
	if (bg_proc_stat_parse(&st, text, size) == BG_OK && memchr(st.comm, '\0', sizeof(st.comm)) == NULL)
		abort(); /* comm is always terminated */
	/* pidfile */
	if (bg_proc_parse_pid(text, &pid) == BG_OK && pid <= 0)
		abort();
	/* cmdline: NUL-separated arguments, length from the read */
	(void)bg_proc_args_name_vm(text, size, 100, "/var/run/qemu-server/100.pid");
	(void)bg_proc_args_name_vm(text, size, 100, NULL);
	/* exe link and wchan */
	(void)bg_proc_exe_is_qemu(text);
	bg_proc_wchan(wchan, sizeof(wchan), text);
	free(text);
	return 0;
}
