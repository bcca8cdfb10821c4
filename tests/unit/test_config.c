/* Config: every bad input gives a clear error naming file, line and key;
 * the four sources apply in order defaults < file < environment < flags. */
#include "bg_test.h"

#include "core/config_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char minimal_client[] = "[devvm]\nhost = 10.0.10.10\n[pve]\nhost = 192.168.1.10\n";

static bg_config *client_from(const char *text, int *rc)
{
	bg_config *cfg = NULL;

	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_CLIENT), BG_OK);
	*rc = bg_config_load_string(cfg, "test.conf", text, strlen(text));
	return cfg;
}

static void expect_bad_client(const char *text, const char *needle)
{
	int rc;
	bg_config *cfg = client_from(text, &rc);

	if (rc == BG_OK)
		rc = bg_config_validate(cfg);
	if (rc != BG_ECONFIG)
		fail_msg("accepted bad config:\n%s", text);
	assert_int_equal(bg_error_last()->code, BG_ECONFIG);
	assert_error_contains(needle);
	bg_config_free(cfg);
}

static void expect_bad_pve(const char *text, const char *needle)
{
	bg_config *cfg = NULL;
	int rc;

	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_PVE), BG_OK);
	rc = bg_config_load_string(cfg, "pve.conf", text, strlen(text));
	if (rc == BG_OK)
		rc = bg_config_validate(cfg);
	if (rc != BG_ECONFIG)
		fail_msg("accepted bad pve config:\n%s", text);
	assert_error_contains(needle);
	bg_config_free(cfg);
}

static void test_defaults(void **state)
{
	int rc;
	bg_config *cfg = client_from(minimal_client, &rc);
	const bg_client_settings *c;

	assert_int_equal(rc, BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	c = bg_config_client(cfg);
	assert_non_null(c);
	assert_null(bg_config_pve(cfg));
	assert_string_equal(c->devvm.host, "10.0.10.10");
	assert_int_equal(c->devvm.port, 22);
	assert_string_equal(c->devvm.user, "breakglass");
	assert_int_equal(c->devvm.timeout, 60);
	assert_string_equal(c->devvm.host_key, "");
	assert_string_equal(c->devvm.host_key_policy, "accept-new");
	assert_string_equal(c->pve.host_key_policy, "accept-new");
	assert_string_equal(c->ssh.known_hosts, "/var/lib/breakglass/known_hosts");
	assert_string_equal(c->pve.user, "root");
	assert_int_equal(c->pve.timeout, 240);
	assert_int_equal(c->ssh.use_agent, 0);
	assert_int_equal(c->ssh.connect_timeout, 10);
	assert_string_equal(c->agent.provider, "anthropic");
	assert_string_equal(c->agent.model, "claude-sonnet-4-5");
	assert_int_equal(c->agent.max_steps, 40);
	assert_int_equal(c->agent.max_tokens, 4096);
	assert_int_equal(c->agent.turn_timeout, 1800);
	assert_string_equal(c->agent.pve_mutations, "confirm");
	assert_string_equal(c->agent.fallback, "offline");
	assert_string_equal(c->web.listen, "127.0.0.1:8080");
	assert_string_equal(c->web.auth, "proxy,bearer");
	assert_string_equal(c->web.proxy_header, "X-authentik-username");
	assert_string_equal(c->web.sessions_dir, "/var/lib/breakglass/sessions");
	assert_int_equal(c->web.max_sessions, 64);
	assert_int_equal(c->web.threads, 64);
	assert_string_equal(bg_config_origin(cfg, "devvm", "host"), "test.conf:2");
	assert_string_equal(bg_config_origin(cfg, "devvm", "port"), "default");
	assert_string_equal(bg_config_get(cfg, "devvm", "port"), "22");
	assert_string_equal(bg_config_get(cfg, "ssh", "use_agent"), "false");
	assert_null(bg_config_get(cfg, "devvm", "nope"));
	/* the typed accessor of the public API, for numbers and flags */
	{
		int v = -1;

		assert_int_equal(bg_config_get_int(&v, cfg, "devvm", "port"), BG_OK);
		assert_int_equal(v, 22);
		assert_int_equal(bg_config_get_int(&v, cfg, "web", "max_sessions"), BG_OK);
		assert_int_equal(v, 64);
		assert_int_equal(bg_config_get_int(&v, cfg, "ssh", "use_agent"), BG_OK);
		assert_int_equal(v, 0);
		assert_int_equal(bg_config_get_int(&v, cfg, "devvm", "host"), BG_EINVAL);
		assert_error_contains("bg_config_get");
		assert_int_equal(bg_config_get_int(&v, cfg, "devvm", "nope"), BG_ENOTFOUND);
		assert_int_equal(v, 0);
		assert_int_equal(bg_config_get_int(&v, cfg, "vm", "vmid"), BG_ENOTFOUND); /* a pve.conf key */
	}
	bg_config_free(cfg);
}

static void test_pve_defaults(void **state)
{
	bg_config *cfg = NULL;
	const bg_pve_settings *p;
	const char text[] = "[vm]\nvmid = 102\n";

	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_PVE), BG_OK);
	assert_int_equal(bg_config_load_string(cfg, "pve.conf", text, strlen(text)), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	p = bg_config_pve(cfg);
	assert_non_null(p);
	assert_int_equal(p->vmid, 102);
	assert_string_equal(p->paths.qm, "/usr/sbin/qm");
	assert_string_equal(p->paths.run_dir, "/var/run/qemu-server");
	assert_string_equal(p->paths.log, "/var/log/breakglass-pve.log");
	assert_string_equal(p->paths.state_dir, "/var/lib/breakglass-pve");
	assert_string_equal(p->paths.lock_dir, "/run/breakglass-pve");
	assert_int_equal(p->timeouts.qm, 30);
	assert_int_equal(p->timeouts.stop, 40);
	assert_int_equal(p->timeouts.kill, 10);
	assert_int_equal(p->timeouts.qmp, 5);
	assert_int_equal(p->timeouts.lock_wait, 5);
	assert_int_equal(p->forensics.keep, 20);
	assert_int_equal(p->forensics.blockstats_interval_ms, 1000);
	assert_int_equal(p->forensics.gdb, 0);
	assert_int_equal(p->forensics.agent_exec, 1);
	assert_string_equal(p->verbs.allow, "status forensics reset stop start cycle");
	/* pve.conf never reads the environment */
	assert_int_equal(bg_config_load_env(cfg, NULL), BG_EINVAL);
	bg_config_free(cfg);
}

static void test_comments_and_whitespace(void **state)
{
	const char text[] = "; a comment\n# another\n\n[devvm]\n  host = 10.0.10.10   # inline\n"
			    "port=2222 ; inline too\n[pve]\nhost=pve\n";
	int rc;
	bg_config *cfg = client_from(text, &rc);

	assert_int_equal(rc, BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	assert_string_equal(bg_config_client(cfg)->devvm.host, "10.0.10.10");
	assert_int_equal(bg_config_client(cfg)->devvm.port, 2222);
	assert_string_equal(bg_config_origin(cfg, "devvm", "port"), "test.conf:6");
	bg_config_free(cfg);
}

static void test_bad_inputs(void **state)
{
	/* unknown section, key; with file and line */
	expect_bad_client("[devvm]\nhost = a\n[dev]\nx = 1\n", "test.conf:3: unknown section [dev]");
	expect_bad_client("[devvm]\nhots = a\n", "test.conf:2: unknown key 'hots' in [devvm]");
	expect_bad_client("[devvm]\nHost = a\n", "did you mean 'host'");
	expect_bad_client("[devvm]\ncommand-timeout = 5\n", "did you mean 'command_timeout'");
	expect_bad_client("host = a\n", "test.conf:1: key 'host' outside any section");
	/* numbers */
	expect_bad_client("[devvm]\nport = abc\n", "test.conf:2: [devvm] port = 'abc': not a number");
	expect_bad_client("[devvm]\nport = 22x\n", "not a number");
	expect_bad_client("[devvm]\nport = \n", "not a number");
	expect_bad_client("[devvm]\nport = 0\n", "out of range (1 to 65535)");
	expect_bad_client("[devvm]\nport = 65536\n", "out of range");
	expect_bad_client("[devvm]\nport = -1\n", "out of range");
	expect_bad_client("[devvm]\nport = 99999999999999999999\n", "not a number");
	expect_bad_client("[devvm]\nport = 0x16\n", "not a number");
	expect_bad_client("[devvm]\ncommand_timeout = 0\n", "out of range");
	expect_bad_client("[agent]\nmax_steps = 1.5\n", "not a number");
	/* booleans, enums */
	expect_bad_client("[ssh]\nuse_agent = maybe\n", "not a boolean");
	expect_bad_client("[agent]\nprovider = gemini\n", "must be one of: anthropic openai offline");
	expect_bad_client("[agent]\npve_mutations = yolo\n", "must be one of: auto confirm deny");
	expect_bad_client("[agent]\nfallback = pray\n", "must be one of");
	expect_bad_client("[devvm]\nhost_key_policy = tofu\n", "must be one of: strict accept-new pin");
	expect_bad_client("[pve]\nhost_key_policy = yes\n", "must be one of: strict accept-new pin");
	expect_bad_client("[ssh]\nknown_hosts = known_hosts\n", "absolute path");
	expect_bad_client("[agent]\nbase_url = ftp://x\n", "http://");
	/* strings with structure */
	expect_bad_client("[devvm]\nhost = a b\n", "host name or IP");
	expect_bad_client("[devvm]\nhost = a;reboot\n", "host name or IP");
	expect_bad_client("[devvm]\nuser = Root\n", "user name");
	expect_bad_client("[devvm]\nuser = a$b\n", "user name");
	expect_bad_client("[devvm]\nhost_key = MD5:aa\n", "SHA256 fingerprint");
	expect_bad_client("[devvm]\nhost_key = SHA256:short\n", "SHA256 fingerprint");
	expect_bad_client("[pve]\nvmid = 12\n", "VMID");
	expect_bad_client("[pve]\nvmid = 102a\n", "VMID");
	expect_bad_client("[ssh]\nkey_file = relative/key\n", "absolute path");
	expect_bad_client("[web]\nlisten = 8080\n", "IPV4:PORT");
	expect_bad_client("[web]\nlisten = [::1]:8080\n", "IPv6 is not available");
	expect_bad_client("[web]\nauth = magic\n", "got 'magic'");
	expect_bad_client("[web]\nauth = \n", "must not be empty");
	expect_bad_client("[web]\nauth = none,bearer\n", "cannot be combined");
	expect_bad_client("[web]\ntrusted_proxies = 10.0.0.0/33\n", "not an IPv4 address or CIDR");
	expect_bad_client("[web]\ntrusted_proxies = 10.0.0.0/8 banana\n", "'banana'");
	expect_bad_client("[web]\nsessions_dir = sessions\n", "absolute path");
	expect_bad_client("[web]\nthreads = 1\n", "out of range");
	/* structure */
	expect_bad_client("[devvm]\nhost = a\nhost = b\n", "test.conf:3: [devvm] host is set twice");
	expect_bad_client("[devvm]\nthis line has no equals\n", "test.conf:2: not a [section] or key = value line");
	expect_bad_client("[devvm\nhost = a\n", "test.conf:1:");
	{
		char text[400];
		memset(text, 'a', sizeof(text));
		memcpy(text, "[devvm]\nhost = ", 15);
		text[sizeof(text) - 2] = '\n';
		text[sizeof(text) - 1] = '\0';
		expect_bad_client(text, "test.conf:2: line longer than");
	}
	{
		const char nul[] = "[devvm]\nhost = a\0b\n";
		bg_config *cfg = NULL;
		assert_int_equal(bg_config_new(&cfg, BG_CONFIG_CLIENT), BG_OK);
		assert_int_equal(bg_config_load_string(cfg, "nul.conf", nul, sizeof(nul) - 1), BG_ECONFIG);
		assert_error_contains("nul.conf:2: NUL byte");
		bg_config_free(cfg);
	}
	/* cross-key rules */
	expect_bad_client("[devvm]\nhost=a\n[pve]\nhost=b\n[web]\nlisten = 0.0.0.0:8080\nauth = none\n",
			  "auth = none is refused unless listen is a loopback address");
	expect_bad_client("[devvm]\nhost=a\n[pve]\nhost=b\n[web]\nauth = basic\n", "htpasswd_file is not set");
}

/* host_key_policy = pin needs the pin, for each host. */
static void test_host_key_policy(void **state)
{
	static const char pinned[] = "[devvm]\nhost = a\nhost_key_policy = pin\n"
				     "host_key = SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
				     "[pve]\nhost = b\nhost_key_policy = strict\n[ssh]\nknown_hosts =\n";
	bg_config *cfg;
	int rc;

	(void)state;
	expect_bad_client("[devvm]\nhost = a\nhost_key_policy = pin\n[pve]\nhost = b\n",
			  "test.conf:3: [devvm] host_key_policy = pin but [devvm] host_key is not set");
	expect_bad_client("[devvm]\nhost = a\n[pve]\nhost = b\nhost_key_policy = pin\n",
			  "[pve] host_key_policy = pin but [pve] host_key is not set");
	cfg = client_from(pinned, &rc);
	assert_int_equal(rc, BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	assert_string_equal(bg_config_client(cfg)->devvm.host_key_policy, "pin");
	assert_string_equal(bg_config_client(cfg)->pve.host_key_policy, "strict");
	assert_string_equal(bg_config_client(cfg)->ssh.known_hosts, "");
	bg_config_free(cfg);
}

static void test_required(void **state)
{
	expect_bad_client("[pve]\nhost = b\n", "[devvm] host is required");
	expect_bad_client("[devvm]\nhost = a\n", "[pve] host is required");
	expect_bad_pve("[timeouts]\nqm = 5\n", "[vm] vmid is required");
	expect_bad_pve("[vm]\nvmid = 99\n", "out of range (100 to 999999999)");
	expect_bad_pve("[vm]\nvmid = 102\n[verbs]\nallow = status; reboot\n", "not a verb name");
	expect_bad_pve("[vm]\nvmid = 102\n[verbs]\nallow =\n", "must not be empty");
	expect_bad_pve("[vm]\nvmid = 102\n[paths]\nqm = qm\n", "absolute path");
	expect_bad_pve("[vm]\nvmid = 102\n[devvm]\nhost = a\n", "unknown section [devvm]");
	expect_bad_pve("[vm]\nvmid = 102\n[forensics]\ngdb = perhaps\n", "not a boolean");
	expect_bad_pve("[vm]\nvmid = 102\n[forensics]\nblockstats_interval_ms = 1\n", "out of range");
}

static void test_precedence(void **state)
{
	const char text[] = "[devvm]\nhost = from-file\nport = 2200\nuser = fileuser\n[pve]\nhost = pve\n";
	char e1[] = "BREAKGLASS_DEVVM_PORT=2300", e2[] = "BREAKGLASS_DEVVM_USER=envuser", e3[] = "PATH=/bin",
	     e4[] = "BREAKGLASS_SERVER=http://127.0.0.1:1", e5[] = "BREAKGLASS_SSH_KEY=secret";
	char *env[] = {e1, e2, e3, e4, e5, NULL};
	int rc;
	bg_config *cfg = client_from(text, &rc);
	const bg_client_settings *c = bg_config_client(cfg);

	assert_int_equal(rc, BG_OK);
	assert_int_equal(bg_config_load_env(cfg, env), BG_OK);
	assert_int_equal(bg_config_set(cfg, "devvm", "user", "flaguser", "--user"), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	assert_string_equal(c->devvm.host, "from-file"); /* file over default */
	assert_int_equal(c->devvm.port, 2300);           /* environment over file */
	assert_string_equal(c->devvm.user, "flaguser");  /* flag over environment */
	assert_int_equal(c->devvm.timeout, 60);          /* default stays */
	assert_string_equal(bg_config_origin(cfg, "devvm", "host"), "test.conf:2");
	assert_string_equal(bg_config_origin(cfg, "devvm", "port"), "environment BREAKGLASS_DEVVM_PORT");
	assert_string_equal(bg_config_origin(cfg, "devvm", "user"), "--user");
	assert_string_equal(bg_config_origin(cfg, "devvm", "timeout") ? "x" : "unknown", "unknown");
	assert_string_equal(bg_config_origin(cfg, "devvm", "command_timeout"), "default");
	bg_config_free(cfg);
}

/* BREAKGLASS_<SECTION>_<KEY>: the section ends at the FIRST underscore, so
 * keys whose names hold `_` are reached, and beat the file. */
static void test_env_underscore_keys(void **state)
{
	const char text[] = "[devvm]\nhost = 10.0.10.10\n[pve]\nhost = 192.168.1.10\n[agent]\npve_mutations = "
			    "confirm\n[ssh]\nsource_address = 10.9.8.7\n";
	char e1[] = "BREAKGLASS_AGENT_PVE_MUTATIONS=deny", e2[] = "BREAKGLASS_SSH_SOURCE_ADDRESS=10.1.2.3";
	char t1[] = "BREAKGLASS_AGENT_PVE_MUTATION=deny";
	char *env[] = {e1, e2, NULL}, *typo[] = {t1, NULL};
	int rc;
	bg_config *cfg = client_from(text, &rc);
	const bg_client_settings *c = bg_config_client(cfg);

	assert_int_equal(rc, BG_OK);
	assert_string_equal(c->agent.pve_mutations, "confirm");
	assert_int_equal(bg_config_load_env(cfg, env), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	assert_string_equal(c->agent.pve_mutations, "deny");
	assert_string_equal(c->ssh.source_address, "10.1.2.3");
	assert_string_equal(bg_config_origin(cfg, "agent", "pve_mutations"),
			    "environment BREAKGLASS_AGENT_PVE_MUTATIONS");
	/* a misspelt key with `_` is an error, not silently a section that does not exist */
	assert_int_equal(bg_config_load_env(cfg, typo), BG_ECONFIG);
	assert_error_contains("unknown key 'pve_mutation' in [agent]");
	bg_config_free(cfg);
}

static void test_env_errors(void **state)
{
	char t1[] = "BREAKGLASS_DEVVM_HOTS=x", b1[] = "BREAKGLASS_DEVVM_PORT=twenty";
	char *typo[] = {t1, NULL};
	char *bad[] = {b1, NULL};
	int rc;
	bg_config *cfg = client_from(minimal_client, &rc);

	assert_int_equal(bg_config_load_env(cfg, typo), BG_ECONFIG);
	assert_error_contains("environment BREAKGLASS_DEVVM_HOTS: unknown key 'hots' in [devvm]");
	assert_int_equal(bg_config_load_env(cfg, bad), BG_ECONFIG);
	assert_error_contains("environment BREAKGLASS_DEVVM_PORT: [devvm] port = 'twenty': not a number");
	assert_int_equal(bg_config_set(cfg, "devvm", "nope", "1", "--nope"), BG_ECONFIG);
	assert_error_contains("--nope: unknown key [devvm] nope");
	assert_int_equal(bg_config_set(cfg, "devvm", "port", "x", "--port"), BG_ECONFIG);
	assert_error_contains("--port: [devvm] port = 'x': not a number");
	/* a failed override leaves the earlier value */
	assert_int_equal(bg_config_client(cfg)->devvm.port, 22);
	bg_config_free(cfg);
}

static void test_files(void **state)
{
	char path[] = "/tmp/bg-config-test-XXXXXX";
	int fd = mkstemp(path);
	bg_config *cfg = NULL;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("[vm]\nvmid = 102\n[timeouts]\nstop = 3\n", f);
	fclose(f);
	assert_int_equal(bg_config_load(&cfg, BG_CONFIG_PVE, path), BG_OK);
	assert_int_equal(bg_config_pve(cfg)->timeouts.stop, 3);
	bg_config_free(cfg);
	unlink(path);

	/* an explicit missing file is an error; the default one may be missing */
	assert_int_equal(bg_config_load(&cfg, BG_CONFIG_PVE, "/nonexistent/pve.conf"), BG_ECONFIG);
	assert_null(cfg);
	assert_error_contains("/nonexistent/pve.conf: cannot read");
	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_CLIENT), BG_OK);
	assert_int_equal(bg_config_load_file(cfg, "/nonexistent/breakglass.conf", 1), BG_OK);
	bg_config_free(cfg);
	bg_config_free(NULL);
}

static int count_keys(const char *section, const char *key, const char *value, const char *origin, void *payload)
{
	(*(int *)payload)++;
	return 0;
}

static void test_foreach(void **state)
{
	int n = 0, rc;
	bg_config *cfg = client_from(minimal_client, &rc);

	assert_int_equal(bg_config_foreach(cfg, count_keys, &n), BG_OK);
	assert_true(n >= 30);
	bg_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_pve_defaults),
		cmocka_unit_test(test_comments_and_whitespace),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_host_key_policy),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_env_underscore_keys),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_foreach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
