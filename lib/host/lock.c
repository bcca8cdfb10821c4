/* The per-VMID lock of the forced command (see lock.h). */
#include "host/lock.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "host/safe_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define POLL_MS 50

static void copy_word(char *dst, size_t n, const char *word)
{
	if (word)
		snprintf(dst, n, "%s", word);
}

/* What the holder wrote, one line "VERB SINCE FROM PID", read by a waiter. */
static void read_holder(int fd, char *verb, char *since, char *from, size_t n)
{
	char line[512], *save = NULL, *w[3];
	ssize_t got = pread(fd, line, sizeof(line) - 1, 0);

	snprintf(verb, n, "a verb");
	snprintf(since, n, "an unknown time");
	snprintf(from, n, "an unknown client");
	if (got <= 0)
		return;
	line[got] = '\0';
	w[0] = strtok_r(line, " \n", &save);
	w[1] = w[0] ? strtok_r(NULL, " \n", &save) : NULL;
	w[2] = w[1] ? strtok_r(NULL, " \n", &save) : NULL;
	if (!w[2])
		return;
	copy_word(verb, n, w[0]);
	copy_word(since, n, w[1]);
	copy_word(from, n, w[2]);
}

/* Record ourselves as the holder; a failure only makes "busy" vaguer. */
static void write_holder(int fd, const char *verb, const char *client)
{
	char when[32], line[512];
	int n;

	bg_time_iso8601(bg_wall_ms(), when, sizeof(when));
	n = snprintf(line, sizeof(line), "%s %s %s %d\n", verb, when, client && *client ? client : "local",
		     (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) == n)
		(void)fsync(fd);
}

static int busy_error(int fd, int wait_ms)
{
	char verb[128], since[128], from[128];

	read_holder(fd, verb, since, from, sizeof(verb));
	return bg_error_set(BG_EBUSY, "busy: %s running since %s from %s (waited %d s for the VM lock)", verb, since,
			    from, wait_ms / 1000);
}

/* The holder is only completing a bundle (BG_VM_LOCK_COMPLETING). */
static int holder_completing(int fd)
{
	char verb[128], since[128], from[128];

	read_holder(fd, verb, since, from, sizeof(verb));
	return strcmp(verb, BG_VM_LOCK_COMPLETING) == 0;
}

int bg_vm_lock_acquire(bg_vm_lock *lock, const char *lock_dir, int vmid, const char *verb, const char *client,
		       int wait_ms)
{
	return bg_vm_lock_acquire_ex(lock, lock_dir, vmid, verb, client, wait_ms, 0);
}

int bg_vm_lock_acquire_ex(bg_vm_lock *lock, const char *lock_dir, int vmid, const char *verb, const char *client,
			  int wait_ms, int completing_wait_ms)
{
	bg_deadline deadline = bg_deadline_in(wait_ms);
	bg_deadline completing = bg_deadline_in(wait_ms + (completing_wait_ms > 0 ? completing_wait_ms : 0));
	int n;

	lock->fd = -1;
	n = snprintf(lock->path, sizeof(lock->path), "%s/breakglass-pve-%d.lock", lock_dir, vmid);
	if (n < 0 || (size_t)n >= sizeof(lock->path))
		return bg_error_set(BG_EINVAL, "lock_dir '%s' is too long", lock_dir);
	lock->fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock->fd < 0)
		return bg_error_set(BG_EIO, "cannot open the VM lock %s: %s (check [paths] lock_dir)", lock->path,
				    strerror(errno));
	/* a lock file somebody else made (or linked) could carry a forged
	 * holder, or be held by them forever: refuse it */
	if (bg_host_check_opened(lock->fd, lock->path) != BG_OK) {
		int rc = bg_error_prefix("the VM lock: ");
		close(lock->fd);
		lock->fd = -1;
		return rc;
	}
	for (;;) {
		if (flock(lock->fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int rc = bg_error_set(BG_EIO, "cannot lock %s: %s", lock->path, strerror(errno));
			bg_vm_lock_release(lock);
			return rc;
		}
		if (bg_deadline_expired(deadline) &&
		    (bg_deadline_expired(completing) || !holder_completing(lock->fd))) {
			int rc = busy_error(lock->fd, wait_ms);
			bg_vm_lock_release(lock);
			return rc;
		}
		bg_sleep_ms(POLL_MS);
	}
	write_holder(lock->fd, verb, client);
	return BG_OK;
}

void bg_vm_lock_relabel(bg_vm_lock *lock, const char *verb, const char *client)
{
	if (lock && lock->fd >= 0)
		write_holder(lock->fd, verb, client);
}

void bg_vm_lock_release(bg_vm_lock *lock)
{
	if (!lock || lock->fd < 0)
		return;
	(void)flock(lock->fd, LOCK_UN);
	close(lock->fd);
	lock->fd = -1;
}
