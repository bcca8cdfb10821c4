/*
 * Internal (host side): the QEMU guest agent's channel (run_dir/VMID.qga),
 * spoken to by the forensics bundle. The guest is on the other end and is
 * untrusted: every read checks its deadline on every pass (a guest that
 * keeps the channel full of lines cannot hold us), lines are capped, and
 * the guest's text is escaped before it reaches an error message.
 */
#ifndef BG_HOST_QGA_H
#define BG_HOST_QGA_H

#include "core/buf.h"

/* guest-sync with a fresh id (flushing stale replies), then guest-ping,
 * all within timeout_ms. BG_OK when the ping was answered; BG_ETIMEOUT,
 * BG_ENOTFOUND (no socket), BG_EPROTO (an error reply, a closed or
 * over-long line) or BG_ECONNECT otherwise. */
int bg_qga_ping(const char *path, int timeout_ms);

/* Whether the guest can start a process: guest-exec of /bin/true (fixed;
 * no arguments, no input, no output captured), then guest-exec-status
 * until it has exited, all within timeout_ms. *why gets one line saying
 * what happened (the guest's words escaped).
 *   BG_OK        started (the guest can fork);
 *   BG_EFAILED   the guest could not start it for want of resources (a
 *                fork or memory failure: bg_qga_exec_error_is_resource);
 *   anything else: the probe tells nothing (guest-exec disabled or absent,
 *                another error, no answer). */
int bg_qga_exec_probe(const char *path, int timeout_ms, bg_buf *why);

/* 1 when an agent's guest-exec error text says the guest lacks the
 * resources to start a process (glib's "Failed to fork", EAGAIN, ENOMEM). */
int bg_qga_exec_error_is_resource(const char *desc);

#endif
