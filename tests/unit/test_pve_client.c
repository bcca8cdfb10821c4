/* PVE client: the verb is checked before anything is sent, the request is
 * exactly "VERB --json" without a remote `timeout`, the host's --json
 * document (recorded in tests/fixtures/pve) is parsed tolerantly, exit
 * statuses map to bg_status codes, transport errors pass through. The SSH
 * layer is faked at its edge (bg_ssh_exec) so the test sees every byte the
 * client would send. */
#include "bg_test.h"

#include "core/error.h"
#include "pve/client.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- the fake SSH edge --------------------------------------------------- */

static struct {
	int calls;
	char command[256];
	int remote_timeout;
	int timeout_s;
	int rc;          /* what bg_ssh_exec returns */
	int exit_code;   /* the remote status */
	char *out;       /* canned stdout */
	const char *err; /* canned stderr */
	int handshake_done;
} fake;

int bg_ssh_exec(bg_ssh_result *result, bg_ssh *s, const char *command, const bg_ssh_exec_options *opts)
{
	(void)s;
	fake.calls++;
	snprintf(fake.command, sizeof(fake.command), "%s", command);
	fake.remote_timeout = opts ? opts->remote_timeout : -1;
	fake.timeout_s = opts ? opts->timeout_s : -1;
	memset(result, 0, sizeof(*result));
	result->exit_code = fake.rc == BG_OK ? fake.exit_code : -1;
	if (fake.rc != BG_OK && fake.rc != BG_ETIMEOUT)
		return bg_error_set(fake.rc, "fake transport failure");
	result->out = strdup(fake.out ? fake.out : "");
	result->out_len = strlen(result->out);
	result->err = strdup(fake.err ? fake.err : "");
	result->err_len = strlen(result->err);
	if (opts && opts->on_output && result->out_len)
		opts->on_output(BG_SSH_STDOUT, result->out, result->out_len, opts->payload);
	return fake.rc;
}

const char *bg_ssh_host_key_fingerprint(const bg_ssh *s)
{
	(void)s;
	return fake.handshake_done ? "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : NULL;
}

void bg_ssh_result_clear(bg_ssh_result *r)
{
	free(r->out);
	free(r->err);
	free(r->exit_signal);
	memset(r, 0, sizeof(*r));
}

static char *read_fixture(const char *name)
{
	return bg_test_read_fixture("pve", name);
}

static void setup_fake(int rc, int exit_code, const char *fixture, const char *err)
{
	free(fake.out);
	memset(&fake, 0, sizeof(fake));
	fake.rc = rc;
	fake.exit_code = exit_code;
	fake.out = fixture ? read_fixture(fixture) : NULL;
	fake.err = err;
	fake.handshake_done = 1;
}

/* Any non-NULL pointer will do: the fake never dereferences it. */
#define FAKE_SSH ((bg_ssh *)&fake)

/* ---- tests ---------------------------------------------------------------- */

static void test_unknown_verb_never_sent(void **state)
{
	static const char *const bad[] = {"destroy", "STATUS", "status --json", "", "status;reboot", "cycle 102"};
	bg_pve_result r;
	size_t i;

	(void)state;
	setup_fake(BG_OK, 0, "status-running.json", "");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bg_pve_run(&r, FAKE_SSH, bad[i], 10, NULL, NULL), BG_EINVAL);
		assert_error_contains("not a Proxmox verb");
		bg_pve_result_clear(&r);
	}
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, NULL, 10, NULL, NULL), BG_EINVAL);
	bg_pve_result_clear(&r);
	assert_int_equal(fake.calls, 0);
}

static int count_output(bg_ssh_stream stream, const char *data, size_t len, void *payload)
{
	(void)stream;
	(void)data;
	*(size_t *)payload += len;
	return 0;
}

static void test_cycle_ok(void **state)
{
	bg_pve_result r;
	size_t seen = 0;
	char *json;

	(void)state;
	setup_fake(BG_OK, 0, "cycle-ok.json", "");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "cycle", 300, count_output, &seen), BG_OK);
	assert_int_equal(fake.calls, 1);
	assert_string_equal(fake.command, "cycle --json");
	assert_int_equal(fake.remote_timeout, 0);
	assert_int_equal(fake.timeout_s, 300);
	assert_true(seen > 0);
	assert_string_equal(r.verb, "cycle");
	assert_int_equal(r.exit_code, 0);
	assert_false(r.rejected);
	assert_true(r.ok);
	assert_string_equal(r.status, "running");
	assert_string_equal(r.vmid, "102");
	assert_int_equal(r.nsteps, 6);
	assert_string_equal(r.steps[1].name, "stop");
	assert_false(r.steps[1].ok);
	assert_int_equal(r.steps[1].elapsed_ms, 40012);
	assert_string_equal(r.steps[2].detail, "SIGKILL to QEMU pid 48211 (vmid 102), gone after 0.3 s");
	assert_string_equal(r.forensics_id, "2026-06-11T164742Z-cycle");
	assert_string_equal(r.verdict, "block-io-stalled");
	assert_string_equal(r.recommended_verb, "cycle");
	assert_int_equal(r.elapsed_ms, 47290);
	assert_non_null(strstr(r.stdout_text, "\"verb\":\"cycle\""));
	assert_non_null(r.json);

	assert_int_equal(bg_pve_result_to_json(&json, &r), BG_OK);
	assert_non_null(strstr(json, "\"verdict\":\"block-io-stalled\""));
	assert_non_null(strstr(json, "wr_bytes unchanged")); /* evidence kept as sent */
	assert_non_null(strstr(json, "\"exit_code\":0"));
	assert_non_null(strstr(json, "\"steps\":[{\"name\":\"forensics\""));
	bg_free(json);
	bg_pve_result_clear(&r);
	assert_null(r.verb);
	assert_null(r.steps);
}

static void test_default_timeout(void **state)
{
	bg_pve_result r;

	(void)state;
	setup_fake(BG_OK, 0, "status-running.json", "");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "status", 0, NULL, NULL), BG_OK);
	assert_string_equal(fake.command, "status --json");
	assert_int_equal(fake.timeout_s, 240);
	assert_string_equal(r.vmid, "102");
	assert_null(r.verdict);
	assert_int_equal(r.nsteps, 1);
	bg_pve_result_clear(&r);
}

static void test_exit_mapping(void **state)
{
	bg_pve_result r;

	(void)state;
	setup_fake(BG_OK, 3, "busy.json", "busy: cycle running since 2026-06-11T16:47:42Z from 192.168.1.2\n");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "reset", 60, NULL, NULL), BG_EBUSY);
	assert_error_contains("cycle running since");
	assert_int_equal(r.exit_code, 3);
	assert_false(r.ok);
	bg_pve_result_clear(&r);

	setup_fake(BG_OK, 4, "stop-dstate.json", "");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "stop", 60, NULL, NULL), BG_EFAILED);
	assert_error_contains("state D");
	assert_string_equal(r.verdict, "qemu-uninterruptible");
	assert_null(r.recommended_verb); /* JSON null */
	bg_pve_result_clear(&r);

	setup_fake(BG_OK, 2, NULL, "rejected: allowed verbs are status forensics\n");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "cycle", 60, NULL, NULL), BG_EREJECTED);
	assert_true(r.rejected);
	assert_error_contains("allowed verbs are status forensics");
	assert_string_equal(r.stderr_text, "rejected: allowed verbs are status forensics\n");
	assert_null(r.json);
	bg_pve_result_clear(&r);

	setup_fake(BG_OK, 1, NULL, "");
	fake.out = strdup("{\"verb\":\"status\",\"ok\":false,\"steps\":[],\"exit_code\":1,"
			  "\"error\":\"cannot read /var/run/qemu-server/102.pid: Permission denied\"}");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "status", 60, NULL, NULL), BG_ERROR);
	assert_error_contains("102.pid: Permission denied");
	bg_pve_result_clear(&r);

	setup_fake(BG_OK, 1, NULL, "pve.conf:3: [vm] vmid: missing\n");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "status", 60, NULL, NULL), BG_ERROR);
	assert_error_contains("exit status 1");
	bg_pve_result_clear(&r);

	assert_int_equal(bg_pve_status_for_exit(0), BG_OK);
	assert_int_equal(bg_pve_status_for_exit(1), BG_ERROR);
	assert_int_equal(bg_pve_status_for_exit(2), BG_EREJECTED);
	assert_int_equal(bg_pve_status_for_exit(3), BG_EBUSY);
	assert_int_equal(bg_pve_status_for_exit(4), BG_EFAILED);
	assert_int_equal(bg_pve_status_for_exit(-1), BG_ERROR);
	assert_int_equal(bg_pve_status_for_exit(127), BG_ERROR);
}

static void test_transport_errors_pass_through(void **state)
{
	bg_pve_result r;

	(void)state;
	setup_fake(BG_ECONNECT, 0, NULL, NULL);
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "status", 10, NULL, NULL), BG_ECONNECT);
	assert_error_contains("fake transport failure");
	assert_int_equal(r.exit_code, -1);
	bg_pve_result_clear(&r);

	setup_fake(BG_EHOSTKEY, 0, NULL, NULL);
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "status", 10, NULL, NULL), BG_EHOSTKEY);
	bg_pve_result_clear(&r);

	setup_fake(BG_ETIMEOUT, 0, NULL, "");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "cycle", 5, NULL, NULL), BG_ETIMEOUT);
	assert_error_contains("did not finish within 5 s");
	bg_pve_result_clear(&r);

	/* a timeout before the handshake: nothing reached the host */
	setup_fake(BG_ETIMEOUT, 0, NULL, "");
	fake.handshake_done = 0;
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "cycle", 5, NULL, NULL), BG_ETIMEOUT);
	assert_int_equal(r.exit_code, -1);
	assert_null(r.stdout_text);
	bg_pve_result_clear(&r);
}

static void test_tolerant_parsing(void **state)
{
	bg_pve_result r;
	char *json;
	static const char noisy[] =
		"warning: something on stdout\n{\"verb\":\"status\",\"ok\":true,\"status\":\"stopped\"}\n";

	(void)state;
	assert_int_equal(bg_pve_result_fill(&r, "forensics", 0, "{\"verb\":\"forensics\",\"ok\":true}\n", 32, "", 0),
			 BG_OK);
	assert_true(r.ok);
	assert_null(r.status);
	assert_null(r.vmid);
	assert_int_equal(r.nsteps, 0);
	assert_int_equal(bg_pve_result_to_json(&json, &r), BG_OK);
	assert_non_null(strstr(json, "\"forensics\":null"));
	bg_free(json);
	bg_pve_result_clear(&r);

	assert_int_equal(bg_pve_result_fill(&r, "status", 0, noisy, strlen(noisy), NULL, 0), BG_OK);
	assert_string_equal(r.status, "stopped");
	bg_pve_result_clear(&r);

	/* Not JSON at all (an old shell-script host): text kept, fields empty. */
	assert_int_equal(bg_pve_result_fill(&r, "status", 0, "status: running\n", 16, NULL, 0), BG_OK);
	assert_null(r.json);
	assert_false(r.ok);
	assert_string_equal(r.stdout_text, "status: running\n");
	bg_pve_result_clear(&r);

	/* Wrong types and junk steps are skipped, not fatal. */
	static const char odd[] = "{\"ok\":\"yes\",\"status\":7,\"steps\":[1,{\"name\":\"x\"}],\"forensics\":[]}";
	assert_int_equal(bg_pve_result_fill(&r, "status", 0, odd, strlen(odd), NULL, 0), BG_OK);
	assert_int_equal(r.nsteps, 1);
	assert_string_equal(r.steps[0].name, "x");
	assert_null(r.steps[0].detail);
	assert_null(r.verdict);
	bg_pve_result_clear(&r);
	bg_pve_result_clear(NULL);
}

static void test_minimal_fixture(void **state)
{
	bg_pve_result r;

	(void)state;
	setup_fake(BG_OK, 0, "minimal.json", "");
	assert_int_equal(bg_pve_run(&r, FAKE_SSH, "forensics", 30, NULL, NULL), BG_OK);
	assert_true(r.ok);
	assert_null(r.status);
	bg_pve_result_clear(&r);
	free(fake.out);
	fake.out = NULL;
}

/* doctor's reading of a status document: what to settle before an incident */
static void test_result_notes(void **state)
{
	bg_pve_result r;
	char out[1024];
	(void)state;

	memset(&r, 0, sizeof(r));
	r.status = (char *)"running";
	r.json = (char *)"{\"lock_read\":true,\"lock\":null,\"ha\":{\"managed\":false,\"state\":null},"
			 "\"versions\":{\"proxmox\":\"pve-manager/8.2.4/x (running kernel: 6.8)\",\"qemu\":\"8.1.5\"}}";
	assert_int_equal(bg_pve_result_notes(out, sizeof(out), &r), 0);
	assert_string_equal(out, "no config lock; not HA-managed; pve-manager/8.2.4/x; QEMU 8.1.5");

	r.json = (char *)"{\"lock_read\":true,\"lock\":{\"kind\":\"migrate\",\"meaning\":\"M\",\"check\":\"C\"},"
			 "\"ha\":{\"managed\":true,\"state\":\"started\"},"
			 "\"versions\":{\"proxmox\":\"pve-manager/8.1.4/x\",\"qemu\":null}}";
	assert_int_equal(bg_pve_result_notes(out, sizeof(out), &r), 3);
	assert_non_null(strstr(out, "WARNING: config lock migrate: M; cycle stops at it: check C"));
	assert_non_null(strstr(out, "HA-managed, state started: start and cycle wait"));
	assert_null(strstr(out, "WARNING: HA"));
	assert_non_null(strstr(out, "WARNING: Proxmox before 8.2"));
	assert_non_null(strstr(out, "WARNING: QEMU version unknown"));

	r.json = (char *)"{\"lock_read\":false,\"lock\":null,\"ha\":{\"managed\":true,\"state\":\"stopped\"},"
			 "\"versions\":{\"proxmox\":null,\"qemu\":null}}";
	r.status = (char *)"stopped";
	assert_int_equal(bg_pve_result_notes(out, sizeof(out), &r), 3);
	assert_non_null(strstr(out, "WARNING: config lock unknown"));
	assert_non_null(strstr(out, "WARNING: HA-managed, state stopped"));
	assert_non_null(strstr(out, "WARNING: Proxmox version unknown"));

	r.json = (char *)"{\"verb\":\"status\",\"status\":\"running\"}"; /* an older host */
	assert_int_equal(bg_pve_result_notes(out, sizeof(out), &r), 1);
	assert_non_null(strstr(out, "upgrade it"));
	r.json = NULL;
	assert_int_equal(bg_pve_result_notes(out, sizeof(out), &r), 1);
	assert_int_equal(bg_pve_result_notes(out, 0, &r), BG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_verb_never_sent),
		cmocka_unit_test(test_cycle_ok),
		cmocka_unit_test(test_default_timeout),
		cmocka_unit_test(test_exit_mapping),
		cmocka_unit_test(test_transport_errors_pass_through),
		cmocka_unit_test(test_tolerant_parsing),
		cmocka_unit_test(test_minimal_fixture),
		cmocka_unit_test(test_result_notes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
