/*
 * Memory that a burst leaves behind, given back.
 *
 * Measured (web_load, smaps per mapping): after a minute of load the
 * server's anonymous memory had grown from 6.4 to 24 MiB and stayed there,
 * with no leak (LeakSanitizer clean). The causes, all "touched once, kept
 * forever", and multiplied by the 4 x threads CivetWeb workers (which
 * wait on one condition variable and are woken in turn, so a burst runs
 * through every one of them):
 *
 * - Worker stacks: each keeps the deepest pages anything made it touch:
 *   3 pages once started (CivetWeb names the thread with a printf), 7
 *   after a request. CivetWeb calls init_thread() and, after each
 *   connection, connection_closed() from the top of the worker's loop,
 *   where the deeper frames are dead: there the worker gives back its
 *   stack below the call (MADV_DONTNEED: the pages read as zeroes if ever
 *   touched again), 512 bytes under the call's frame left for the call
 *   itself and the system call. That leaves 2 pages per worker (glibc's
 *   thread descriptor and the static TLS, then the worker's idle frames),
 *   at start and after any request. The client is not kept waiting: its
 *   socket is closed by then. Not free (docs/web.md): each madvise() is a
 *   TLB flush on the other CPUs, ~20 ms of start-up for the 256 workers on
 *   a loaded 2-CPU VM, and ~25 us of CPU per connection.
 * - glibc's per-thread caches (tcache: up to 7 freed chunks of each small
 *   size, per thread): ~20 KiB per worker that has served requests, which
 *   no malloc_trim() can reach. Only the GLIBC_TUNABLES environment
 *   variable (glibc.malloc.tcache_count=0) turns them off; the systemd
 *   unit and the container set it (docs/web.md).
 * - Free heap memory: glibc keeps what requests freed in its arenas (and
 *   trims only the top of the main heap). When the server has been quiet
 *   for a second after some activity, malloc_trim(0) gives back every
 *   whole free page of every arena, once.
 *
 * And at start: at most two malloc arenas (glibc makes up to 8 per core,
 * one per thread that contends, each keeping its own free memory).
 */
#include "web.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QUIET_MS 1000
/* Below this call's frame, what the call and madvise() use. */
#define MARGIN 512

static atomic_ulong activity;    /* requests finished */
static unsigned long trimmed_at; /* `activity` at the last trim (streaming thread only) */
static long long quiet_since;    /* when `activity` last changed (streaming thread only) */
static unsigned long seen;

static __thread uintptr_t stack_lo; /* lowest byte of this thread's stack (above its guard) */
static __thread uintptr_t stack_hi;

void web_mem_init(void)
{
	mallopt(M_ARENA_MAX, 2);
}

static void stack_bounds(void)
{
	pthread_attr_t a;
	void *addr;
	size_t size;

	stack_hi = 1; /* tried: a failure is not retried on every request */
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &addr, &size) == 0) {
		stack_lo = (uintptr_t)addr;
		stack_hi = (uintptr_t)addr + size;
	}
	pthread_attr_destroy(&a);
}

void web_mem_note(void)
{
	atomic_fetch_add(&activity, 1);
}

__attribute__((noinline)) void web_mem_release_stack(void)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
	uintptr_t hi;

	web_mem_note();
	if (!stack_hi)
		stack_bounds();
	/* Only on a stack we know, and never on the pages this call and
	 * madvise() itself are using. */
	if (!stack_lo || frame <= stack_lo || frame >= stack_hi)
		return;
	hi = (frame - MARGIN) & ~(page - 1);
	if (hi > stack_lo) /* syscall(): no sanitizer interceptor in between */
		syscall(SYS_madvise, (void *)stack_lo, hi - stack_lo, MADV_DONTNEED);
}

int web_mem_idle_tick(long long now_ms)
{
	unsigned long a = atomic_load(&activity);

	if (a != seen) {
		seen = a;
		quiet_since = now_ms;
		return 0;
	}
	if (a == trimmed_at || now_ms - quiet_since < QUIET_MS)
		return 0;
	trimmed_at = a;
	return malloc_trim(0);
}
