/*
 * Base64 for the JSON bindings of ES9+, ES2+ and ES11 (SGP.22 section 6.5,
 * digest 5.1): every binary field is standard base64 with padding of DER.
 *
 * Peers differ in what they send (some wrap lines), so decoding skips
 * whitespace; everything else is strict (alphabet, padding placement,
 * zero trailing bits) so that a corrupted field fails here instead of
 * decoding into different bytes. Encoding never wraps lines.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/util.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

esim_err esim_base64_encode(const uint8_t *p, size_t n, char **out)
{
	*out = NULL;
	if (p == NULL && n != 0)
		return ESIM_E_ARG;
	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return ESIM_E_TOO_LARGE;
	size_t olen = (n + 2) / 3 * 4;
	char *s = malloc(olen + 1);
	if (s == NULL)
		return ESIM_E_NOMEM;
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		s[o++] = b64_alphabet[v >> 18 & 63];
		s[o++] = b64_alphabet[v >> 12 & 63];
		s[o++] = b64_alphabet[v >> 6 & 63];
		s[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		s[o++] = b64_alphabet[v >> 18 & 63];
		s[o++] = b64_alphabet[v >> 12 & 63];
		s[o++] = '=';
		s[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		s[o++] = b64_alphabet[v >> 18 & 63];
		s[o++] = b64_alphabet[v >> 12 & 63];
		s[o++] = b64_alphabet[v >> 6 & 63];
		s[o++] = '=';
	}
	s[o] = '\0';
	*out = s;
	return ESIM_OK;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int b64_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

esim_err esim_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (text == NULL && len != 0)
		return ESIM_E_ARG;
	/* Whitespace only shrinks the output, so len / 4 * 3 bounds it. */
	uint8_t *buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL)
		return ESIM_E_NOMEM;
	size_t o = 0;
	uint32_t acc = 0;
	unsigned quad = 0; /* symbols in the current group of four */
	unsigned pad = 0;  /* '=' seen; only more '=' and whitespace may follow */
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (b64_is_space(c))
			continue;
		if (c == '=') {
			/* Padding completes a group of 2 or 3 symbols, nothing else. */
			if (quad + pad < 2 || quad + pad >= 4)
				goto bad;
			pad++;
			continue;
		}
		int v = b64_value(c);
		if (v < 0 || pad > 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		if (++quad == 4) {
			buf[o++] = (uint8_t)(acc >> 16);
			buf[o++] = (uint8_t)(acc >> 8);
			buf[o++] = (uint8_t)acc;
			acc = 0;
			quad = 0;
		}
	}
	if (quad != 0) {
		if (quad + pad != 4)
			goto bad;
		if (quad == 2) {
			if (acc & 0x0F)
				goto bad;
			buf[o++] = (uint8_t)(acc >> 4);
		} else { /* quad == 3 */
			if (acc & 0x03)
				goto bad;
			buf[o++] = (uint8_t)(acc >> 10);
			buf[o++] = (uint8_t)(acc >> 2);
		}
	} else if (pad != 0) {
		goto bad;
	}
	*out = buf;
	*out_len = o;
	return ESIM_OK;
bad:
	free(buf);
	return ESIM_E_BASE64;
}
