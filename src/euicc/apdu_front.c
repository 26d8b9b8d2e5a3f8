/*
 * The virtual eUICC's APDU front (SGP.22 ES10 transport, digest 3.1-3.4):
 * logical channels, SELECT of the ISD-R, STORE DATA reassembly and
 * GET RESPONSE chaining, in front of the ES10 dispatcher. The rules it
 * applies where ISO 7816-4 leaves a choice are in apdu_front.h.
 *
 * Every input byte is untrusted: lengths are checked before use, and each
 * failure is a status word, never a crash or a stuck state.
 */
#include <stdlib.h>
#include <string.h>

#include "euicc/apdu_front.h"

#define INS_MANAGE_CHANNEL 0x70
#define INS_SELECT	   0xA4
#define INS_GET_RESPONSE   0xC0
#define INS_STORE_DATA	   0xE2
#define INS_TERMINAL_CAP   0xAA

static const uint8_t isdr_aid[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
				     0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};

struct front_channel {
	bool open;
	bool isdr;	 /* the ISD-R is selected */
	bool sd_active;	 /* a STORE DATA sequence is unfinished */
	uint8_t sd_next; /* the P2 expected next */
	esim_buf cmd;	 /* STORE DATA blocks so far */
	esim_buf out;	 /* response data not yet read by GET RESPONSE */
	size_t out_off;
};

struct euicc_apdu_front {
	struct euicc_apdu_front_cfg cfg;
	struct front_channel ch[EUICC_APDU_CHANNELS];
	struct euicc_apdu_counters n;
};

/* A parsed command APDU (ISO 7816-4 5.1). */
struct capdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t lc;
	size_t ne; /* 0 when there is no Le */
	bool has_le;
	bool ext;
};

/* The decoded CLA: class, logical channel, and the bits we refuse. */
struct cla_info {
	bool proprietary;
	uint8_t ch;
	bool sm;
	bool chaining;
};

static bool parse_capdu(const uint8_t *p, size_t len, struct capdu *c)
{
	memset(c, 0, sizeof *c);
	if (len < 4)
		return false;
	c->cla = p[0];
	c->ins = p[1];
	c->p1 = p[2];
	c->p2 = p[3];
	if (len == 4)
		return true; /* case 1 */
	if (len == 5) {	     /* case 2 short */
		c->has_le = true;
		c->ne = p[4] ? p[4] : 256;
		return true;
	}
	if (p[4] != 0) { /* case 3 / 4 short */
		c->lc = p[4];
		c->data = p + 5;
		if (len == 5 + c->lc)
			return true;
		if (len == 6 + c->lc) {
			c->has_le = true;
			c->ne = p[len - 1] ? p[len - 1] : 256;
			return true;
		}
		return false;
	}
	/* extended: 00 then two bytes */
	c->ext = true;
	if (len < 7)
		return false;
	size_t v = (size_t)p[5] << 8 | p[6];
	if (len == 7) { /* case 2 extended */
		c->has_le = true;
		c->ne = v ? v : 65536;
		return true;
	}
	if (v == 0)
		return false;
	c->lc = v;
	c->data = p + 7;
	if (len == 7 + v)
		return true;
	if (len == 9 + v) {
		size_t le = (size_t)p[len - 2] << 8 | p[len - 1];
		c->has_le = true;
		c->ne = le ? le : 65536;
		return true;
	}
	return false;
}

static bool parse_cla(uint8_t cla, struct cla_info *ci)
{
	if (cla == 0xFF)
		return false;
	ci->proprietary = (cla & 0x80) != 0;
	if (cla & 0x40) {
		ci->ch = (uint8_t)(4 + (cla & 0x0F));
		ci->sm = (cla & 0x20) != 0;
		ci->chaining = (cla & 0x10) != 0;
		return true;
	}
	if (cla & 0x20)
		return false; /* RFU in ISO 7816-4 */
	ci->ch = cla & 0x03;
	ci->sm = (cla & 0x0C) != 0;
	ci->chaining = (cla & 0x10) != 0;
	return true;
}

static void drop_sequence(struct front_channel *c)
{
	c->sd_active = false;
	c->sd_next = 0;
	c->cmd.len = 0;
}

static void drop_response(struct front_channel *c)
{
	c->out.len = 0;
	c->out_off = 0;
}

static void channel_reset(struct front_channel *c, bool open)
{
	drop_sequence(c);
	drop_response(c);
	c->isdr = false;
	c->open = open;
}

esim_err euicc_apdu_front_new(const struct euicc_apdu_front_cfg *cfg, euicc_apdu_front **out)
{
	if (cfg == NULL || cfg->es10 == NULL || out == NULL)
		return ESIM_E_ARG;
	euicc_apdu_front *f = calloc(1, sizeof *f);
	if (f == NULL)
		return ESIM_E_NOMEM;
	f->cfg = *cfg;
	f->ch[0].open = true;
	*out = f;
	return ESIM_OK;
}

void euicc_apdu_front_free(euicc_apdu_front *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < EUICC_APDU_CHANNELS; i++) {
		esim_buf_free(&f->ch[i].cmd);
		esim_buf_free(&f->ch[i].out);
	}
	free(f);
}

void euicc_apdu_front_reset(euicc_apdu_front *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < EUICC_APDU_CHANNELS; i++)
		channel_reset(&f->ch[i], i == 0);
	if (f->cfg.on_reset != NULL)
		f->cfg.on_reset(f->cfg.es10_ctx);
}

void euicc_apdu_front_counters(const euicc_apdu_front *f, struct euicc_apdu_counters *out)
{
	if (f == NULL || out == NULL)
		return;
	*out = f->n;
}

bool euicc_apdu_front_channel_open(const euicc_apdu_front *f, uint8_t channel)
{
	return channel < EUICC_APDU_CHANNELS && f->ch[channel].open;
}

bool euicc_apdu_front_isdr_selected(const euicc_apdu_front *f, uint8_t channel)
{
	return channel < EUICC_APDU_CHANNELS && f->ch[channel].open && f->ch[channel].isdr;
}

/* Ne as the front honours it: 256 when absent (see the header). */
static size_t effective_ne(const struct capdu *c)
{
	size_t ne = c->has_le ? c->ne : 256;
	return ne > EUICC_APDU_MAX_RDATA ? EUICC_APDU_MAX_RDATA : ne;
}

static uint16_t sw_more(size_t remaining)
{
	return (uint16_t)(0x6100 | (remaining >= 256 ? 0 : remaining));
}

/* The channel's out buffer holds a fresh response: answer with it or
 * announce it with 61xx. */
static esim_err deliver(euicc_apdu_front *f, struct front_channel *c, const struct capdu *cmd,
			esim_buf *rapdu, uint16_t *sw)
{
	size_t n = c->out.len;
	c->out_off = 0;
	if (n == 0) {
		*sw = EUICC_SW_OK;
		return ESIM_OK;
	}
	if (!f->cfg.force_get_response && n <= effective_ne(cmd)) {
		esim_err err = esim_buf_append(rapdu, c->out.data, n);
		drop_response(c);
		*sw = EUICC_SW_OK;
		return err;
	}
	*sw = sw_more(n);
	return ESIM_OK;
}

static esim_err do_get_response(struct front_channel *c, const struct capdu *cmd, esim_buf *rapdu,
				uint16_t *sw)
{
	if (cmd->p1 != 0 || cmd->p2 != 0) {
		*sw = EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	}
	if (cmd->lc != 0) {
		*sw = EUICC_SW_WRONG_LENGTH;
		return ESIM_OK;
	}
	size_t remaining = c->out.len - c->out_off;
	if (remaining == 0) {
		*sw = EUICC_SW_CONDITIONS;
		return ESIM_OK;
	}
	/* an exact short Le that asks for more than is left: tell the
	 * right one (ISO 7816-4 6Cxx); Le 00 means "up to 256" */
	if (cmd->has_le && !cmd->ext && cmd->ne < 256 && cmd->ne > remaining) {
		*sw = (uint16_t)(0x6C00 | remaining);
		return ESIM_OK;
	}
	size_t n = effective_ne(cmd);
	if (n > remaining)
		n = remaining;
	esim_err err = esim_buf_append(rapdu, c->out.data + c->out_off, n);
	if (err != ESIM_OK)
		return err;
	c->out_off += n;
	remaining -= n;
	if (remaining == 0) {
		drop_response(c);
		*sw = EUICC_SW_OK;
	} else {
		*sw = sw_more(remaining);
	}
	return ESIM_OK;
}

static uint16_t do_manage_channel(euicc_apdu_front *f, uint8_t origin, const struct capdu *cmd,
				  esim_buf *rapdu, esim_err *err)
{
	if (cmd->lc != 0)
		return EUICC_SW_WRONG_LENGTH;
	if (cmd->p1 == 0x00) {
		uint8_t target = cmd->p2;
		if (target == 0) {
			for (uint8_t i = 1; i < EUICC_APDU_CHANNELS && target == 0; i++)
				if (!f->ch[i].open)
					target = i;
			if (target == 0)
				return EUICC_SW_FUNC_NOT_SUPP;
			channel_reset(&f->ch[target], true);
			*err = esim_buf_append_byte(rapdu, target);
			return EUICC_SW_OK;
		}
		if (target >= EUICC_APDU_CHANNELS)
			return EUICC_SW_CHANNEL; /* not served (ISO: 6881) */
		if (f->ch[target].open)
			return EUICC_SW_WRONG_P1P2;
		channel_reset(&f->ch[target], true);
		return EUICC_SW_OK;
	}
	if (cmd->p1 == 0x80) {
		uint8_t target = cmd->p2 ? cmd->p2 : origin;
		if (target == 0)
			return EUICC_SW_WRONG_P1P2;
		if (target >= EUICC_APDU_CHANNELS || !f->ch[target].open)
			return EUICC_SW_CHANNEL;
		channel_reset(&f->ch[target], false);
		return EUICC_SW_OK;
	}
	return EUICC_SW_WRONG_P1P2;
}

static esim_err do_select(euicc_apdu_front *f, struct front_channel *c, const struct capdu *cmd,
			  esim_buf *rapdu, uint16_t *sw)
{
	if (cmd->p1 != 0x04) {
		/* select by file id / path: this card has no file system */
		*sw = cmd->p1 <= 0x09 ? EUICC_SW_NOT_FOUND : EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	}
	if ((cmd->p2 & 0xF3) != 0) {
		/* only "first or only occurrence"; b4-b3 choose the answer */
		*sw = EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	}
	if (cmd->lc == 0 || cmd->lc > 16) {
		*sw = EUICC_SW_WRONG_LENGTH;
		return ESIM_OK;
	}
	if (cmd->lc != sizeof isdr_aid || memcmp(cmd->data, isdr_aid, sizeof isdr_aid) != 0) {
		*sw = EUICC_SW_NOT_FOUND;
		return ESIM_OK;
	}
	c->isdr = true;
	if ((cmd->p2 & 0x0C) == 0x0C) {
		*sw = EUICC_SW_OK;
		return ESIM_OK;
	}
	uint8_t fci[4 + sizeof isdr_aid] = {0x6F, 2 + sizeof isdr_aid, 0x84, sizeof isdr_aid};
	memcpy(fci + 4, isdr_aid, sizeof isdr_aid);
	esim_err err = esim_buf_append(&c->out, fci, sizeof fci);
	if (err != ESIM_OK)
		return err;
	return deliver(f, c, cmd, rapdu, sw);
}

static esim_err run_es10(euicc_apdu_front *f, uint8_t chno, struct front_channel *c,
			 const struct capdu *cmd, esim_buf *rapdu, uint16_t *sw)
{
	uint16_t hsw = EUICC_SW_OK;
	drop_response(c);
	esim_err herr = f->cfg.es10(f->cfg.es10_ctx, chno, c->cmd.data, c->cmd.len, &c->out, &hsw);
	drop_sequence(c);
	if (herr != ESIM_OK) {
		drop_response(c);
		*sw = (herr == ESIM_E_NOMEM || herr == ESIM_E_TOO_LARGE) ? EUICC_SW_NO_MEMORY
									 : EUICC_SW_NO_DIAG;
		return ESIM_OK;
	}
	if (hsw != EUICC_SW_OK) {
		drop_response(c);
		/* a handler may not fake chaining or success codes */
		bool sane = (hsw >> 8) >= 0x62 && (hsw >> 8) <= 0x6F && (hsw >> 8) != 0x6C;
		*sw = sane ? hsw : EUICC_SW_NO_DIAG;
		return ESIM_OK;
	}
	if (c->out.len > EUICC_APDU_MAX_RESPONSE) {
		drop_response(c);
		*sw = EUICC_SW_NO_DIAG;
		return ESIM_OK;
	}
	return deliver(f, c, cmd, rapdu, sw);
}

static esim_err do_store_data(euicc_apdu_front *f, uint8_t chno, struct front_channel *c,
			      const struct capdu *cmd, esim_buf *rapdu, uint16_t *sw)
{
	bool last = (cmd->p1 & 0x80) != 0;
	if ((cmd->p1 & 0x7F) != 0x11) {
		drop_sequence(c);
		*sw = EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	}
	if (cmd->lc == 0 || (f->cfg.max_block != 0 && cmd->lc > f->cfg.max_block)) {
		drop_sequence(c);
		*sw = EUICC_SW_WRONG_LENGTH;
		return ESIM_OK;
	}
	if (!c->isdr) {
		drop_sequence(c);
		*sw = EUICC_SW_CONDITIONS;
		return ESIM_OK;
	}
	bool wrapped = c->sd_active && c->sd_next == 0;
	if (cmd->p2 == 0 && !wrapped) {
		drop_sequence(c);
		c->sd_active = true;
	} else if (!c->sd_active || cmd->p2 != c->sd_next) {
		drop_sequence(c);
		*sw = EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	}
	if (cmd->lc > EUICC_APDU_MAX_COMMAND - c->cmd.len) {
		drop_sequence(c);
		*sw = EUICC_SW_NO_MEMORY;
		return ESIM_OK;
	}
	esim_err err = esim_buf_append(&c->cmd, cmd->data, cmd->lc);
	if (err != ESIM_OK) {
		drop_sequence(c);
		*sw = EUICC_SW_NO_MEMORY;
		return ESIM_OK;
	}
	c->sd_next = (uint8_t)(cmd->p2 + 1);
	if (!last) {
		*sw = EUICC_SW_OK;
		return ESIM_OK;
	}
	return run_es10(f, chno, c, cmd, rapdu, sw);
}

/* Which class each supported INS belongs to. */
static bool ins_known(uint8_t ins, bool *interindustry, bool *proprietary)
{
	*interindustry = ins == INS_MANAGE_CHANNEL || ins == INS_SELECT || ins == INS_GET_RESPONSE;
	*proprietary = ins == INS_STORE_DATA || ins == INS_TERMINAL_CAP || ins == INS_GET_RESPONSE;
	return *interindustry || *proprietary;
}

static esim_err dispatch(euicc_apdu_front *f, const uint8_t *p, size_t len, esim_buf *rapdu,
			 uint16_t *sw)
{
	struct capdu cmd;
	struct cla_info ci;
	bool inter, prop;
	if (!parse_capdu(p, len, &cmd)) {
		*sw = EUICC_SW_WRONG_LENGTH;
		return ESIM_OK;
	}
	if (!parse_cla(cmd.cla, &ci)) {
		*sw = EUICC_SW_CLA_UNKNOWN;
		return ESIM_OK;
	}
	if (!ins_known(cmd.ins, &inter, &prop)) {
		*sw = EUICC_SW_INS_UNKNOWN;
		return ESIM_OK;
	}
	if (ci.proprietary ? !prop : !inter) {
		*sw = EUICC_SW_CLA_UNKNOWN;
		return ESIM_OK;
	}
	if (ci.sm) {
		*sw = EUICC_SW_SM;
		return ESIM_OK;
	}
	if (ci.chaining) {
		*sw = EUICC_SW_CHAINING;
		return ESIM_OK;
	}
	if (ci.ch >= EUICC_APDU_CHANNELS || !f->ch[ci.ch].open) {
		*sw = EUICC_SW_CHANNEL;
		return ESIM_OK;
	}
	struct front_channel *c = &f->ch[ci.ch];
	if (cmd.ins != INS_GET_RESPONSE)
		drop_response(c);
	if (cmd.ins != INS_STORE_DATA && c->sd_active)
		drop_sequence(c);

	esim_err err = ESIM_OK;
	switch (cmd.ins) {
	case INS_MANAGE_CHANNEL:
		*sw = do_manage_channel(f, ci.ch, &cmd, rapdu, &err);
		return err;
	case INS_SELECT:
		return do_select(f, c, &cmd, rapdu, sw);
	case INS_GET_RESPONSE:
		return do_get_response(c, &cmd, rapdu, sw);
	case INS_STORE_DATA:
		return do_store_data(f, ci.ch, c, &cmd, rapdu, sw);
	case INS_TERMINAL_CAP:
		*sw = (cmd.p1 == 0 && cmd.p2 == 0) ? EUICC_SW_OK : EUICC_SW_WRONG_P1P2;
		return ESIM_OK;
	default:
		*sw = EUICC_SW_INS_UNKNOWN;
		return ESIM_OK;
	}
}

esim_err euicc_apdu_front_process(euicc_apdu_front *f, const uint8_t *capdu, size_t len,
				  esim_buf *rapdu)
{
	if (f == NULL || rapdu == NULL || (capdu == NULL && len > 0))
		return ESIM_E_ARG;
	rapdu->len = 0;
	f->n.commands++;
	f->n.command_bytes += len;
	if (len >= 2 && capdu[1] == INS_STORE_DATA)
		f->n.store_data++;
	if (len >= 2 && capdu[1] == INS_GET_RESPONSE)
		f->n.get_response++;
	if (f->cfg.trace != NULL)
		f->cfg.trace(f->cfg.trace_ctx, true, capdu, len);
	uint16_t sw = EUICC_SW_NO_DIAG;
	esim_err err = dispatch(f, capdu, len, rapdu, &sw);
	if (err != ESIM_OK) {
		/* out of memory half way: answer without data rather than
		 * leave the terminal without a response */
		rapdu->len = 0;
		sw = EUICC_SW_NO_MEMORY;
	}
	uint8_t swb[2] = {(uint8_t)(sw >> 8), (uint8_t)sw};
	err = esim_buf_append(rapdu, swb, 2);
	if (err != ESIM_OK)
		return err;
	f->n.response_bytes += rapdu->len;
	if (sw == EUICC_SW_WRONG_LENGTH)
		f->n.wrong_length++;
	if (f->cfg.trace != NULL)
		f->cfg.trace(f->cfg.trace_ctx, false, rapdu->data, rapdu->len);
	return ESIM_OK;
}
