/*
 * The `esim` program end to end: run as a subprocess against a real
 * esim-euicc (unix socket) and a real esim-smdp on loopback (HTTPS with
 * the DPtls certificate of a private PKI). Covers download with and
 * without a confirmation code, list, enable, disable, nickname, delete,
 * notification process (checked in the SM-DP+'s history), the guided
 * `esim cancel`, and cancel with the SM-DP+ down followed by a later
 * `notification process`; and the failures, each with its exit code:
 * malformed activation codes, a wrong confirmation code, an unknown
 * matching ID, an unreachable server, a server whose certificate does not
 * chain to the CI, and card errors.
 */
#include "test_lpa_fixture.h"

static int group_setup(void **state)
{
	*state = l_setup();
	return 0;
}

static int group_teardown(void **state)
{
	l_teardown(*state);
	return 0;
}

static void test_chip_info(void **state)
{
	struct lenv *e = *state;
	assert_int_equal(l_esim(e, "chip info"), 0);
	json_t *r = l_result(e);
	assert_string_equal(json_string_value(json_object_get(r, "eid")), H_EID);
	json_t *i2 = json_object_get(r, "euicc_info2");
	assert_non_null(json_string_value(json_object_get(i2, "svn")));
	assert_true(json_array_size(json_object_get(i2, "ci_pkids_for_verification")) >= 1);
	assert_true(json_is_object(json_object_get(r, "addresses")));
	/* default SM-DP+ address: set, shown, cleared */
	char args[200];
	snprintf(args, sizeof args, "chip default-smdp %s", e->addr);
	assert_int_equal(l_esim(e, args), 0);
	assert_int_equal(l_esim(e, "chip info"), 0);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(l_result(e), "addresses"), "default_smdp")),
			    e->addr);
	assert_int_equal(l_esim(e, "chip default-smdp ''"), 0);
	assert_int_equal(l_esim(e, "chip default-smdp 'bad address!'"), CLI_EXIT_USAGE);
}

/* Global options before the command name mean the same as after it; an
 * unknown option or a missing value there is a usage error (exit 2). */
static void test_global_options_first(void **state)
{
	struct lenv *e = *state;
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof cmd,
		 "'%s/esim' --json --socket 'unix:%s' --ci='%s' chip info 2>'%s/first.err'",
		 test_bin_dir(), e->sock, e->ci, e->dir);
	assert_int_equal(l_sh(cmd, &out), 0);
	json_t *doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(doc, "result"), "eid")), H_EID);
	json_decref(doc);
	free(out);
	snprintf(cmd, sizeof cmd, "'%s/esim' --nickname x chip info 2>'%s/first.err'",
		 test_bin_dir(), e->dir);
	assert_int_equal(l_sh(cmd, NULL), CLI_EXIT_USAGE);
	snprintf(cmd, sizeof cmd, "'%s/esim' --socket 2>'%s/first.err'", test_bin_dir(), e->dir);
	assert_int_equal(l_sh(cmd, NULL), CLI_EXIT_USAGE);
}

static void test_download_enable_nickname_disable_process(void **state)
{
	struct lenv *e = *state;
	char iccid[32];
	l_download(e, iccid);
	json_t *r = l_result(e);
	assert_true(json_is_true(json_object_get(r, "installed")));
	assert_string_equal(json_string_value(json_object_get(r, "iccid")), iccid);
	assert_true(json_is_true(json_object_get(json_object_get(r, "notification"), "delivered")));
	assert_false(json_is_true(json_object_get(r, "confirmation_code_required")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r, "profile"), "name")),
	    "Test Profile");
	assert_true(l_history_has(e, iccid, "PIR success"));
	assert_int_equal(l_pending(e, iccid, NULL), 0); /* the PIR was removed */

	json_t *p = l_find_profile(e, iccid);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "state")), "disabled");
	assert_string_equal(json_string_value(json_object_get(p, "service_provider")), "Test SPN");

	char args[200];
	snprintf(args, sizeof args, "profile enable %s", iccid);
	assert_int_equal(l_esim(e, args), 0);
	p = l_find_profile(e, iccid);
	assert_string_equal(json_string_value(json_object_get(p, "state")), "enabled");
	/* enabling again: the card's profileNotInDisabledState, exit 3 */
	assert_int_equal(l_esim(e, args), CLI_EXIT_CARD);
	assert_string_equal(l_error_str(e, "result_name"), "profileNotInDisabledState");
	assert_non_null(strstr(e->err, "EnableProfile failed: profileNotInDisabledState (2)"));

	snprintf(args, sizeof args, "profile nickname %s 'My line'", iccid);
	assert_int_equal(l_esim(e, args), 0);
	p = l_find_profile(e, iccid);
	assert_string_equal(json_string_value(json_object_get(p, "nickname")), "My line");

	/* by AID this time */
	const char *aid = json_string_value(json_object_get(p, "aid"));
	assert_non_null(aid);
	snprintf(args, sizeof args, "profile disable %s", aid);
	assert_int_equal(l_esim(e, args), 0);
	p = l_find_profile(e, iccid);
	assert_string_equal(json_string_value(json_object_get(p, "state")), "disabled");

	assert_int_equal(l_pending(e, iccid, "enable"), 1);
	assert_int_equal(l_pending(e, iccid, "disable"), 1);
	assert_int_equal(l_esim(e, "notification process"), 0);
	assert_true(json_integer_value(json_object_get(l_result(e), "delivered")) >= 2);
	assert_int_equal(json_integer_value(json_object_get(l_result(e), "kept")), 0);
	assert_int_equal(l_pending(e, iccid, NULL), 0);
	assert_true(l_history_has(e, iccid, "notification enabled"));
	assert_true(l_history_has(e, iccid, "notification disabled"));
}

static void test_download_with_confirmation_code(void **state)
{
	struct lenv *e = *state;
	char iccid[32], ac[256], args[400];
	l_order(e, "4711", iccid, ac);
	assert_non_null(strstr(ac, "$$1")); /* the AC says a code is needed */
	/* none given (not a terminal): usage error, the session is cancelled */
	snprintf(args, sizeof args, "profile download '%s'", ac);
	assert_int_equal(l_esim(e, args), CLI_EXIT_USAGE);
	assert_non_null(strstr(l_error_str(e, "message"), "confirmation code"));
	assert_int_equal(json_integer_value(json_object_get(l_result(e), "cancel_reason")), 1);
	/* a wrong one: the SM-DP+ refuses with 8.2.7 / 3.8 */
	snprintf(args, sizeof args, "profile download '%s' --confirmation-code 1234", ac);
	assert_int_equal(l_esim(e, args), CLI_EXIT_SERVER);
	assert_string_equal(l_error_str(e, "subject_code"), "8.2.7");
	assert_string_equal(l_error_str(e, "reason_code"), "3.8");
	assert_non_null(strstr(e->err, "the confirmation code is wrong"));
	assert_null(l_find_profile(e, iccid));
	/* the right one */
	snprintf(args, sizeof args, "profile download '%s' --confirmation-code 4711", ac);
	assert_int_equal(l_esim(e, args), 0);
	assert_true(json_is_true(json_object_get(l_result(e), "confirmation_code_required")));
	assert_non_null(l_find_profile(e, iccid));
	assert_true(l_history_has(e, iccid, "PIR success"));
}

static void test_delete(void **state)
{
	struct lenv *e = *state;
	char iccid[32], args[200];
	l_download(e, iccid);
	snprintf(args, sizeof args, "profile enable %s", iccid);
	assert_int_equal(l_esim(e, args), 0);
	/* an enabled profile is not deleted without --disable-first */
	snprintf(args, sizeof args, "profile delete %s", iccid);
	assert_int_equal(l_esim(e, args), CLI_EXIT_USAGE);
	assert_non_null(strstr(e->err, "--disable-first"));
	assert_non_null(l_find_profile(e, iccid));
	snprintf(args, sizeof args, "profile delete %s --disable-first", iccid);
	assert_int_equal(l_esim(e, args), 0);
	assert_true(json_is_true(json_object_get(l_result(e), "disabled_first")));
	assert_null(l_find_profile(e, iccid));
	assert_int_equal(l_pending(e, iccid, "delete"), 1);
	assert_int_equal(l_esim(e, "notification process"), 0);
	assert_int_equal(l_pending(e, iccid, NULL), 0);
	assert_true(l_history_has(e, iccid, "notification deleted"));
	/* deleting it again: no such profile, exit 3 */
	assert_int_equal(l_esim(e, args), CLI_EXIT_CARD);
	assert_string_equal(l_error_str(e, "result_name"), "iccidOrAidNotFound");
}

static void test_cancel(void **state)
{
	struct lenv *e = *state;
	char iccid[32], args[200];
	l_download(e, iccid);
	snprintf(args, sizeof args, "profile enable %s", iccid);
	assert_int_equal(l_esim(e, args), 0);
	/* not on a terminal: --yes is required */
	snprintf(args, sizeof args, "cancel %s", iccid);
	assert_int_equal(l_esim(e, args), CLI_EXIT_USAGE);
	assert_non_null(l_find_profile(e, iccid));
	snprintf(args, sizeof args, "cancel %s --yes", iccid);
	assert_int_equal(l_esim(e, args), 0);
	json_t *r = l_result(e);
	assert_string_equal(json_string_value(json_object_get(r, "eid")), H_EID);
	assert_string_equal(json_string_value(json_object_get(r, "iccid")), iccid);
	assert_true(json_is_true(json_object_get(r, "disabled_first")));
	assert_non_null(json_string_value(json_object_get(r, "deleted_at")));
	json_t *rc = json_object_get(r, "receipt");
	assert_true(json_is_integer(json_object_get(rc, "seq")));
	assert_true(json_is_true(json_object_get(rc, "acknowledged")));
	assert_int_equal(json_integer_value(json_object_get(rc, "http_status")), 204);
	assert_string_equal(json_string_value(json_object_get(rc, "address")), e->addr);
	assert_null(l_find_profile(e, iccid));
	assert_int_equal(l_pending(e, iccid, NULL), 0);
	assert_true(l_history_has(e, iccid, "notification deleted"));
	/* a second cancel finds nothing to delete */
	snprintf(args, sizeof args, "cancel %s --yes", iccid);
	assert_int_equal(l_esim(e, args), CLI_EXIT_CARD); /* gone now */
}

static void test_cancel_with_smdp_down(void **state)
{
	struct lenv *e = *state;
	char iccid[32], args[200];
	l_download(e, iccid);
	l_stop_smdp(e);
	snprintf(args, sizeof args, "cancel %s --yes", iccid);
	assert_int_equal(l_esim(e, args), CLI_EXIT_NETWORK);
	json_t *rc = json_object_get(l_result(e), "receipt");
	assert_true(json_is_integer(json_object_get(rc, "seq")));
	assert_false(json_is_true(json_object_get(rc, "acknowledged")));
	assert_non_null(strstr(e->err, "esim notification process"));
	assert_null(l_find_profile(e, iccid));
	assert_int_equal(l_pending(e, iccid, "delete"), 1);
	/* still down: process keeps it and says so */
	assert_int_equal(l_esim(e, "notification process"), CLI_EXIT_NETWORK);
	assert_int_equal(l_pending(e, iccid, "delete"), 1);
	l_start_smdp(e);
	assert_int_equal(l_esim(e, "notification process"), 0);
	assert_int_equal(l_pending(e, iccid, NULL), 0);
	assert_true(l_history_has(e, iccid, "notification deleted"));
}

static void test_malformed_activation_codes(void **state)
{
	struct lenv *e = *state;
	static const char *const bad[] = {
	    "hello",
	    "LPA:2$smdp.example.com$MID",
	    "LPA:1$$MID",
	    "LPA:1$smdp.example.com",
	    "LPA:1$smdp.example.com$",
	    "LPA:1$smdp.example.com$MID$$7",
	    "LPA:1$smdp.example.com$MID$x.y",
	    "LPA:1$smdp example.com$MID",
	    "LPA:1$smdp.example.com$MID$$1$more",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char args[300];
		snprintf(args, sizeof args, "profile download '%s'", bad[i]);
		assert_int_equal(l_esim(e, args), CLI_EXIT_USAGE);
		assert_non_null(strstr(l_error_str(e, "message"), "invalid activation code"));
	}
	/* neither a code nor --smdp */
	assert_int_equal(l_esim(e, "profile download"), CLI_EXIT_USAGE);
	assert_int_equal(l_esim(e, "profile download --imei 12345"), CLI_EXIT_USAGE);
}

static void test_server_failures(void **state)
{
	struct lenv *e = *state;
	char args[3000];
	/* unknown matching ID: 8.2.6 / 3.8 */
	snprintf(args, sizeof args, "profile download 'LPA:1$%s$NO-SUCH-ORDER'", e->addr);
	assert_int_equal(l_esim(e, args), CLI_EXIT_SERVER);
	assert_string_equal(l_error_str(e, "subject_code"), "8.2.6");
	assert_string_equal(l_error_str(e, "reason_code"), "3.8");
	assert_non_null(strstr(e->err, "Matching ID"));
	/* nothing listens: network error */
	uint16_t dead = l_free_port();
	snprintf(args, sizeof args, "profile download 'LPA:1$127.0.0.1:%u$X' --timeout 5", dead);
	assert_int_equal(l_esim(e, args), CLI_EXIT_NETWORK);
	assert_string_equal(l_error_str(e, "category"), "network");
	/* a server certificate from another CI */
	char ac[256], iccid[32];
	l_order(e, NULL, iccid, ac);
	snprintf(args, sizeof args,
		 "'%s/esim' profile download '%s' --socket 'unix:%s' --ci '%s/brp/ci.pem' --json "
		 ">/dev/null 2>&1",
		 test_bin_dir(), ac, e->sock, e->pki);
	assert_int_equal(l_sh(args, NULL), CLI_EXIT_NETWORK);
	/* no CI at all */
	snprintf(args, sizeof args,
		 "env -u ESIM_CI '%s/esim' profile download '%s' --socket 'unix:%s' >/dev/null "
		 "2>&1",
		 test_bin_dir(), ac, e->sock);
	assert_int_equal(l_sh(args, NULL), CLI_EXIT_USAGE);
	/* the order is still usable with the right CI */
	snprintf(args, sizeof args, "profile download '%s' --imei 356938035643809", ac);
	assert_int_equal(l_esim(e, args), 0);
}

static void test_card_errors(void **state)
{
	struct lenv *e = *state;
	assert_int_equal(l_esim(e, "profile enable 89000123456789099999"), CLI_EXIT_CARD);
	assert_string_equal(l_error_str(e, "result_name"), "iccidOrAidNotFound");
	assert_non_null(strstr(e->err, "iccidOrAidNotFound (1)"));
	assert_int_equal(l_esim(e, "profile nickname 89000123456789099999 x"), CLI_EXIT_CARD);
	assert_string_equal(l_error_str(e, "result_name"), "iccidNotFound");
	assert_int_equal(l_esim(e, "profile enable notanid"), CLI_EXIT_USAGE);
	assert_int_equal(l_esim(e, "notification remove 999999"), CLI_EXIT_CARD);
	assert_string_equal(l_error_str(e, "result_name"), "nothingToDelete");
	/* no card behind the socket */
	char cmd[1200];
	snprintf(cmd, sizeof cmd,
		 "'%s/esim' chip info --socket unix:%s/nothing.sock >/dev/null 2>&1",
		 test_bin_dir(), e->dir);
	assert_int_equal(l_sh(cmd, NULL), CLI_EXIT_CARD);
	snprintf(cmd, sizeof cmd, "'%s/esim' chip info --transport nfc >/dev/null 2>&1",
		 test_bin_dir());
	assert_int_equal(l_sh(cmd, NULL), CLI_EXIT_USAGE);
	snprintf(cmd, sizeof cmd, "'%s/esim' chip frobnicate >/dev/null 2>&1", test_bin_dir());
	assert_int_equal(l_sh(cmd, NULL), CLI_EXIT_USAGE);
}

static void test_human_output(void **state)
{
	struct lenv *e = *state;
	char cmd[1200], *out = NULL;
	snprintf(cmd, sizeof cmd, "'%s/esim' profile list --socket 'unix:%s'", test_bin_dir(),
		 e->sock);
	assert_int_equal(l_sh(cmd, &out), 0);
	assert_non_null(strstr(out, "ICCID"));
	assert_non_null(strstr(out, "Test SPN"));
	assert_null(strstr(out, "{"));
	free(out);
}

static void test_reset(void **state)
{
	struct lenv *e = *state;
	assert_int_equal(l_esim(e, "chip reset"), CLI_EXIT_USAGE); /* not a terminal */
	assert_int_equal(l_esim(e, "profile list"), 0);
	assert_true(json_array_size(json_object_get(l_result(e), "profiles")) > 0);
	assert_int_equal(l_esim(e, "chip reset --yes"), 0);
	assert_int_equal(l_esim(e, "profile list"), 0);
	assert_int_equal(json_array_size(json_object_get(l_result(e), "profiles")), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chip_info),
	    cmocka_unit_test(test_global_options_first),
	    cmocka_unit_test(test_download_enable_nickname_disable_process),
	    cmocka_unit_test(test_download_with_confirmation_code),
	    cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_cancel_with_smdp_down),
	    cmocka_unit_test(test_malformed_activation_codes),
	    cmocka_unit_test(test_server_failures),
	    cmocka_unit_test(test_card_errors),
	    cmocka_unit_test(test_human_output),
	    cmocka_unit_test(test_reset),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
