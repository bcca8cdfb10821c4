/*
 * Internal (host side), for tests only: seams into the verb engine that
 * production never sets. Compiled always, so the code under test is the
 * code that ships.
 */
#ifndef BG_HOST_TEST_H
#define BG_HOST_TEST_H

/* Called by the checked kill between the identity check of the QEMU pid
 * and the signal: the window in which the pid could die and be reused. A
 * test swaps the process there and shows the kill is refused. NULL (the
 * default) disables it. Not thread-safe: set before bg_pve_host_run(). */
typedef void (*bg_pve_host_kill_hook_fn)(int pid, void *arg);
void bg_pve_host_set_kill_hook(bg_pve_host_kill_hook_fn fn, void *arg);

#endif
