/*
 * Internal (host side): the per-VMID lock that serialises mutating verbs.
 *
 * An flock(2) on lock_dir/breakglass-pve-<vmid>.lock, waited for with a
 * bounded poll. The holder writes who it is (verb, start time, client) into
 * the file so that a caller that gives up can say "busy: cycle running
 * since … from …". The file is never Proxmox's own lock-<vmid>.conf: qm
 * takes that one itself during our verbs. The descriptor is close-on-exec,
 * so a QEMU started by `qm start` never inherits (and never holds) it.
 */
#ifndef BG_PVE_LOCK_H
#define BG_PVE_LOCK_H

#include <stddef.h>

typedef struct bg_vm_lock {
	int fd;
	char path[4096];
} bg_vm_lock;

/*
 * Take the lock, waiting up to wait_ms. BG_OK, or BG_EBUSY with
 * bg_error_last() "busy: VERB running since TIME from CLIENT" (the holder
 * as it recorded itself), or BG_EIO when the lock file cannot be opened.
 */
int bg_vm_lock_acquire(bg_vm_lock *lock, const char *lock_dir, int vmid, const char *verb, const char *client,
		       int wait_ms);
/*
 * The holder that has answered its client and only completes its bundle
 * (the forensics verb, apps/pve): it ends within its own limits, so a
 * waiter gives it `completing_wait_ms` more than wait_ms rather than
 * report busy (a cycle asked right after a forensics must not fail
 * because `[timeouts] lock_wait` is shorter than qm status's wait).
 */
#define BG_VM_LOCK_COMPLETING "forensics-end"
int bg_vm_lock_acquire_ex(bg_vm_lock *lock, const char *lock_dir, int vmid, const char *verb, const char *client,
			  int wait_ms, int completing_wait_ms);
/* Record a new verb as the holder (e.g. BG_VM_LOCK_COMPLETING). */
void bg_vm_lock_relabel(bg_vm_lock *lock, const char *verb, const char *client);

/* Release (also done by the kernel at exit); a no-op on an unheld lock. */
void bg_vm_lock_release(bg_vm_lock *lock);

#endif
