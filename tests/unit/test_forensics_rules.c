/* Every verdict of the forensics rules, from recorded facts and from QMP
 * replies captured on QEMU 7.2 (shapes as `query-blockstats` and
 * `query-block` really return them). */
#include "bg_test.h"

#include "host/bundle.h"

#include <json-c/json.h>

static char ev[2048];

/* A QEMU alive, QMP answering "running", agent answering, I/O moving. */
static bg_forensics_facts healthy(void)
{
	bg_forensics_facts f;

	memset(&f, 0, sizeof(f));
	f.qemu_running = 1;
	f.qemu_state = 'S';
	f.qmp_answered = 1;
	f.qmp_status = "running";
	f.blockstats_sampled = 1;
	f.block_io_moved = 1;
	f.agent_answered = 1;
	f.inflight_known = 1;
	f.vcpus = 1;
	f.vcpu_busy_pct = 3;
	f.vcpu_oncpu_pct = 2;
	return f;
}

/* Counters frozen, agent silent: what is left to tell a dead block path
 * from a guest that asks nothing of its disk. */
static bg_forensics_facts frozen(int inflight, int vcpu_busy_pct)
{
	bg_forensics_facts f = healthy();

	f.block_io_moved = 0;
	f.agent_answered = 0;
	f.inflight = inflight;
	f.vcpu_busy_pct = vcpu_busy_pct;
	f.vcpu_oncpu_pct = vcpu_busy_pct / 2;
	return f;
}

static void expect(const bg_forensics_facts *f, bg_verdict v, const char *evidence_part)
{
	bg_verdict got = bg_forensics_rules(f, ev, sizeof(ev));
	if (got != v)
		fail_msg("verdict %s, expected %s; evidence:\n%s", bg_verdict_name(got), bg_verdict_name(v), ev);
	if (!strstr(ev, evidence_part))
		fail_msg("evidence lacks \"%s\":\n%s", evidence_part, ev);
}

static void test_stopped(void **state)
{
	bg_forensics_facts f;

	(void)state;
	memset(&f, 0, sizeof(f));
	expect(&f, BG_VERDICT_STOPPED, "no QEMU process");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_STOPPED), "start");
}

static void test_healthy(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	expect(&f, BG_VERDICT_HEALTHY, "guest agent answered");
	/* an idle guest: nothing moved, but the agent answers */
	f.block_io_moved = 0;
	expect(&f, BG_VERDICT_HEALTHY, "idle guest");
	assert_null(bg_verdict_recommended_verb(BG_VERDICT_HEALTHY));
}

static void test_qmp_unresponsive(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.qmp_answered = 0;
	f.qmp_status = NULL;
	f.agent_answered = 0;
	expect(&f, BG_VERDICT_QMP_UNRESPONSIVE, "main loop is hung");
	f.qemu_state = 'T'; /* SIGSTOPped, as in the lab */
	expect(&f, BG_VERDICT_QMP_UNRESPONSIVE, "stopped (state T)");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_QMP_UNRESPONSIVE), "cycle");
}

static void test_block_io_stalled(void **state)
{
	bg_forensics_facts f = frozen(1, 3);

	(void)state;
	/* 2026-06-11: QMP answers "running", counters frozen, agent silent,
	 * and a request taken from the guest never completes */
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "frozen between the two samples");
	assert_non_null(strstr(ev, "1 request(s) taken from the guest's virtio queues"));
	assert_null(strstr(ev, "busy on CPU"));
	f.block_io_pending = 1;
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "busy on CPU");
	/* a guest piling up behind dead storage may spin too: the request
	 * in flight decides, the vCPUs are told */
	f = frozen(4, 100);
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "the guest spins");
	/* the guest agent answers (it runs from memory, needs no disk): the
	 * request stuck behind frozen counters still decides (the Debian
	 * devvm under the lab's `wedge --io`) */
	f = frozen(2, 3);
	f.agent_answered = 1;
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "the stuck requests decide");
	assert_non_null(strstr(ev, "guest agent answered guest-ping"));
	f.inflight = 0; /* nothing in flight: an idle guest whose agent answers */
	expect(&f, BG_VERDICT_HEALTHY, "idle guest");
	/* no virtio queue to read, but a QEMU thread stuck in D on the host */
	f = frozen(0, 100);
	f.inflight_known = 0;
	f.qemu_dthreads = 1;
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "1 QEMU thread(s) in state D");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_BLOCK_IO_STALLED), "cycle");
}

/* Issue 14: a guest out of memory or in a process storm stopped its I/O
 * and was called block-io-stalled. Nothing in flight and vCPUs that want
 * a CPU: the guest spins, QEMU is fine. The boundary is BG_VCPU_BUSY_PCT. */
static void test_guest_busy(void **state)
{
	bg_forensics_facts f = frozen(0, BG_VCPU_BUSY_PCT);

	(void)state;
	expect(&f, BG_VERDICT_GUEST_BUSY, "the block path is idle, not stalled");
	assert_non_null(strstr(ev, "the guest spins"));
	assert_null(strstr(ev, "2026-06-11"));
	f = frozen(0, 100);
	f.agent_unconfigured = 1; /* spinning vCPUs are evidence without an agent too */
	expect(&f, BG_VERDICT_GUEST_BUSY, "kernel spins");
	f = frozen(0, BG_VCPU_BUSY_PCT - 1); /* just under: idle */
	expect(&f, BG_VERDICT_GUEST_UNRESPONSIVE, "the guest is idle");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_GUEST_BUSY), "reset");
	assert_string_equal(bg_verdict_name(BG_VERDICT_GUEST_BUSY), "guest-busy");
	assert_int_equal(bg_verdict_from_name("guest-busy"), BG_VERDICT_GUEST_BUSY);
}

/* vCPUs idle, nothing in flight, the configured agent silent: the guest
 * is hung, not its disk path. */
static void test_guest_hung_with_idle_disk(void **state)
{
	bg_forensics_facts f = frozen(0, 0);

	(void)state;
	expect(&f, BG_VERDICT_GUEST_UNRESPONSIVE, "the guest is hung, not QEMU");
	assert_non_null(strstr(ev, "guest agent did not answer"));
	assert_null(strstr(ev, "2026-06-11"));
}

/* When the evidence cannot decide, the verdict says so, and what is
 * missing, rather than claim a signature. */
static void test_undetermined(void **state)
{
	bg_forensics_facts f = frozen(0, 0);

	(void)state;
	/* no virtio queue could be read: frozen counters alone */
	f.inflight_known = 0;
	f.inflight_why = "x-query-virtio lists no virtio block device (virtio-blk, virtio-scsi)";
	expect(&f, BG_VERDICT_UNDETERMINED, "requests in flight unknown: x-query-virtio lists no virtio");
	assert_non_null(strstr(ev, "cannot tell a dead block path"));
	f.vcpu_busy_pct = 100; /* even a spinning guest: a stalled one may spin too */
	expect(&f, BG_VERDICT_UNDETERMINED, "the guest spins");
	/* nothing in flight, but no vCPU thread to sample */
	f = frozen(0, 0);
	f.vcpus = 0;
	expect(&f, BG_VERDICT_UNDETERMINED, "debug-threads=on");
	/* idle, nothing in flight, and no agent to ask */
	f = frozen(0, 0);
	f.agent_unconfigured = 1;
	expect(&f, BG_VERDICT_UNDETERMINED, "no guest agent to ask");
	assert_null(bg_verdict_recommended_verb(BG_VERDICT_UNDETERMINED));
	assert_string_equal(bg_verdict_name(BG_VERDICT_UNDETERMINED), "undetermined");
	assert_int_equal(bg_verdict_from_name("undetermined"), BG_VERDICT_UNDETERMINED);
}

/* Failed operations counted while nothing succeeds: the storage answers
 * with errors (werror=report: QEMU does not pause the guest). */
static void test_failed_operations(void **state)
{
	bg_forensics_facts f = frozen(0, 0);

	(void)state;
	f.failed_ops_moved = 1;
	expect(&f, BG_VERDICT_IO_ERROR, "failed block operations");
}

static void test_guest_unresponsive(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.agent_answered = 0;
	expect(&f, BG_VERDICT_GUEST_UNRESPONSIVE, "disk path works");
	f = healthy();
	f.qmp_status = "guest-panicked";
	expect(&f, BG_VERDICT_GUEST_UNRESPONSIVE, "panicked");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_GUEST_UNRESPONSIVE), "reset");
}

/* The agent answers guest-ping without forking: in a guest out of pids or
 * memory (the lab's wedge-storm on the Debian devvm) only the exec probe
 * tells, and it makes the verdict guest-busy, whatever the counters say,
 * unless requests stuck in flight name the disk path first. */
static void test_agent_answers_but_guest_cannot_fork(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.agent_exec_failed = 1;
	f.agent_exec_why = "the guest could not start /bin/true: Guest agent command failed, error was 'Failed to "
			   "fork (Resource temporarily unavailable)'";
	expect(&f, BG_VERDICT_GUEST_BUSY, "could not start a program: the guest could not start /bin/true");
	assert_non_null(strstr(ev, "Failed to fork"));
	assert_non_null(strstr(ev, "guest agent answered guest-ping"));
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_GUEST_BUSY), "reset");
	/* frozen counters, idle vCPUs, nothing in flight: still the fork decides */
	f = frozen(0, 3);
	f.agent_answered = 1;
	f.agent_exec_failed = 1;
	f.agent_exec_why = NULL;
	expect(&f, BG_VERDICT_GUEST_BUSY, "(no reason given)");
	/* requests stuck in flight: the dead block path comes first */
	f.inflight = 2;
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "the stuck requests decide");
	/* the probe started its program (or was not tried): healthy */
	f = healthy();
	f.agent_exec_why = "started and exited 0 (pid 812) in 41 ms";
	expect(&f, BG_VERDICT_HEALTHY, "guest agent answered guest-ping");
	assert_null(strstr(ev, "could not start"));
}

/* Without a configured agent, silence is no evidence: a quiet guest with a
 * working disk path is healthy, not unresponsive (no `reset` advised), and
 * frozen counters still read as a stall but say what to check first. */
static void test_no_agent_configured(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.agent_answered = 0;
	f.agent_unconfigured = 1;
	expect(&f, BG_VERDICT_HEALTHY, "no guest agent is configured");
	assert_null(strstr(ev, "did not answer guest-ping"));
	/* frozen counters with a request in flight: the block path, agent or not */
	f.block_io_moved = 0;
	f.inflight = 2;
	expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "2 request(s)");
}

static void test_qemu_uninterruptible(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.qemu_state = 'D';
	f.qmp_answered = 0; /* D wins over everything QMP could say */
	expect(&f, BG_VERDICT_QEMU_UNINTERRUPTIBLE, "SIGKILL will not end it");
	assert_null(bg_verdict_recommended_verb(BG_VERDICT_QEMU_UNINTERRUPTIBLE));
}

static void test_paused(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.qmp_status = "paused";
	f.agent_answered = 0;
	expect(&f, BG_VERDICT_PAUSED, "QMP answers: status paused");
	f.qmp_status = "suspended";
	expect(&f, BG_VERDICT_PAUSED, "vCPUs are not running");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_PAUSED), "cycle");
}

static void test_io_error(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	f.qmp_status = "io-error";
	expect(&f, BG_VERDICT_IO_ERROR, "I/O error");
	/* the status says paused, but a device reports its error */
	f.qmp_status = "paused";
	f.io_status = "drive-scsi0: failed";
	expect(&f, BG_VERDICT_IO_ERROR, "io-status: drive-scsi0: failed");
	f.io_status = "drive-scsi0: nospace";
	f.qmp_status = "running";
	expect(&f, BG_VERDICT_IO_ERROR, "nospace");
	assert_string_equal(bg_verdict_recommended_verb(BG_VERDICT_IO_ERROR), "cycle");
}

static void test_unknown(void **state)
{
	bg_forensics_facts f = healthy();

	(void)state;
	/* running, agent silent, and no block counters to tell */
	f.blockstats_sampled = 0;
	f.block_io_moved = 0;
	f.agent_answered = 0;
	expect(&f, BG_VERDICT_UNKNOWN, "not sampled twice");
	f = healthy();
	f.qmp_status = "internal-error";
	expect(&f, BG_VERDICT_UNKNOWN, "no verdict for");
	assert_int_equal(bg_forensics_rules(NULL, ev, sizeof(ev)), BG_VERDICT_UNKNOWN);
	assert_string_equal(ev, "");
	assert_null(bg_verdict_recommended_verb(BG_VERDICT_UNKNOWN));
}

static void test_evidence_truncated_safely(void **state)
{
	bg_forensics_facts f = healthy();
	char small[8];

	(void)state;
	f.block_io_moved = 0;
	f.agent_answered = 0;
	f.inflight = 1;
	assert_int_equal(bg_forensics_rules(&f, small, sizeof(small)), BG_VERDICT_BLOCK_IO_STALLED);
	assert_int_equal(strlen(small), 7);
	assert_int_equal(bg_forensics_rules(&f, NULL, 0), BG_VERDICT_BLOCK_IO_STALLED);
}

/* Captured from QEMU 7.2 (trimmed to the counters and names). */
#define STATS(wr_bytes, wr_ops)                                                                                \
	"[{\"device\":\"drive-scsi0\",\"node-name\":\"#block080\",\"stats\":{\"unmap_operations\":0,"          \
	"\"flush_operations\":3,\"wr_bytes\":" #wr_bytes ",\"rd_bytes\":409600,\"wr_operations\":" #wr_ops "," \
	"\"rd_operations\":100,\"wr_highest_offset\":8192,\"account_invalid\":true}},"                         \
	"{\"device\":\"\",\"node-name\":\"#block211\",\"stats\":{\"wr_bytes\":0,\"rd_bytes\":0}}]"

static void test_blockstats_from_replies(void **state)
{
	json_object *a = json_tokener_parse(STATS(8192, 2));
	json_object *frozen = json_tokener_parse(STATS(8192, 2));
	json_object *moved = json_tokener_parse(STATS(12288, 3));
	json_object *empty = json_tokener_parse("[]");
	int devices = -1;

	(void)state;
	assert_non_null(a);
	assert_int_equal(bg_forensics_blockstats_moved(a, frozen, &devices), 0);
	assert_int_equal(devices, 2);
	assert_int_equal(bg_forensics_blockstats_moved(a, moved, &devices), 1);
	/* what completed in between: one write (the trickle of a throttled
	 * disk, fewer than the requests stuck in flight, counts as frozen) */
	assert_int_equal(bg_forensics_blockstats_ops_done(a, moved), 1);
	assert_int_equal(bg_forensics_blockstats_ops_done(a, frozen), 0);
	assert_int_equal(bg_forensics_blockstats_ops_done(moved, a), 0); /* a counter going back counts nothing */
	assert_int_equal(bg_forensics_blockstats_ops_done(NULL, a), 0);
	{
		json_object *many = json_tokener_parse(STATS(409600, 102));
		assert_int_equal(bg_forensics_blockstats_ops_done(a, many), 100);
		json_object_put(many);
	}
	assert_int_equal(bg_forensics_blockstats_moved(empty, empty, &devices), 0);
	assert_int_equal(devices, 0);
	assert_int_equal(bg_forensics_blockstats_moved(NULL, a, &devices), 0);
	assert_int_equal(devices, 0);

	/* those replies, through the rules */
	{
		bg_forensics_facts f = healthy();
		f.agent_answered = 0;
		f.block_io_moved = bg_forensics_blockstats_moved(a, frozen, &devices);
		f.blockstats_sampled = devices > 0;
		f.inflight = 1;
		expect(&f, BG_VERDICT_BLOCK_IO_STALLED, "2026-06-11 signature");
		f.block_io_moved = bg_forensics_blockstats_moved(a, moved, &devices);
		expect(&f, BG_VERDICT_GUEST_UNRESPONSIVE, "moved");
	}
	json_object_put(a);
	json_object_put(frozen);
	json_object_put(moved);
	json_object_put(empty);
}

/* x-query-virtio-queue-status as QEMU 7.2 returns it (a virtio-blk queue
 * with a request taken and not completed). */
static void test_virtio_inuse(void **state)
{
	json_object *busy = json_tokener_parse(
		"{\"signalled-used\":0,\"inuse\":1,\"name\":\"virtio-blk\",\"vring-num\":256,\"queue-index\":0,"
		"\"last-avail-idx\":9,\"used-idx\":8,\"shadow-avail-idx\":9}");
	json_object *none = json_tokener_parse("{\"name\":\"virtio-blk\",\"queue-index\":0}");
	json_object *bad = json_tokener_parse("{\"inuse\":\"1\"}");

	(void)state;
	assert_int_equal(bg_forensics_virtio_inuse(busy), 1);
	assert_int_equal(bg_forensics_virtio_inuse(none), -1);
	assert_int_equal(bg_forensics_virtio_inuse(bad), -1);
	assert_int_equal(bg_forensics_virtio_inuse(NULL), -1);
	json_object_put(busy);
	json_object_put(none);
	json_object_put(bad);
}

static void test_io_status_from_query_block(void **state)
{
	json_object *ok = json_tokener_parse("[{\"device\":\"drive-scsi0\",\"io-status\":\"ok\",\"locked\":false},"
					     "{\"device\":\"drive0\",\"locked\":false}]");
	json_object *bad = json_tokener_parse("[{\"device\":\"drive-scsi0\",\"io-status\":\"ok\"},"
					      "{\"device\":\"drive-scsi1\",\"io-status\":\"failed\"}]");
	char out[64];

	(void)state;
	assert_int_equal(bg_forensics_block_io_status(ok, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(bg_forensics_block_io_status(bad, out, sizeof(out)), 1);
	assert_string_equal(out, "drive-scsi1: failed");
	{
		bg_forensics_facts f = healthy();
		f.io_status = out;
		expect(&f, BG_VERDICT_IO_ERROR, "drive-scsi1: failed");
	}
	assert_int_equal(bg_forensics_block_io_status(NULL, out, sizeof(out)), 0);
	json_object_put(ok);
	json_object_put(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stopped),
		cmocka_unit_test(test_healthy),
		cmocka_unit_test(test_qmp_unresponsive),
		cmocka_unit_test(test_block_io_stalled),
		cmocka_unit_test(test_guest_busy),
		cmocka_unit_test(test_guest_hung_with_idle_disk),
		cmocka_unit_test(test_undetermined),
		cmocka_unit_test(test_failed_operations),
		cmocka_unit_test(test_virtio_inuse),
		cmocka_unit_test(test_guest_unresponsive),
		cmocka_unit_test(test_no_agent_configured),
		cmocka_unit_test(test_qemu_uninterruptible),
		cmocka_unit_test(test_paused),
		cmocka_unit_test(test_io_error),
		cmocka_unit_test(test_agent_answers_but_guest_cannot_fork),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_evidence_truncated_safely),
		cmocka_unit_test(test_blockstats_from_replies),
		cmocka_unit_test(test_io_status_from_query_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
