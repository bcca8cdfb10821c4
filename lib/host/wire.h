/*
 * Internal (host side): the pure parsers of what the host reads from
 * outside — QMP lines from QEMU, guest-agent lines from the guest, /proc
 * text that a process can shape (its comm, its command line). Split out of
 * the read loops (qmp.c, bundle.c, proc.c) so that the fuzz targets in
 * tests/fuzz reach exactly the code the loops run, without sockets or
 * files. None of them reads, blocks or allocates beyond its result.
 */
#ifndef BG_HOST_WIRE_H
#define BG_HOST_WIRE_H

#include "core/buf.h"

#include <json-c/json.h>
#include <stddef.h>

/* QMP: take the first complete line ('\n'-terminated) out of `in` and
 * parse it. BG_OK with *msg NULL when no line is complete yet, BG_OK with
 * *msg (caller puts it), or an error (the line is consumed either way). */
int bg_qmp_take_message(bg_buf *in, json_object **msg);

/* QMP: what `msg` means to a command `command` waiting for the reply `id`:
 * BG_OK (its "return" value in *ret when ret is not NULL; caller puts it),
 * BG_ENOTFOUND for an event or another request's reply (wait on, no error
 * recorded), BG_EPROTO for an error reply or a reply with neither. */
int bg_qmp_reply(json_object *msg, const char *id, const char *command, json_object **ret);

/* Guest agent: the next parseable JSON line out of `in`; lines that do not
 * parse are dropped, leading 0xFF sync sentinels skipped. 1 with *msg
 * (caller puts it), 0 when no complete line is left. */
int bg_qga_take_message(bg_buf *in, json_object **msg);

/* /proc/PID/stat text is parsed by bg_proc_stat_parse (lib/core/futil.h),
 * the one parser of the library. */

/* A pidfile's text: BG_OK with *pid, or BG_EPROTO (nothing recorded). */
int bg_proc_parse_pid(const char *text, int *pid);

/* /proc/PID/cmdline (NUL-separated, `len` bytes, followed by one more NUL):
 * 1 when it names the VM by -pidfile PIDFILE or -id VMID, else 0. */
int bg_proc_args_name_vm(const char *args, size_t len, int vmid, const char *pidfile);

/* 1 when the readlink of /proc/PID/exe names a QEMU binary. */
int bg_proc_exe_is_qemu(const char *exe);

/* /proc/PID/task/TID/wchan text into a fixed buffer, trailing newline and
 * blanks dropped. */
void bg_proc_wchan(char *out, size_t out_len, const char *text);

#endif
