/*
 * The virtual eUICC's APDU front, driven with raw APDUs: channels, SELECT,
 * STORE DATA reassembly, GET RESPONSE chaining, length parsing and every
 * status word it gives (see src/euicc/apdu_front.h for the rules).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "euicc/apdu_front.h"

#define ISDR "A0000005591010FFFFFFFF8900000100"

/* The in-test ES10 handler: EE.. answers 1000 bytes (i & 0xFF), DD.. is
 * refused with 6A80, DE.. fails internally, DF.. runs out of memory, and
 * anything else is echoed. */
struct handler_ctx {
	int calls;
	int resets;
	uint8_t last_channel;
	size_t last_len;
	int traced_cmds, traced_resps;
};

static esim_err handler(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len, esim_buf *resp,
			uint16_t *sw)
{
	struct handler_ctx *h = ctx;
	h->calls++;
	h->last_channel = channel;
	h->last_len = len;
	assert_int_equal(resp->len, 0);
	assert_int_equal(*sw, 0x9000);
	if (cmd[0] == 0xEE) {
		for (size_t i = 0; i < 1000; i++) {
			esim_err err = esim_buf_append_byte(resp, (uint8_t)i);
			if (err != ESIM_OK)
				return err;
		}
		return ESIM_OK;
	}
	if (cmd[0] == 0xDD) {
		esim_buf_append_byte(resp, 0x55); /* must be discarded */
		*sw = 0x6A80;
		return ESIM_OK;
	}
	if (cmd[0] == 0xDE)
		return ESIM_E_INTERNAL;
	if (cmd[0] == 0xDF)
		return ESIM_E_NOMEM;
	return esim_buf_append(resp, cmd, len);
}

static void on_reset(void *ctx)
{
	((struct handler_ctx *)ctx)->resets++;
}

static void trace(void *ctx, bool command, const uint8_t *apdu, size_t len)
{
	struct handler_ctx *h = ctx;
	assert_true(len > 0 || command);
	(void)apdu;
	if (command)
		h->traced_cmds++;
	else
		h->traced_resps++;
}

struct fixture {
	euicc_apdu_front *f;
	struct handler_ctx h;
	esim_buf data;
};

static struct fixture *fx_new(bool force_gr)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	struct euicc_apdu_front_cfg cfg = {
	    .es10 = handler,
	    .es10_ctx = &fx->h,
	    .on_reset = on_reset,
	    .trace = trace,
	    .trace_ctx = &fx->h,
	    .force_get_response = force_gr,
	};
	assert_esim(ESIM_OK, euicc_apdu_front_new(&cfg, &fx->f));
	return fx;
}

static int setup(void **state)
{
	*state = fx_new(false);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	euicc_apdu_front_free(fx->f);
	esim_buf_free(&fx->data);
	free(fx);
	return 0;
}

/* Send raw bytes; fx->data gets the response data, the SW is returned. */
static uint16_t raw(struct fixture *fx, const uint8_t *apdu, size_t len)
{
	esim_buf r = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, euicc_apdu_front_process(fx->f, apdu, len, &r));
	assert_true(r.len >= 2);
	uint16_t sw = (uint16_t)(r.data[r.len - 2] << 8 | r.data[r.len - 1]);
	fx->data.len = 0;
	assert_esim(ESIM_OK, esim_buf_append(&fx->data, r.data, r.len - 2));
	esim_buf_free(&r);
	return sw;
}

static uint16_t hx(struct fixture *fx, const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	uint16_t sw = raw(fx, p, n);
	free(p);
	return sw;
}

static void assert_data_hex(struct fixture *fx, const char *hex)
{
	size_t n;
	uint8_t *p = test_unhex(hex, &n);
	assert_int_equal(fx->data.len, n);
	if (n)
		assert_memory_equal(fx->data.data, p, n);
	free(p);
}

/* SELECT the ISD-R on a channel whose interindustry CLA is cla. */
static void select_isdr(struct fixture *fx, uint8_t cla)
{
	char buf[80];
	snprintf(buf, sizeof buf, "%02XA4040010" ISDR, cla);
	assert_int_equal(hx(fx, buf), 0x9000);
}

/* One STORE DATA block with cla, p1, p2 and hex data. */
static uint16_t store(struct fixture *fx, uint8_t cla, uint8_t p1, uint8_t p2, const char *hex)
{
	char buf[600];
	snprintf(buf, sizeof buf, "%02XE2%02X%02X%02X%s", cla, p1, p2, (unsigned)(strlen(hex) / 2),
		 hex);
	return hx(fx, buf);
}

static void test_select_isdr(void **state)
{
	struct fixture *fx = *state;
	assert_false(euicc_apdu_front_isdr_selected(fx->f, 0));
	assert_int_equal(hx(fx, "00A4040010" ISDR "00"), 0x9000);
	assert_data_hex(fx, "6F128410" ISDR);
	assert_true(euicc_apdu_front_isdr_selected(fx->f, 0));
	/* P2 0C: no response data; case 3 without Le too */
	assert_int_equal(hx(fx, "00A4040C10" ISDR), 0x9000);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(hx(fx, "00A4040010" ISDR), 0x9000);
	assert_int_equal(fx->data.len, 20);
}

static void test_select_wrong_aid(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "00A4040010A0000005591010FFFFFFFF8900000200"), 0x6A82);
	assert_false(euicc_apdu_front_isdr_selected(fx->f, 0));
	/* a partial AID selects nothing */
	assert_int_equal(hx(fx, "00A4040009A0000005591010FFFF"), 0x6A82);
	assert_int_equal(hx(fx, "00A4040007A0000000871002"), 0x6A82);
	/* a failed SELECT leaves the ISD-R selected */
	select_isdr(fx, 0x00);
	assert_int_equal(hx(fx, "00A4040007A0000000871002"), 0x6A82);
	assert_true(euicc_apdu_front_isdr_selected(fx->f, 0));
}

static void test_select_params(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "00A40004023F00"), 0x6A82);  /* by file id */
	assert_int_equal(hx(fx, "00A4200010" ISDR), 0x6A86); /* unknown P1 */
	assert_int_equal(hx(fx, "00A4040210" ISDR), 0x6A86); /* next occurrence */
	assert_int_equal(hx(fx, "00A4041010" ISDR), 0x6A86);
	assert_int_equal(hx(fx, "00A4040011" ISDR "00"), 0x6700); /* 17-byte AID */
	assert_int_equal(hx(fx, "00A40400"), 0x6700);		  /* no AID */
	assert_int_equal(hx(fx, "00A4040000"), 0x6700);		  /* case 2 */
}

static void test_manage_channel(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	assert_data_hex(fx, "01");
	assert_int_equal(hx(fx, "00700000"), 0x9000); /* case 1 accepted */
	assert_data_hex(fx, "02");
	assert_true(euicc_apdu_front_channel_open(fx->f, 1));
	assert_int_equal(hx(fx, "00708001"), 0x9000);
	assert_false(euicc_apdu_front_channel_open(fx->f, 1));
	/* commands on a closed channel */
	assert_int_equal(hx(fx, "01A4040010" ISDR), 0x6881);
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	assert_data_hex(fx, "01"); /* the lowest free one again */
	/* close with P2 = 00 closes the CLA's channel, lpac's 5-byte form */
	assert_int_equal(hx(fx, "0270800000"), 0x9000);
	assert_false(euicc_apdu_front_channel_open(fx->f, 2));
	assert_int_equal(hx(fx, "00708000"), 0x6A86); /* channel 0 */
	assert_int_equal(hx(fx, "00708005"), 0x6881); /* not open */
	assert_int_equal(hx(fx, "00708014"), 0x6881); /* 20: none such */
	assert_int_equal(hx(fx, "00700004"), 0x9000); /* open channel 4 */
	assert_true(euicc_apdu_front_channel_open(fx->f, 4));
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(hx(fx, "00700004"), 0x6A86);	  /* already open */
	assert_int_equal(hx(fx, "00700014"), 0x6881);	  /* 20 */
	assert_int_equal(hx(fx, "00704000"), 0x6A86);	  /* P1 */
	assert_int_equal(hx(fx, "007000000100"), 0x6700); /* Lc */
	assert_int_equal(hx(fx, "8070000001"), 0x6E00);	  /* proprietary CLA */
	/* channels 8..19 exist in ISO 7816-4 but are not served (the ATR
	 * says 8): not by number, not by CLA */
	assert_int_equal(hx(fx, "00700008"), 0x6881);
	assert_int_equal(hx(fx, "00700013"), 0x6881);
	assert_int_equal(hx(fx, "44A4040010" ISDR), 0x6881);
	assert_int_equal(hx(fx, "4FA4040010" ISDR), 0x6881);
	/* exhaust: 1 and 4 are open, 5 more fit (0..7 in all) */
	for (int i = 0; i < 5; i++)
		assert_int_equal(hx(fx, "0070000001"), 0x9000);
	assert_data_hex(fx, "07");
	assert_int_equal(hx(fx, "0070000001"), 0x6A81);
	/* the further-interindustry CLA reaches channel 7 */
	assert_int_equal(hx(fx, "43A4040010" ISDR), 0x9000);
	assert_true(euicc_apdu_front_isdr_selected(fx->f, 7));
}

static void test_store_data_two_channels(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	select_isdr(fx, 0x01);
	assert_int_equal(store(fx, 0x81, 0x11, 0, "A1A2"), 0x9000);
	/* STORE DATA on 2 before SELECT there */
	assert_int_equal(store(fx, 0x82, 0x91, 0, "B1"), 0x6985);
	select_isdr(fx, 0x02);
	assert_int_equal(store(fx, 0x82, 0x11, 0, "B1B2"), 0x9000);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(store(fx, 0x81, 0x91, 1, "A3"), 0x9000);
	assert_data_hex(fx, "A1A2A3");
	assert_int_equal(fx->h.last_channel, 1);
	assert_int_equal(store(fx, 0x82, 0x91, 1, "B3B4"), 0x9000);
	assert_data_hex(fx, "B1B2B3B4");
	assert_int_equal(fx->h.last_channel, 2);
	assert_int_equal(fx->h.calls, 2);
}

static void test_store_data_reassembly(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	assert_int_equal(store(fx, 0x80, 0x11, 0, "BF2E"), 0x9000);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(fx->h.calls, 0);
	/* Le on an intermediate block changes nothing (pySim sends one) */
	assert_int_equal(hx(fx, "80E2110101AA00"), 0x9000);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(store(fx, 0x80, 0x91, 2, "BBCC"), 0x9000);
	assert_data_hex(fx, "BF2EAABBCC");
	assert_int_equal(fx->h.calls, 1);
	/* the next sequence starts clean */
	assert_int_equal(store(fx, 0x80, 0x91, 0, "BF2000"), 0x9000);
	assert_data_hex(fx, "BF2000");
}

static void test_store_data_sequence_errors(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	/* a block other than 00 with no sequence running */
	assert_int_equal(store(fx, 0x80, 0x91, 1, "AA"), 0x6A86);
	assert_int_equal(store(fx, 0x80, 0x11, 0, "AA"), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x11, 2, "BB"), 0x6A86); /* skipped 1 */
	/* the sequence was dropped: block 1 is now out of sequence too */
	assert_int_equal(store(fx, 0x80, 0x91, 1, "BB"), 0x6A86);
	assert_int_equal(fx->h.calls, 0);
	/* a repeated block */
	assert_int_equal(store(fx, 0x80, 0x11, 0, "AA"), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x11, 1, "BB"), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x91, 1, "BB"), 0x6A86);
	/* block 00 restarts an unfinished sequence */
	assert_int_equal(store(fx, 0x80, 0x11, 0, "AA"), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "CC"), 0x9000);
	assert_data_hex(fx, "CC");
	/* another command drops an unfinished sequence */
	assert_int_equal(store(fx, 0x80, 0x11, 0, "AA"), 0x9000);
	select_isdr(fx, 0x00);
	assert_int_equal(store(fx, 0x80, 0x91, 1, "BB"), 0x6A86);
	/* P1 other than 11 / 91, Lc missing, wrong CLA class */
	assert_int_equal(store(fx, 0x80, 0x01, 0, "AA"), 0x6A86);
	assert_int_equal(store(fx, 0x80, 0x81, 0, "AA"), 0x6A86);
	assert_int_equal(hx(fx, "80E29100"), 0x6700);
	assert_int_equal(hx(fx, "80E2910000"), 0x6700);
	assert_int_equal(store(fx, 0x00, 0x91, 0, "AA"), 0x6E00);
	assert_int_equal(fx->h.calls, 1);
}

static void test_store_data_not_selected(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(store(fx, 0x80, 0x91, 0, "BF2E00"), 0x6985);
	assert_int_equal(fx->h.calls, 0);
}

static void test_p2_wraps(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	for (int i = 0; i < 256; i++)
		assert_int_equal(store(fx, 0x80, 0x11, (uint8_t)i, "01"), 0x9000);
	/* after FF, 00 is the next block, not a restart */
	assert_int_equal(store(fx, 0x80, 0x91, 0, "02"), 0x6100);
	assert_int_equal(fx->h.last_len, 257);
	assert_int_equal(hx(fx, "00C0000000"), 0x6101);
	assert_int_equal(hx(fx, "00C0000001"), 0x9000);
	assert_data_hex(fx, "02");
}

static void test_get_response_chain(void **state)
{
	struct fixture *fx = *state;
	esim_buf all = ESIM_BUF_INIT;
	select_isdr(fx, 0x00);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "EE"), 0x6100);
	assert_int_equal(fx->data.len, 0); /* bare 61xx, digest 3.3 */
	assert_int_equal(hx(fx, "00C0000000"), 0x6100);
	assert_int_equal(fx->data.len, 256);
	esim_buf_append(&all, fx->data.data, fx->data.len);
	assert_int_equal(hx(fx, "80C0000000"), 0x6100); /* lpac's CLA 80 */
	esim_buf_append(&all, fx->data.data, fx->data.len);
	assert_int_equal(hx(fx, "00C0000010"), 0x6100); /* 16 of 488 */
	assert_int_equal(fx->data.len, 16);
	esim_buf_append(&all, fx->data.data, fx->data.len);
	assert_int_equal(hx(fx, "00C0000000"), 0x61D8); /* 216 left */
	assert_int_equal(fx->data.len, 256);
	esim_buf_append(&all, fx->data.data, fx->data.len);
	/* 216 left: asking for 240 is wrong Le */
	assert_int_equal(hx(fx, "00C00000F0"), 0x6CD8);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(hx(fx, "00C0010000"), 0x6A86);
	assert_int_equal(hx(fx, "00C000000100"), 0x6700);
	assert_int_equal(hx(fx, "00C00000D8"), 0x9000);
	esim_buf_append(&all, fx->data.data, fx->data.len);
	assert_int_equal(all.len, 1000);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(all.data[i], (uint8_t)i);
	/* nothing left */
	assert_int_equal(hx(fx, "00C0000000"), 0x6985);
	esim_buf_free(&all);
}

static void test_get_response_dropped(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	select_isdr(fx, 0x00);
	select_isdr(fx, 0x01);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "EE"), 0x6100);
	/* traffic on channel 1 leaves channel 0's response alone */
	assert_int_equal(store(fx, 0x81, 0x91, 0, "0102"), 0x9000);
	assert_int_equal(hx(fx, "00C0000000"), 0x6100);
	assert_int_equal(fx->data.data[0], 0);
	/* another command on channel 0 drops it */
	select_isdr(fx, 0x00);
	assert_int_equal(hx(fx, "00C0000000"), 0x6985);
	/* GET RESPONSE on channel 1, where nothing waits */
	assert_int_equal(hx(fx, "01C0000000"), 0x6985);
}

static void test_force_get_response(void **state)
{
	(void)state;
	struct fixture *fx = fx_new(true);
	assert_int_equal(hx(fx, "00A4040010" ISDR "00"), 0x6114);
	assert_int_equal(hx(fx, "00C0000014"), 0x9000);
	assert_data_hex(fx, "6F128410" ISDR);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "BF2E00"), 0x6103);
	assert_int_equal(hx(fx, "00C0000000"), 0x9000);
	assert_data_hex(fx, "BF2E00");
	/* an empty response is still a plain 9000 */
	void *st = fx;
	teardown(&st);
}

static void test_extended_length(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	/* case 3E: 300-byte STORE DATA, echoed; the echo is longer than 256
	 * and no Le was given, so it comes through 61xx */
	esim_buf a = ESIM_BUF_INIT;
	uint8_t hdr[7] = {0x80, 0xE2, 0x91, 0x00, 0x00, 0x01, 0x2C};
	esim_buf_append(&a, hdr, sizeof hdr);
	for (int i = 0; i < 300; i++)
		esim_buf_append_byte(&a, (uint8_t)(i * 7));
	assert_int_equal(raw(fx, a.data, a.len), 0x6100); /* 00: 256 or more */
	/* case 2E GET RESPONSE takes all 300 at once */
	assert_int_equal(hx(fx, "00C00000000000"), 0x9000);
	assert_int_equal(fx->data.len, 300);
	assert_memory_equal(fx->data.data, a.data + 7, 300);
	assert_int_equal(fx->h.last_len, 300);
	/* case 4E with Le 0000: the 1000-byte answer in one response */
	uint8_t c4[] = {0x80, 0xE2, 0x91, 0x00, 0x00, 0x00, 0x01, 0xEE, 0x00, 0x00};
	assert_int_equal(raw(fx, c4, sizeof c4), 0x9000);
	assert_int_equal(fx->data.len, 1000);
	/* malformed extended forms */
	assert_int_equal(hx(fx, "80E291000000"), 0x6700);	/* 6 bytes */
	assert_int_equal(hx(fx, "80E2910000000000"), 0x6700);	/* Lc 0000 */
	assert_int_equal(hx(fx, "80E29100000002AA"), 0x6700);	/* short of Lc */
	assert_int_equal(hx(fx, "80E29100000001AA00"), 0x6700); /* 1-byte Le */
	esim_buf_free(&a);
}

static void test_wrong_length(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, ""), 0x6700);
	assert_int_equal(hx(fx, "00A404"), 0x6700);
	assert_int_equal(hx(fx, "00A4040005A000"), 0x6700);	/* Lc 5, 2 bytes */
	assert_int_equal(hx(fx, "80E2910002AABBCCDD"), 0x6700); /* 2 extra */
}

static void test_wrong_cla_ins(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "FFA4040010" ISDR), 0x6E00);
	assert_int_equal(hx(fx, "20A4040010" ISDR), 0x6E00);
	assert_int_equal(hx(fx, "A0A4040010" ISDR), 0x6E00); /* GSM class */
	assert_int_equal(hx(fx, "80A4040010" ISDR), 0x6E00); /* SELECT is 00 */
	assert_int_equal(hx(fx, "04A4040010" ISDR), 0x6882); /* SM */
	assert_int_equal(hx(fx, "60A4040010" ISDR), 0x6882); /* SM, further */
	assert_int_equal(hx(fx, "10A4040010" ISDR), 0x6884); /* chaining */
	assert_int_equal(hx(fx, "00B0000000"), 0x6D00);
	assert_int_equal(hx(fx, "80CA005A00"), 0x6D00);
	assert_int_equal(hx(fx, "00E2910001AA"), 0x6E00);
	assert_int_equal(hx(fx, "41A4040010" ISDR), 0x6881); /* channel 5 closed */
}

static void test_oversized_command(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	uint8_t blk[5 + 255];
	blk[0] = 0x80;
	blk[1] = 0xE2;
	blk[2] = 0x11;
	blk[4] = 255;
	memset(blk + 5, 0x42, 255);
	size_t sent = 0;
	uint16_t sw = 0x9000;
	for (unsigned i = 0; sw == 0x9000; i++) {
		blk[3] = (uint8_t)i;
		sw = raw(fx, blk, sizeof blk);
		if (sw == 0x9000)
			sent += 255;
		assert_true(i < 400);
	}
	assert_int_equal(sw, 0x6A84);
	assert_true(sent <= EUICC_APDU_MAX_COMMAND);
	assert_true(sent + 255 > EUICC_APDU_MAX_COMMAND);
	/* the sequence is gone: its next block is out of sequence */
	blk[2] = 0x91;
	blk[3] = (uint8_t)(sent / 255 + 1);
	assert_int_equal(raw(fx, blk, sizeof blk), 0x6A86);
	assert_int_equal(fx->h.calls, 0);
}

static void test_handler_status(void **state)
{
	struct fixture *fx = *state;
	select_isdr(fx, 0x00);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "DD01"), 0x6A80);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "DE01"), 0x6F00);
	assert_int_equal(store(fx, 0x80, 0x91, 0, "DF01"), 0x6A84);
	assert_int_equal(hx(fx, "00C0000000"), 0x6985);
}

static void test_further_channels(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(hx(fx, "0070000001"), 0x9000);
	assert_data_hex(fx, "05");
	/* channel 5: 41 interindustry, C1 proprietary (digest 3.1) */
	select_isdr(fx, 0x41);
	assert_int_equal(store(fx, 0xC1, 0x91, 0, "BF2E00"), 0x9000);
	assert_data_hex(fx, "BF2E00");
	assert_int_equal(fx->h.last_channel, 5);
	assert_int_equal(hx(fx, "41708000"), 0x9000); /* closes 5 */
	assert_false(euicc_apdu_front_channel_open(fx->f, 5));
	assert_int_equal(store(fx, 0xC1, 0x91, 0, "BF2E00"), 0x6881);
}

/* A card with a 200-byte buffer (max_block): longer STORE DATA blocks are
 * 6700 and drop the sequence; the counters see every APDU. */
static void test_max_block_and_counters(void **state)
{
	struct fixture *fx = *state;
	euicc_apdu_front_free(fx->f);
	struct euicc_apdu_front_cfg cfg = {.es10 = handler, .es10_ctx = &fx->h, .max_block = 200};
	assert_esim(ESIM_OK, euicc_apdu_front_new(&cfg, &fx->f));
	char blk200[401], blk201[403];
	memset(blk200, 'A', 400);
	blk200[400] = '\0';
	memset(blk201, 'B', 402);
	blk201[402] = '\0';
	select_isdr(fx, 0x00);
	assert_int_equal(store(fx, 0x80, 0x11, 0, blk200), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x11, 1, blk201), 0x6700);
	/* the sequence is gone: block 2 does not follow */
	assert_int_equal(store(fx, 0x80, 0x91, 2, "BF2E00"), 0x6A86);
	assert_int_equal(store(fx, 0x80, 0x91, 0, blk201), 0x6700);
	assert_int_equal(fx->h.calls, 0);
	assert_int_equal(store(fx, 0x80, 0x11, 0, blk200), 0x9000);
	assert_int_equal(store(fx, 0x80, 0x91, 1, "BF2E00"), 0x9000);
	assert_int_equal(fx->h.calls, 1);
	assert_int_equal(fx->h.last_len, 203);
	/* extended Lc is judged by the same limit */
	assert_int_equal(hx(fx, "80E29100000003BF2E00"), 0x9000);
	struct euicc_apdu_counters n;
	euicc_apdu_front_counters(fx->f, &n);
	assert_int_equal(n.commands, 8);
	assert_int_equal(n.store_data, 7);
	assert_int_equal(n.get_response, 0);
	assert_int_equal(n.wrong_length, 2);
	assert_int_equal(n.command_bytes, 21 + 205 + 206 + 8 + 206 + 205 + 8 + 10);
	assert_int_equal(n.response_bytes, 22 + 2 + 2 + 2 + 2 + 2 + 205 + 5);
	/* a reset leaves them */
	euicc_apdu_front_reset(fx->f);
	euicc_apdu_front_counters(fx->f, &n);
	assert_int_equal(n.commands, 8);
}

static void test_reset(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "0070000001"), 0x9000);
	select_isdr(fx, 0x00);
	select_isdr(fx, 0x01);
	assert_int_equal(store(fx, 0x81, 0x91, 0, "EE"), 0x6100);
	euicc_apdu_front_reset(fx->f);
	assert_int_equal(fx->h.resets, 1);
	assert_true(euicc_apdu_front_channel_open(fx->f, 0));
	assert_false(euicc_apdu_front_channel_open(fx->f, 1));
	assert_false(euicc_apdu_front_isdr_selected(fx->f, 0));
	assert_int_equal(hx(fx, "01C0000000"), 0x6881);
}

static void test_terminal_capability_and_trace(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hx(fx, "80AA00000AA9088100820101830107"), 0x9000);
	assert_int_equal(fx->data.len, 0);
	assert_int_equal(hx(fx, "80AA01000AA9088100820101830107"), 0x6A86);
	assert_int_equal(fx->h.traced_cmds, 2);
	assert_int_equal(fx->h.traced_resps, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_select_isdr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select_wrong_aid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_manage_channel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_data_two_channels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_data_reassembly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_data_sequence_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_data_not_selected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_p2_wraps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_response_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_response_dropped, setup, teardown),
	    cmocka_unit_test(test_force_get_response),
	    cmocka_unit_test_setup_teardown(test_extended_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_cla_ins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handler_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_further_channels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_block_and_counters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_terminal_capability_and_trace, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
