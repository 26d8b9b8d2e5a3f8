/*
 * The LPA's APDU session and "socket" driver against the virtual eUICC's
 * socket server (both real, the server in a thread on a unix socket in a
 * temp dir), plus the card's vpcd client loop against a fake vpcd.
 * Covers STORE DATA segmentation of a 5 KB command, a 3 KB response
 * through GET RESPONSE, SW mapping, the framing's control messages,
 * malformed frames, timeouts and reconnects; the block size chosen from
 * the ATR (one extended STORE DATA per command, or 255-byte short blocks),
 * the fallback to smaller blocks when the card answers 6700, and the ATR's
 * logical channels against those the card serves.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "testutil.h"
#include "esim/apdu.h"
#include "apdu/sockio.h"
#include "euicc/apdu_front.h"
#include "euicc/transport.h"

/* EE.. answers 3000 bytes (i * 3), DD.. is refused with 6A80, others echo. */
struct handler_ctx {
	int calls;
	size_t last_len;
	uint8_t last_channel;
};

static esim_err handler(void *ctx, uint8_t channel, const uint8_t *cmd, size_t len, esim_buf *resp,
			uint16_t *sw)
{
	struct handler_ctx *h = ctx;
	h->calls++;
	h->last_len = len;
	h->last_channel = channel;
	if (cmd[0] == 0xEE) {
		for (size_t i = 0; i < 3000; i++)
			if (esim_buf_append_byte(resp, (uint8_t)(i * 3)) != ESIM_OK)
				return ESIM_E_NOMEM;
		return ESIM_OK;
	}
	if (cmd[0] == 0xDD) {
		*sw = 0x6A80;
		return ESIM_OK;
	}
	return esim_buf_append(resp, cmd, len);
}

struct server {
	char *dir;
	char spec[256];
	int listen_fd;
	int stop[2];
	pthread_t thread;
	euicc_apdu_front *front;
	struct handler_ctx h;
	esim_err result;
	bool short_apdus;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct euicc_serve_opts o = {
	    .stop_fd = s->stop[0], .frame_timeout_ms = 500, .short_apdus = s->short_apdus};
	s->result = euicc_serve_listener(s->listen_fd, s->front, &o);
	return NULL;
}

/* A server; max_block: the card's longest STORE DATA block (0: any);
 * short_apdus: its ATR does not declare extended length. */
static struct server *server_start_cfg(bool force_gr, size_t max_block, bool short_apdus)
{
	struct server *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->dir = test_mkdtemp();
	s->short_apdus = short_apdus;
	snprintf(s->spec, sizeof s->spec, "unix:%s/euicc.sock", s->dir);
	struct euicc_apdu_front_cfg cfg = {.es10 = handler,
					   .es10_ctx = &s->h,
					   .force_get_response = force_gr,
					   .max_block = max_block};
	assert_esim(ESIM_OK, euicc_apdu_front_new(&cfg, &s->front));
	assert_esim(ESIM_OK, euicc_socket_listen(s->spec, &s->listen_fd));
	assert_int_equal(pipe(s->stop), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return s;
}

static struct server *server_start(bool force_gr)
{
	return server_start_cfg(force_gr, 0, false);
}

static void server_stop(struct server *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	assert_esim(ESIM_OK, s->result);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->listen_fd);
	euicc_apdu_front_free(s->front);
	test_rm_rf(s->dir);
	free(s->dir);
	free(s);
}

static int setup(void **state)
{
	*state = server_start(false);
	return 0;
}

static int teardown(void **state)
{
	server_stop(*state);
	return 0;
}

static size_t count_lines(const char *text, const char *prefix)
{
	size_t n = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

static void test_big_command_round_trip(void **state)
{
	struct server *s = *state;
	char *trace = NULL;
	size_t trace_len = 0;
	FILE *tf = open_memstream(&trace, &trace_len);
	assert_non_null(tf);
	struct apdu_session_opts o = {.trace = tf, .mss = 120};
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, &o, &ses));
	assert_int_equal(apdu_session_channel(ses), 1);
	/* an explicit mss: short blocks of it, even though the card
	 * declares extended length */
	bool ext = true;
	assert_int_equal(apdu_session_block(ses, &ext), 120);
	assert_false(ext);

	uint8_t *cmd = malloc(5000);
	assert_non_null(cmd);
	for (size_t i = 0; i < 5000; i++)
		cmd[i] = (uint8_t)(i * 7 + 1);
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, 5000, &resp));
	assert_int_equal(apdu_session_last_sw(ses), 0x9000);
	assert_int_equal(s->h.last_len, 5000);
	assert_int_equal(s->h.last_channel, 1);
	assert_int_equal(resp.len, 5000);
	assert_memory_equal(resp.data, cmd, 5000);
	apdu_session_close(ses);
	fclose(tf);

	/* 5000 / 120 -> 41 blocks of 11 and the last (block 41 = 0x29) of 91;
	 * the 5000-byte echo comes back through 61xx and 20 GET RESPONSEs */
	assert_int_equal(count_lines(trace, "apdu >> 81E211"), 41);
	assert_int_equal(count_lines(trace, "apdu >> 81E29129"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 01C00000"), 20);
	assert_int_equal(count_lines(trace, "apdu >> 0070000001"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 01A4040010A0000005591010FFFFFFFF8900000100"),
			 1);
	assert_int_equal(count_lines(trace, "apdu >> 00708001"), 1);
	free(trace);
	free(cmd);
	esim_buf_free(&resp);
}

/* A 5000-byte command, its trace in *trace. */
static void round_trip_5000(struct server *s, const struct apdu_session_opts *opts, char **trace,
			    size_t *block, bool *ext)
{
	size_t trace_len = 0;
	FILE *tf = open_memstream(trace, &trace_len);
	assert_non_null(tf);
	struct apdu_session_opts o = *opts;
	o.trace = tf;
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, &o, &ses));
	uint8_t *cmd = malloc(5000);
	assert_non_null(cmd);
	for (size_t i = 0; i < 5000; i++)
		cmd[i] = (uint8_t)(i * 7 + 1);
	esim_buf resp = ESIM_BUF_INIT;
	int calls = s->h.calls;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, 5000, &resp));
	assert_int_equal(s->h.calls, calls + 1); /* the card acted once */
	assert_int_equal(s->h.last_len, 5000);
	assert_int_equal(resp.len, 5000);
	assert_memory_equal(resp.data, cmd, 5000);
	/* the 3000-byte answer of EE.. */
	cmd[0] = 0xEE;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, 300, &resp));
	assert_int_equal(resp.len, 3000);
	for (size_t i = 0; i < 3000; i++)
		assert_int_equal(resp.data[i], (uint8_t)(i * 3));
	*block = apdu_session_block(ses, ext);
	apdu_session_close(ses);
	fclose(tf);
	free(cmd);
	esim_buf_free(&resp);
}

/* The card's ATR declares extended Lc/Le: each ES10 command is one STORE
 * DATA (00 13 88 = 5000 bytes, Le 0000) and each answer comes back whole,
 * with no GET RESPONSE. */
static void test_extended_from_atr(void **state)
{
	struct server *s = *state;
	char *trace = NULL;
	struct apdu_session_opts o = {0};
	size_t block = 0;
	bool ext = false;
	round_trip_5000(s, &o, &trace, &block, &ext);
	assert_true(ext);
	assert_true(block >= 5000);
	assert_int_equal(count_lines(trace, "apdu >> 81E2"), 2);
	assert_int_equal(count_lines(trace, "apdu >> 81E2910000138801080F"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 81E2910000012CEE08"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 01C0"), 0);
	assert_int_equal(count_lines(trace, "apdu >> "), 5); /* + channel, select, close */
	free(trace);
}

/* A card whose ATR does not declare it: 255-byte short blocks (5000 =
 * 19 x 255 + 155), answers over 256 bytes through GET RESPONSE. */
static void test_short_blocks_without_extended(void **state)
{
	(void)state;
	struct server *s = server_start_cfg(false, 0, true);
	char *trace = NULL;
	struct apdu_session_opts o = {0};
	size_t block = 0;
	bool ext = true;
	round_trip_5000(s, &o, &trace, &block, &ext);
	assert_false(ext);
	assert_int_equal(block, 255);
	assert_int_equal(count_lines(trace, "apdu >> 81E211"), 19 + 1);
	assert_int_equal(count_lines(trace, "apdu >> 81E29113"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 81E29101"), 1); /* EE.. */
	/* 5000 = 19 x 256 + 136 and 3000 = 11 x 256 + 184 */
	assert_int_equal(count_lines(trace, "apdu >> 01C0000000"), 19 + 11);
	assert_int_equal(count_lines(trace, "apdu >> 01C0000088"), 1);
	assert_int_equal(count_lines(trace, "apdu >> 01C00000B8"), 1);
	free(trace);
	server_stop(s);
}

/* A card that takes at most 200 bytes a block and says so with 6700 (its
 * ATR still declares extended length): extended, then 255, then 120; the
 * command reaches the card whole and once, later commands go in 120-byte
 * blocks at once. */
static void test_fallback_on_wrong_length(void **state)
{
	(void)state;
	struct server *s = server_start_cfg(false, 200, false);
	char *trace = NULL;
	struct apdu_session_opts o = {0};
	size_t block = 0;
	bool ext = true;
	round_trip_5000(s, &o, &trace, &block, &ext);
	assert_false(ext);
	assert_int_equal(block, 120);
	assert_int_equal(count_lines(trace, "apdu -- a 5000-byte block was refused"), 1);
	assert_int_equal(count_lines(trace, "apdu -- a 255-byte block was refused"), 1);
	assert_int_equal(count_lines(trace, "apdu << 6700"), 2);
	/* the EE.. command: 300 = 2 x 120 + 60, no refusal */
	assert_int_equal(count_lines(trace, "apdu >> 81E29102"), 1);
	free(trace);
	server_stop(s);

	/* a card that takes 10 bytes: the ladder stops at 16 */
	s = server_start_cfg(false, 10, true);
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, NULL, &ses));
	uint8_t cmd[100];
	memset(cmd, 0x22, sizeof cmd);
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_E_APDU_SW, apdu_es10_transmit(ses, cmd, sizeof cmd, &resp));
	assert_int_equal(apdu_session_last_sw(ses), 0x6700);
	assert_int_equal(resp.len, 0);
	assert_int_equal(s->h.calls, 0);
	assert_int_equal(apdu_session_block(ses, NULL), 25); /* 100 -> 50 -> 25 */
	apdu_session_close(ses);
	esim_buf_free(&resp);
	server_stop(s);
}

/* Open MANAGE CHANNELs on a basic-channel session until the card refuses:
 * how many logical channels it serves (channel 0 included). */
static unsigned served_channels(apdu_session *ses)
{
	const uint8_t open[] = {0x00, 0x70, 0x00, 0x00, 0x01};
	esim_buf resp = ESIM_BUF_INIT;
	unsigned n = 1;
	for (;;) {
		uint16_t sw = 0;
		assert_esim(ESIM_OK, apdu_session_transmit(ses, open, sizeof open, &resp, &sw));
		if (sw != 0x9000) {
			assert_int_equal(sw, 0x6A81);
			break;
		}
		assert_int_equal(resp.len, 1);
		assert_int_equal(resp.data[0], n);
		n++;
		assert_true(n <= 20);
	}
	esim_buf_free(&resp);
	return n;
}

/* The ATR tells the truth: the logical channels its card capabilities
 * advertise are exactly those the card serves, on both ATRs. */
static void test_atr_channels_served(void **state)
{
	(void)state;
	for (int short_atr = 0; short_atr < 2; short_atr++) {
		struct server *s = server_start_cfg(false, 0, short_atr);
		int fd;
		esim_buf atr = ESIM_BUF_INIT;
		assert_esim(ESIM_OK, apdu_sock_connect(s->spec, &fd));
		const uint8_t req = EUICC_CTRL_ATR;
		assert_esim(ESIM_OK, apdu_frame_write(fd, &req, 1));
		assert_esim(ESIM_OK, apdu_frame_read(fd, &atr, 2000, 2000, -1, NULL));
		close(fd);
		struct apdu_card_caps caps;
		assert_esim(ESIM_OK, apdu_atr_card_caps(atr.data, atr.len, &caps));
		assert_true(caps.present);
		assert_int_equal(caps.extended_length, !short_atr);
		assert_false(caps.chaining); /* the front answers 6884 */
		struct apdu_session_opts o = {.basic_channel = true};
		apdu_session *ses = NULL;
		assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, &o, &ses));
		assert_int_equal(served_channels(ses), caps.max_channels);
		/* and a channel past them cannot be opened by number either */
		uint8_t open_n[] = {0x00, 0x70, 0x00, (uint8_t)caps.max_channels};
		esim_buf resp = ESIM_BUF_INIT;
		uint16_t sw = 0;
		assert_esim(ESIM_OK, apdu_session_transmit(ses, open_n, 4, &resp, &sw));
		assert_int_equal(sw, 0x6881);
		apdu_session_close(ses);
		esim_buf_free(&resp);
		esim_buf_free(&atr);
		server_stop(s);
	}
}

/* The ATR parser against ATRs of real cards and broken ones. */
static void test_atr_card_caps(void **state)
{
	(void)state;
	struct apdu_card_caps c;
	size_t n;
	/* sysmoUSIM-GR1: 73 FE 21 13 -> by the card, 4 channels */
	uint8_t *a = test_unhex("3B9F95801FC78031E073FE21135712291102010000C2", &n);
	assert_esim(ESIM_OK, apdu_atr_card_caps(a, n, &c));
	assert_true(c.present);
	assert_false(c.extended_length);
	assert_int_equal(c.max_channels, 4);
	free(a);
	/* a token: 73 C8 21 10 -> 1 channel */
	a = test_unhex("3BD518008131FE7D8073C82110F4", &n);
	assert_esim(ESIM_OK, apdu_atr_card_caps(a, n, &c));
	assert_true(c.present);
	assert_int_equal(c.max_channels, 1);
	free(a);
	/* category 00: TLVs then a 3-byte status; C0 = chaining + extended */
	a = test_unhex("3B880000730000C0009000", &n);
	assert_esim(ESIM_OK, apdu_atr_card_caps(a, n, &c));
	assert_true(c.present && c.extended_length && c.chaining);
	free(a);
	/* no historical bytes, or proprietary ones: nothing declared */
	a = test_unhex("3B00", &n);
	assert_esim(ESIM_OK, apdu_atr_card_caps(a, n, &c));
	assert_false(c.present);
	free(a);
	a = test_unhex("3B024142", &n);
	assert_esim(ESIM_OK, apdu_atr_card_caps(a, n, &c));
	assert_false(c.present);
	free(a);
	/* broken: 15 historical bytes announced, 2 there; a TD1 past the end;
	 * a TLV longer than the bytes left; not an ATR */
	a = test_unhex("3B0F8031", &n);
	assert_esim(ESIM_E_APDU_MALFORMED, apdu_atr_card_caps(a, n, &c));
	free(a);
	a = test_unhex("3B80", &n);
	assert_esim(ESIM_E_APDU_MALFORMED, apdu_atr_card_caps(a, n, &c));
	free(a);
	a = test_unhex("3B03807301", &n);
	assert_esim(ESIM_E_APDU_MALFORMED, apdu_atr_card_caps(a, n, &c));
	free(a);
	a = test_unhex("00", &n);
	assert_esim(ESIM_E_APDU_MALFORMED, apdu_atr_card_caps(a, n, &c));
	free(a);
	assert_esim(ESIM_E_APDU_MALFORMED, apdu_atr_card_caps(euicc_atr, 1, &c));
	/* ours */
	assert_esim(ESIM_OK, apdu_atr_card_caps(euicc_atr, EUICC_ATR_LEN, &c));
	assert_true(c.present && c.extended_length);
	assert_int_equal(c.max_channels, EUICC_APDU_CHANNELS);
	assert_esim(ESIM_OK, apdu_atr_card_caps(euicc_atr_short, EUICC_ATR_LEN, &c));
	assert_true(c.present && !c.extended_length);
	assert_int_equal(c.max_channels, EUICC_APDU_CHANNELS);
	/* the vpcd reader's: extended length, or not in the short one */
	assert_esim(ESIM_OK, apdu_atr_card_caps(euicc_atr_vpcd, EUICC_ATR_VPCD_LEN, &c));
	assert_true(c.present && c.extended_length);
	assert_int_equal(c.max_channels, EUICC_APDU_CHANNELS);
	assert_esim(ESIM_OK, apdu_atr_card_caps(euicc_atr_vpcd_short, EUICC_ATR_VPCD_LEN, &c));
	assert_true(c.present && !c.extended_length);
	assert_int_equal(c.max_channels, EUICC_APDU_CHANNELS);
}

/* The protocols an ATR offers (ISO 7816-3 8.2.3: each TDi names one), as
 * a bit mask 1 << T, and whether its TCK is right (XOR of T0..TCK = 0). */
static unsigned atr_protocols(const uint8_t *atr, size_t len, bool *tck_ok)
{
	unsigned mask = 0;
	size_t i = 1;
	uint8_t y = atr[1] >> 4;
	while (y & 8) {
		i += (size_t)__builtin_popcount(y & 7);
		i++;
		assert_true(i < len);
		y = atr[i] >> 4;
		mask |= 1u << (atr[i] & 0x0F);
	}
	i += (size_t)__builtin_popcount(y & 7);
	assert_int_equal(i + 1 + (atr[1] & 0x0F) + 1, len); /* historical bytes, TCK */
	uint8_t x = 0;
	for (size_t j = 1; j < len; j++)
		x ^= atr[j];
	*tck_ok = x == 0;
	return mask;
}

/* The vpcd reader's ATRs offer T=0 and T=1 (and T=15's global bytes),
 * the socket server's T=0 only; every TCK is right. */
static void test_atr_protocols(void **state)
{
	(void)state;
	bool ok = false;
	unsigned t0 = 1u << 0, t1 = 1u << 1, t15 = 1u << 15;
	assert_int_equal(atr_protocols(euicc_atr, EUICC_ATR_LEN, &ok), t0 | t15);
	assert_true(ok);
	assert_int_equal(atr_protocols(euicc_atr_short, EUICC_ATR_LEN, &ok), t0 | t15);
	assert_true(ok);
	assert_int_equal(atr_protocols(euicc_atr_vpcd, EUICC_ATR_VPCD_LEN, &ok), t0 | t1 | t15);
	assert_true(ok);
	assert_int_equal(atr_protocols(euicc_atr_vpcd_short, EUICC_ATR_VPCD_LEN, &ok),
			 t0 | t1 | t15);
	assert_true(ok);
}

static void test_big_response_mss255(void **state)
{
	struct server *s = *state;
	struct apdu_session_opts o = {.mss = 255};
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, &o, &ses));
	uint8_t cmd[600];
	memset(cmd, 0x11, sizeof cmd);
	cmd[0] = 0xEE;
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, sizeof cmd, &resp));
	assert_int_equal(s->h.last_len, 600);
	assert_int_equal(resp.len, 3000);
	for (size_t i = 0; i < 3000; i++)
		assert_int_equal(resp.data[i], (uint8_t)(i * 3));
	/* a short command and response: one block, data with 9000 */
	const uint8_t small[] = {0xBF, 0x2E, 0x00};
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, small, sizeof small, &resp));
	assert_int_equal(resp.len, 3);
	assert_memory_equal(resp.data, small, 3);
	apdu_session_close(ses);
	esim_buf_free(&resp);
}

static void test_sw_error_kept(void **state)
{
	struct server *s = *state;
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, NULL, &ses));
	const uint8_t bad[] = {0xDD, 0x01, 0x00};
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_E_APDU_SW, apdu_es10_transmit(ses, bad, sizeof bad, &resp));
	assert_int_equal(apdu_session_last_sw(ses), 0x6A80);
	assert_int_equal(resp.len, 0);
	assert_esim(ESIM_E_ARG, apdu_es10_transmit(ses, bad, 0, &resp));
	/* raw transmit returns the SW without judging it */
	const uint8_t unknown_ins[] = {0x01, 0xB0, 0x00, 0x00, 0x00};
	uint16_t sw = 0;
	assert_esim(ESIM_OK,
		    apdu_session_transmit(ses, unknown_ins, sizeof unknown_ins, &resp, &sw));
	assert_int_equal(sw, 0x6D00);
	/* the session still works after errors */
	const uint8_t ok[] = {0xBF, 0x20, 0x00};
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, ok, sizeof ok, &resp));
	assert_int_equal(resp.len, 3);
	apdu_session_close(ses);
	esim_buf_free(&resp);
}

static void test_sessions_in_turn(void **state)
{
	struct server *s = *state;
	for (int i = 0; i < 3; i++) {
		apdu_session *ses = NULL;
		assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, NULL, &ses));
		/* each connection is a fresh card: channel 1 again */
		assert_int_equal(apdu_session_channel(ses), 1);
		apdu_session_close(ses);
	}
	struct apdu_session_opts o = {.basic_channel = true};
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, &o, &ses));
	assert_int_equal(apdu_session_channel(ses), 0);
	const uint8_t cmd[] = {0xBF, 0x3C, 0x00};
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, sizeof cmd, &resp));
	assert_int_equal(s->h.last_channel, 0);
	apdu_session_close(ses);
	esim_buf_free(&resp);
}

static void test_t0_style_card(void **state)
{
	(void)state;
	struct server *s = server_start(true);
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, NULL, &ses));
	const uint8_t cmd[] = {0xBF, 0x2E, 0x00};
	esim_buf resp = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_es10_transmit(ses, cmd, sizeof cmd, &resp));
	assert_int_equal(resp.len, 3);
	assert_memory_equal(resp.data, cmd, 3);
	apdu_session_close(ses);
	esim_buf_free(&resp);
	server_stop(s);
}

static void test_drivers_and_helpers(void **state)
{
	(void)state;
	assert_non_null(apdu_driver_find("socket"));
	assert_non_null(apdu_driver_find("pcsc"));
	assert_null(apdu_driver_find("nope"));
	assert_string_equal(apdu_drivers()[0]->name, "socket");
	assert_int_equal(apdu_cla(0x80, 1), 0x81);
	assert_int_equal(apdu_cla(0x00, 3), 0x03);
	assert_int_equal(apdu_cla(0x80, 5), 0xC1);
	assert_int_equal(apdu_cla(0x00, 19), 0x4F);
	const uint8_t r[] = {0x01, 0x61, 0x10};
	assert_int_equal(apdu_sw(r, 3), 0x6110);
	assert_int_equal(apdu_sw(r, 1), 0);
	assert_true(apdu_sw_ok(0x9000));
	assert_true(apdu_sw_ok(0x9112));
	assert_false(apdu_sw_ok(0x6A80));
	apdu_session *ses = NULL;
	assert_esim(ESIM_E_APDU_DRIVER, apdu_session_open("nope", "", NULL, &ses));
	assert_esim(ESIM_E_APDU_NO_READER,
		    apdu_session_open("socket", "unix:/nonexistent/x.sock", NULL, &ses));
	assert_esim(ESIM_E_ARG, apdu_session_open("socket", "no-port", NULL, &ses));
	assert_esim(ESIM_E_ARG, apdu_session_open("socket", "unix:/x,bogus=1", NULL, &ses));
	struct apdu_session_opts o = {.mss = 256};
	assert_esim(ESIM_E_ARG, apdu_session_open("socket", "unix:/x", &o, &ses));
}

static void test_timeout(void **state)
{
	(void)state;
	/* a listener that never accepts: the kernel completes the connect,
	 * nobody answers */
	char *dir = test_mkdtemp();
	char spec[256], spec_t[300];
	snprintf(spec, sizeof spec, "unix:%s/mute.sock", dir);
	snprintf(spec_t, sizeof spec_t, "%s,timeout=200", spec);
	int fd;
	assert_esim(ESIM_OK, apdu_sock_listen(spec, &fd));
	apdu_session *ses = NULL;
	assert_esim(ESIM_E_APDU_TIMEOUT, apdu_session_open("socket", spec_t, NULL, &ses));
	close(fd);
	test_rm_rf(dir);
	free(dir);
}

/* The card's unix socket is its owner's alone (0600), whatever the umask:
 * another local user must not be able to send it ES10 commands. */
static void test_unix_socket_owner_only(void **state)
{
	(void)state;
	char *dir = test_mkdtemp();
	char spec[256];
	snprintf(spec, sizeof spec, "unix:%s/card.sock", dir);
	mode_t old = umask(0);
	int fd;
	esim_err err = apdu_sock_listen(spec, &fd);
	umask(old);
	assert_esim(ESIM_OK, err);
	struct stat st;
	assert_int_equal(0, stat(spec + 5, &st));
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(0600, st.st_mode & 0777);
	close(fd);
	test_rm_rf(dir);
	free(dir);
}

/* Raw frames against the server: ATR, power control, malformed frames. */
static void test_socket_framing(void **state)
{
	struct server *s = *state;
	int fd;
	esim_buf in = ESIM_BUF_INIT;
	assert_esim(ESIM_OK, apdu_sock_connect(s->spec, &fd));
	const uint8_t atr_req = EUICC_CTRL_ATR, power_on = EUICC_CTRL_POWER_ON;
	assert_esim(ESIM_OK, apdu_frame_write(fd, &atr_req, 1));
	assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
	assert_int_equal(in.len, EUICC_ATR_LEN);
	assert_memory_equal(in.data, euicc_atr, EUICC_ATR_LEN);
	uint8_t x = 0;
	for (size_t i = 1; i < in.len; i++)
		x ^= in.data[i];
	assert_int_equal(x, 0); /* TCK */
	/* power on: no answer; a channel opened before it is gone after */
	const uint8_t open_ch[] = {0x00, 0x70, 0x00, 0x00, 0x01};
	assert_esim(ESIM_OK, apdu_frame_write(fd, open_ch, sizeof open_ch));
	assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
	assert_int_equal(in.len, 3);
	assert_int_equal(in.data[0], 1);
	assert_esim(ESIM_OK, apdu_frame_write(fd, &power_on, 1));
	assert_esim(ESIM_OK, apdu_frame_write(fd, open_ch, sizeof open_ch));
	assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
	assert_int_equal(in.data[0], 1);
	/* a 2-byte "APDU" is answered 6700 */
	const uint8_t two[] = {0x00, 0xA4};
	assert_esim(ESIM_OK, apdu_frame_write(fd, two, 2));
	assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
	assert_int_equal(apdu_sw(in.data, in.len), 0x6700);
	/* an unknown control byte closes the connection */
	const uint8_t bad = 0x07;
	assert_esim(ESIM_OK, apdu_frame_write(fd, &bad, 1));
	assert_esim(ESIM_E_APDU_CLOSED, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
	close(fd);
	/* so does a frame that stops half way (frame timeout 500 ms) */
	assert_esim(ESIM_OK, apdu_sock_connect(s->spec, &fd));
	const uint8_t half[] = {0x00, 0x09, 0x00, 0xA4};
	assert_int_equal(send(fd, half, sizeof half, 0), 4);
	assert_esim(ESIM_E_APDU_CLOSED, apdu_frame_read(fd, &in, 3000, 3000, -1, NULL));
	close(fd);
	/* and the server goes on with the next client */
	apdu_session *ses = NULL;
	assert_esim(ESIM_OK, apdu_session_open("socket", s->spec, NULL, &ses));
	apdu_session_close(ses);
	esim_buf_free(&in);
}

/* ---- vpcd client loop against a fake vpcd (the test plays pcscd) ---- */

struct vpcd_card {
	uint16_t port;
	int stop[2];
	pthread_t thread;
	euicc_apdu_front *front;
	struct handler_ctx h;
	esim_err result;
	bool short_apdus;
};

static void *vpcd_main(void *arg)
{
	struct vpcd_card *c = arg;
	struct euicc_serve_opts o = {.stop_fd = c->stop[0], .retry_ms = 50};
	c->result = euicc_serve_vpcd("127.0.0.1", c->port, c->front, &o);
	return NULL;
}

static int accept_within(int lfd, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			return fd;
		usleep(10000);
	}
	return -1;
}

static void test_vpcd_loop(void **state)
{
	(void)state;
	struct vpcd_card c = {0};
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	c.port = ntohs(sa.sin_port);
	struct euicc_apdu_front_cfg cfg = {.es10 = handler, .es10_ctx = &c.h};
	assert_esim(ESIM_OK, euicc_apdu_front_new(&cfg, &c.front));
	assert_int_equal(pipe(c.stop), 0);
	assert_int_equal(pthread_create(&c.thread, NULL, vpcd_main, &c), 0);

	esim_buf in = ESIM_BUF_INIT;
	for (int round = 0; round < 2; round++) {
		int fd = accept_within(lfd, 5000);
		assert_true(fd >= 0);
		const uint8_t on = EUICC_CTRL_POWER_ON, atr = EUICC_CTRL_ATR;
		assert_esim(ESIM_OK, apdu_frame_write(fd, &on, 1));
		assert_esim(ESIM_OK, apdu_frame_write(fd, &atr, 1));
		assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
		/* the vpcd reader's ATR: T=0 and T=1, extended length */
		assert_int_equal(in.len, EUICC_ATR_VPCD_LEN);
		assert_memory_equal(in.data, euicc_atr_vpcd, EUICC_ATR_VPCD_LEN);
		const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x10, 0xA0, 0x00,
				       0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF,
				       0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};
		assert_esim(ESIM_OK, apdu_frame_write(fd, sel, sizeof sel));
		assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
		assert_int_equal(apdu_sw(in.data, in.len), 0x9000);
		const uint8_t sd[] = {0x80, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2E, 0x00};
		assert_esim(ESIM_OK, apdu_frame_write(fd, sd, sizeof sd));
		assert_esim(ESIM_OK, apdu_frame_read(fd, &in, 2000, 2000, -1, NULL));
		assert_int_equal(in.len, 5);
		assert_memory_equal(in.data, sd + 5, 3);
		/* drop the connection: the card must come back */
		close(fd);
	}
	assert_int_equal(c.h.calls, 2);
	assert_int_equal(write(c.stop[1], "x", 1), 1);
	pthread_join(c.thread, NULL);
	assert_esim(ESIM_OK, c.result);
	close(c.stop[0]);
	close(c.stop[1]);
	close(lfd);
	euicc_apdu_front_free(c.front);
	esim_buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_big_command_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_response_mss255, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_extended_from_atr, setup, teardown),
	    cmocka_unit_test(test_short_blocks_without_extended),
	    cmocka_unit_test(test_fallback_on_wrong_length),
	    cmocka_unit_test(test_atr_channels_served),
	    cmocka_unit_test(test_atr_card_caps),
	    cmocka_unit_test(test_atr_protocols),
	    cmocka_unit_test_setup_teardown(test_sw_error_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_in_turn, setup, teardown),
	    cmocka_unit_test(test_t0_style_card),
	    cmocka_unit_test(test_drivers_and_helpers),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_unix_socket_owner_only),
	    cmocka_unit_test_setup_teardown(test_socket_framing, setup, teardown),
	    cmocka_unit_test(test_vpcd_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
