/*
 * ids: the identifiers every SGP.22 interface carries (digest 2.3).
 *
 * The ICCID has two binary forms that are easy to mix up: tag 5A (and
 * EF.ICCID) stores it as BCD with the nibbles of each byte swapped, while
 * the SAIP ProfileHeader stores plain BCD in digit order. Both are 10 bytes,
 * padded with F when the ICCID has fewer than 20 digits. The EID is plain
 * BCD, 16 bytes; its last two digits are SGP.29 check digits (mod 97).
 * transactionIds are opaque 1..16 byte strings that JSON carries as hex.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "esim/pki.h"
#include "esim/rsp.h"
#include "esim/util.h"

const uint8_t RSP_AID_ISDR[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
				  0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};
const uint8_t RSP_AID_ECASD[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
				   0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x02, 0x00};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Fill 20 nibbles (0..9, or 0xF padding) from ICCID text. */
static esim_err iccid_nibbles(const char *digits, uint8_t nib[RSP_ICCID_DIGITS_MAX])
{
	if (!digits)
		return ESIM_E_ARG;
	size_t n = strlen(digits);
	if (n == RSP_ICCID_DIGITS_MAX && (digits[n - 1] == 'F' || digits[n - 1] == 'f'))
		n--; /* a 20th 'F' is the padding written out */
	if (n < RSP_ICCID_DIGITS_MIN || n > RSP_ICCID_DIGITS_MAX)
		return ESIM_E_RSP_BAD_ICCID;
	for (size_t i = 0; i < RSP_ICCID_DIGITS_MAX; i++) {
		if (i >= n) {
			nib[i] = 0xF;
			continue;
		}
		if (!is_digit(digits[i]))
			return ESIM_E_RSP_BAD_ICCID;
		nib[i] = (uint8_t)(digits[i] - '0');
	}
	return ESIM_OK;
}

/* Digits from 20 nibbles: decimal, then only F padding, at least 18. */
static esim_err iccid_text(const uint8_t nib[RSP_ICCID_DIGITS_MAX], char out[RSP_ICCID_TEXT_MAX])
{
	size_t n = 0;
	while (n < RSP_ICCID_DIGITS_MAX && nib[n] <= 9)
		n++;
	for (size_t i = n; i < RSP_ICCID_DIGITS_MAX; i++)
		if (nib[i] != 0xF)
			return ESIM_E_RSP_BAD_ICCID;
	if (n < RSP_ICCID_DIGITS_MIN)
		return ESIM_E_RSP_BAD_ICCID;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)('0' + nib[i]);
	out[n] = '\0';
	return ESIM_OK;
}

esim_err rsp_iccid_to_bcd(const char *digits, uint8_t out[RSP_ICCID_LEN])
{
	uint8_t nib[RSP_ICCID_DIGITS_MAX];
	esim_err err = iccid_nibbles(digits, nib);
	if (err != ESIM_OK)
		return err;
	for (size_t i = 0; i < RSP_ICCID_LEN; i++)
		out[i] = (uint8_t)(nib[2 * i] | (nib[2 * i + 1] << 4));
	return ESIM_OK;
}

esim_err rsp_iccid_to_plain_bcd(const char *digits, uint8_t out[RSP_ICCID_LEN])
{
	uint8_t nib[RSP_ICCID_DIGITS_MAX];
	esim_err err = iccid_nibbles(digits, nib);
	if (err != ESIM_OK)
		return err;
	for (size_t i = 0; i < RSP_ICCID_LEN; i++)
		out[i] = (uint8_t)((nib[2 * i] << 4) | nib[2 * i + 1]);
	return ESIM_OK;
}

esim_err rsp_iccid_from_bcd(const uint8_t *bcd, size_t len, char out[RSP_ICCID_TEXT_MAX])
{
	if (!bcd || !out)
		return ESIM_E_ARG;
	if (len != RSP_ICCID_LEN)
		return ESIM_E_RSP_BAD_ICCID;
	uint8_t nib[RSP_ICCID_DIGITS_MAX];
	for (size_t i = 0; i < RSP_ICCID_LEN; i++) {
		nib[2 * i] = bcd[i] & 0x0F;
		nib[2 * i + 1] = bcd[i] >> 4;
	}
	return iccid_text(nib, out);
}

esim_err rsp_iccid_from_plain_bcd(const uint8_t *bcd, size_t len, char out[RSP_ICCID_TEXT_MAX])
{
	if (!bcd || !out)
		return ESIM_E_ARG;
	if (len != RSP_ICCID_LEN)
		return ESIM_E_RSP_BAD_ICCID;
	uint8_t nib[RSP_ICCID_DIGITS_MAX];
	for (size_t i = 0; i < RSP_ICCID_LEN; i++) {
		nib[2 * i] = bcd[i] >> 4;
		nib[2 * i + 1] = bcd[i] & 0x0F;
	}
	return iccid_text(nib, out);
}

void rsp_iccid_swap(const uint8_t in[RSP_ICCID_LEN], uint8_t out[RSP_ICCID_LEN])
{
	for (size_t i = 0; i < RSP_ICCID_LEN; i++)
		out[i] = (uint8_t)((in[i] >> 4) | (in[i] << 4));
}

esim_err rsp_eid_to_bcd(const char *digits, uint8_t out[RSP_EID_LEN])
{
	if (!digits || !out)
		return ESIM_E_ARG;
	if (strlen(digits) != RSP_EID_DIGITS)
		return ESIM_E_RSP_BAD_EID;
	for (size_t i = 0; i < RSP_EID_DIGITS; i++)
		if (!is_digit(digits[i]))
			return ESIM_E_RSP_BAD_EID;
	for (size_t i = 0; i < RSP_EID_LEN; i++)
		out[i] = (uint8_t)(((digits[2 * i] - '0') << 4) | (digits[2 * i + 1] - '0'));
	return ESIM_OK;
}

esim_err rsp_eid_from_bcd(const uint8_t *bcd, size_t len, char out[RSP_EID_DIGITS + 1])
{
	if (!bcd || !out)
		return ESIM_E_ARG;
	if (len != RSP_EID_LEN)
		return ESIM_E_RSP_BAD_EID;
	for (size_t i = 0; i < RSP_EID_LEN; i++)
		if ((bcd[i] >> 4) > 9 || (bcd[i] & 0x0F) > 9)
			return ESIM_E_RSP_BAD_EID;
	for (size_t i = 0; i < RSP_EID_LEN; i++) {
		out[2 * i] = (char)('0' + (bcd[i] >> 4));
		out[2 * i + 1] = (char)('0' + (bcd[i] & 0x0F));
	}
	out[RSP_EID_DIGITS] = '\0';
	return ESIM_OK;
}

int rsp_iccid_luhn_digit(const char *digits, size_t len)
{
	unsigned sum = 0;
	for (size_t i = 0; i < len; i++) {
		char c = digits[len - 1 - i];
		if (c < '0' || c > '9')
			return -1;
		unsigned v = (unsigned)(c - '0');
		if (i % 2 == 0 && (v *= 2) > 9) /* double every other, from the right */
			v -= 9;
		sum += v;
	}
	return (int)((10 - sum % 10) % 10);
}

bool rsp_iccid_luhn_ok(const char *iccid)
{
	size_t n = iccid ? strlen(iccid) : 0;
	return n >= 2 && rsp_iccid_luhn_digit(iccid, n - 1) == iccid[n - 1] - '0';
}

esim_err rsp_eid_check(const char *eid)
{
	return crypto_pki_eid_check(eid); /* one implementation of SGP.29 */
}

esim_err rsp_txid_set(rsp_txid *out, const uint8_t *p, size_t len)
{
	if (!out || (!p && len))
		return ESIM_E_ARG;
	if (len < 1 || len > RSP_TXID_MAX)
		return ESIM_E_RSP_BAD_TXID;
	memset(out, 0, sizeof(*out));
	memcpy(out->b, p, len);
	out->len = len;
	return ESIM_OK;
}

esim_err rsp_txid_from_hex(const char *hex, rsp_txid *out)
{
	if (!hex || !out)
		return ESIM_E_ARG;
	size_t n = strlen(hex);
	if (n % 2 == 0 && (n < 2 || n > 2 * RSP_TXID_MAX))
		return ESIM_E_RSP_BAD_TXID;
	uint8_t *bytes = NULL;
	size_t len = 0;
	esim_err err = esim_hex_decode(hex, &bytes, &len);
	if (err != ESIM_OK)
		return err;
	err = rsp_txid_set(out, bytes, len);
	free(bytes);
	return err;
}

esim_err rsp_txid_to_hex(const rsp_txid *id, char out[2 * RSP_TXID_MAX + 1])
{
	static const char digits[] = "0123456789ABCDEF";
	if (!id || !out)
		return ESIM_E_ARG;
	if (id->len < 1 || id->len > RSP_TXID_MAX)
		return ESIM_E_RSP_BAD_TXID;
	for (size_t i = 0; i < id->len; i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 0x0F];
	}
	out[2 * id->len] = '\0';
	return ESIM_OK;
}

esim_err rsp_txid_random(rsp_txid *out)
{
	if (!out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	if (RAND_bytes(out->b, RSP_TXID_MAX) != 1)
		return ESIM_E_CRYPTO_RANDOM;
	out->len = RSP_TXID_MAX;
	return ESIM_OK;
}

bool rsp_txid_equal(const rsp_txid *a, const rsp_txid *b)
{
	if (!a || !b || a->len < 1 || a->len > RSP_TXID_MAX || a->len != b->len)
		return false;
	return memcmp(a->b, b->b, a->len) == 0;
}

esim_err rsp_isdp_aid(unsigned n, uint8_t out[RSP_AID_MAX])
{
	if (!out || n > 0xFFEFu)
		return ESIM_E_ARG;
	unsigned v = 0x0010u + n;
	memcpy(out, RSP_AID_ISDR, 12);
	out[12] = 0x00;
	out[13] = (uint8_t)(v >> 8);
	out[14] = (uint8_t)(v & 0xFF);
	out[15] = 0x00;
	return ESIM_OK;
}

esim_err rsp_aid_to_hex(const uint8_t *aid, size_t len, char out[2 * RSP_AID_MAX + 1])
{
	if (!aid || !out)
		return ESIM_E_ARG;
	if (len < RSP_AID_MIN || len > RSP_AID_MAX)
		return ESIM_E_RSP_BAD_AID;
	char *hex = esim_hex_encode(aid, len, true);
	if (!hex)
		return ESIM_E_NOMEM;
	memcpy(out, hex, 2 * len + 1);
	free(hex);
	return ESIM_OK;
}

esim_err rsp_aid_from_hex(const char *hex, uint8_t out[RSP_AID_MAX], size_t *out_len)
{
	if (!hex || !out || !out_len)
		return ESIM_E_ARG;
	uint8_t *bytes = NULL;
	size_t len = 0;
	esim_err err = esim_hex_decode(hex, &bytes, &len);
	if (err != ESIM_OK)
		return err;
	if (len < RSP_AID_MIN || len > RSP_AID_MAX) {
		free(bytes);
		return ESIM_E_RSP_BAD_AID;
	}
	memcpy(out, bytes, len);
	*out_len = len;
	free(bytes);
	return ESIM_OK;
}

void rsp_sig_tlv(const uint8_t sig[RSP_SIG_LEN], uint8_t out[RSP_SIG_TLV_LEN])
{
	out[0] = 0x5F;
	out[1] = 0x37;
	out[2] = RSP_SIG_LEN;
	memcpy(out + 3, sig, RSP_SIG_LEN);
}
