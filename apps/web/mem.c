/*
 * Memory that a burst leaves behind, given back.
 *
 * Measured (bench/web, smaps per mapping): after a few thousand requests
 * the server's anonymous memory had grown by ~5 MiB and stayed there,
 * with no leak (LeakSanitizer clean). Two causes, both "touched once,
 * kept forever":
 *
 * - Worker stacks. CivetWeb's workers wait on one condition variable and
 *   glibc wakes them in turn, so a burst runs through every one of the
 *   4 x threads workers, and each keeps the deepest stack pages its
 *   request touched (3 pages at rest, 6 after a request: 256 x 12 KiB).
 *   After each request the worker gives back the pages below the frame of
 *   web_mem_after_request() (MADV_DONTNEED: they are dead, and read as
 *   zeroes if ever touched again), keeping two pages of margin for the
 *   call itself.
 * - Free heap memory. glibc keeps what the requests freed in its arenas
 *   (and only trims the top of the main heap). When the server has been
 *   quiet for a second after some activity, malloc_trim(0) gives back
 *   every whole free page of every arena, once.
 *
 * And at start: at most two malloc arenas (glibc makes up to 8 per core,
 * one per thread that contends, each keeping its own free memory).
 */
#include "web.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define QUIET_MS 1000

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

__attribute__((noinline)) void web_mem_after_request(void)
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
	hi = (frame & ~(page - 1)) - 2 * page;
	if (hi > stack_lo)
		madvise((void *)stack_lo, hi - stack_lo, MADV_DONTNEED);
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
