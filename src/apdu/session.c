/*
 * The LPA's ISD-R session (digest 3.1-3.3): a logical channel of its own,
 * the ISD-R selected on it, and ES10 commands carried by GlobalPlatform
 * STORE DATA. Every exchange follows 61xx with GET RESPONSE and 6Cxx with a
 * resend, so the same code works on T=0 cards, T=1 cards and esim-euicc.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/apdu.h"

struct apdu_session {
	const apdu_driver *drv;
	void *ctx;
	uint8_t ch;
	bool channel_opened;
	size_t mss;
	FILE *trace;
	uint16_t last_sw;
	esim_buf rx;  /* the last response APDU */
	esim_buf cmd; /* the command being sent (Le may be rewritten) */
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
		/* ISO GET RESPONSE is interindustry (CLA 00 + channel) */
		uint8_t gr[5] = {apdu_cla(0x00, ch), 0xC0, 0x00, 0x00, (uint8_t)w};
		s->cmd.len = 0;
		if ((err = esim_buf_append(&s->cmd, gr, sizeof gr)) != ESIM_OK)
			return err;
		resent = false;
		if (n == 0 && ++stalls > 4)
			return ESIM_E_APDU_MALFORMED;
	}
}

esim_err apdu_es10_transmit(apdu_session *s, const uint8_t *cmd, size_t len, esim_buf *resp)
{
	if (s == NULL || cmd == NULL || resp == NULL || len == 0)
		return ESIM_E_ARG;
	uint8_t apdu[5 + APDU_MAX_MSS];
	size_t off = 0;
	unsigned block = 0;
	esim_err err = ESIM_OK;
	esim_buf scratch = ESIM_BUF_INIT;
	resp->len = 0;
	while (off < len) {
		size_t n = len - off < s->mss ? len - off : s->mss;
		bool last = off + n == len;
		apdu[0] = apdu_cla(0x80, s->ch);
		apdu[1] = 0xE2;
		apdu[2] = last ? 0x91 : 0x11;
		apdu[3] = (uint8_t)block;
		apdu[4] = (uint8_t)n;
		memcpy(apdu + 5, cmd + off, n);
		uint16_t sw = 0;
		err = apdu_session_transmit(s, apdu, 5 + n, last ? resp : &scratch, &sw);
		if (err == ESIM_OK && !apdu_sw_ok(sw))
			err = ESIM_E_APDU_SW;
		if (err != ESIM_OK)
			break;
		off += n;
		block++;
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

esim_err apdu_session_open(const char *driver, const char *spec,
			   const struct apdu_session_opts *opts, apdu_session **out)
{
	if (out == NULL)
		return ESIM_E_ARG;
	const apdu_driver *drv = apdu_driver_find(driver);
	if (drv == NULL)
		return ESIM_E_APDU_DRIVER;
	size_t mss = opts && opts->mss ? opts->mss : APDU_DEFAULT_MSS;
	if (mss > APDU_MAX_MSS)
		return ESIM_E_ARG;
	apdu_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return ESIM_E_NOMEM;
	s->drv = drv;
	s->mss = mss;
	s->trace = opts ? opts->trace : NULL;
	esim_err err = drv->open(spec, &s->ctx);
	if (err != ESIM_OK) {
		free(s);
		return err;
	}
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
