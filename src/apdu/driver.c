/*
 * The table of APDU drivers and the small ISO 7816-4 helpers every driver
 * and the session share: CLA coding of logical channels (ISO 7816-4 5.4.1,
 * digest 3.1) and status word checks (digest 3.4).
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
