/*
 * The confirmation code retry of `esim profile download` end to end (issue
 * 14 item 3, the device side; SGP.22 3.1.3 and 5.6.2, SGP.23's CC retry):
 * real esim-euicc, esim-smdp serve and esim processes (test_lpa_fixture.h).
 * With `--cc -` the codes are read one per line from stdin. A wrong code
 * is answered 8.2.7 / 3.8 and the SM-DP+ keeps the session, so esim reads
 * the next line, sends PrepareDownload to the card again (new hashCc) and
 * getBoundProfilePackage again on the same transactionId:
 *   - "WRONG\nRIGHT\n": installed, two attempts, one transaction;
 *   - "WRONG\n" then the end of the input: cancelSession (postponed) sent,
 *     the SM-DP+ has no session left for it (its database), the order is
 *     still Released and downloads later with the right code;
 *   - three wrong codes (cc-attempts 3): 8.2.7 / 6.4 reported, the user
 *     told the order is blocked, the order in Error;
 *   - a wrong code given as --confirmation-code CODE (no way to ask): the
 *     server's session is cancelled too, not left to expire.
 * On 195e680 every case fails: esim knew no --cc, gave up at the first
 * 8.2.7 / 3.8 without telling the SM-DP+, and the eUICC refused a second
 * PrepareDownload in one session.
 */
#include <ctype.h>

#include "test_lpa_fixture.h"

#include "esim/store.h"

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

/* As l_esim, with stdin read from the text input. */
static int esim_in(struct lenv *e, const char *args, const char *input)
{
	char in[700], errf[700], cmd[4096];
	snprintf(in, sizeof in, "%s/stdin.txt", e->dir);
	snprintf(errf, sizeof errf, "%s/esim.err", e->dir);
	FILE *f = fopen(in, "w");
	assert_non_null(f);
	fputs(input, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "'%s/esim' %s --socket 'unix:%s' --ci '%s' --json <'%s' 2>'%s'",
		 test_bin_dir(), args, e->sock, e->ci, in, errf);
	char *out = NULL;
	e->exit_code = l_sh(cmd, &out);
	json_decref(e->doc);
	e->doc = json_loads(out, 0, NULL);
	if (e->doc == NULL)
		fail_msg("esim %s: output is not JSON: %s", args, out);
	free(out);
	f = fopen(errf, "r");
	size_t n = f ? fread(e->err, 1, sizeof e->err - 1, f) : 0;
	e->err[n] = '\0';
	if (f)
		fclose(f);
	assert_int_equal(json_integer_value(json_object_get(e->doc, "exit_code")), e->exit_code);
	return e->exit_code;
}

/* Sessions the SM-DP+ holds for transaction id txid (hex), read from its
 * database. */
static int64_t smdp_sessions(struct lenv *e, const char *txid)
{
	char url[700];
	snprintf(url, sizeof url, "sqlite:%s/smdp.db", e->dir);
	store *s = NULL;
	assert_esim(ESIM_OK, store_open(url, &s));
	store_stmt *st = NULL;
	assert_esim(
	    ESIM_OK,
	    store_prepare(s, "SELECT count(*) FROM smdp_sessions WHERE upper(txid) = ?1", &st));
	char up[80];
	size_t i = 0;
	for (; txid[i] != '\0' && i < sizeof up - 1; i++)
		up[i] = (char)toupper((unsigned char)txid[i]);
	up[i] = '\0';
	store_bind_text(st, 1, up);
	bool row = false;
	assert_esim(ESIM_OK, store_step(st, &row));
	assert_true(row);
	int64_t n = store_col_int64(st, 0);
	store_finalize(st);
	store_close(s);
	return n;
}

static void smdp_state(struct lenv *e, const char *iccid, const char *want)
{
	char args[128], *out = NULL;
	snprintf(args, sizeof args, "state %s", iccid);
	assert_int_equal(l_smdp_cmd(e, args, &out), 0);
	out[strcspn(out, "\n")] = '\0';
	assert_string_equal(out, want);
	free(out);
}

static const char *txid_of(struct lenv *e)
{
	const char *t = json_string_value(json_object_get(l_result(e), "transaction_id"));
	assert_non_null(t);
	return t;
}

static void test_wrong_then_right(void **state)
{
	struct lenv *e = *state;
	char iccid[32], ac[256], args[400];
	l_order(e, "4711", iccid, ac);
	snprintf(args, sizeof args, "profile download '%s' --cc -", ac);
	if (esim_in(e, args, "WRONG\n4711\n") != 0)
		fail_msg("download failed: %s", e->err);
	json_t *r = l_result(e);
	assert_true(json_is_true(json_object_get(r, "installed")));
	assert_string_equal(json_string_value(json_object_get(r, "iccid")), iccid);
	assert_int_equal(json_integer_value(json_object_get(r, "confirmation_code_attempts")), 2);
	assert_non_null(strstr(e->err, "not accepted"));
	char txid[80];
	snprintf(txid, sizeof txid, "%s", txid_of(e));
	assert_int_equal(smdp_sessions(e, txid), 0); /* the PIR ended it */
	assert_non_null(l_find_profile(e, iccid));
	assert_true(l_history_has(e, iccid, "PIR success"));
	smdp_state(e, iccid, "Installed");
}

static void test_input_ends(void **state)
{
	struct lenv *e = *state;
	char iccid[32], ac[256], args[400], txid[80];
	l_order(e, "2222", iccid, ac);
	snprintf(args, sizeof args, "profile download '%s' --cc -", ac);
	assert_int_equal(esim_in(e, args, "WRONG\n"), CLI_EXIT_SERVER);
	assert_string_equal(l_error_str(e, "subject_code"), "8.2.7");
	assert_string_equal(l_error_str(e, "reason_code"), "3.8");
	json_t *r = l_result(e);
	assert_int_equal(json_integer_value(json_object_get(r, "cancel_reason")), 1);
	assert_true(json_is_true(json_object_get(r, "cancelled_with_server")));
	assert_non_null(strstr(e->err, "no other confirmation code"));
	snprintf(txid, sizeof txid, "%s", txid_of(e));
	assert_int_equal(smdp_sessions(e, txid), 0);
	smdp_state(e, iccid, "Released");
	assert_null(l_find_profile(e, iccid));
	/* nothing at all on stdin: refused before any PrepareDownload */
	assert_int_equal(esim_in(e, args, ""), CLI_EXIT_USAGE);
	assert_true(json_is_true(json_object_get(l_result(e), "cancelled_with_server")));
	snprintf(txid, sizeof txid, "%s", txid_of(e));
	assert_int_equal(smdp_sessions(e, txid), 0);
	/* later, the right code (one attempt left of three) */
	assert_int_equal(esim_in(e, args, "2222\n"), 0);
	assert_int_equal(
	    json_integer_value(json_object_get(l_result(e), "confirmation_code_attempts")), 1);
	assert_non_null(l_find_profile(e, iccid));
	smdp_state(e, iccid, "Installed");
}

static void test_three_wrong_block(void **state)
{
	struct lenv *e = *state;
	char iccid[32], ac[256], args[400], txid[80];
	l_order(e, "3333", iccid, ac);
	snprintf(args, sizeof args, "profile download '%s' --cc -", ac);
	assert_int_equal(esim_in(e, args, "1111\n2222\n4444\n3333\n"), CLI_EXIT_SERVER);
	assert_string_equal(l_error_str(e, "subject_code"), "8.2.7");
	assert_string_equal(l_error_str(e, "reason_code"), "6.4");
	assert_int_equal(
	    json_integer_value(json_object_get(l_result(e), "confirmation_code_attempts")), 3);
	assert_non_null(strstr(e->err, "blocked"));
	assert_non_null(strstr(e->err, "operator"));
	snprintf(txid, sizeof txid, "%s", txid_of(e));
	assert_int_equal(smdp_sessions(e, txid), 0);
	smdp_state(e, iccid, "Error");
	assert_null(l_find_profile(e, iccid));
	/* the right code no longer helps */
	assert_true(esim_in(e, args, "3333\n") != 0);
	assert_null(l_find_profile(e, iccid));
}

static void test_literal_code_cancels(void **state)
{
	struct lenv *e = *state;
	char iccid[32], ac[256], args[400], txid[80];
	l_order(e, "5555", iccid, ac);
	snprintf(args, sizeof args, "profile download '%s' --confirmation-code 1234", ac);
	assert_int_equal(esim_in(e, args, "5555\n"), CLI_EXIT_SERVER);
	assert_string_equal(l_error_str(e, "reason_code"), "3.8");
	assert_true(json_is_true(json_object_get(l_result(e), "cancelled_with_server")));
	snprintf(txid, sizeof txid, "%s", txid_of(e));
	assert_int_equal(smdp_sessions(e, txid), 0);
	smdp_state(e, iccid, "Released");
	snprintf(args, sizeof args, "profile download '%s' --confirmation-code 5555", ac);
	assert_int_equal(esim_in(e, args, ""), 0);
	smdp_state(e, iccid, "Installed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrong_then_right),
	    cmocka_unit_test(test_input_ends),
	    cmocka_unit_test(test_three_wrong_block),
	    cmocka_unit_test(test_literal_code_cancels),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
