/*
 * The esim-euicc program as a PC/SC card: a private pcscd with vsmartcard's
 * vpcd reader (tests/common/pcscd_helper.c) is started, esim-euicc connects
 * to it with --vpcd, and the LPA's "pcsc" driver reads the EID (GetEID,
 * BF3E) through real PC/SC, as any PC/SC program would. Also checks that
 * SIGTERM stops the program cleanly (exit status 0). Skipped (77) where
 * pcscd cannot be run.
 */
#include "euicc_harness.h"
#include "pcscd_helper.h"

static void test_eid_over_pcsc(void **state)
{
	(void)state;
	struct pcscd_env env;
	int r = pcscd_start(&env);
	if (r == TEST_SKIP_CODE) {
		pcscd_stop(&env);
		test_component_missing("pcscd", env.why);
	}
	assert_int_equal(r, 0);
	char *dir = test_mkdtemp();
	char pki[600], db[600], log[600], vpcd[64];
	snprintf(pki, sizeof pki, "%s/pki", dir);
	snprintf(db, sizeof db, "%s/card.db", dir);
	snprintf(log, sizeof log, "%s/euicc.log", dir);
	snprintf(vpcd, sizeof vpcd, "127.0.0.1:%u", env.port);
	h_pki_init(pki, H_EID);
	const char *args[] = {"--db", db, "--pki", pki, "--vpcd", vpcd, NULL};
	pid_t pid = h_spawn_euicc(args, log);
	int card = pcscd_wait_card(&env, 20000);
	apdu_session *s = NULL;
	esim_err err = card == 0 ? apdu_session_open("pcsc", env.reader, NULL, &s) : ESIM_E_IO;
	esim_buf resp = ESIM_BUF_INIT;
	if (err == ESIM_OK) {
		const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
		err = apdu_es10_transmit(s, get_eid, sizeof get_eid, &resp);
		apdu_session_close(s);
	}
	kill(pid, SIGTERM);
	int status = 0;
	waitpid(pid, &status, 0);
	pcscd_stop(&env);
	assert_int_equal(card, 0);
	assert_esim(ESIM_OK, err);
	size_t n;
	uint8_t *want = test_unhex("BF3E125A10" H_EID, &n);
	assert_int_equal(resp.len, n);
	assert_memory_equal(resp.data, want, n);
	free(want);
	esim_buf_free(&resp);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eid_over_pcsc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
