/*
 * Internal (host side): the QEMU guest agent's channel (run_dir/VMID.qga),
 * spoken to by the forensics bundle. The guest is on the other end and is
 * untrusted: every read checks its deadline on every pass (a guest that
 * keeps the channel full of lines cannot hold us), lines are capped, and
 * the guest's text is escaped before it reaches an error message.
 */
#ifndef BG_HOST_QGA_H
#define BG_HOST_QGA_H

/* guest-sync with a fresh id (flushing stale replies), then guest-ping,
 * all within timeout_ms. BG_OK when the ping was answered; BG_ETIMEOUT,
 * BG_ENOTFOUND (no socket), BG_EPROTO (an error reply, a closed or
 * over-long line) or BG_ECONNECT otherwise. */
int bg_qga_ping(const char *path, int timeout_ms);

#endif
