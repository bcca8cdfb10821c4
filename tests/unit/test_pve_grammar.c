/* The request grammar of docs/forced-command.md, byte for byte: `VERB` or `VERB --json`,
 * nothing else. Table-driven: every hostile input must be rejected with
 * BG_EREJECTED and leave the request empty. */
#include "bg_test.h"

#include <stdio.h>

typedef struct input {
	const char *bytes;
	size_t len;
} input;

/* sizeof - 1 keeps embedded NUL bytes in the length. */
#define IN(s)                    \
	{                        \
		s, sizeof(s) - 1 \
	}

static const input hostile[] = {
	/* shell metacharacters */
	IN("status;reboot"),
	IN("status; reboot"),
	IN("status && reboot"),
	IN("status||reboot"),
	IN("status|sh"),
	IN("status&"),
	IN("$(reboot)"),
	IN("status $(reboot)"),
	IN("`reboot`"),
	IN("status`id`"),
	IN("status>/etc/x"),
	IN("status</etc/shadow"),
	IN("status *"),
	IN("status?"),
	IN("status~"),
	IN("status#"),
	IN("status\\"),
	IN("'status'"),
	IN("\"status\""),
	IN("status'"),
	IN("status\""),
	IN("${IFS}status"),
	IN("status${IFS}--json"),
	IN("status!"),
	IN("{status}"),
	IN("(status)"),
	IN("status=1"),
	IN("rm -rf /"),
	IN("status --json;id"),
	IN("cycle & cycle"),
	/* a second VMID, other words */
	IN("status 103"),
	IN("status 102"),
	IN("cycle 102"),
	IN("102"),
	IN("status --vmid 103"),
	IN("status --json 103"),
	IN("cycle --json 103"),
	IN("status status"),
	IN("status cycle"),
	IN("status --json --json"),
	IN("destroy"),
	IN("reboot"),
	IN("shutdown"),
	IN("unlock"),
	IN("qm stop 102"),
	IN("status --verbose"),
	IN("status -j"),
	IN("status --JSON"),
	IN("status --jso"),
	IN("status --jsonx"),
	IN("status -json"),
	IN("status json"),
	IN("status --json="),
	IN("--json"),
	IN("--json status"),
	IN(" --json"),
	IN("status-json"),
	IN("status--json"),
	IN("-status"),
	IN("stat us"),
	/* case changes */
	IN("STATUS"),
	IN("Status"),
	IN("sTatus"),
	IN("CYCLE"),
	IN("Cycle --json"),
	IN("cycle --Json"),
	/* whitespace of every kind */
	IN(""),
	IN(" "),
	IN(" status"),
	IN("status "),
	IN("  status"),
	IN("status  --json"),
	IN("status --json "),
	IN("\tstatus"),
	IN("status\t"),
	IN("status\t--json"),
	IN("status\n"),
	IN("\nstatus"),
	IN("status\r\n"),
	IN("status\r"),
	IN("status\v"),
	IN("status\f"),
	IN("status\n--json"),
	IN("cycle\nstatus"),
	IN("status\xc2\xa0--json"),     /* NO-BREAK SPACE */
	IN("status\xe2\x80\x83--json"), /* EM SPACE */
	IN("status\xe3\x80\x80"),       /* IDEOGRAPHIC SPACE */
	IN("status\xe2\x80\x8b"),       /* ZERO WIDTH SPACE */
	IN("\xef\xbb\xbfstatus"),       /* BOM */
	/* NUL and other control bytes */
	IN("\0"),
	IN("status\0"),
	IN("\0status"),
	IN("status\0 --json"),
	IN("status --json\0"),
	IN("stat\0us"),
	IN("cycle\0;reboot"),
	IN("status\x1b[2J"),
	IN("status\x7f"),
	IN("status\x01"),
	IN("\x08status"),
	/* UTF-8 look-alikes */
	IN("st\xd0\xb0tus"),            /* Cyrillic a */
	IN("\xd1\x81ycle"),             /* Cyrillic es */
	IN("status \xe2\x80\x94json"),  /* em dash */
	IN("status \xe2\x80\x93json"),  /* en dash */
	IN("status \xe2\x88\x92-json"), /* minus sign */
	IN("status -\xe2\x80\x90json"), /* hyphen */
	IN("\xef\xbd\x93tatus"),        /* fullwidth s */
	IN("status\xcc\x81"),           /* combining acute */
	IN("statu\xc5\x9b"),            /* s with acute */
	IN("\xc0\xafstatus"),           /* overlong slash */
	IN("status\xff"),
	IN("\x80"),
	/* over-long */
	IN("statusstatusstatusstatusstatusstatusstatusstatusstatusstatusstatus"),
	IN("status                                                            "),
	IN("cycle --json                                                       x"),
	/* --json in the wrong place, prefixes and suffixes of verbs */
	IN("--json cycle"),
	IN("--json --json"),
	IN("json status"),
	IN("stat"),
	IN("statu"),
	IN("statuss"),
	IN("cycles"),
	IN("ccycle"),
	IN("forensic"),
	IN("forensicss"),
	IN("start1"),
	IN("s"),
	IN("-"),
	IN("--"),
	IN("a"),
	IN("status -- json"),
	IN("status --"),
	IN("status -"),
};

static void hostile_inputs_are_rejected(void **state)
{
	size_t i;
	(void)state;

	assert_true(sizeof(hostile) / sizeof(hostile[0]) >= 100);
	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		bg_pve_request req = {(const bg_pve_verb *)1, 1};
		int rc = bg_pve_parse_request(&req, hostile[i].bytes, hostile[i].len, NULL);
		if (rc != BG_EREJECTED)
			fail_msg("hostile input #%zu (%zu bytes) was not rejected: %d", i, hostile[i].len, rc);
		assert_null(req.verb);
		assert_int_equal(req.json, 0);
		/* the message must not echo raw bytes back */
		assert_null(strchr(bg_error_last()->message, '\n'));
	}
}

static void every_verb_is_accepted_alone_and_with_json(void **state)
{
	size_t n, i;
	const bg_pve_verb *verbs = bg_pve_verbs(&n);
	char line[BG_PVE_REQUEST_MAX + 1];
	(void)state;

	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		bg_pve_request req;
		assert_int_equal(bg_pve_parse_request(&req, verbs[i].name, strlen(verbs[i].name), NULL), BG_OK);
		assert_ptr_equal(req.verb, &verbs[i]);
		assert_int_equal(req.json, 0);
		snprintf(line, sizeof(line), "%s --json", verbs[i].name);
		assert_int_equal(bg_pve_parse_request(&req, line, strlen(line), NULL), BG_OK);
		assert_ptr_equal(req.verb, &verbs[i]);
		assert_int_equal(req.json, 1);
	}
}

static void mutating_flags_match_the_spec(void **state)
{
	(void)state;
	assert_int_equal(bg_pve_verb_find("status")->mutating, 0);
	assert_int_equal(bg_pve_verb_find("forensics")->mutating, 0);
	assert_int_equal(bg_pve_verb_find("reset")->mutating, 1);
	assert_int_equal(bg_pve_verb_find("stop")->mutating, 1);
	assert_int_equal(bg_pve_verb_find("start")->mutating, 1);
	assert_int_equal(bg_pve_verb_find("cycle")->mutating, 1);
	assert_null(bg_pve_verb_find("STATUS"));
	assert_null(bg_pve_verb_find(""));
	assert_null(bg_pve_verb_find(NULL));
}

static void allow_list_limits_the_verbs(void **state)
{
	bg_pve_request req;
	const char *allow = "status forensics";
	(void)state;

	assert_int_equal(bg_pve_parse_request(&req, "status", 6, allow), BG_OK);
	assert_int_equal(bg_pve_parse_request(&req, "forensics --json", 16, allow), BG_OK);
	assert_int_equal(bg_pve_parse_request(&req, "cycle", 5, allow), BG_EREJECTED);
	assert_null(req.verb);
	assert_int_equal(bg_pve_parse_request(&req, "cycle --json", 12, allow), BG_EREJECTED);
	/* a verb that is a substring of an allowed word is not allowed */
	assert_int_equal(bg_pve_parse_request(&req, "start", 5, "status restart"), BG_EREJECTED);
	assert_int_equal(bg_pve_parse_request(&req, "stop", 4, "stopx status"), BG_EREJECTED);
	assert_int_equal(bg_pve_parse_request(&req, "stop", 4, ""), BG_EREJECTED);
	assert_int_equal(bg_pve_parse_request(&req, "stop", 4, "status,stop"), BG_OK);
}

static void check_allow_refuses_unknown_words(void **state)
{
	(void)state;
	assert_int_equal(bg_pve_check_allow("status forensics reset stop start cycle"), BG_OK);
	assert_int_equal(bg_pve_check_allow("status"), BG_OK);
	assert_int_equal(bg_pve_check_allow("status destroy"), BG_ECONFIG);
	assert_error_contains("destroy");
	assert_int_equal(bg_pve_check_allow("STATUS"), BG_ECONFIG);
	assert_int_equal(bg_pve_check_allow(""), BG_ECONFIG);
	assert_int_equal(bg_pve_check_allow("   "), BG_ECONFIG);
	assert_int_equal(bg_pve_check_allow("statusstatusstatusstatusstatusstatusstatus"), BG_ECONFIG);
}

static void exactly_64_bytes_is_the_limit(void **state)
{
	char big[BG_PVE_REQUEST_MAX + 2];
	bg_pve_request req;
	(void)state;

	memset(big, 'a', sizeof(big));
	assert_int_equal(bg_pve_parse_request(&req, big, BG_PVE_REQUEST_MAX, NULL), BG_EREJECTED);
	assert_int_equal(bg_pve_parse_request(&req, big, BG_PVE_REQUEST_MAX + 1, NULL), BG_EREJECTED);
	assert_error_contains("longer than 64");
	assert_int_equal(bg_pve_parse_request(&req, NULL, 0, NULL), BG_EREJECTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hostile_inputs_are_rejected),
		cmocka_unit_test(every_verb_is_accepted_alone_and_with_json),
		cmocka_unit_test(mutating_flags_match_the_spec),
		cmocka_unit_test(allow_list_limits_the_verbs),
		cmocka_unit_test(check_allow_refuses_unknown_words),
		cmocka_unit_test(exactly_64_bytes_is_the_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
