/* The rejected-request token bucket (see rate.h). The file holds one line
 * "TOKENS_MILLI LAST_MS SUPPRESSED", read and rewritten under flock. */
#include "host/rate.h"

#include "host/safe_path.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int bg_rate_take(const char *path, int64_t now_ms, long long *suppressed)
{
	long long tokens = BG_REJECT_BURST * 1000LL, last = now_ms, dropped = 0, refill;
	char line[128];
	int fd, ok, n;
	ssize_t got;

	*suppressed = 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return 1;
	if (bg_host_check_opened(fd, path) != 0 || flock(fd, LOCK_EX) != 0) {
		close(fd);
		return 1;
	}
	got = pread(fd, line, sizeof(line) - 1, 0);
	if (got > 0) {
		line[got] = '\0';
		if (sscanf(line, "%lld %lld %lld", &tokens, &last, &dropped) != 3 || tokens < 0 ||
		    tokens > BG_REJECT_BURST * 1000LL || dropped < 0 || last < 0 || last > now_ms) {
			/* unreadable, or a clock that went back: start full */
			tokens = BG_REJECT_BURST * 1000LL;
			last = now_ms;
			dropped = dropped < 0 ? 0 : dropped;
		}
	}
	refill = (now_ms - last) * 1000LL / BG_REJECT_REFILL_MS;
	tokens = refill > BG_REJECT_BURST * 1000LL - tokens ? BG_REJECT_BURST * 1000LL : tokens + refill;
	ok = tokens >= 1000;
	if (ok) {
		tokens -= 1000;
		*suppressed = dropped;
		dropped = 0;
	} else {
		dropped++;
	}
	n = snprintf(line, sizeof(line), "%lld %lld %lld\n", tokens, (long long)now_ms, dropped);
	if (n > 0 && ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, line, (size_t)n, 0);
	close(fd); /* drops the flock */
	return ok;
}
