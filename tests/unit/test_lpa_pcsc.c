/*
 * `esim` over real PC/SC: a private pcscd with vsmartcard's vpcd reader
 * (tests/common/pcscd_helper.c), esim-euicc as the card in it (--vpcd),
 * and the esim program choosing the reader by name (--reader) and by
 * index through $ESIM_TRANSPORT / $ESIM_DEVICE, and downloading a profile
 * from esim-smdp through it. Skipped (77) where pcscd cannot be run.
 */
#include "pcscd_helper.h"
#include "test_lpa_fixture.h"

static void test_esim_over_pcsc(void **state)
{
	(void)state;
	struct pcscd_env env;
	int r = pcscd_start(&env);
	if (r == TEST_SKIP_CODE) {
		pcscd_stop(&env);
		test_component_missing("pcscd", env.why);
	}
	assert_int_equal(r, 0);
	/* the SM-DP+ and a socket card from the fixture; a second card, on
	 * the same PKI, goes into the vpcd reader */
	struct lenv *e = l_setup();
	char db[700], log[700], vpcd[64];
	snprintf(db, sizeof db, "%s/pcsc-card.db", e->dir);
	snprintf(log, sizeof log, "%s/pcsc-euicc.log", e->dir);
	snprintf(vpcd, sizeof vpcd, "127.0.0.1:%u", env.port);
	const char *args[] = {"--db", db, "--pki", e->pki, "--vpcd", vpcd, NULL};
	pid_t pid = h_spawn_euicc(args, log);
	int card = pcscd_wait_card(&env, 20000);

	char cmd[3000], *out = NULL;
	int rc_info = -1, rc_env = -1, rc_dl = -1, rc_list = -1;
	char ac[256], iccid[32];
	bool eid_ok = false, env_ok = false, listed = false;
	if (card == 0) {
		snprintf(cmd, sizeof cmd, "'%s/esim' chip info --reader '%s' --json",
			 test_bin_dir(), env.reader);
		rc_info = l_sh(cmd, &out);
		eid_ok = strstr(out, H_EID) != NULL;
		free(out);
		snprintf(cmd, sizeof cmd,
			 "ESIM_TRANSPORT=pcsc ESIM_DEVICE='%s' '%s/esim' chip info --json",
			 env.reader, test_bin_dir());
		rc_env = l_sh(cmd, &out);
		env_ok = strstr(out, H_EID) != NULL;
		free(out);
		l_order(e, NULL, iccid, ac);
		snprintf(cmd, sizeof cmd,
			 "'%s/esim' profile download '%s' --reader '%s' --ci '%s' --json "
			 ">/dev/null",
			 test_bin_dir(), ac, env.reader, e->ci);
		rc_dl = l_sh(cmd, NULL);
		snprintf(cmd, sizeof cmd, "'%s/esim' profile list --reader '%s' --json",
			 test_bin_dir(), env.reader);
		rc_list = l_sh(cmd, &out);
		listed = strstr(out, iccid) != NULL;
		free(out);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	pcscd_stop(&env);
	l_teardown(e);
	assert_int_equal(card, 0);
	assert_int_equal(rc_info, 0);
	assert_true(eid_ok);
	assert_int_equal(rc_env, 0);
	assert_true(env_ok);
	assert_int_equal(rc_dl, 0);
	assert_int_equal(rc_list, 0);
	assert_true(listed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esim_over_pcsc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
