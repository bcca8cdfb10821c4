/*
 * Internal (host side): a QMP client over the VM's unix socket. The socket
 * serves one client at a time and Proxmox's daemons use it too: connect
 * briefly, with a deadline on every read and write, and close. A QEMU
 * whose main loop is hung accepts the connection but never sends the
 * greeting: that is BG_ETIMEOUT, and means "QMP not answering".
 * Owned by the pve-forensics room.
 */
#ifndef BG_PVE_QMP_H
#define BG_PVE_QMP_H

#include <json-c/json.h>

typedef struct bg_qmp bg_qmp;

/* Connect, read the greeting, negotiate capabilities. */
int bg_qmp_connect(bg_qmp **out, const char *socket_path, int timeout_ms);

/* Run one command (arguments may be NULL) and return its "return" value
 * (caller puts it). Events are skipped; a QMP error is BG_EPROTO with its
 * class and description. */
int bg_qmp_execute(bg_qmp *q, const char *command, json_object *arguments, int timeout_ms, json_object **ret);

void bg_qmp_close(bg_qmp *q);

/* Connect, execute one command, close. */
int bg_qmp_command(const char *socket_path, const char *command, json_object *arguments, int timeout_ms,
		   json_object **ret);

#endif
