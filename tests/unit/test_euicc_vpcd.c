/*
 * The esim-euicc program as a PC/SC card: a private pcscd with vsmartcard's
 * vpcd reader (tests/common/pcscd_helper.c) is started, esim-euicc connects
 * to it with --vpcd, and the LPA's "pcsc" driver reads the EID (GetEID,
 * BF3E) through real PC/SC, as any PC/SC program would. Also checks that
 * SIGTERM stops the program cleanly (exit status 0). Skipped (77) where
 * pcscd cannot be run.
 *
 * Issue 15: the ATR pcscd reports advertises exactly the logical channels
 * the card serves (open them all: each succeeds, the next is refused),
 * offers T=0 and T=1 with extended Lc/Le, and pcscd connects a program
 * that accepts either with T=1 (so the LPA's driver carries extended
 * APDUs) and one that asks for T=0 only with T=0; and
 * every APDU through pcscd + Debian's vpcd is fast: `esim chip info` (a
 * dozen APDUs) took ~400 ms when each waited for the card's delayed ACK;
 * the bound here, 150 ms for the whole program run (best of three), is
 * generous for a loaded CI machine and still fails the old behaviour.
 */
#include <sys/time.h>

#include <PCSC/winscard.h>

#include "euicc_harness.h"
#include "pcscd_helper.h"

/* Through the LPA's pcsc driver, on the basic channel: the ATR's card
 * capabilities, then MANAGE CHANNEL open until the card refuses. Returns
 * the channels served (channel 0 included); *advertised from the ATR. */
static unsigned channels_over_pcsc(const char *reader, unsigned *advertised)
{
	void *ctx = NULL;
	assert_esim(ESIM_OK, apdu_driver_pcsc.open(reader, &ctx));
	esim_buf atr = ESIM_BUF_INIT, r = ESIM_BUF_INIT;
	assert_non_null(apdu_driver_pcsc.atr);
	assert_esim(ESIM_OK, apdu_driver_pcsc.atr(ctx, &atr));
	assert_int_equal(atr.len, EUICC_ATR_VPCD_LEN);
	assert_memory_equal(atr.data, euicc_atr_vpcd, EUICC_ATR_VPCD_LEN);
	struct apdu_card_caps caps;
	assert_esim(ESIM_OK, apdu_atr_card_caps(atr.data, atr.len, &caps));
	assert_true(caps.present);
	assert_true(caps.extended_length);
	/* connected with T=1 (pcscd's choice among T=0 and T=1): the driver
	 * carries extended APDUs */
	assert_non_null(apdu_driver_pcsc.max_apdu_of);
	assert_true(apdu_driver_pcsc.max_apdu_of(ctx) > APDU_SHORT_MAX_LEN);
	*advertised = caps.max_channels;
	const uint8_t open[] = {0x00, 0x70, 0x00, 0x00, 0x01};
	unsigned n = 1;
	for (;;) {
		assert_esim(ESIM_OK, apdu_driver_pcsc.transmit(ctx, open, sizeof open, &r));
		uint16_t sw = apdu_sw(r.data, r.len);
		if (sw != 0x9000) {
			assert_int_equal(sw, 0x6A81);
			break;
		}
		assert_int_equal(r.len, 3);
		assert_int_equal(r.data[0], n);
		n++;
		assert_true(n <= 20);
	}
	/* close them again, for the programs after us */
	for (unsigned ch = 1; ch < n; ch++) {
		const uint8_t close_ch[] = {0x00, 0x70, 0x80, (uint8_t)ch};
		assert_esim(ESIM_OK, apdu_driver_pcsc.transmit(ctx, close_ch, 4, &r));
		assert_int_equal(apdu_sw(r.data, r.len), 0x9000);
	}
	apdu_driver_pcsc.close(ctx);
	esim_buf_free(&atr);
	esim_buf_free(&r);
	return n;
}

/* What pcscd makes of the ATR: a program asking for T=1 only gets it, one
 * asking for T=0 only too (after a reset: a shared card keeps the
 * protocol of its first user), and one that takes either gets T=1. */
static void protocols_over_pcsc(const char *reader)
{
	SCARDCONTEXT pc;
	assert_int_equal(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pc),
			 SCARD_S_SUCCESS);
	const DWORD asks[] = {SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T0,
			      SCARD_PROTOCOL_T1};
	const DWORD gets[] = {SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1};
	for (size_t i = 0; i < 3; i++) {
		SCARDHANDLE h;
		DWORD proto = 0;
		LONG rv = SCardConnect(pc, reader, SCARD_SHARE_SHARED, asks[i], &h, &proto);
		if (rv != SCARD_S_SUCCESS)
			fail_msg("SCardConnect asking for protocols %lu: %s",
				 (unsigned long)asks[i], pcsc_stringify_error(rv));
		assert_int_equal(proto, gets[i]);
		SCardDisconnect(h, SCARD_RESET_CARD);
	}
	SCardReleaseContext(pc);
}

/* Wall time of `esim chip info` through the reader, in ms; -1 when it
 * fails or does not print the EID. */
static long chip_info_ms(const char *reader)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "'%s/esim' chip info --reader '%s' --json", test_bin_dir(),
		 reader);
	struct timeval a, b;
	gettimeofday(&a, NULL);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char out[8192];
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	gettimeofday(&b, NULL);
	long ms = (b.tv_sec - a.tv_sec) * 1000L + (b.tv_usec - a.tv_usec) / 1000L;
	if (st != 0 || strstr(out, H_EID) == NULL)
		return -1;
	return ms;
}

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
	unsigned advertised = 0, served = 0;
	long best = -1;
	if (err == ESIM_OK) {
		protocols_over_pcsc(env.reader);
		served = channels_over_pcsc(env.reader, &advertised);
		for (int i = 0; i < 3; i++) {
			long ms = chip_info_ms(env.reader);
			printf("# esim chip info over PC/SC: %ld ms\n", ms);
			if (ms >= 0 && (best < 0 || ms < best))
				best = ms;
		}
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
	assert_int_equal(advertised, 8);
	assert_int_equal(served, advertised);
	assert_true(best >= 0);
	if (best >= 150)
		fail_msg("esim chip info over PC/SC took %ld ms (best of 3), bound 150", best);
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
