/*
 * `esim` over real PC/SC: a private pcscd with vsmartcard's vpcd reader
 * (tests/common/pcscd_helper.c), esim-euicc as the card in it (--vpcd),
 * and the esim program choosing the reader by name (--reader) and by
 * index through $ESIM_TRANSPORT / $ESIM_DEVICE, and downloading a profile
 * from esim-smdp through it. Also a card that refuses long STORE DATA
 * blocks (esim-euicc --max-block) still gets a profile through pcscd, the
 * LPA falling back from extended to short blocks. Skipped (77) where
 * pcscd cannot be run.
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

/* Count the lines of text holding needle. */
static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* esim-euicc --vpcd --max-block N as the card; `esim --trace profile
 * download` through pcscd must install the profile. The trace (stderr)
 * is returned in *trace (malloc'd). */
static void download_small_card(const char *max_block, char **trace)
{
	struct pcscd_env env;
	int r = pcscd_start(&env);
	if (r == TEST_SKIP_CODE) {
		pcscd_stop(&env);
		test_component_missing("pcscd", env.why);
	}
	assert_int_equal(r, 0);
	struct lenv *e = l_setup();
	char db[700], log[700], vpcd[64], tr[700];
	snprintf(db, sizeof db, "%s/pcsc-card.db", e->dir);
	snprintf(log, sizeof log, "%s/pcsc-euicc.log", e->dir);
	snprintf(tr, sizeof tr, "%s/trace", e->dir);
	snprintf(vpcd, sizeof vpcd, "127.0.0.1:%u", env.port);
	const char *args[] = {"--db",	     db,	"--pki", e->pki, "--vpcd", vpcd,
			      "--max-block", max_block, NULL};
	pid_t pid = h_spawn_euicc(args, log);
	int card = pcscd_wait_card(&env, 20000);
	int rc_dl = -1, rc_list = -1;
	bool listed = false;
	char cmd[3000], ac[256], iccid[32], *out = NULL;
	if (card == 0) {
		l_order(e, NULL, iccid, ac);
		snprintf(cmd, sizeof cmd,
			 "'%s/esim' --trace profile download '%s' --reader '%s' --ci '%s' "
			 "--json >/dev/null 2>'%s'",
			 test_bin_dir(), ac, env.reader, e->ci, tr);
		rc_dl = l_sh(cmd, NULL);
		snprintf(cmd, sizeof cmd, "'%s/esim' profile list --reader '%s' --json",
			 test_bin_dir(), env.reader);
		rc_list = l_sh(cmd, &out);
		listed = strstr(out, iccid) != NULL;
		free(out);
	}
	*trace = NULL;
	if (card == 0) {
		size_t n = 0;
		uint8_t *raw = test_read(tr, &n);
		*trace = calloc(1, n + 1); /* as a C string */
		assert_non_null(*trace);
		memcpy(*trace, raw, n);
		free(raw);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	pcscd_stop(&env);
	l_teardown(e);
	assert_int_equal(card, 0);
	assert_non_null(*trace);
	if (rc_dl != 0)
		fail_msg("download through a card taking <= %s bytes failed (%d): %s", max_block,
			 rc_dl, *trace);
	assert_int_equal(rc_list, 0);
	assert_true(listed);
}

/* --max-block 300: the ATR declares extended length (the card takes more
 * than 255 bytes), the first extended STORE DATA longer than 300 bytes is
 * refused with 6700 and the LPA goes on in 255-byte blocks, never lower,
 * for the rest of that session. */
static void test_small_card_extended_refused(void **state)
{
	(void)state;
	char *trace = NULL;
	download_small_card("300", &trace);
	assert_true(count_lines(trace, "STORE DATA blocks: extended length") > 0);
	assert_true(count_lines(trace, "block was refused (6700): blocks of 255 bytes") > 0);
	assert_int_equal(count_lines(trace, "blocks of 120 bytes"), 0);
	free(trace);
}

/* --max-block 200: the short vpcd ATR, 255-byte blocks refused, 120 kept. */
static void test_small_card_short(void **state)
{
	(void)state;
	char *trace = NULL;
	download_small_card("200", &trace);
	assert_int_equal(count_lines(trace, "STORE DATA blocks: extended length"), 0);
	assert_true(count_lines(trace, "blocks of 120 bytes") > 0);
	free(trace);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esim_over_pcsc),
	    cmocka_unit_test(test_small_card_extended_refused),
	    cmocka_unit_test(test_small_card_short),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
