/*
 * Personalisation of a profile package from an operator's batch (digest
 * 13.4, 9.1 "import"): the IMSI into EF.IMSI of the usim element (B3, file
 * ef-imsi A3, its fillFileContent 83) and Ki / OPc into every akaParameter
 * element (A4 { A1 algoConfiguration { A1 algoParameter { 82 key, 83 opc }}}).
 *
 * Only fixed-size fields are rewritten, in place: EF.IMSI is always 9 bytes
 * and key / OPc 16 bytes, so no length around them changes and the package
 * keeps its structure byte for byte elsewhere. A template without such
 * elements (or with EF.IMSI content split over several fill elements) is
 * left alone for that value, and *done says what was written; the import
 * (inventory.c) refuses a batch whose Ki / OPc would find no place.
 *
 * At rest the package keeps no profile's Ki / OPc (kek.c): they are sealed
 * apart and written in here only in memory, at binding time.
 */
#include <string.h>

#include "esim/der.h"
#include "smdp_int.h"

#define EF_IMSI_LEN 9

/* EF.IMSI content (TS 31.102 4.2.2): length byte, then the digits in
 * swapped BCD with the parity nibble (odd count 9, even 1) first, FF pad. */
static esim_err imsi_encode(const char *imsi, uint8_t out[EF_IMSI_LEN])
{
	size_t n = strlen(imsi);
	if (n < 6 || n > 15)
		return ESIM_E_ARG;
	for (size_t i = 0; i < n; i++)
		if (imsi[i] < '0' || imsi[i] > '9')
			return ESIM_E_ARG;
	memset(out, 0xFF, EF_IMSI_LEN);
	out[0] = (uint8_t)((n + 2) / 2);
	/* nibble k of the packed value: k = 0 the parity, then the digits */
	for (size_t k = 0; k <= n; k++) {
		uint8_t nib = k == 0 ? (n % 2 ? 9 : 1) : (uint8_t)(imsi[k - 1] - '0');
		uint8_t *b = &out[1 + k / 2];
		if (k % 2 == 0)
			*b = (uint8_t)((*b & 0xF0) | nib);
		else
			*b = (uint8_t)((*b & 0x0F) | (nib << 4));
	}
	return ESIM_OK;
}

esim_err smdp_imsi_decode(const uint8_t ef[EF_IMSI_LEN], char out[16])
{
	size_t bytes = ef[0];
	if (bytes < 1 || bytes > EF_IMSI_LEN - 1)
		return ESIM_E_ARG;
	size_t nibbles = 2 * bytes, n = 0;
	bool odd = (ef[1] & 0x0F) == 9;
	for (size_t k = 1; k < nibbles; k++) {
		uint8_t b = ef[1 + k / 2];
		uint8_t nib = k % 2 ? (uint8_t)(b >> 4) : (uint8_t)(b & 0x0F);
		if (nib == 0x0F && !odd && k == nibbles - 1)
			break; /* even count: the last nibble is filler */
		if (nib > 9 || n >= 15)
			return ESIM_E_ARG;
		out[n++] = (char)('0' + nib);
	}
	out[n] = '\0';
	return ESIM_OK;
}

/* The one fillFileContent (83) of a File element, if it is exactly len
 * bytes and the only content of the file. */
static bool single_content(der_span file, size_t len, der_span *out)
{
	der_cursor c = der_cursor_of(file);
	der_element e;
	esim_err err;
	bool found = false;
	while (der_next_child(&c, &e, &err)) {
		if (e.tag == 0x82 || (e.tag == 0x83 && found))
			return false; /* offsets or several parts: not ours to rewrite */
		if (e.tag == 0x83) {
			if (e.value.len != len)
				return false;
			*out = e.value;
			found = true;
		}
	}
	return err == ESIM_OK && found;
}

esim_err smdp_personalise_upp(uint8_t *upp, size_t len, const char *imsi, const uint8_t *ki,
			      const uint8_t *opc, unsigned *done)
{
	if (!upp || !done)
		return ESIM_E_ARG;
	*done = 0;
	uint8_t ef[EF_IMSI_LEN];
	esim_err err;
	if (imsi && (err = imsi_encode(imsi, ef)) != ESIM_OK)
		return err;
	der_cursor top;
	der_cursor_init(&top, upp, len);
	der_element pe;
	while (der_next_child(&top, &pe, &err)) {
		der_cursor in = der_cursor_of(pe.value);
		der_element e;
		esim_err e2;
		if (pe.tag == 0xB3 && imsi) {
			while (der_next_child(&in, &e, &e2)) {
				der_span v;
				if (e.tag == 0xA3 && single_content(e.value, EF_IMSI_LEN, &v)) {
					memcpy(upp + (v.p - upp), ef, EF_IMSI_LEN);
					*done |= SMDP_PERS_IMSI;
				}
			}
		} else if (pe.tag == 0xA4 && (ki || opc)) {
			der_cursor conf, par;
			if (der_get_element(&in, 0xA0, NULL) != ESIM_OK ||
			    der_get_element(&in, 0xA1, &conf) != ESIM_OK ||
			    der_get_element(&conf, 0xA1, &par) != ESIM_OK)
				continue; /* another algoConfiguration (e.g. a mapping) */
			while (der_next_child(&par, &e, &e2)) {
				if (e.tag == 0x82 && ki && e.value.len == 16) {
					memcpy(upp + (e.value.p - upp), ki, 16);
					*done |= SMDP_PERS_KI;
				} else if (e.tag == 0x83 && opc && e.value.len == 16) {
					memcpy(upp + (e.value.p - upp), opc, 16);
					*done |= SMDP_PERS_OPC;
				}
			}
		}
	}
	return err;
}

esim_err smdp_upp_take_keys(uint8_t *upp, size_t len, uint8_t ki[16], uint8_t opc[16],
			    unsigned *found)
{
	if (!upp || !found)
		return ESIM_E_ARG;
	*found = 0;
	esim_err err;
	der_cursor top;
	der_cursor_init(&top, upp, len);
	der_element pe;
	while (der_next_child(&top, &pe, &err)) {
		if (pe.tag != 0xA4)
			continue;
		der_cursor in = der_cursor_of(pe.value), conf, par;
		if (der_get_element(&in, 0xA0, NULL) != ESIM_OK ||
		    der_get_element(&in, 0xA1, &conf) != ESIM_OK ||
		    der_get_element(&conf, 0xA1, &par) != ESIM_OK)
			continue;
		der_element e;
		esim_err e2;
		while (der_next_child(&par, &e, &e2)) {
			if ((e.tag != 0x82 && e.tag != 0x83) || e.value.len != 16)
				continue;
			unsigned bit = e.tag == 0x82 ? SMDP_PERS_KI : SMDP_PERS_OPC;
			uint8_t *v = upp + (e.value.p - upp);
			if (!(*found & bit))
				memcpy(bit == SMDP_PERS_KI ? ki : opc, v, 16);
			*found |= bit;
			memset(v, 0, 16);
		}
	}
	return err;
}
