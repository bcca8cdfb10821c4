#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

int64_t bg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bg_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bg_deadline bg_deadline_in(int64_t ms)
{
	bg_deadline d;

	d.at_ms = bg_now_ms() + (ms > 0 ? ms : 0);
	return d;
}

int64_t bg_deadline_left(bg_deadline d)
{
	int64_t left;

	if (d.at_ms == INT64_MAX)
		return INT64_MAX;
	left = d.at_ms - bg_now_ms();
	return left > 0 ? left : 0;
}

int bg_deadline_poll_ms(bg_deadline d)
{
	int64_t left = bg_deadline_left(d);

	if (left == INT64_MAX)
		return -1;
	return left > INT_MAX ? INT_MAX : (int)left;
}

int bg_deadline_expired(bg_deadline d)
{
	return bg_deadline_left(d) == 0;
}

bg_deadline bg_deadline_min(bg_deadline a, bg_deadline b)
{
	return a.at_ms < b.at_ms ? a : b;
}

char *bg_time_iso8601(int64_t wall_ms, char *buf, size_t n)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	if (strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && n > 0)
		buf[0] = '\0';
	return buf;
}

char *bg_time_iso8601_ms(int64_t wall_ms, char *buf, size_t n)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03dZ", base, (int)(wall_ms % 1000));
	return buf;
}

void bg_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
