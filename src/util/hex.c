/*
 * Hex text <-> bytes. Strict: even length, hex digits only, so that a
 * mistyped ICCID or key never decodes to something else silently.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/util.h"

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static esim_err hex_into(const char *hex, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ESIM_E_HEX;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return ESIM_OK;
}

esim_err esim_hex_decode(const char *hex, uint8_t **out, size_t *out_len)
{
	size_t len = strlen(hex);
	if (len % 2 != 0)
		return ESIM_E_HEX;
	uint8_t *p = malloc(len / 2 ? len / 2 : 1);
	if (p == NULL)
		return ESIM_E_NOMEM;
	esim_err err = hex_into(hex, len / 2, p);
	if (err != ESIM_OK) {
		free(p);
		return err;
	}
	*out = p;
	*out_len = len / 2;
	return ESIM_OK;
}

esim_err esim_hex_decode_fixed(const char *hex, uint8_t *out, size_t out_len)
{
	if (strlen(hex) != 2 * out_len)
		return ESIM_E_HEX;
	return hex_into(hex, out_len, out);
}

char *esim_hex_encode(const uint8_t *p, size_t n, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	char *s = malloc(2 * n + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0xF];
	}
	s[2 * n] = '\0';
	return s;
}
