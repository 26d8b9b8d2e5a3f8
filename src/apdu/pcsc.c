/*
 * The "pcsc" APDU driver: any reader pcsc-lite knows (USB readers with a
 * removable eUICC, or vsmartcard's vpcd carrying esim-euicc). The reader
 * is picked by index or by a substring of its name; the card is opened
 * shared, T=0 or T=1 as its ATR offers (pcsc-lite takes T=1 when the card
 * offers both), and left as it is on close so that other programs (a
 * modem's NAA on the basic channel) are not disturbed.
 *
 * Extended-length APDUs (ISO 7816-4 5.1) only with T=1: a T=0 TPDU carries
 * at most 255 bytes, so a T=0 card gets short APDUs (255-byte STORE DATA
 * blocks, GET RESPONSE for long answers, session.c). With T=1 the driver
 * says it carries extended APDUs (pcsc_max_apdu), and session.c uses them
 * when the card's ATR also declares extended Lc/Le. Readers differ: one
 * whose driver refuses an extended APDU (SCardTransmit fails with
 * SCARD_E_INSUFFICIENT_BUFFER, SCARD_E_NOT_TRANSACTED or
 * SCARD_E_INVALID_PARAMETER) gets the answer 6700 from this driver, as a
 * card refusing the length would give, so that session.c's one fallback
 * path resends the ES10 command in short blocks and keeps them for the
 * rest of the session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <PCSC/winscard.h>

#include "esim/apdu.h"

struct pcsc_ctx {
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD proto;
	bool ext_refused; /* the reader refused an extended APDU */
};

static esim_err map_pcsc(LONG rv)
{
	switch (rv) {
	case SCARD_S_SUCCESS:
		return ESIM_OK;
	case SCARD_E_NO_READERS_AVAILABLE:
	case SCARD_E_UNKNOWN_READER:
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_REMOVED_CARD:
		return ESIM_E_APDU_NO_READER;
	case SCARD_E_TIMEOUT:
		return ESIM_E_APDU_TIMEOUT;
	case SCARD_E_NO_MEMORY:
		return ESIM_E_NOMEM;
	default:
		return ESIM_E_APDU_PCSC;
	}
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static LONG try_connect(struct pcsc_ctx *c, const char *reader)
{
	return SCardConnect(c->ctx, reader, SCARD_SHARE_SHARED,
			    SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &c->card, &c->proto);
}

/* why: no reader matched spec (or none had a card): which readers exist. */
static void no_reader_why(esim_errctx *why, const char *spec, const char *readers, LONG rv)
{
	if (why == NULL)
		return;
	char list[300] = "";
	size_t n = 0, count = 0;
	for (const char *r = readers ? readers : ""; *r != '\0'; r += strlen(r) + 1, count++)
		if (n < sizeof list)
			n += (size_t)snprintf(list + n, sizeof list - n, "%s%zu: '%s'",
					      count ? ", " : "", count, r);
	if (count == 0)
		esim_errctx_set(why,
				"no PC/SC reader is connected (%s): plug one in, or for "
				"esim-euicc start vpcd and esim-euicc --vpcd",
				pcsc_stringify_error(rv));
	else if (spec[0] == '\0')
		esim_errctx_set(why, "no reader holds a card (%s); readers: %s",
				pcsc_stringify_error(rv), list);
	else if (rv == SCARD_E_UNKNOWN_READER)
		esim_errctx_set(why,
				"no reader matches '%s' (by index or part of its name); "
				"readers: %s",
				spec, list);
	else
		esim_errctx_set(why,
				"the reader matching '%s' has no usable card (%s); readers: %s",
				spec, pcsc_stringify_error(rv), list);
}

static esim_err pcsc_open_why(const char *spec, void **out, esim_errctx *why)
{
	if (spec == NULL)
		spec = "";
	struct pcsc_ctx *c = calloc(1, sizeof *c);
	if (c == NULL)
		return ESIM_E_NOMEM;
	LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c->ctx);
	if (rv != SCARD_S_SUCCESS) {
		free(c);
		esim_errctx_set(why,
				"cannot reach the PC/SC service for reader '%s' (%s): is pcscd "
				"running?",
				spec, pcsc_stringify_error(rv));
		return rv == SCARD_E_NO_SERVICE ? ESIM_E_APDU_NO_READER : map_pcsc(rv);
	}
	char *readers = NULL;
	DWORD len = 0;
	rv = SCardListReaders(c->ctx, NULL, NULL, &len);
	if (rv == SCARD_S_SUCCESS) {
		readers = calloc(1, len + 1);
		rv = readers == NULL ? SCARD_E_NO_MEMORY
				     : SCardListReaders(c->ctx, NULL, readers, &len);
	}
	esim_err err = map_pcsc(rv);
	LONG last = rv == SCARD_S_SUCCESS ? SCARD_E_UNKNOWN_READER : rv;
	if (err == ESIM_OK) {
		/* default: no reader matched, or none had a card */
		err = ESIM_E_APDU_NO_READER;
		long want = all_digits(spec) ? strtol(spec, NULL, 10) : -1;
		long idx = 0;
		for (const char *r = readers; *r != '\0'; r += strlen(r) + 1, idx++) {
			bool match = want >= 0 ? idx == want : strstr(r, spec) != NULL;
			if (!match)
				continue;
			rv = try_connect(c, r);
			err = map_pcsc(rv);
			last = rv;
			/* the first match is the chosen reader, unless the
			 * spec was empty: then take the first with a card */
			if (rv == SCARD_S_SUCCESS || spec[0] != '\0')
				break;
		}
	}
	if (err != ESIM_OK)
		no_reader_why(why, spec, readers, last);
	free(readers);
	if (err != ESIM_OK) {
		SCardReleaseContext(c->ctx);
		free(c);
		return err;
	}
	*out = c;
	return ESIM_OK;
}

static esim_err pcsc_open(const char *spec, void **out)
{
	return pcsc_open_why(spec, out, NULL);
}

/* An extended APDU: Lc or Le in the 3-byte form (ISO 7816-4 5.1; a
 * short case 3 or 4 never has Lc 00). */
static bool is_extended(const uint8_t *capdu, size_t len)
{
	return len >= 7 && capdu[4] == 0x00;
}

/* SCardTransmit's ways of saying a reader cannot carry an APDU this long. */
static bool length_refused(LONG rv)
{
	return rv == SCARD_E_INSUFFICIENT_BUFFER || rv == SCARD_E_NOT_TRANSACTED ||
	       rv == SCARD_E_INVALID_PARAMETER;
}

static esim_err pcsc_transmit(void *ctx, const uint8_t *capdu, size_t len, esim_buf *rapdu)
{
	struct pcsc_ctx *c = ctx;
	rapdu->len = 0;
	if (len < 4 || len > APDU_MAX_LEN)
		return ESIM_E_APDU_MALFORMED;
	esim_err err = esim_buf_reserve(rapdu, APDU_MAX_LEN);
	if (err != ESIM_OK)
		return err;
	const SCARD_IO_REQUEST *pci = c->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
	DWORD rlen = (DWORD)rapdu->cap;
	LONG rv = SCardTransmit(c->card, pci, capdu, (DWORD)len, NULL, rapdu->data, &rlen);
	if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_W_RESET_CARD)
		return ESIM_E_APDU_CLOSED;
	if (length_refused(rv) && is_extended(capdu, len)) {
		/* wrong length: the caller retries in short APDUs */
		c->ext_refused = true;
		static const uint8_t wrong_length[2] = {0x67, 0x00};
		return esim_buf_append(rapdu, wrong_length, sizeof wrong_length);
	}
	if (rv != SCARD_S_SUCCESS)
		return map_pcsc(rv);
	if (rlen < 2)
		return ESIM_E_APDU_MALFORMED;
	rapdu->len = rlen;
	return ESIM_OK;
}

/* The longest extended APDU sent: 65535 bytes, not APDU_MAX_LEN. vpcd
 * frames an APDU with a 2-byte length and, asked for a longer one, drops
 * its connection to the card (pcscd then reports the card gone, nothing
 * to fall back on); pcsc-lite itself would take 65548. */
#define PCSC_MAX_EXTENDED 65535

/* Extended APDUs with T=1, until the reader refuses one. */
static size_t pcsc_max_apdu(void *ctx)
{
	const struct pcsc_ctx *c = ctx;
	return c->proto == SCARD_PROTOCOL_T1 && !c->ext_refused ? PCSC_MAX_EXTENDED : 0;
}

static esim_err pcsc_atr(void *ctx, esim_buf *atr)
{
	struct pcsc_ctx *c = ctx;
	atr->len = 0;
	esim_err err = esim_buf_reserve(atr, MAX_ATR_SIZE);
	if (err != ESIM_OK)
		return err;
	DWORD state = 0, proto = 0, rlen = 0, alen = MAX_ATR_SIZE;
	LONG rv = SCardStatus(c->card, NULL, &rlen, &state, &proto, atr->data, &alen);
	if (rv != SCARD_S_SUCCESS)
		return map_pcsc(rv);
	atr->len = alen;
	return ESIM_OK;
}

static void pcsc_close(void *ctx)
{
	struct pcsc_ctx *c = ctx;
	if (c == NULL)
		return;
	SCardDisconnect(c->card, SCARD_LEAVE_CARD);
	SCardReleaseContext(c->ctx);
	free(c);
}

const apdu_driver apdu_driver_pcsc = {
    .name = "pcsc",
    .help = "\"\" (first reader with a card) | reader index | substring of the reader name",
    .open = pcsc_open,
    .open_why = pcsc_open_why,
    .transmit = pcsc_transmit,
    .close = pcsc_close,
    .atr = pcsc_atr,
    .max_apdu = 0,		  /* without max_apdu_of: short APDUs */
    .max_apdu_of = pcsc_max_apdu, /* extended with T=1 */
    .default_mss = APDU_MAX_MSS,
};
