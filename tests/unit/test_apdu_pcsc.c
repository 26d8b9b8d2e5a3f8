/*
 * End to end through real PC/SC: a private pcscd with vsmartcard's vpcd
 * reader (tests/common/pcscd_helper.c), the virtual eUICC's APDU front
 * behind it through euicc_serve_vpcd (in a thread), and the LPA's "pcsc"
 * driver and session in front. Skipped (77) where pcscd cannot be run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "pcscd_helper.h"
#include "esim/apdu.h"
#include "euicc/apdu_front.h"
#include "euicc/transport.h"

struct handler_ctx {
	int calls;
	size_t last_len;
};

/* EE.. answers 3000 bytes (i ^ 0x5A); anything else is echoed. */
static esim_err handler(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len, esim_buf *resp,
			uint16_t *sw)
{
	struct handler_ctx *h = ctx;
	(void)channel;
	(void)sw;
	h->calls++;
	h->last_len = len;
	if (cmd[0] == 0xEE) {
		for (size_t i = 0; i < 3000; i++)
			if (esim_buf_append_byte(resp, (uint8_t)(i ^ 0x5A)) != ESIM_OK)
				return ESIM_E_NOMEM;
		return ESIM_OK;
	}
	return esim_buf_append(resp, cmd, len);
}

struct world {
	struct pcscd_env env;
	euicc_apdu_front *front;
	struct handler_ctx h;
	int stop[2];
	pthread_t card;
	bool card_running;
	esim_err card_result;
};

static void *card_main(void *arg)
{
	struct world *w = arg;
	struct euicc_serve_opts o = {.stop_fd = w->stop[0], .retry_ms = 100, .log = stderr};
	w->card_result = euicc_serve_vpcd("127.0.0.1", w->env.port, w->front, &o);
	return NULL;
}

static void world_stop(struct world *w)
{
	if (w->card_running) {
		if (write(w->stop[1], "x", 1) != 1)
			fprintf(stderr, "cannot stop the card thread\n");
		pthread_join(w->card, NULL);
		w->card_running = false;
		close(w->stop[0]);
		close(w->stop[1]);
	}
	euicc_apdu_front_free(w->front);
	pcscd_stop(&w->env);
}

static int group_setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);
	if (w == NULL)
		return -1;
	*state = w;
	int r = pcscd_start(&w->env);
	if (r == TEST_SKIP_CODE) {
		char why[sizeof w->env.why];
		memcpy(why, w->env.why, sizeof why);
		pcscd_stop(&w->env);
		free(w);
		test_component_missing("pcscd", why);
	}
	struct euicc_apdu_front_cfg cfg = {.es10 = handler, .es10_ctx = &w->h};
	if (r == 0 && euicc_apdu_front_new(&cfg, &w->front) == ESIM_OK && pipe(w->stop) == 0 &&
	    pthread_create(&w->card, NULL, card_main, w) == 0) {
		w->card_running = true;
		/* pcscd polls the reader every 400 ms */
		if (pcscd_wait_card(&w->env, 15000) == 0)
			return 0;
	}
	world_stop(w);
	free(w);
	*state = NULL;
	return -1;
}

static int group_teardown(void **state)
{
	struct world *w = *state;
	if (w == NULL)
		return 0;
	world_stop(w);
	free(w);
	return 0;
}

static void test_select_and_es10(void **state)
{
	struct world *w = *state;
	apdu_session *s = NULL;
	struct apdu_session_opts o = {.trace = getenv("ESIM_APDU_TRACE") ? stderr : NULL};
	assert_esim(ESIM_OK, apdu_session_open("pcsc", w->env.reader, &o, &s));
	assert_int_equal(apdu_session_channel(s), 1);

	const uint8_t get_challenge[] = {0xBF, 0x2E, 0x00};
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, get_challenge, sizeof get_challenge, &resp));
	assert_int_equal(resp.len, 3);
	assert_memory_equal(resp.data, get_challenge, 3);
	assert_int_equal(apdu_session_last_sw(s), 0x9000);
	apdu_session_close(s);
	esim_buf_free(&resp);
}

static void test_segmented_both_ways(void **state)
{
	struct world *w = *state;
	apdu_session *s = NULL;
	/* the reader by a substring of its name (a daemon of our own lists
	 * only "esimkit vpcd 00 00" and "... 00 01", so "0" is ours too) */
	const char *spec = w->env.external ? "Virtual PCD 00 00" : "esimkit vpcd";
	assert_esim(ESIM_OK, apdu_session_open("pcsc", spec, NULL, &s));
	if (!w->env.external) {
		apdu_session_close(s);
		assert_esim(ESIM_OK, apdu_session_open("pcsc", "0", NULL, &s));
	}
	uint8_t cmd[700];
	for (size_t i = 0; i < sizeof cmd; i++)
		cmd[i] = (uint8_t)(i + 3);
	cmd[0] = 0xEE;
	esim_buf resp = ESIM_BUF_INIT;
	int before = w->h.calls;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, cmd, sizeof cmd, &resp));
	assert_int_equal(w->h.calls, before + 1);
	assert_int_equal(w->h.last_len, sizeof cmd);
	assert_int_equal(resp.len, 3000);
	for (size_t i = 0; i < 3000; i++)
		assert_int_equal(resp.data[i], (uint8_t)(i ^ 0x5A));
	apdu_session_close(s);
	esim_buf_free(&resp);
}

/* The longest ES10 command the session sends in extended blocks, and its
 * echo back: through vpcd (2-byte frame lengths) no APDU may pass 65535
 * bytes, or vpcd ejects the card mid-session. 66000 bytes go in extended
 * blocks of at most 65535 bytes each; the card gets the command whole and
 * once, and the answer comes back whole through GET RESPONSE. */
static void test_longest_extended_command(void **state)
{
	struct world *w = *state;
	apdu_session *s = NULL;
	struct apdu_session_opts o = {.trace = getenv("ESIM_APDU_TRACE") ? stderr : NULL};
	assert_esim(ESIM_OK, apdu_session_open("pcsc", w->env.reader, &o, &s));
	bool ext = false;
	size_t block = apdu_session_block(s, &ext);
	assert_true(ext); /* T=1, extended length in the ATR */
	assert_true(block + 9 <= 65535);
	size_t len = 66000;
	uint8_t *cmd = malloc(len);
	assert_non_null(cmd);
	for (size_t i = 0; i < len; i++)
		cmd[i] = (uint8_t)(i * 7 + 1);
	cmd[0] = 0x30;
	esim_buf resp = ESIM_BUF_INIT;
	int before = w->h.calls;
	assert_esim(ESIM_OK, apdu_es10_transmit(s, cmd, len, &resp));
	assert_int_equal(w->h.calls, before + 1);
	assert_int_equal(w->h.last_len, len);
	assert_int_equal(resp.len, len);
	assert_memory_equal(resp.data, cmd, len);
	/* still extended: nothing was refused */
	apdu_session_block(s, &ext);
	assert_true(ext);
	apdu_session_close(s);
	esim_buf_free(&resp);
	free(cmd);
}

static void test_no_such_reader(void **state)
{
	(void)state;
	apdu_session *s = NULL;
	assert_esim(ESIM_E_APDU_NO_READER,
		    apdu_session_open("pcsc", "no reader has this name", NULL, &s));
	assert_esim(ESIM_E_APDU_NO_READER, apdu_session_open("pcsc", "97", NULL, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_select_and_es10),
	    cmocka_unit_test(test_segmented_both_ways),
	    cmocka_unit_test(test_longest_extended_command),
	    cmocka_unit_test(test_no_such_reader),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
