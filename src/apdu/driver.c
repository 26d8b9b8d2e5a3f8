/*
 * The table of APDU drivers and the small ISO 7816-4 helpers every driver
 * and the session share: CLA coding of logical channels (ISO 7816-4 5.4.1,
 * digest 3.1), status word checks (digest 3.4), and what an ATR's
 * historical bytes declare (ISO 7816-4 card capabilities: extended Lc/Le,
 * logical channels), which decides the STORE DATA block size (session.c).
 */
#include <string.h>

#include "esim/apdu.h"

const uint8_t apdu_isdr_aid[APDU_ISDR_AID_LEN] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
						  0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};

extern const apdu_driver apdu_driver_at; /* src/apdu/at.c */

static const apdu_driver *const drivers[] = {
    &apdu_driver_socket,
    &apdu_driver_pcsc,
    &apdu_driver_at, /* src/apdu/at.c (AT+CCHO/CGLA/CSIM modems) */
    NULL,
};

const apdu_driver *const *apdu_drivers(void)
{
	return drivers;
}

const apdu_driver *apdu_driver_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; drivers[i] != NULL; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

uint8_t apdu_cla(uint8_t base, uint8_t ch)
{
	if (ch <= 3)
		return (uint8_t)((base & 0x9C) | ch);
	if (ch <= 19)
		return (uint8_t)((base & 0xB0) | 0x40 | (ch - 4));
	return base;
}

uint16_t apdu_sw(const uint8_t *rapdu, size_t len)
{
	if (rapdu == NULL || len < 2)
		return 0;
	return (uint16_t)(rapdu[len - 2] << 8 | rapdu[len - 1]);
}

bool apdu_sw_ok(uint16_t sw)
{
	/* 91xx: normal ending with a proactive command pending (TS 102 221) */
	return sw == 0x9000 || (sw & 0xFF00) == 0x9100;
}

/* The historical bytes of atr: their offset and count (ISO 7816-3 8.2:
 * T0 announces TA1..TD1 and K; each TDi announces the next group). */
static esim_err atr_historical(const uint8_t *atr, size_t len, size_t *off, size_t *k)
{
	if (atr == NULL || len < 2 || (atr[0] != 0x3B && atr[0] != 0x3F))
		return ESIM_E_APDU_MALFORMED;
	size_t i = 2;
	uint8_t y = atr[1] >> 4;
	*k = atr[1] & 0x0F;
	for (;;) {
		i += (size_t)((y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1));
		if (!(y & 8))
			break;
		if (i >= len)
			return ESIM_E_APDU_MALFORMED;
		y = atr[i++] >> 4;
	}
	if (i > len || *k > len - i)
		return ESIM_E_APDU_MALFORMED;
	*off = i;
	return ESIM_OK;
}

esim_err apdu_atr_card_caps(const uint8_t *atr, size_t len, struct apdu_card_caps *out)
{
	if (out == NULL)
		return ESIM_E_ARG;
	memset(out, 0, sizeof *out);
	size_t off, k;
	esim_err err = atr_historical(atr, len, &off, &k);
	if (err != ESIM_OK)
		return err;
	const uint8_t *h = atr + off;
	if (k == 0 || (h[0] != 0x00 && h[0] != 0x80))
		return ESIM_OK; /* none, or not in compact-TLV form */
	/* category 00 ends with a 3-byte status indicator outside the TLVs */
	size_t end = k;
	if (h[0] == 0x00) {
		if (k < 4)
			return ESIM_E_APDU_MALFORMED;
		end = k - 3;
	}
	for (size_t j = 1; j < end;) {
		uint8_t tag = h[j] >> 4, l = h[j] & 0x0F;
		if (l > end - j - 1)
			return ESIM_E_APDU_MALFORMED;
		if (tag == 7 && l >= 3) {
			uint8_t b = h[j + 3];
			out->present = true;
			out->chaining = (b & 0x80) != 0;
			out->extended_length = (b & 0x40) != 0;
			out->max_channels = (unsigned)(b & 0x07) + 1;
		}
		j += 1 + (size_t)l;
	}
	return ESIM_OK;
}
