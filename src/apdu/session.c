/*
 * The LPA's ISD-R session (digest 3.1-3.3): a logical channel of its own,
 * the ISD-R selected on it, and ES10 commands carried by GlobalPlatform
 * STORE DATA. Every exchange follows 61xx with GET RESPONSE and 6Cxx with a
 * resend, so the same code works on T=0 cards, T=1 cards and esim-euicc.
 *
 * Fewest APDUs: a card whose ATR declares extended Lc/Le, on a driver that
 * carries extended APDUs, gets each ES10 command in one STORE DATA with
 * Le 0000 (its answer comes back whole, no GET RESPONSE); other cards get
 * the largest short blocks the driver allows (255 unless it says less),
 * and smaller ones when they answer 6700 (include/esim/apdu.h).
 */
#include <stdlib.h>
#include <string.h>

#include "esim/apdu.h"

struct apdu_session {
	const apdu_driver *drv;
	void *ctx;
	uint8_t ch;
	bool channel_opened;
	size_t mss;	  /* short STORE DATA block */
	size_t ext_block; /* > 0: extended STORE DATA blocks of this size */
	FILE *trace;
	uint16_t last_sw;
	esim_buf rx;  /* the last response APDU */
	esim_buf cmd; /* the command being sent (Le may be rewritten) */
	esim_buf blk; /* the STORE DATA block being built */
};

static void trace_hex(FILE *f, const char *dir, const uint8_t *p, size_t n)
{
	if (f == NULL)
		return;
	fputs(dir, f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02X", p[i]);
	fputc('\n', f);
	fflush(f);
}

/* One command APDU out, one response APDU into s->rx; sets last_sw. */
static esim_err xfer(apdu_session *s, const uint8_t *capdu, size_t len)
{
	trace_hex(s->trace, "apdu >> ", capdu, len);
	esim_err err = s->drv->transmit(s->ctx, capdu, len, &s->rx);
	if (err != ESIM_OK) {
		if (s->trace != NULL)
			fprintf(s->trace, "apdu !! %s\n", esim_errname(err));
		return err;
	}
	trace_hex(s->trace, "apdu << ", s->rx.data, s->rx.len);
	if (s->rx.len < 2)
		return ESIM_E_APDU_MALFORMED;
	s->last_sw = apdu_sw(s->rx.data, s->rx.len);
	return ESIM_OK;
}

static uint8_t cla_channel(uint8_t cla)
{
	return (cla & 0x40) ? (uint8_t)(4 + (cla & 0x0F)) : (uint8_t)(cla & 0x03);
}

/* Rewrite the Le of the short APDU in s->cmd to le (6Cxx: "wrong Le, use
 * xx"). Extended APDUs are never answered with 6Cxx by a sane card. */
static esim_err set_le(apdu_session *s, uint8_t le)
{
	esim_buf *c = &s->cmd;
	if (c->len == 4)
		return esim_buf_append_byte(c, le);
	if (c->len == 5) {
		c->data[4] = le;
		return ESIM_OK;
	}
	if (c->data[4] == 0)
		return ESIM_E_APDU_MALFORMED;
	size_t lc = c->data[4];
	if (c->len == 5 + lc)
		return esim_buf_append_byte(c, le);
	if (c->len == 6 + lc) {
		c->data[c->len - 1] = le;
		return ESIM_OK;
	}
	return ESIM_E_APDU_MALFORMED;
}

esim_err apdu_session_transmit(apdu_session *s, const uint8_t *capdu, size_t len, esim_buf *resp,
			       uint16_t *sw)
{
	if (s == NULL || capdu == NULL || resp == NULL || len < 4 || len > APDU_MAX_LEN)
		return ESIM_E_ARG;
	resp->len = 0;
	s->cmd.len = 0;
	esim_err err = esim_buf_append(&s->cmd, capdu, len);
	if (err != ESIM_OK)
		return err;
	uint8_t ch = cla_channel(capdu[0]);
	bool resent = false;
	int stalls = 0;
	/* bounded: a round adds data (capped by APDU_MAX_RESPONSE), or is a
	 * 6Cxx resend (once), or counts as a stall (a few allowed) */
	for (;;) {
		if ((err = xfer(s, s->cmd.data, s->cmd.len)) != ESIM_OK)
			return err;
		uint16_t w = s->last_sw;
		size_t n = s->rx.len - 2;
		if ((w >> 8) == 0x6C && !resent) {
			resent = true;
			if ((err = set_le(s, (uint8_t)w)) != ESIM_OK)
				return err;
			continue;
		}
		if (resp->len + n > APDU_MAX_RESPONSE)
			return ESIM_E_TOO_LARGE;
		if ((err = esim_buf_append(resp, s->rx.data, n)) != ESIM_OK)
			return err;
		if ((w >> 8) != 0x61) {
			if (sw != NULL)
				*sw = w;
			return ESIM_OK;
		}
		/* ISO GET RESPONSE is interindustry (CLA 00 + channel); after
		 * an extended command, with extended Le 0000 (all that is left,
		 * up to 65536 bytes) */
		bool ext = s->cmd.len >= 7 && s->cmd.data[4] == 0x00;
		uint8_t gr[7] = {apdu_cla(0x00, ch), 0xC0, 0x00, 0x00, (uint8_t)w, 0x00, 0x00};
		if (ext)
			gr[4] = 0x00;
		s->cmd.len = 0;
		if ((err = esim_buf_append(&s->cmd, gr, ext ? 7 : 5)) != ESIM_OK)
			return err;
		resent = false;
		if (n == 0 && ++stalls > 4)
			return ESIM_E_APDU_MALFORMED;
	}
}

/* One STORE DATA block into s->blk: short (Lc, no Le) or extended (00 Lc Lc,
 * and Le 0000 on the last block so that the answer comes back whole). */
static esim_err build_block(apdu_session *s, bool ext, bool last, unsigned block, const uint8_t *p,
			    size_t n)
{
	uint8_t hdr[7] = {apdu_cla(0x80, s->ch), 0xE2, last ? 0x91 : 0x11, (uint8_t)block};
	size_t hl = 5;
	if (ext) {
		hdr[4] = 0x00;
		hdr[5] = (uint8_t)(n >> 8);
		hdr[6] = (uint8_t)n;
		hl = 7;
	} else {
		hdr[4] = (uint8_t)n;
	}
	static const uint8_t le_ext[2] = {0x00, 0x00};
	s->blk.len = 0;
	esim_err err = esim_buf_append(&s->blk, hdr, hl);
	if (err == ESIM_OK)
		err = esim_buf_append(&s->blk, p, n);
	if (err == ESIM_OK && ext && last)
		err = esim_buf_append(&s->blk, le_ext, sizeof le_ext);
	return err;
}

/* Send cmd as STORE DATA blocks of the session's size. On an error SW,
 * *refused is the data length of the block the card refused. */
static esim_err send_blocks(apdu_session *s, const uint8_t *cmd, size_t len, esim_buf *resp,
			    esim_buf *scratch, size_t *refused)
{
	bool ext = s->ext_block > 0;
	size_t bs = ext ? s->ext_block : s->mss;
	size_t off = 0;
	unsigned block = 0;
	*refused = 0;
	while (off < len) {
		size_t n = len - off < bs ? len - off : bs;
		bool last = off + n == len;
		esim_err err = build_block(s, ext, last, block, cmd + off, n);
		uint16_t sw = 0;
		if (err == ESIM_OK)
			err = apdu_session_transmit(s, s->blk.data, s->blk.len,
						    last ? resp : scratch, &sw);
		if (err == ESIM_OK && !apdu_sw_ok(sw)) {
			*refused = n;
			err = ESIM_E_APDU_SW;
		}
		if (err != ESIM_OK)
			return err;
		off += n;
		block++;
	}
	return ESIM_OK;
}

/* After 6700 to a block of `refused` bytes: smaller blocks, if that makes
 * the refused block smaller. Extended -> the short default; then 120,
 * then halves, never below APDU_MIN_MSS. */
static bool shrink_blocks(apdu_session *s, size_t refused)
{
	size_t old = s->ext_block ? s->ext_block : s->mss;
	if (s->ext_block > 0) {
		s->ext_block = 0;
	} else {
		size_t next = refused > APDU_DEFAULT_MSS ? APDU_DEFAULT_MSS : refused / 2;
		if (next < APDU_MIN_MSS || next >= refused)
			return false;
		s->mss = next;
	}
	if (s->trace != NULL)
		fprintf(s->trace,
			"apdu -- a %zu-byte block was refused (6700): blocks of %zu bytes "
			"from now on, was %zu\n",
			refused, s->mss, old);
	return true;
}

esim_err apdu_es10_transmit(apdu_session *s, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	if (s == NULL || cmd == NULL || resp == NULL || len == 0)
		return ESIM_E_ARG;
	esim_buf scratch = ESIM_BUF_INIT;
	esim_err err;
	/* bounded: every retry makes the blocks strictly smaller */
	for (;;) {
		size_t refused = 0;
		resp->len = 0;
		err = send_blocks(s, cmd, len, resp, &scratch, &refused);
		if (err == ESIM_E_APDU_SW && s->last_sw == 0x6700 && refused > 0 &&
		    shrink_blocks(s, refused))
			continue;
		break;
	}
	esim_buf_free(&scratch);
	if (err != ESIM_OK)
		resp->len = 0;
	return err;
}

static esim_err open_channel(apdu_session *s)
{
	static const uint8_t manage_open[5] = {0x00, 0x70, 0x00, 0x00, 0x01};
	esim_buf resp = ESIM_BUF_INIT;
	uint16_t sw = 0;
	esim_err err = apdu_session_transmit(s, manage_open, sizeof manage_open, &resp, &sw);
	if (err == ESIM_OK && !apdu_sw_ok(sw))
		err = ESIM_E_APDU_SW;
	if (err == ESIM_OK && (resp.len != 1 || resp.data[0] == 0 || resp.data[0] > 19))
		err = ESIM_E_APDU_NO_CHANNEL;
	if (err == ESIM_OK) {
		s->ch = resp.data[0];
		s->channel_opened = true;
	}
	esim_buf_free(&resp);
	return err;
}

static esim_err select_isdr(apdu_session *s)
{
	uint8_t sel[5 + APDU_ISDR_AID_LEN + 1] = {apdu_cla(0x00, s->ch), 0xA4, 0x04, 0x00,
						  APDU_ISDR_AID_LEN};
	memcpy(sel + 5, apdu_isdr_aid, APDU_ISDR_AID_LEN);
	sel[sizeof sel - 1] = 0x00;
	esim_buf fci = ESIM_BUF_INIT;
	uint16_t sw = 0;
	esim_err err = apdu_session_transmit(s, sel, sizeof sel, &fci, &sw);
	if (err == ESIM_OK && !apdu_sw_ok(sw))
		err = ESIM_E_APDU_SW;
	esim_buf_free(&fci);
	return err;
}

static void close_channel(apdu_session *s)
{
	if (!s->channel_opened)
		return;
	uint8_t close_apdu[4] = {0x00, 0x70, 0x80, s->ch};
	/* best effort: the card forgets channels on reset anyway */
	(void)xfer(s, close_apdu, sizeof close_apdu);
	s->channel_opened = false;
}

/* Extended STORE DATA when the card's ATR declares extended Lc/Le and the
 * driver carries extended APDUs: a block is then as long as the driver's
 * longest APDU allows (header 7, Le 2). An unreadable or malformed ATR
 * means short APDUs. */
static void choose_extended(apdu_session *s)
{
	size_t drv_max = s->drv->max_apdu_of ? s->drv->max_apdu_of(s->ctx) : s->drv->max_apdu;
	if (s->drv->atr == NULL || drv_max <= APDU_SHORT_MAX_LEN)
		return;
	esim_buf atr = ESIM_BUF_INIT;
	struct apdu_card_caps caps;
	esim_err err = s->drv->atr(s->ctx, &atr);
	if (err == ESIM_OK)
		err = apdu_atr_card_caps(atr.data, atr.len, &caps);
	if (s->trace != NULL && err == ESIM_OK)
		trace_hex(s->trace, "apdu ATR ", atr.data, atr.len);
	if (err == ESIM_OK && caps.present && caps.extended_length) {
		size_t max = drv_max > APDU_MAX_LEN ? APDU_MAX_LEN : drv_max;
		s->ext_block = max - 9 > 65535 ? 65535 : max - 9;
	}
	if (s->trace != NULL)
		fprintf(s->trace, "apdu -- STORE DATA blocks: %s\n",
			s->ext_block ? "extended length (the card declares it)" : "short");
	esim_buf_free(&atr);
}

esim_err apdu_session_open(const char *driver, const char *spec,
			   const struct apdu_session_opts *opts, apdu_session **out)
{
	if (out == NULL)
		return ESIM_E_ARG;
	const apdu_driver *drv = apdu_driver_find(driver);
	if (drv == NULL)
		return ESIM_E_APDU_DRIVER;
	bool fixed = opts != NULL && opts->mss != 0;
	size_t mss = fixed ? opts->mss : drv->default_mss ? drv->default_mss : APDU_DEFAULT_MSS;
	if (mss > APDU_MAX_MSS)
		return ESIM_E_ARG;
	apdu_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return ESIM_E_NOMEM;
	s->drv = drv;
	s->mss = mss;
	s->trace = opts ? opts->trace : NULL;
	esim_errctx *why = opts ? opts->why : NULL;
	esim_errctx_clear(why);
	esim_err err = drv->open_why ? drv->open_why(spec, &s->ctx, why) : drv->open(spec, &s->ctx);
	if (err != ESIM_OK) {
		free(s);
		return err;
	}
	if (!fixed)
		choose_extended(s);
	if (opts == NULL || !opts->basic_channel)
		err = open_channel(s);
	if (err == ESIM_OK)
		err = select_isdr(s);
	if (err != ESIM_OK) {
		apdu_session_close(s);
		return err;
	}
	*out = s;
	return ESIM_OK;
}

void apdu_session_close(apdu_session *s)
{
	if (s == NULL)
		return;
	close_channel(s);
	s->drv->close(s->ctx);
	esim_buf_free(&s->rx);
	esim_buf_free(&s->cmd);
	esim_buf_free(&s->blk);
	free(s);
}

uint8_t apdu_session_channel(const apdu_session *s)
{
	return s->ch;
}

uint16_t apdu_session_last_sw(const apdu_session *s)
{
	return s->last_sw;
}

size_t apdu_session_block(const apdu_session *s, bool *extended)
{
	if (extended != NULL)
		*extended = s->ext_block > 0;
	return s->ext_block > 0 ? s->ext_block : s->mss;
}
