/*
 * The floor under breakglass-web's exec -> ready on this machine: how long
 * the kernel and glibc take to create N threads that each take a request
 * buffer and then wait, one after another from one thread. That is what
 * CivetWeb 1.15 (Debian 12) does in mg_start() before its master thread
 * starts accepting: all num_threads workers first, with no option to
 * start fewer and grow (1.16's prespawn_threads). bench/web/run prints it
 * beside the server's own main() -> listening.
 *
 *   thread_floor N RUNS    prints the median of RUNS, in ms
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released;

static void *worker(void *arg)
{
	char *buf = malloc(16384); /* CivetWeb's per-worker request buffer (max_request_size) */

	(void)arg;
	if (buf)
		buf[0] = 1;
	pthread_mutex_lock(&gate);
	while (!released)
		pthread_cond_wait(&go, &gate);
	pthread_mutex_unlock(&gate);
	free(buf);
	return NULL;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 256, runs = argc > 2 ? strtol(argv[2], NULL, 10) : 15;
	double *took;
	pthread_t *t;
	long r, i;

	if (n < 1 || n > 4096 || runs < 1 || runs > 1000) {
		fprintf(stderr, "usage: thread_floor [THREADS 1-4096] [RUNS 1-1000]\n");
		return 2;
	}
	took = calloc((size_t)runs, sizeof(*took));
	t = calloc((size_t)n, sizeof(*t));
	if (!took || !t)
		return 1;
	for (r = 0; r < runs; r++) {
		struct timespec t0;
		long made = 0;

		released = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < n; i++)
			made += pthread_create(&t[i], NULL, worker, NULL) == 0;
		took[r] = ms_since(&t0);
		pthread_mutex_lock(&gate);
		released = 1;
		pthread_cond_broadcast(&go);
		pthread_mutex_unlock(&gate);
		for (i = 0; i < made; i++)
			pthread_join(t[i], NULL);
		if (made != n) {
			fprintf(stderr, "thread_floor: only %ld of %ld threads could be made\n", made, n);
			return 1;
		}
	}
	qsort(took, (size_t)runs, sizeof(*took), cmp);
	printf("%.2f\n", took[runs / 2]);
	free(took);
	free(t);
	return 0;
}
